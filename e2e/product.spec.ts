import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "@playwright/test";
import { e2e } from "../playwright.config";

const thp = "/sys/kernel/mm/transparent_hugepage";
const nodeId = () => readFileSync(join(e2e.dataDir, "agent", "node-id"), "utf8").trim();
const token = () => readFileSync(join(e2e.dataDir, "agent-token"), "utf8").trim();
const agentUrl = `http://127.0.0.1:${e2e.agentPort}/trpc/khugepaged.current`;
const digits = (text: string | null) => (text ?? "").replace(/,/g, "").trim();

test("the nodes page lists the local agent as fresh", async ({ page }) => {
  await page.goto("/nodes");
  const row = page.locator(`[data-testid="node-row"][data-node-id="${nodeId()}"]`);
  await expect(row).toBeVisible();
  await expect(row.getByTestId("freshness")).toHaveText("fresh");
});

test("the khugepaged page shows this host's sysfs values", async ({ page }) => {
  await page.goto(`/khugepaged?node=${encodeURIComponent(nodeId())}`);
  await expect(page.getByTestId("current-source")).toHaveText("read live from sysfs");
  for (const name of [
    "pages_to_scan",
    "scan_sleep_millisecs",
    "alloc_sleep_millisecs",
    "defrag",
    "max_ptes_none",
    "max_ptes_swap",
    "max_ptes_shared",
  ]) {
    const expected = readFileSync(`${thp}/khugepaged/${name}`, "utf8").trim();
    await expect(page.getByTestId(`tunable-${name}`)).toHaveText(
      Number(expected).toLocaleString("en-US"),
    );
    expect(digits(await page.getByTestId(`tunable-${name}`).textContent())).toBe(expected);
  }
  const enabled = /\[([^\]]+)\]/.exec(readFileSync(`${thp}/enabled`, "utf8"))?.[1];
  await expect(page.getByTestId("thp-enabled")).toHaveText(enabled ?? "—");
});

test("the khugepaged page charts the sampled counters", async ({ page }) => {
  await page.goto(`/khugepaged?node=${encodeURIComponent(nodeId())}`);
  const chart = page.locator('[data-testid="chart"][data-series="vmstat.thp_fault_alloc"]');
  await expect(chart).toBeVisible();
  // Samples arrive every second; the line appears once two or more are stored.
  await expect(chart.locator("path.recharts-curve")).toHaveCount(1, { timeout: 20_000 });
  await expect(chart.locator("h2")).toContainText("=");
});

test("the agent API refuses calls without the token, or with a wrong one", async () => {
  const none = await fetch(agentUrl);
  expect(none.status).toBe(401);
  const wrong = await fetch(agentUrl, {
    headers: { authorization: "Bearer not-the-token-at-all" },
  });
  expect(wrong.status).toBe(401);
  const right = await fetch(agentUrl, { headers: { authorization: `Bearer ${token()}` } });
  expect(right.status).toBe(200);
  const body = (await right.json()) as {
    result: { data: { json: { tunables: Record<string, number> } } };
  };
  expect(body.result.data.json.tunables.pages_to_scan).toBe(
    Number(readFileSync(`${thp}/khugepaged/pages_to_scan`, "utf8").trim()),
  );
});
