import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { dropDatabase, ensureDatabase } from "./embedded.ts";
import { applyMigrations } from "./migrate.ts";
import { withDatabase } from "./testing.ts";

describe("migrations (real Postgres)", () => {
  const adminUrl = inject("pgAdminUrl");
  const name = `migrate_test_${process.pid}`;
  const url = withDatabase(adminUrl, name);

  beforeAll(() => ensureDatabase(adminUrl, name));
  afterAll(() => dropDatabase(adminUrl, name));

  it("applies every migration to an empty database, then nothing on a second run", async () => {
    const first = await applyMigrations(url);
    expect(first.length).toBeGreaterThan(0);
    expect(first[0]).toMatch(/_init$/);
    expect(await applyMigrations(url)).toEqual([]);
  });

  it("keeps Prisma's _prisma_migrations table so `prisma migrate deploy` agrees", async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query(
        "SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count FROM _prisma_migrations",
      );
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
        expect(row.finished_at).not.toBeNull();
        expect(row.rolled_back_at).toBeNull();
      }
      const tables = await client.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
      );
      expect(tables.rows.map((r) => r.table_name)).toEqual(
        expect.arrayContaining(["nodes", "samples", "events", "users", "audit_actions"]),
      );
    } finally {
      await client.end();
    }
  });
});
