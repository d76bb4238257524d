import type { TestProject } from "vitest/node";
import { startTestPostgres } from "../packages/db/src/testing.ts";

/** One real Postgres for the whole test run; suites clone databases from its template. */
export default async function setup(project: TestProject) {
  const pg = await startTestPostgres();
  project.provide("pgAdminUrl", pg.adminUrl);
  return () => pg.stop();
}
