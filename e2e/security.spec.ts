/// <reference lib="dom" />
import { expect, type Page, test } from "@playwright/test";
import pg from "pg";
import { e2e } from "../playwright.config";
import { admin, databaseUrl, restoreSignInAllowance, signIn } from "./helpers";

// Issue 15 (the dashboard's half) in the running product behind apps/web/server.mjs:
// page headers and a CSP that the pages live with, no framing, the session token only in
// its cookie, cross-origin mutations refused, and forwarded headers that buy an attacker
// nothing at sign-in.

const base = `http://127.0.0.1:${e2e.webPort}`;
const pages = [
  "/overview",
  "/mirrors",
  "/mirrors/LVM-sim-logs",
  "/events",
  "/devices",
  "/nodes",
  "/khugepaged",
  "/audit",
  "/admin/users",
];

/** Records every CSP violation and console error a page reports. */
async function watchPage(page: Page) {
  const problems: string[] = [];
  // Each problem names the page it came from.
  const where = () => new URL(page.url()).pathname;
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${where()} console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${where()} pageerror: ${e.message}`));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return problems;
}

test.describe
  .serial("the dashboard's security headers and guards", () => {
    let page: Page;
    test.beforeAll(async ({ browser }) => {
      page = await signIn(browser, admin);
    });
    test.afterAll(() => page.close());

    test("every page carries a nonce CSP, frame-ancestors, X-Frame-Options, nosniff, Referrer-Policy, and works under it", async () => {
      const problems = await watchPage(page);
      const nonces = new Set<string>();
      for (const path of pages) {
        const res = await page.goto(path);
        expect(res?.status(), path).toBe(200);
        const h = res!.headers();
        const csp = h["content-security-policy"] ?? "";
        expect(csp, path).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]+' 'strict-dynamic'/);
        expect(csp, path).toContain("frame-ancestors 'none'");
        expect(csp, path).toContain("object-src 'none'");
        nonces.add(/'nonce-([^']+)'/.exec(csp)![1]!);
        expect(h["x-frame-options"], path).toBe("DENY");
        expect(h["x-content-type-options"], path).toBe("nosniff");
        expect(h["referrer-policy"], path).toBe("same-origin");
        // The page hydrated (client components ran) and its live stream connected.
        await expect(page.getByTestId("current-user")).toHaveText(admin.username);
        await expect(page.getByTestId("live-status")).toHaveText("live", { timeout: 15_000 });
      }
      // A fresh nonce per response.
      expect(nonces.size).toBe(pages.length);
      expect(problems).toEqual([]);
    });

    test("the sign-in page is under the same policy and works", async ({ browser }) => {
      const context = await browser.newContext();
      const fresh = await context.newPage();
      const problems = await watchPage(fresh);
      const res = await fresh.goto("/login");
      expect(res!.headers()["content-security-policy"]).toContain("'strict-dynamic'");
      await expect(fresh.getByRole("button", { name: /sign in/i })).toBeEnabled();
      expect(problems).toEqual([]);
      await context.close();
    });

    test("no other site can frame the dashboard", async ({ browser }) => {
      const context = await browser.newContext();
      const host = await context.newPage();
      // A page of another origin (a data: URL is opaque) embedding the dashboard.
      await host.goto(
        `data:text/html,<iframe id="f" src="${base}/login" width="600" height="400"></iframe>`,
      );
      await host.locator("#f").waitFor();
      const child = () => host.frames().find((f) => f !== host.mainFrame());
      // Chromium replaces a frame that frame-ancestors refuses with its error page.
      await expect.poll(() => child()?.url() ?? "").toMatch(/^chrome-error:/);
      expect(await child()!.locator("form").count()).toBe(0);
      await context.close();
    });

    test("API replies are data: nosniff and a CSP that runs nothing", async () => {
      const res = await page.request.get("/api/events/export?format=md");
      expect(res.status()).toBe(200);
      expect(res.headers()["x-content-type-options"]).toBe("nosniff");
      expect(res.headers()["content-security-policy"]).toBe(
        "default-src 'none'; frame-ancestors 'none'",
      );
    });

    test("a mutation with a foreign Origin and a valid session is refused with 403 and audited", async () => {
      const username = `forged-${Date.now().toString(36)}`;
      const res = await page.request.post("/api/trpc/users.create", {
        data: { json: { username, password: "0123456789abcdef", role: "admin" } },
        headers: { "content-type": "application/json", origin: "https://evil.example" },
      });
      expect(res.status()).toBe(403);
      await page.goto("/admin/users");
      await expect(
        page.locator(`[data-testid="user-row"][data-username="${admin.username}"]`),
      ).toBeVisible();
      await expect(
        page.locator(`[data-testid="user-row"][data-username="${username}"]`),
      ).toHaveCount(0);
      await page.goto("/audit");
      const row = page
        .locator('[data-testid="audit-row"][data-action="users.create"]')
        .filter({ hasText: "cross-origin" })
        .first();
      await expect(row).toBeVisible();
      await expect(row).toContainText("refused");
    });

    test("signing in puts the session token in the cookie only", async ({ browser }) => {
      const context = await browser.newContext();
      const fresh = await context.newPage();
      // Read the reply on its way to the page (the page navigates away right after it).
      let body = "";
      let status = 0;
      await context.route("**/api/auth/sign-in/username", async (route) => {
        const res = await route.fetch();
        status = res.status();
        body = await res.text();
        await route.fulfill({ response: res });
      });
      await fresh.goto("/login");
      await fresh.getByLabel("Username").fill(admin.username);
      await fresh.getByLabel("Password", { exact: true }).fill(admin.password);
      await fresh.getByRole("button", { name: /sign in/i }).click();
      await expect(fresh.getByTestId("current-user")).toHaveText(admin.username);
      expect(status).toBe(200);
      const cookie = (await context.cookies()).find((c) => c.name === "mirrorplane.session_token");
      expect(cookie?.httpOnly).toBe(true);
      const raw = decodeURIComponent(cookie!.value).split(".")[0]!;
      expect(body).not.toContain(raw);
      expect(JSON.parse(body)).not.toHaveProperty("token");
      await context.close();
    });

    // Last: it uses up this address's sign-in allowance (cleaned up afterwards).
    test("rotating X-Forwarded-For (or naming a peer) does not get past the per-client sign-in limit", async ({
      playwright,
    }) => {
      const api = await playwright.request.newContext({ baseURL: base });
      const statuses: number[] = [];
      try {
        for (let i = 0; i < 8; i++) {
          const res = await api.post("/api/auth/sign-in/username", {
            data: { username: `nobody-${i}`, password: "not a password at all" },
            headers: {
              origin: base,
              "x-forwarded-for": `198.51.100.${i + 1}`,
              "x-real-ip": `198.51.100.${i + 1}`,
              "x-mirrorplane-peer": `203.0.113.${i + 1}`,
              "x-mirrorplane-client-ip": `203.0.113.${i + 1}`,
            },
          });
          statuses.push(res.status());
        }
      } finally {
        await api.dispose();
        // Give this address its allowance back, for the specs after this one.
        const client = new pg.Client({ connectionString: databaseUrl() });
        await client.connect();
        await client.query("DELETE FROM sign_in_failures WHERE account LIKE 'nobody-%'");
        await client.end();
        await restoreSignInAllowance();
      }
      // Whatever had been used of the minute's 5 before, the 8 never all get through.
      expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(5);
      expect(statuses.at(-1)).toBe(429);
    });
  });
