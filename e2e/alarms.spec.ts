import { expect, type Page, test } from "@playwright/test";
import { admin, nodeId, signIn } from "./helpers";

// DASHBOARD.md edges 5, 10 and 13 in the running product: the overview's alarms, the
// resync rate on the hugepages page's one time axis, and an incident export that carries
// the operator's action and the chart data — from a resync an operator starts on the demo
// cluster's smallest mirror.

type TIncidentExport = {
  incident: { subject: string; nodeId: string | null };
  events: Array<{ kind: string }>;
  operatorActions: Array<{ actor: string; action: string; target: string; outcome: string }>;
  charts: { bucketMs: number; points: Array<{ t: number; resyncRate: number }> };
};

test.describe
  .serial("alarms, one time axis, incident export", () => {
    let page: Page;
    test.beforeAll(async ({ browser }) => {
      page = await signIn(browser, admin);
    });
    test.afterAll(() => page.close());

    test("the overview shows its alarms panel beside the health roll-up", async () => {
      await page.goto("/overview");
      await expect(page.getByTestId("cluster-health")).toBeVisible();
      const alarms = page.getByTestId("alarms");
      await expect(alarms).toBeVisible();
      await expect(alarms).toHaveAttribute("data-count", /^\d+$/);
      await expect(page.getByTestId("overview-mirrors")).toContainText("LVM-sim-", {
        timeout: 30_000,
      });
      await page.screenshot({ path: "test-results/alarms-overview.png", fullPage: true });
    });

    test("an operator's resync shows as a rate on the hugepages time axis, and its incident export carries the action", async () => {
      // Start a resync of the whole small mirror from its page (plan, then confirm).
      await page.goto("/mirrors/LVM-sim-scratch");
      const progress = page.getByTestId("resync-progress");
      await expect(page.getByTestId("region-map")).toBeVisible();
      await expect(progress).not.toHaveAttribute("data-state", /running|paused/, {
        timeout: 60_000,
      });
      const form = page.locator("form").filter({ hasText: "first region" });
      await form.locator('input[name="first"]').fill("0");
      await form.locator('input[name="last"]').fill("95");
      await form.getByRole("button", { name: /Plan resync/ }).click();
      await page
        .getByTestId("resync-plan")
        .getByRole("button", { name: /Confirm: resync 96 regions/ })
        .click();
      await expect(page.getByRole("status")).toContainText("started");
      await expect(progress).toHaveAttribute("data-state", "done", { timeout: 45_000 });

      // The hugepages page: the resync rate on the same time axis as khugepaged and errors.
      await page.goto(`/khugepaged?node=${encodeURIComponent(nodeId())}`);
      const timeline = page.getByTestId("timeline");
      await expect(timeline).toContainText("resync rate (regions/s)");
      const peak = page.getByTestId("resync-rate-peak");
      await expect
        .poll(async () => Number(await peak.getAttribute("data-value")), { timeout: 30_000 })
        .toBeGreaterThan(0);
      await expect(timeline.locator(".resync-rate-line path.recharts-curve")).toHaveAttribute(
        "d",
        /^M/,
      );
      await page.screenshot({ path: "test-results/alarms-timeline.png", fullPage: true });

      // The incident on the events page, exported: its events, the operator's action, charts.
      let exported: TIncidentExport | undefined;
      let href = "";
      await expect
        .poll(
          async () => {
            await page.goto("/events");
            const row = page
              .getByTestId("incidents")
              .locator("tr", { hasText: "LVM-sim-scratch" })
              .first();
            await row.waitFor({ timeout: 10_000 }).catch(() => {});
            if ((await row.count()) === 0) return "no incident of LVM-sim-scratch listed yet";
            href = (await row.getByRole("link", { name: "JSON" }).getAttribute("href")) ?? "";
            const res = await page.request.get(href);
            if (res.status() !== 200) return `HTTP ${res.status()}`;
            exported = (await res.json()) as TIncidentExport;
            const action = exported.operatorActions.some(
              (a) =>
                a.actor === admin.username &&
                a.action === "mirrors.startResync" &&
                a.target === "mirror:LVM-sim-scratch" &&
                a.outcome === "ok",
            );
            const rate = exported.charts.points.some((p) => p.resyncRate > 0);
            return action && rate ? "ok" : `action ${action}, rate ${rate}`;
          },
          { timeout: 30_000, intervals: [1_000] },
        )
        .toBe("ok");
      expect(href).toContain("incident=1");
      expect(exported!.incident.subject).toBe("LVM-sim-scratch");
      expect(exported!.events.some((e) => e.kind === "resync")).toBe(true);
      const md = await page.request.get(href.replace("format=json", "format=md"));
      expect(md.status()).toBe(200);
      const text = await md.text();
      expect(text).toContain("# Incident: mirror LVM-sim-scratch");
      expect(text).toMatch(/## Operator actions[\s\S]*mirrors\.startResync/);
      expect(text).toContain("## Charts");
    });
  });
