import type { TDiskInventory } from "@mirrorplane/contracts";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { JetStreamBusStatus } from "./clusterlog/jetstream-bus.ts";
import type { KhugepagedSnapshot } from "./collectors/khugepaged.ts";
import type { MemorySnapshot } from "./collectors/memory.ts";
import type { THostEvent } from "./events/event.ts";
import type { PipelineStats } from "./events/pipeline.ts";

/**
 * The agent's Prometheus metrics, served at `/metrics` on the API port. One registry per
 * running agent (not prom-client's global one), so several agents in one process — tests,
 * the demo cluster — never share counters.
 *
 * Other parts of the agent add their metrics to `registry`; the cluster-log server uses
 * `clusterLogMetrics(registry)` below, which is already registered and exported under
 * stable names.
 */
export interface AgentMetrics {
  registry: Registry;
  /** Counts an event the pipeline accepted (by kind and severity). */
  countEvent(event: THostEvent): void;
  setKhugepaged(snapshot: KhugepagedSnapshot): void;
  setMemory(snapshot: MemorySnapshot): void;
  setPipeline(read: () => PipelineStats): void;
  /** The disk inventory after each SMART round. */
  setDisks(inventory: TDiskInventory): void;
}

export function createAgentMetrics(labels: { node: string }): AgentMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: labels.node });

  const events = new Counter({
    name: "mirrorplane_events_total",
    help: "Events reported by this agent, by kind and severity",
    labelNames: ["kind", "severity"] as const,
    registers: [registry],
  });

  let khugepaged: KhugepagedSnapshot | null = null;
  new Gauge({
    name: "mirrorplane_khugepaged_tunable",
    help: "khugepaged tunables (/sys/kernel/mm/transparent_hugepage/khugepaged)",
    labelNames: ["tunable"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, value] of Object.entries(khugepaged?.tunables ?? {}))
        if (value !== null) this.set({ tunable: name }, value);
    },
  });
  new Gauge({
    name: "mirrorplane_khugepaged_pages_collapsed",
    help: "khugepaged pages_collapsed (32-bit kernel counter, can wrap)",
    registers: [registry],
    collect() {
      const v = khugepaged?.counters.pagesCollapsed;
      if (v !== null && v !== undefined) this.set(v);
    },
  });
  new Gauge({
    name: "mirrorplane_khugepaged_full_scans",
    help: "khugepaged full_scans (32-bit kernel counter, can wrap)",
    registers: [registry],
    collect() {
      const v = khugepaged?.counters.fullScans;
      if (v !== null && v !== undefined) this.set(v);
    },
  });
  new Gauge({
    name: "mirrorplane_vmstat_thp",
    help: "THP, collapse and compaction fields of /proc/vmstat",
    labelNames: ["field"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [field, value] of Object.entries(khugepaged?.vmstat ?? {}))
        this.set({ field }, value);
    },
  });

  let memory: MemorySnapshot | null = null;
  new Gauge({
    name: "mirrorplane_memory_failure_pages",
    help: "Poisoned pages per NUMA node and outcome since boot (nodeX/memory_failure)",
    labelNames: ["numa_node", "outcome"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const n of memory?.nodes ?? [])
        for (const outcome of ["ignored", "failed", "delayed", "recovered"] as const) {
          const v = n[outcome];
          if (v !== null) this.set({ numa_node: n.node, outcome }, v);
        }
    },
  });
  new Gauge({
    name: "mirrorplane_hardware_corrupted_bytes",
    help: "HardwareCorrupted from /proc/meminfo",
    registers: [registry],
    collect() {
      const v = memory?.hardwareCorruptedBytes;
      if (v !== null && v !== undefined) this.set(v);
    },
  });
  new Gauge({
    name: "mirrorplane_edac_errors",
    help: "EDAC error counts per controller and location (both sysfs layouts)",
    labelNames: ["controller", "location", "label", "type"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const mc of memory?.edac ?? [])
        for (const l of mc.locations) {
          const base = { controller: mc.mc, location: l.id, label: l.label ?? "" };
          if (l.ceCount !== null) this.set({ ...base, type: "corrected" }, l.ceCount);
          if (l.ueCount !== null) this.set({ ...base, type: "uncorrected" }, l.ueCount);
        }
    },
  });
  new Gauge({
    name: "mirrorplane_pmem_badblocks_sectors",
    help: "Known-bad 512-byte sectors per pmem device or nd region (0 may mean not scanned)",
    labelNames: ["device"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of memory?.pmem ?? [])
        this.set(
          { device: p.device },
          p.badblocks.reduce((a, r) => a + r.sectors, 0),
        );
    },
  });

  let pipeline: (() => PipelineStats) | null = null;
  new Gauge({
    name: "mirrorplane_event_pipeline",
    help: "Event pipeline state: written, duplicates, spooled, replayed, dropped, rejected (since start), queued, spool_events, spool_bytes, database_reachable",
    labelNames: ["stat"] as const,
    registers: [registry],
    collect() {
      if (!pipeline) return;
      const s = pipeline();
      for (const [stat, value] of Object.entries({
        written: s.written,
        duplicates: s.duplicates,
        spooled: s.spooled,
        replayed: s.replayed,
        dropped: s.dropped,
        rejected: s.rejected,
        queued: s.queued,
        spool_events: s.spoolEvents,
        spool_bytes: s.spoolBytes,
        database_reachable: s.databaseReachable ? 1 : 0,
      }))
        this.set({ stat }, value);
    },
  });

  // Registered now so the names exist (at zero) before the cluster-log server starts.
  clusterLogMetrics(registry);

  // SMART per disk (issue 13), as of the last round. Devices without SMART (loop, dm, a VM's
  // disk) have only `available 0`; the others every value smartctl gave.
  let disks: TDiskInventory | null = null;
  const diskGauge = (
    name: string,
    help: string,
    value: (d: TDiskInventory["disks"][number]) => number | null,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ["device", "serial", "model"] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const d of disks?.disks ?? []) {
          const v = value(d);
          if (v !== null)
            this.set(
              {
                device: d.name,
                serial: d.smart.serial ?? d.serial ?? "",
                model: d.smart.model ?? d.model ?? "",
              },
              v,
            );
        }
      },
    });
  const readable = (d: TDiskInventory["disks"][number]) =>
    d.smart.status === "passed" || d.smart.status === "warning" || d.smart.status === "failing";
  diskGauge(
    "mirrorplane_disk_smart_available",
    "Whether smartctl could read the disk's SMART (1) or not (0: loop/dm/virtual, no smartctl, timeout)",
    (d) => (d.smart.status === "pending" ? null : readable(d) ? 1 : 0),
  );
  diskGauge(
    "mirrorplane_disk_smart_healthy",
    "SMART health: 1 passed (warnings included), 0 failing (FAILED verdict, NVMe critical warning, prefail attribute at threshold)",
    (d) => (readable(d) ? (d.smart.status === "failing" ? 0 : 1) : null),
  );
  diskGauge(
    "mirrorplane_disk_temperature_celsius",
    "Drive temperature (smartctl temperature.current)",
    (d) => d.smart.temperatureC,
  );
  diskGauge(
    "mirrorplane_disk_percentage_used",
    "NVMe percentage of rated endurance used",
    (d) => d.smart.percentageUsed,
  );
  diskGauge(
    "mirrorplane_disk_media_errors",
    "NVMe media and data integrity errors",
    (d) => d.smart.mediaErrors,
  );
  diskGauge(
    "mirrorplane_disk_reallocated_sectors",
    "ATA attribute 5 Reallocated_Sector_Ct (raw)",
    (d) => d.smart.reallocatedSectors,
  );
  diskGauge(
    "mirrorplane_disk_pending_sectors",
    "ATA attribute 197 Current_Pending_Sector (raw)",
    (d) => d.smart.pendingSectors,
  );
  diskGauge("mirrorplane_disk_power_on_hours", "Power-on hours", (d) => d.smart.powerOnHours);
  diskGauge("mirrorplane_disk_size_bytes", "Disk size from sysfs", (d) => d.sizeBytes);

  return {
    registry,
    countEvent: (e) => events.inc({ kind: e.kind, severity: e.severity }),
    setDisks: (inventory) => {
      disks = inventory;
    },
    setKhugepaged: (s) => {
      khugepaged = s;
    },
    setMemory: (s) => {
      memory = s;
    },
    setPipeline: (read) => {
      pipeline = read;
    },
  };
}

