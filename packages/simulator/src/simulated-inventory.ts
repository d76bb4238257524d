import type { MirrorInventory, MirrorInventoryResult } from "@mirrorplane/agent/mirrors/inventory";
import { withRoles } from "@mirrorplane/agent/mirrors/inventory";
import type { SimCluster } from "./simulated-cluster.ts";

// The simulated kernels' answer to `dmsetup table`/`status`: the mirrors node `node`'s
// kernel runs, in the same shape a real host reports (mirrors/inventory.ts). Legs are the
// leg files; a leg the simulated kernel failed (SimMirror.failLeg) is `D` (a write
// failure), every other one `A`. The log device's health is the log server's, as
// STATUS_INFO reports it.

export class SimMirrorInventory implements MirrorInventory {
  constructor(
    readonly cluster: SimCluster,
    readonly node: number,
  ) {}

  async list(): Promise<MirrorInventoryResult> {
    const host = this.cluster.hosts.get(this.node);
    if (!host) return { mirrors: [], reason: `node ${this.node} has no simulated kernel` };
    const server = this.cluster.agents.get(this.node)?.server;
    const mirrors = [...this.cluster.mirrors.values()]
      .flat()
      .filter((m) => m.host === host)
      .map((m) => {
        const o = m.options;
        const group = server?.clusterLog.state.groups.get(o.uuid);
        const logFile = this.cluster.specs.get(o.name)?.logFile ?? null;
        return {
          name: o.name,
          logUuid: o.uuid,
          logType: o.logDevice ? "clustered-disk" : "clustered-core",
          regionSectors: o.regionBytes / 512,
          sizeSectors: (o.regionCount * o.regionBytes) / 512,
          legs: withRoles(
            o.legPaths.map((path, leg) => ({
              device: path,
              label: null,
              majorMinor: null,
              health: m.failedLegs.has(leg) ? ("D" as const) : ("A" as const),
              underlying: [],
            })),
          ),
          // One process: the table and its health are read together.
          healthKnown: true,
          logDevice: o.logDevice
            ? {
                device: logFile ?? o.logDevice,
                majorMinor: o.logDevice,
                health: group ? (group.logDevFailed ? ("D" as const) : ("A" as const)) : null,
              }
            : null,
        };
      });
    return { mirrors, reason: null };
  }
}
