import { expect, type Page, test } from "@playwright/test";
import { e2e } from "../playwright.config";
import { admin, signIn, viewer } from "./helpers";

// Issue 13, as a new operator walks it on the demo cluster: a throttled resync reads
// "throttled" with an ETA at its rate and takes any rate while running; a cancel asks first
// and says what stays unprotected; afterwards the mirror page and the overview say the
// mirror is without redundancy (critical, no projected finish) and offer to resync only
// what is out of sync; a bulk resync says what it leaves unprotected and for how long;
// errors are sentences and a viewer's refused change is in the audit log.

const shot = (page: Page, name: string) =>
  page.screenshot({ path: `test-results/safe-${name}.png`, fullPage: true });

test.describe
  .serial("safe mutations", () => {
    let page: Page;
    test.describe.configure({ timeout: 180_000 });
    test.beforeAll(async ({ browser }) => {
      page = await signIn(browser, admin);
    });
    test.afterAll(() => page.close());

    test("a throttled resync says so, with its ETA at that rate, and takes any rate", async () => {
      await page.goto("/mirrors/LVM-sim-logs");
      const progress = page.getByTestId("resync-progress");
      await expect(page.getByTestId("mirror-sync")).toBeVisible();
      await expect(progress).not.toHaveAttribute("data-state", /running|paused/, {
        timeout: 90_000,
      });
      const form = page.locator("form").filter({ hasText: "first region" });
      // A wrong range is refused in a sentence, not in zod's JSON.
      await form.locator('input[name="first"]').fill("10");
      await form.locator('input[name="last"]').fill("5");
      await form.getByRole("button", { name: /Plan resync/ }).click();
      const planError = page.locator(".panel .error").filter({ hasText: "after last" });
      await expect(planError).toHaveText("First must not be after last.");

      await form.locator('input[name="first"]').fill("0");
      await form.locator('input[name="last"]').fill("399");
      await form.locator('input[name="throttle"]').fill("2");
      await form.getByRole("button", { name: /Plan resync/ }).click();
      const plan = page.getByTestId("resync-plan");
      await expect(plan.getByTestId("plan-unprotected")).toContainText(
        /Without redundancy while it runs: (up to )?[\d,]+ regions \([\d.]+ [KM]iB\)/,
      );
      // 400 regions at 2/s: about 3 min.
      await expect(plan.getByTestId("plan-unprotected")).toContainText("for about 3 min");
      await shot(page, "1-plan-unprotected");
      await plan.getByRole("button", { name: /Confirm: resync 400 regions/ }).click();
      await expect(page.getByRole("status")).toContainText("started");

      const state = page.getByTestId("resync-state");
      await expect(state).toHaveAttribute("data-display-state", "throttled");
      await expect(state).toHaveText("(throttled, 2 regions/s)");
      await expect(page.getByTestId("resync-eta")).toContainText("at 2 regions/s");
      await expect(page.getByTestId("resync-eta")).toContainText("min");
      await shot(page, "2-throttled");

      // Any value while it runs, not only presets.
      await page.locator('input[name="running-throttle"]').fill("7");
      await page.getByRole("button", { name: "Set throttle" }).click();
      await expect(page.getByRole("status")).toHaveText("Throttle set: at most 7 regions/s.");
      await expect(state).toHaveText("(throttled, 7 regions/s)");
    });

    test("a cancel asks first, says what stays unprotected, and the page offers to finish", async () => {
      const progress = page.getByTestId("resync-progress");
      await page.getByRole("button", { name: "Cancel resync…" }).click();
      const confirm = page.getByTestId("cancel-confirm");
      await expect(confirm).toContainText(/Cancelling leaves [\d,]+ regions \([\d.]+ [KM]iB\)/);
      await expect(confirm).toContainText("without redundancy");
      // The confirmation has the focus; Escape-free: "Keep it running" is the way back.
      const go = confirm.getByRole("button", { name: /Confirm: cancel, leaving/ });
      await expect(go).toBeFocused();
      await shot(page, "3-cancel-confirm");
      await go.click();
      await expect(progress).toHaveAttribute("data-state", "cancelled");
      await expect(page.getByRole("status")).toBeFocused();
      const lost = page.getByTestId("redundancy-lost");
      await expect(lost).toContainText("Without redundancy:");
      await expect(lost).toContainText("nothing recovers them");
      await expect(
        lost.getByRole("button", { name: "Resync only what is out of sync…" }),
      ).toBeEnabled();
      await shot(page, "4-mirror-without-redundancy");
      // The copy-target leg offers its own repair: only the regions it is missing.
      const repair = page.getByTestId("leg-row").nth(1).getByTestId("leg-repair");
      await expect(repair).toBeEnabled();
      await repair.click();
      const plan = page.getByTestId("resync-plan");
      await expect(plan).toContainText("Only what is out of sync");
      await plan.getByRole("button", { name: "Back" }).click();
      await expect(plan).toHaveCount(0);
    });

    test("the overview is critical, lists the reason with a link, and never projects a finish", async () => {
      await page.goto("/overview");
      const health = page.getByTestId("cluster-health");
      await expect(health).toHaveAttribute("data-health", "critical", { timeout: 20_000 });
      const reason = health
        .getByTestId("health-reason")
        .filter({ hasText: "LVM-sim-logs" })
        .first();
      await expect(reason).toHaveAttribute("data-severity", "critical");
      await expect(reason.getByRole("link")).toHaveAttribute("href", "/mirrors/LVM-sim-logs");
      await expect(reason).toContainText("without redundancy and nothing recovers them");
      const alarm = page
        .getByTestId("alarm")
        .filter({ hasText: "LVM-sim-logs" })
        .filter({ has: page.locator('[data-kind="without-redundancy"]') })
        .or(page.locator('[data-testid="alarm"][data-kind="without-redundancy"]'))
        .first();
      await expect(alarm).toHaveAttribute("data-severity", "critical");
      const row = page.getByTestId("overview-mirrors").locator("tr", { hasText: "LVM-sim-logs" });
      await expect(row.getByTestId("redundancy-lost")).toContainText("nothing recovering");
      await expect(row).not.toContainText("in sync ~");
      await shot(page, "5-overview-critical");

      // Silence its delivery for a while, saying why; the silence is listed and can end early.
      const alarmRow = page
        .locator('[data-testid="alarm"][data-kind="without-redundancy"]')
        .filter({ hasText: "LVM-sim-logs" });
      await alarmRow.getByRole("button", { name: "Silence…" }).click();
      const form = alarmRow.getByTestId("silence-form");
      await form.getByRole("button", { name: "Silence" }).click();
      await expect(form.getByRole("status")).toContainText("say why");
      await form.getByLabel("why silence it").fill("e2e: resyncing it now");
      await form.getByRole("button", { name: "Silence" }).click();
      await expect(alarmRow.getByTestId("alarm-silence")).toContainText("silenced until");
      await expect(alarmRow.getByTestId("alarm-silence")).toContainText("e2e: resyncing it now");
      const delivery = page.getByTestId("alert-delivery");
      const silenceRow = delivery
        .getByTestId("silence-row")
        .filter({ hasText: "e2e: resyncing it now" });
      await expect(silenceRow).toContainText("MirrorWithoutRedundancy, mirror LVM-sim-logs");
      await shot(page, "5b-silenced");
      await silenceRow.getByRole("button", { name: "Expire" }).click();
      await expect(silenceRow).toHaveCount(0);
      await expect(alarmRow.getByRole("button", { name: "Silence…" })).toBeVisible();

      // "Resync only what is out of sync": the plan opens planned on the mirror's page.
      await row.getByRole("link", { name: "resync only what is out of sync" }).click();
      await expect(page).toHaveURL(/\/mirrors\/LVM-sim-logs\?resync=out-of-sync/);
      const plan = page.getByTestId("resync-plan");
      await expect(plan).toContainText("Only what is out of sync");
      await shot(page, "6-out-of-sync-plan");
      await plan.getByRole("button", { name: /Confirm: resync/ }).click();
      await expect(page.getByRole("status")).toContainText("started");
      await expect(page.getByTestId("redundancy-lost")).toHaveCount(0);
      await expect(page.getByTestId("resync-progress")).toHaveAttribute("data-state", "done", {
        timeout: 120_000,
      });
    });

    test("a bulk resync says what it leaves unprotected and for how long, before it starts", async () => {
      await page.goto("/mirrors");
      await expect(page.getByTestId("mirror-row").first()).toBeVisible({ timeout: 30_000 });
      await page.getByRole("checkbox", { name: "select LVM-sim-scratch" }).check();
      await page.getByRole("button", { name: /Resync selected \(1\)/ }).click();
      const confirm = page.getByTestId("bulk-confirm");
      await confirm.getByLabel("throttle each (regions/s)").fill("10");
      await expect(confirm.getByTestId("bulk-plan")).toContainText(
        "LVM-sim-scratch: 96 regions (768 KiB) unprotected for about 10 s (at the throttle)",
      );
      await expect(confirm.getByTestId("bulk-unprotected")).toContainText(
        "Without redundancy meanwhile: 96 regions (768 KiB), for up to about 10 s.",
      );
      await shot(page, "7-bulk-confirm");
      await confirm.getByRole("button", { name: "Back" }).click();
      await expect(confirm).toHaveCount(0);
    });
  });

