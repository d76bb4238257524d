import { expect, type Page, test } from "@playwright/test";
import { admin, signIn } from "./helpers";

// Legs, their health, region size, bytes in the dry-run plan and the blast radius, on the
// demo cluster `npm start` runs (three simulated mirrors, two legs each, as node 1's
// simulated kernel reports them). Read-only: nothing here starts or cancels a resync.

test.describe
  .serial("mirror legs and blast radius", () => {
    let page: Page;
    test.beforeAll(async ({ browser }) => {
      page = await signIn(browser, admin);
    });
    test.afterAll(() => page.close());

    test("the mirrors list shows size, region size, log type and each leg's health", async () => {
      await page.goto("/mirrors");
      const row = (uuid: string) => page.locator(`[data-testid="mirror-row"][data-uuid="${uuid}"]`);
      const db = row("LVM-sim-db-primary");
      await expect(db).toBeVisible({ timeout: 30_000 });
      // 4,096 regions of 4 KiB on a clustered-disk log; two legs, the first the source.
      await expect(db.getByTestId("mirror-size")).toHaveText("16 MiB");
      await expect(db.getByTestId("mirror-region-size")).toHaveText("4 KiB");
      await expect(db).toContainText("clustered-disk");
      const health = db.getByTestId("leg-health");
      await expect(health).toHaveCount(2);
      await expect(health.first()).toHaveAttribute("data-health", "A");
      await expect(health.first()).toContainText("A");
      await expect(db.getByTestId("legs")).toContainText("db-primary-leg0.img (source)");
      const scratch = row("LVM-sim-scratch");
      await expect(scratch.getByTestId("mirror-size")).toHaveText("768 KiB");
      await expect(scratch.getByTestId("mirror-region-size")).toHaveText("8 KiB");
      await expect(scratch).toContainText("clustered-core");
      await page.screenshot({ path: "test-results/mirrors-legs.png", fullPage: true });

      // Sortable by size (smallest first) and filterable by log type.
      await page.getByTestId("sort-size").click();
      await expect(page.getByTestId("mirror-row").first()).toHaveAttribute(
        "data-uuid",
        "LVM-sim-scratch",
      );
      await page.getByTestId("mirrors-filter").fill("clustered-core");
      await expect(page.getByTestId("mirror-row")).toHaveCount(1);
      await page.getByTestId("mirrors-filter").fill("");
      await page.getByTestId("sort-size").click();
      await page.getByTestId("sort-size").click();
    });

    test("the mirror page names the source leg; the dry-run plan says bytes and copies from where to where", async () => {
      await page.goto("/mirrors/LVM-sim-logs");
      // Each of the three members' kernels reports the legs; member 1's view is read here.
      await expect(page.getByTestId("leg-row")).toHaveCount(6);
      const view = page
        .getByTestId("mirror-legs")
        .locator("div")
        .filter({ has: page.getByRole("heading", { name: "As demo-1's kernel sees them" }) });
      const legs = view.getByTestId("leg-row");
      await expect(legs).toHaveCount(2);
      await expect(legs.nth(0)).toHaveAttribute("data-source", "true");
      await expect(legs.nth(0).getByTestId("leg-role")).toContainText("resync source");
      await expect(legs.nth(1).getByTestId("leg-role")).toContainText("copy target");
      await expect(legs.nth(1).getByTestId("leg-health")).toHaveAttribute("data-health", "A");
      // A target leg is never a mirror's last good copy while the source is healthy.
      await expect(legs.nth(1).getByTestId("leg-blast-radius")).toHaveText(
        "no mirror loses its last good copy",
      );
      await expect(page.getByTestId("mirror-facts")).toContainText(
        "8 MiB in regions of 4 KiB; log clustered-disk",
      );

      const form = page.locator("form").filter({ hasText: "first region" });
      await form.locator('input[name="first"]').fill("100");
      await form.locator('input[name="last"]').fill("163");
      await form.getByRole("button", { name: /Plan resync/ }).click();
      const plan = page.getByTestId("resync-plan");
      await expect(plan).toContainText("regions 100–163 (64 regions, 256 KiB)");
      await expect(plan.getByTestId("plan-bytes")).toHaveText(", 256 KiB");
      await expect(plan.getByTestId("plan-source")).toContainText("from leg 0 (logs-leg0.img");
      await expect(plan).toContainText("to leg 1 (logs-leg1.img");
      await page.screenshot({ path: "test-results/mirror-legs-plan.png", fullPage: true });
      await plan.getByRole("button", { name: "Back" }).click();
    });

    test("the devices page lists each leg's device with its blast radius, and each node's", async () => {
      await page.goto("/devices");
      // Each of the demo's three members reports its own kernel's view: 6 leg devices each.
      const rows = page.getByTestId("leg-device-row");
      await expect(rows).toHaveCount(18, { timeout: 30_000 });
      const member1 = rows.filter({ hasText: "demo-1" });
      await expect(member1).toHaveCount(6);
      // Second legs are copy targets: losing one takes no mirror's last good copy.
      for (const name of ["db-primary", "logs", "scratch"]) {
        const target = member1.filter({ hasText: `${name}-leg1.img` });
        await expect(target).toContainText("no mirror loses its last good copy");
        await expect(target.getByTestId("leg-health")).toHaveAttribute("data-health", "A");
      }
      // Every member holds every mirror and sees healthy legs: no node failure loses one.
      for (const member of ["demo-1", "demo-2", "demo-3"]) {
        const node = page.getByTestId("node-blast-radius").locator("tr", { hasText: member });
        await expect(node).toContainText("nothing only this node provides");
      }
      await expect(page.getByTestId("blast-radius")).toContainText("shared storage");
      // The panel only: the page below it lists every failure event of the week.
      await page
        .getByTestId("blast-radius")
        .screenshot({ path: "test-results/devices-blast-radius.png" });
    });

    test("the devices page lists each node's disks with SMART health, or says why not", async () => {
      await page.goto("/devices");
      const panel = page.getByTestId("disks");
      // The local agent reads this host's /sys/block and runs the real smartctl on each disk.
      const rows = panel.getByTestId("disk-row");
      await expect(rows.first()).toBeVisible({ timeout: 30_000 });
      const count = await rows.count();
      for (let i = 0; i < count; i++) {
        const row = rows.nth(i);
        // Wait out the agent's first SMART round: every disk ends with a verdict or a reason.
        await expect(row).not.toHaveAttribute("data-smart", "pending", { timeout: 30_000 });
        const status = await row.getAttribute("data-smart");
        expect(["passed", "warning", "failing", "unavailable"]).toContain(status);
        if (status === "unavailable")
          await expect(row.getByTestId("disk-smart")).toContainText(/SMART unavailable: \S/);
      }
      // The demo's simulated members keep no disk inventory, and say so.
      const demo = panel.locator('[data-testid="node-disks"][data-node="demo-1"]');
      await expect(demo).toContainText("this agent reports no disks");
      await panel.screenshot({ path: "test-results/devices-disks.png" });
    });
  });
