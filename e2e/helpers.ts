import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, expect, type Page } from "@playwright/test";
import pg from "pg";
import { e2e } from "../playwright.config";

// Shared by the e2e specs: the product's data directory, the agent's token, signing in.

export const thp = "/sys/kernel/mm/transparent_hugepage";
export const nodeId = () => readFileSync(join(e2e.dataDir, "agent", "node-id"), "utf8").trim();
export const token = () => readFileSync(join(e2e.dataDir, "agent-token"), "utf8").trim();
export const agentUrl = `http://127.0.0.1:${e2e.agentPort}/trpc/khugepaged.current`;
export const digits = (text: string | null) => (text ?? "").replace(/,/g, "").trim();

export const admin = { username: "admin-e2e", password: "e2e-admin-password" };
export const viewer = { username: "viewer-e2e", password: "e2e-viewer-password" };

/**
 * Signs in, doing the first-run step when this data directory has no user yet. The session
 * is kept (Playwright storage state in the data directory) and reused while it is valid, so
 * the specs stay well inside the sign-in limit of 5 attempts a minute per client address.
 */
export async function signIn(
  browser: Browser,
  who: { username: string; password: string },
): Promise<Page> {
  const dir = join(e2e.dataDir, "e2e-sessions");
  const state = join(dir, `${who.username}.json`);
  if (existsSync(state)) {
    const context = await browser.newContext({ storageState: state });
    const page = await context.newPage();
    await page.goto("/nodes");
    if (!/\/login/.test(page.url())) {
      await expect(page.getByTestId("current-user")).toHaveText(who.username);
      return page;
    }
    await context.close();
  }
  // (The context lives until the browser closes at the end of the run.)
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto("/nodes");
  await expect(page).toHaveURL(/\/login/);
  await page.getByLabel("Username").fill(who.username);
  await page.getByLabel("Password", { exact: true }).fill(who.password);
  if (await page.getByRole("heading", { name: "Create the first admin" }).isVisible()) {
    await page.getByLabel("Repeat password").fill(who.password);
  }
  await page.getByRole("button", { name: /sign in/i }).click();
  await expect(page.getByTestId("current-user")).toHaveText(who.username);
  mkdirSync(dir, { recursive: true });
  await context.storageState({ path: state });
  return page;
}

/** The product's Postgres (the embedded cluster's credentials in the data directory). */
export function databaseUrl(): string {
  const c = JSON.parse(readFileSync(join(e2e.dataDir, "postgres", "credentials.json"), "utf8")) as {
    user: string;
    password: string;
  };
  return `postgresql://${c.user}:${encodeURIComponent(c.password)}@127.0.0.1:${e2e.pgPort}/mirrorplane`;
}

/**
 * Gives this machine's address its sign-in allowance back (5 attempts a minute per client
 * address, kept in Postgres): for a spec that signs in more than a few times, so that it
 * does not depend on how many sign-ins the specs before it made in the last minute.
 */
export async function restoreSignInAllowance(): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  try {
    await client.query("DELETE FROM rate_limits WHERE key LIKE '127.0.0.1|%'");
  } finally {
    await client.end();
  }
}