test("a viewer's refused change is in the audit log; disabled controls say why in text", async ({
  browser,
}) => {
  const origin = { "content-type": "application/json", origin: `http://127.0.0.1:${e2e.webPort}` };
  const adminPage = await signIn(browser, admin);
  // The viewer exists (product.spec creates it too; 409 when it does already).
  const created = await adminPage.request.post("/api/trpc/users.create", {
    data: { json: { ...viewer, role: "viewer" } },
    headers: origin,
  });
  expect([200, 409]).toContain(created.status());
  const page = await signIn(browser, viewer);
  const r = await page.request.post("/api/trpc/mirrors.cancel", {
    data: { json: { uuid: "LVM-sim-scratch" } },
    headers: origin,
  });
  expect(r.status()).toBe(403);
  await page.goto("/mirrors/LVM-sim-scratch");
  await expect(page.getByTestId("disabled-reason")).toContainText("need the operator role");
  await page.close();
  await adminPage.goto("/audit");
  const row = adminPage
    .locator(
      `[data-testid="audit-row"][data-action="mirrors.cancel"][data-outcome="refused"][data-actor="${viewer.username}"]`,
    )
    .first();
  await expect(row).toContainText("Needs the operator role; you are viewer.");
  await expect(row).toContainText("mirror:LVM-sim-scratch");
  await shot(adminPage, "8-audit-refusal");
  await adminPage.close();
});
