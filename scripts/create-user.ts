// `npm run user:create -- --username <name> --role <viewer|operator|admin>`
// Creates a dashboard user in the same database `npm start` uses (DATABASE_URL, or the
// embedded Postgres in MIRRORPLANE_DATA_DIR). The password comes from
// MIRRORPLANE_NEW_PASSWORD, or is asked for on the terminal (not echoed).

import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createDb } from "@mirrorplane/db";
import { resolveDatabase } from "@mirrorplane/db/embedded";
import { applyMigrations } from "@mirrorplane/db/migrate";
import { createUser, UserExistsError, ZRole } from "../apps/web/src/server/users.ts";

const { values } = parseArgs({
  options: {
    username: { type: "string" },
    role: { type: "string", default: "viewer" },
    name: { type: "string" },
  },
});
const role = ZRole.safeParse(values.role);
if (!values.username || !role.success) {
  console.error(
    "usage: npm run user:create -- --username <name> [--role viewer|operator|admin] [--name <display name>]",
  );
  process.exit(2);
}

async function askPassword(): Promise<string> {
  if (process.env.MIRRORPLANE_NEW_PASSWORD) return process.env.MIRRORPLANE_NEW_PASSWORD;
  if (!process.stdin.isTTY) throw new Error("no terminal: set MIRRORPLANE_NEW_PASSWORD");
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  const muted = rl as unknown as { _writeToOutput: (s: string) => void };
  process.stdout.write("password (≥ 10 characters): ");
  muted._writeToOutput = () => {};
  const answer = await new Promise<string>((done) => rl.question("", done));
  rl.close();
  process.stdout.write("\n");
  return answer;
}

const root = resolve(import.meta.dirname, "..");
const dataDir = resolve(root, process.env.MIRRORPLANE_DATA_DIR ?? ".mirrorplane");
const database = await resolveDatabase({
  databaseUrl: process.env.DATABASE_URL,
  embeddedDir: join(dataDir, "postgres"),
  embeddedPort: Number(process.env.MIRRORPLANE_PG_PORT ?? 54329),
});
let code = 0;
const db = createDb(database.url, { poolSize: 1 });
try {
  await applyMigrations(database.url);
  const user = await createUser(db, {
    username: values.username,
    role: role.data,
    password: await askPassword(),
    ...(values.name ? { name: values.name } : {}),
  });
  console.log(`created ${user.username} (${user.role})`);
} catch (error) {
  console.error(
    error instanceof UserExistsError ? error.message : `failed: ${(error as Error).message}`,
  );
  code = 1;
} finally {
  await db.$disconnect();
  await database.stop();
}
process.exit(code);
