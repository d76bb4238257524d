import { expect, type Page, test } from "@playwright/test";
import { admin, nodeId, signIn } from "./helpers";

// Issue 13, the rest of a new operator's walk: the events page keeps its filters in the
// address, its export honours them (unacknowledged only included) and refuses an unknown
// format in words; long messages open; many events are acknowledged at once; resync events
// name their throttle and actor. The khugepaged page opens on a node that has khugepaged and
// a same-value write is not a change. Every page has its own title and fits 390, 1024 and
// 1440 px without clipping.

const shot = (page: Page, name: string) =>
  page.screenshot({ path: `test-results/walk-${name}.png`, fullPage: true });

test.describe
  .serial("an operator's walk", () => {
    let page: Page;
    test.describe.configure({ timeout: 120_000 });
    test.beforeAll(async ({ browser }) => {
      page = await signIn(browser, admin);
    });
    test.afterAll(() => page.close());

    test("events: filters live in the address, and the export follows them", async () => {
      await page.goto("/events?severity=info&window=24h&kind=resync");
      await expect(page).toHaveTitle("Events — Mirrorplane");
      await expect(page.getByRole("button", { name: "info", exact: true })).toHaveAttribute(
        "aria-pressed",
        "true",
      );
      await expect(page.getByRole("button", { name: "24 h" })).toHaveAttribute(
        "aria-pressed",
        "true",
      );
      await expect(page.getByLabel("kind")).toHaveValue("resync");
      await page.getByLabel("unacknowledged only").check();
      await expect(page).toHaveURL(/unacked=1/);
      await expect(page).toHaveURL(/severity=info/);
      await expect(page).toHaveURL(/window=24h/);
      const json = page.getByRole("link", { name: "Export JSON" });
      await expect(json).toHaveAttribute("href", /acknowledged=false/);
      const exported = (await (
        await page.request.get((await json.getAttribute("href"))!)
      ).json()) as {
        filter: { acknowledged?: boolean };
        events: Array<{ acknowledgedAt: string | null; severity: string; kind: string }>;
      };
      expect(exported.filter.acknowledged).toBe(false);
      expect(exported.events.every((e) => e.severity === "info" && e.kind === "resync")).toBe(true);
      expect(exported.events.every((e) => e.acknowledgedAt === null)).toBe(true);
      const xml = await page.request.get("/api/events/export?format=xml");
      expect(xml.status()).toBe(400);
      expect(await xml.text()).toMatch(/^Unknown export format “xml”/);

      // A reload keeps the view.
      await page.reload();
      await expect(page.getByLabel("unacknowledged only")).toBeChecked();
      await shot(page, "1-events-filtered");
    });

    test("events: resync events name their throttle and actor; a message opens; many are acknowledged at once", async () => {
      await page.goto("/events?kind=resync&text=throttle%20set&window=all");
      const rows = page.getByTestId("event-row");
      await expect(rows.first()).toBeVisible({ timeout: 30_000 });
      await expect(rows.first()).toContainText(/throttle set (to [\d,]+ regions\/s|: none)/);
      await page.goto("/events?kind=resync&text=started&window=all");
      await expect(rows.first()).toContainText(/started by \S+/);

      // The whole message and the kernel's line, by click or keyboard.
      await rows.first().getByRole("button").first().focus();
      await page.keyboard.press("Enter");
      const expanded = page.getByTestId("event-expanded");
      await expect(expanded).toContainText("started by");
      await shot(page, "2-event-expanded");
      await expanded.getByRole("button", { name: "Close" }).click();

      // Acknowledge every unacknowledged one shown, in one go.
      await page.goto("/events?kind=resync&text=throttle%20set&window=all&unacked=1");
      await expect(page.getByTestId("events-count")).not.toHaveText("Loading…");
      const bulk = page.getByTestId("bulk-ack");
      if ((await page.getByTestId("event-row").count()) > 0) {
        page.once("dialog", (d) => void d.accept());
        await bulk.click();
        await expect(page.getByRole("status").filter({ hasText: "Acknowledged" })).toBeVisible();
      }
      await expect(page.getByTestId("event-row")).toHaveCount(0);
      await expect(page.getByTestId("events-count")).toHaveText("0 events");
      await expect(bulk).toBeDisabled();
    });

    test("khugepaged opens on a node that has it; a same-value write is not a change", async () => {
      await page.goto("/khugepaged");
      await expect(page).toHaveTitle("khugepaged — Mirrorplane");
      await expect(page.getByTestId("node-select")).toHaveValue(nodeId());
      await expect(page.getByTestId("current-source")).toHaveText("read live from sysfs");
      const value = (await page.getByTestId("tunable-pages_to_scan").textContent())!.replace(
        /,/g,
        "",
      );
      const editor = page.getByTestId("edit-khugepaged-pages_to_scan");
      await editor.getByRole("button", { name: "Edit" }).click();
      await editor.getByLabel("new value for khugepaged/pages_to_scan").fill(value);
      await editor
        .getByLabel("reason for changing khugepaged/pages_to_scan")
        .fill("e2e: same value");
      await editor.getByRole("button", { name: "Apply" }).click();
      await expect(editor.getByRole("status")).toHaveText(`unchanged: it is already ${value}`);
      // enabled is a choice, edited by picking one of the kernel's.
      const enabled = page.getByTestId("edit-enabled");
      if (await enabled.count()) {
        await enabled.getByRole("button", { name: "Edit" }).click();
        await expect(enabled.getByLabel("new value for enabled")).toBeVisible();
        await enabled.getByRole("button", { name: "Cancel" }).click();
      }
      await expect(page.getByTestId("per-size-editor")).toBeVisible();
      await shot(page, "3-khugepaged");
      await page.goto("/audit");
      await expect(
        page.locator('[data-testid="audit-row"][data-action="khugepaged.setTunable"]').first(),
      ).toContainText("unchanged: already");
    });

    test("the region map says what a cell holds, and a click plans that range", async () => {
      await page.goto("/mirrors/LVM-sim-scratch");
      await expect(page.getByTestId("resync-progress")).not.toHaveAttribute(
        "data-state",
        /running|paused/,
        { timeout: 60_000 },
      );
      const map = page.getByTestId("region-map");
      await expect(map.getByTestId("region-map-counts")).toContainText(/cells: [\d,]+ in sync/);
      const canvas = map.locator("canvas");
      await expect(canvas).toHaveAttribute("aria-label", /^Region map: /);
      // (hover scrolls it into view first: the panels above it may still be growing.)
      await expect(async () => {
        await canvas.hover({ position: { x: 5, y: 5 } });
        await expect(map.getByTestId("region-map-hover")).toHaveText(/^regions 0–\d+: /, {
          timeout: 1_000,
        });
      }).toPass({ timeout: 15_000 });
      await canvas.click({ position: { x: 5, y: 5 } });
      const plan = page.getByTestId("resync-plan");
      await expect(plan).toContainText(/mark regions 0–\d+/);
      await shot(page, "6-region-map-plan");
      await plan.getByRole("button", { name: "Back" }).click();
    });

    test("the nodes page says each node's cluster membership, or why it has none", async () => {
      await page.goto("/nodes");
      const panel = page.getByTestId("membership");
      await expect(panel).toBeVisible();
      const local = panel.locator(`[data-testid="membership-node"][data-node-id="${nodeId()}"]`);
      // This host's agent runs without a cluster log (e2e config): it says so, in words.
      await expect(local).toContainText(
        /runs no cluster-log server|does not report membership|Member \d+ of \d+/,
      );
      await shot(page, "5-nodes-membership");
    });

    test("every page has its own title and fits 390, 1024 and 1440 px", async () => {
      const pages: Array<[string, string]> = [
        ["/overview", "Overview — Mirrorplane"],
        ["/mirrors", "Mirrors — Mirrorplane"],
        ["/mirrors/LVM-sim-logs", "Mirror LVM-sim-logs — Mirrorplane"],
        ["/events", "Events — Mirrorplane"],
        ["/devices", "Memory and devices — Mirrorplane"],
        ["/nodes", "Nodes — Mirrorplane"],
        ["/khugepaged", "khugepaged — Mirrorplane"],
        ["/audit", "Audit — Mirrorplane"],
      ];
      for (const width of [390, 1024, 1440]) {
        await page.setViewportSize({ width, height: 900 });
        for (const [path, title] of pages) {
          await page.goto(path);
          await expect(page).toHaveTitle(title);
          await expect(page.locator("main h1")).toBeVisible();
          await page.waitForLoadState("networkidle").catch(() => {});
          // The page itself never scrolls sideways: wide tables scroll inside their panel.
          const overflow = await page.evaluate(
            () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
          );
          expect(overflow, `${path} at ${width} px`).toBeLessThanOrEqual(1);
          if (path === "/overview" || path === "/mirrors/LVM-sim-logs" || path === "/events")
            await shot(page, `4-${width}${path.replaceAll("/", "-")}`);
        }
      }
      await page.setViewportSize({ width: 1280, height: 720 });
    });
  });

test("scripts are served compressed; the live stream stays live (not buffered)", async ({
  browser,
}) => {
  const page = await signIn(browser, admin);
  const encodings: string[] = [];
  page.on("response", (r) => {
    if (/\/_next\/static\/.*\.js$/.test(r.url()))
      encodings.push(r.headers()["content-encoding"] ?? "identity");
  });
  await page.goto("/overview");
  await expect(page.getByTestId("live-status")).toHaveText("live", { timeout: 20_000 });
  expect(encodings.length).toBeGreaterThan(0);
  expect(encodings.every((e) => e === "gzip" || e === "br")).toBe(true);
  await page.close();
});
