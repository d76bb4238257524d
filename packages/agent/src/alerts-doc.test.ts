import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  createAgentMetrics,
  type OrderStatus,
  registerMembershipMetrics,
  registerOrderMetrics,
} from "./metrics.ts";

// docs/ALERTS.md gives operators Prometheus rules on the agents' /metrics: every metric a
// rule names must be one an agent serves, or the rule never fires and nobody notices.

const doc = readFileSync(join(import.meta.dirname, "../../../docs/ALERTS.md"), "utf8");

function ruleMetricNames(markdown: string): string[] {
  const yaml = markdown.slice(markdown.indexOf("## 2. Prometheus rules")).split("```")[1] ?? "";
  const exprs = yaml.split("\n").filter((l) => l.trim().startsWith("expr:"));
  return [...new Set(exprs.flatMap((l) => l.match(/mirrorplane_[a-z_]+/g) ?? []))].sort();
}

describe("docs/ALERTS.md's example rules", () => {
  it("name only metrics the agent registers (a cluster member over NATS, with SMART)", () => {
    const { registry } = createAgentMetrics({ node: "doc" });
    registerMembershipMetrics(registry, { membership: () => ({ members: [], servedBy: {} }) });
    // Registration reads only the order's kind; the NATS gauges exist for a jetstream member.
    registerOrderMetrics(registry, () => ({ kind: "jetstream" }) as OrderStatus);
    const served = new Set(registry.getMetricsAsArray().map((m) => m.name));
    const named = ruleMetricNames(doc);
    expect(named.length).toBeGreaterThan(10);
    expect(named).toContain("mirrorplane_disk_smart_healthy");
    expect(named.filter((n) => !served.has(n))).toEqual([]);
  });

  it("the check finds a misspelt name", () => {
    const broken = doc.replace("mirrorplane_disk_smart_healthy", "mirrorplane_disk_smart_health");
    const { registry } = createAgentMetrics({ node: "doc" });
    const served = new Set(registry.getMetricsAsArray().map((m) => m.name));
    expect(ruleMetricNames(broken).filter((n) => !served.has(n))).toContain(
      "mirrorplane_disk_smart_health",
    );
  });
});
