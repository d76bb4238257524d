import { readdir, readFile } from "node:fs/promises";

/** Optional sysfs/procfs reads: a missing or unreadable file is `null`, never an error. */
export async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return null;
  }
}

/** A one-decimal file (`123\n`); anything else is unknown (null), not 0. */
export async function readInteger(path: string): Promise<number | null> {
  const text = await readText(path);
  if (text === null) return null;
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return null;
  const value = Number(trimmed);
  return Number.isSafeInteger(value) ? value : null;
}

export async function readLine(path: string): Promise<string | null> {
  const text = await readText(path);
  if (text === null) return null;
  const line = text.split("\n")[0]!.trim();
  return line.length > 0 && line.length <= 4096 ? line : null;
}

/** Directory entries matching `pattern`, sorted naturally (`mc2` before `mc10`); [] if absent. */
export async function list(dir: string, pattern: RegExp): Promise<string[]> {
  try {
    return (await readdir(dir))
      .filter((name) => pattern.test(name))
      .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  } catch {
    return [];
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await readdir(path);
    return true;
  } catch {
    return false;
  }
}
