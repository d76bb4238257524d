// `npm run db:migrate` / `npm run db:diff -- <name>`: the one script for migrations.

import { dropDatabase, ensureDatabase } from "./embedded.ts";
import { applyMigrations, createMigration } from "./migrate.ts";
import { resolveDatabase } from "./resolve.ts";

const [command, name] = process.argv.slice(2);
const db = await resolveDatabase({
  databaseUrl: process.env.DATABASE_URL,
  embeddedPort: process.env.MIRRORPLANE_PG_PORT
    ? Number(process.env.MIRRORPLANE_PG_PORT)
    : undefined,
  embeddedDir: process.env.MIRRORPLANE_DATA_DIR
    ? `${process.env.MIRRORPLANE_DATA_DIR}/postgres`
    : undefined,
});
try {
  if (command === "migrate") {
    const applied = await applyMigrations(db.url);
    console.log(applied.length ? `applied: ${applied.join(", ")}` : "database is up to date");
  } else if (command === "diff") {
    if (!name) throw new Error("usage: npm run db:diff -- <migration_name>");
    const scratch = `mirrorplane_diff_${process.pid}`;
    const admin = new URL(db.url);
    admin.pathname = "/postgres";
    await ensureDatabase(admin.toString(), scratch);
    const scratchUrl = new URL(db.url);
    scratchUrl.pathname = `/${scratch}`;
    let created: string | null;
    try {
      created = await createMigration(scratchUrl.toString(), name);
    } finally {
      await dropDatabase(admin.toString(), scratch);
    }
    console.log(created ? `created prisma/migrations/${created}` : "schema matches migrations");
  } else {
    throw new Error("usage: cli.ts migrate | diff <name>");
  }
} finally {
  await db.stop();
}
// The wasm engine keeps an event-loop handle alive after free(); we are done.
process.exit(0);
