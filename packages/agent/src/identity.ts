import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";

/**
 * The node identity: configured, or created once and kept in `<dataDir>/node-id` so it
 * survives restarts (history in Postgres is keyed by it).
 */
export async function loadNodeId(dataDir: string, configured?: string): Promise<string> {
  if (configured) return configured;
  const file = join(dataDir, "node-id");
  try {
    const stored = (await readFile(file, "utf8")).trim();
    if (stored) return stored;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const base =
    hostname()
      .toLowerCase()
      .replace(/[^a-z0-9.-]/g, "-")
      .slice(0, 48) || "node";
  const id = `${base}-${randomBytes(3).toString("hex")}`;
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, `${id}\n`, { flag: "wx" }).catch(async (error) => {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  });
  return (await readFile(file, "utf8")).trim();
}