export interface ClusterLogMetrics {
  /** Requests answered, by dm_ulog request type (`MARK_REGION`, `FLUSH`, …) and outcome. */
  requests: Counter<"request" | "outcome">;
  /** Time from a request's arrival to its answer, by request type. */
  requestSeconds: Histogram<"request">;
  /** Operations and snapshots refused on the cluster bus (issue 15), by reason. */
  refused: Counter<"reason">;
}

const clusterLogByRegistry = new WeakMap<Registry, ClusterLogMetrics>();

/**
 * The hook for the cluster-log server: the request counter and latency histogram in the
 * agent's registry (created once per registry, the same objects on every call). Use:
 * `const m = clusterLogMetrics(agentMetrics.registry); m.requests.inc({ request, outcome });
 * const end = m.requestSeconds.startTimer({ request }); … end();`
 */
export function clusterLogMetrics(registry: Registry): ClusterLogMetrics {
  const existing = clusterLogByRegistry.get(registry);
  if (existing) return existing;
  const created: ClusterLogMetrics = {
    requests: new Counter({
      name: "mirrorplane_clusterlog_requests_total",
      help: "dm-log-userspace requests answered, by request type and outcome",
      labelNames: ["request", "outcome"] as const,
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: "mirrorplane_clusterlog_request_seconds",
      help: "dm-log-userspace request latency (arrival to answer), by request type",
      labelNames: ["request"] as const,
      buckets: [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 15,
      ],
      registers: [registry],
    }),
    refused: new Counter({
      name: "mirrorplane_clusterlog_refused_operations_total",
      help: "operations (and snapshots) on the cluster bus refused: unsigned, unknown signer, bad signature, replayed",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
  };
  clusterLogByRegistry.set(registry, created);
  return created;
}

/** What the membership metrics read (ClusterLogServer.membership()). */
export interface MembershipSource {
  membership(): {
    readonly members: readonly number[];
    readonly servedBy: Readonly<Record<string, number>>;
  };
}

/**
 * The cluster's membership as this member sees it (issue 14), read at scrape time:
 * `mirrorplane_clusterlog_members` (how many) and `mirrorplane_clusterlog_log_server_node`
 * (the node serving each log). A second call for the same registry replaces the source.
 */
export function registerMembershipMetrics(registry: Registry, source: MembershipSource): void {
  for (const name of ["mirrorplane_clusterlog_members", "mirrorplane_clusterlog_log_server_node"]) {
    registry.removeSingleMetric(name);
  }
  new Gauge({
    name: "mirrorplane_clusterlog_members",
    help: "members of the cluster-log cluster, as this member applied the ordered stream",
    registers: [registry],
    collect() {
      this.set(source.membership().members.length);
    },
  });
  new Gauge({
    name: "mirrorplane_clusterlog_log_server_node",
    help: "the node id serving each log (the first member of its group)",
    labelNames: ["uuid"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [uuid, node] of Object.entries(source.membership().servedBy)) {
        this.set({ uuid }, node);
      }
    },
  });
}

/** The order a member replicates through, as `/metrics` and the API report it. */
export type OrderStatus =
  | { readonly kind: "in-process" }
  | ({ readonly kind: "jetstream" } & JetStreamBusStatus);

const orderMetricNames = [
  "mirrorplane_clusterlog_order",
  "mirrorplane_clusterlog_nats_connected",
  "mirrorplane_clusterlog_nats_reconnects_total",
  "mirrorplane_clusterlog_nats_disconnected_seconds",
  "mirrorplane_clusterlog_ordered_seq",
  "mirrorplane_clusterlog_last_ordered_timestamp_seconds",
  "mirrorplane_clusterlog_heartbeat_timestamp_seconds",
  "mirrorplane_clusterlog_order_failed",
];

/**
 * The order's state (issue 14), read at scrape time: which order (`kind` label), and over
 * NATS whether the connection is up, how often it came back, how long it has been down,
 * where this member is in the stream, when the last operation was ordered and when this
 * member's heartbeat was last written. The NATS gauges are absent with the in-process
 * order, so an alert on them never fires for a single host. A second call for the same
 * registry replaces the source.
 */
export function registerOrderMetrics(registry: Registry, source: () => OrderStatus): void {
  for (const name of orderMetricNames) registry.removeSingleMetric(name);
  const kind = source().kind;
  new Gauge({
    name: "mirrorplane_clusterlog_order",
    help: "the order the cluster log replicates through (always 1; kind: in-process or jetstream)",
    labelNames: ["kind"] as const,
    registers: [registry],
    collect() {
      this.set({ kind }, 1);
    },
  });
  // A member's order never changes kind: without NATS the NATS series do not exist.
  if (kind !== "jetstream") return;
  const nats = (): JetStreamBusStatus => {
    const s = source();
    if (s.kind !== "jetstream") throw new Error("the order changed kind");
    return s;
  };
  const gauge = (name: string, help: string, read: (s: JetStreamBusStatus) => number | null) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const v = read(nats());
        if (v === null) this.reset();
        else this.set(v);
      },
    });
  const seconds = (ms: number | null) => (ms === null ? null : ms / 1000);
  gauge(
    "mirrorplane_clusterlog_nats_connected",
    "1 while this member's NATS connection is up, 0 while it is down (no request can be ordered)",
    (s) => (s.connected ? 1 : 0),
  );
  new Counter({
    name: "mirrorplane_clusterlog_nats_reconnects_total",
    help: "times this member's NATS connection was lost and re-established since start",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(nats().reconnects);
    },
  });
  gauge(
    "mirrorplane_clusterlog_nats_disconnected_seconds",
    "how long this member's NATS connection has been down (0 while connected)",
    (s) =>
      s.disconnectedSince === null ? 0 : Math.max(0, Date.now() - s.disconnectedSince) / 1000,
  );
  gauge(
    "mirrorplane_clusterlog_ordered_seq",
    "the last stream sequence delivered to this member",
    (s) => s.deliveredSeq,
  );
  gauge(
    "mirrorplane_clusterlog_last_ordered_timestamp_seconds",
    "when NATS stored the last operation this member applied (the NATS server's clock)",
    (s) => seconds(s.lastOrderedAt),
  );
  gauge(
    "mirrorplane_clusterlog_heartbeat_timestamp_seconds",
    "when this member last wrote its heartbeat (older than the failure timeout: the others declare it failed)",
    (s) => seconds(s.heartbeatWrittenAt),
  );
  gauge(
    "mirrorplane_clusterlog_order_failed",
    "1 when this member stopped following the order (a gap in the stream) and must be restarted",
    (s) => (s.failed ? 1 : 0),
  );
}
