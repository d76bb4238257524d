import { type Browser, expect, type Page, test } from "@playwright/test";
import { e2e } from "../playwright.config";
import { admin, restoreSignInAllowance, signIn } from "./helpers";

// Issue 13 (users that can be disabled or have a password reset, as TrueNAS and Ceph
// Dashboard have): an admin disables a signed-in operator — whose open page is sent to the
// sign-in page and whose sign-in is refused with a sentence — enables them again, then sets
// a temporary password the operator must replace at the next sign-in. Each step is audited;
// a viewer-level direct call is refused and audited too.

const shot = (page: Page, name: string) =>
  page.screenshot({ path: `test-results/users-${name}.png`, fullPage: true });

async function signInFresh(browser: Browser, username: string, password: string) {
  const context = await browser.newContext({ baseURL: `http://127.0.0.1:${e2e.webPort}` });
  const page = await context.newPage();
  await page.goto("/login?next=/nodes");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: /sign in/i }).click();
  return page;
}

test.describe
  .serial("an admin disables a user and resets a password", () => {
    test.describe.configure({ timeout: 120_000 });
    const dora = { username: `dora-${Date.now().toString(36)}`, password: "dora-first-password" };
    let page: Page;
    const row = () => page.locator(`[data-testid="user-row"][data-username="${dora.username}"]`);
    test.beforeAll(async ({ browser }) => {
      // This walk signs in up to 5 times; the specs before it may have used the minute's.
      await restoreSignInAllowance();
      page = await signIn(browser, admin);
    });
    test.afterAll(() => page.close());

    test("disable: the open session ends at once, sign-in is refused in words; enable again", async ({
      browser,
    }) => {
      await page.goto("/admin/users");
      await expect(
        page.locator(`[data-testid="user-row"][data-username="${admin.username}"]`),
      ).toContainText("your own account");
      const form = page.locator("form").filter({ hasText: "Initial password" });
      await form.locator('input[name="username"]').fill(dora.username);
      await form.locator('input[name="password"]').fill(dora.password);
      await form.locator('select[name="role"]').selectOption("operator");
      await page.getByRole("button", { name: "Create user" }).click();
      await expect(row()).toContainText("enabled");

      const doraPage = await signInFresh(browser, dora.username, dora.password);
      await expect(doraPage.getByTestId("current-user")).toHaveText(dora.username);

      await row().getByRole("button", { name: "Disable…" }).click();
      await expect(row()).toContainText("Their sessions end now");
      await row()
        .getByRole("button", { name: `Disable ${dora.username}` })
        .click();
      await expect(page.getByTestId("account-message")).toHaveText(
        `Disabled ${dora.username}: 1 session ended; sign-in is refused until enabled again.`,
      );
      await expect(row().getByTestId("user-status")).toContainText("disabled since");
      await shot(page, "disabled");

      // The operator's open page: its next call is refused and it goes to the sign-in page.
      await doraPage.goto("/nodes");
      await expect(doraPage).toHaveURL(/\/login/);
      await doraPage.getByLabel("Username").fill(dora.username);
      await doraPage.getByLabel("Password", { exact: true }).fill(dora.password);
      await doraPage.getByRole("button", { name: /sign in/i }).click();
      await expect(doraPage.locator("p.error[role=alert]")).toHaveText(
        "This account is disabled. Ask an admin of this dashboard to enable it again.",
      );
      await shot(doraPage, "disabled-sign-in");

      await row().getByRole("button", { name: "Enable" }).click();
      await expect(page.getByTestId("account-message")).toHaveText(
        `Enabled ${dora.username}: they can sign in again.`,
      );
      await doraPage.getByRole("button", { name: /sign in/i }).click();
      await expect(doraPage.getByTestId("current-user")).toHaveText(dora.username);
      await doraPage.context().close();
    });

    test("reset: a temporary password that must be replaced at the next sign-in", async ({
      browser,
    }) => {
      await page.goto("/admin/users");
      await row().getByRole("button", { name: "Reset password…" }).click();
      await row()
        .getByLabel(/Temporary password for/)
        .fill("temporary-e2e-1");
      await expect(row().getByLabel(/Must choose their own password/)).toBeChecked();
      await shot(page, "reset-form");
      await row().getByRole("button", { name: "Set password and end their sessions" }).click();
      await expect(page.getByTestId("account-message")).toContainText(
        "They must choose their own password when they next sign in.",
      );
      await expect(row().getByTestId("user-status")).toContainText("must change password");

      // (That the old password no longer works is checked in server/user-admin.test.ts: the
      // sign-in limit of 5 a minute per address leaves this walk 4 sign-ins.)

      const doraPage = await signInFresh(browser, dora.username, "temporary-e2e-1");
      await expect(doraPage.getByTestId("must-change-password")).toBeVisible();
      await expect(doraPage.getByTestId("nodes-table")).toHaveCount(0);
      await shot(doraPage, "must-change");
      await doraPage.getByLabel("Temporary password").fill("temporary-e2e-1");
      await doraPage.getByLabel("New password (≥ 10 characters)").fill("doras-own-password");
      await doraPage.getByLabel("Repeat the new password").fill("doras-own-password");
      await doraPage.getByRole("button", { name: "Change password" }).click();
      await expect(doraPage.getByTestId("must-change-password")).toHaveCount(0);
      await expect(doraPage.getByRole("heading", { name: "Nodes" })).toBeVisible();

      await page.reload();
      await expect(row().getByTestId("user-status")).not.toContainText("must change password");

      // An operator's direct call to the admin procedures: refused, and audited.
      const res = await doraPage.request.post("/api/trpc/users.setDisabled", {
        data: { json: { username: admin.username, disabled: true } },
        headers: { "content-type": "application/json", origin: `http://127.0.0.1:${e2e.webPort}` },
      });
      expect(res.status()).toBe(403);
      await doraPage.context().close();

      await page.goto("/audit");
      for (const action of ["users.disable", "users.enable", "users.resetPassword"])
        await expect(
          page
            .locator(`[data-testid="audit-row"][data-action="${action}"]`)
            .filter({ hasText: dora.username })
            .first(),
        ).toBeVisible();
      await expect(
        page.locator('[data-testid="audit-row"][data-action="account.changePassword"]').first(),
      ).toContainText(dora.username);
      const refusal = page
        .locator('[data-testid="audit-row"][data-action="users.setDisabled"]')
        .first();
      await expect(refusal).toContainText("refused");
      await expect(refusal).toContainText(dora.username);
      await shot(page, "audit");
    });
  });
