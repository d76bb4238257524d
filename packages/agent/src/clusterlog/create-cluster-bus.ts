import type { NodeId } from "@mirrorplane/clusterlog";
import type { ConnectionOptions } from "@nats-io/transport-node";
import type { ClusterBus } from "./bus.ts";
import { InProcessOrder, type InProcessOrderOptions } from "./in-process-bus.ts";
import { type BusLogger, JetStreamBus } from "./jetstream-bus.ts";
import type { MemberKeys } from "./member-keys.ts";

// Picks the ClusterBus for the `clusterlog` command from its flags: `--nats <url>` makes
// the node a member of a multi-host cluster over NATS JetStream; without it the order is
// in-process and the node is the only member (ARCHITECTURE.md "The cluster log").
//
// Wiring (command.ts, where the bus is built today):
//   const bus = createClusterBusFromOptions({ nodeId: flags.nodeId, natsUrl: flags.nats,
//     cluster: flags.cluster, failureTimeoutMs: flags.failureTimeoutMs, logger: log,
//     inProcess: { onSnapshot } });
//   new ClusterLogServer({ bus, ... })
// and in cli.ts, on the `clusterlog` command:
//   .option("--nats <url>", "NATS server(s), comma-separated: join a multi-host cluster")
//   .option("--cluster <name>", "cluster name: stream and buckets (default \"default\")")
//   .option("--failure-timeout-ms <ms>", "declare a silent member failed after (default 10000)")

export interface ClusterBusOptions {
  readonly nodeId: NodeId;
  /** NATS URL(s), comma-separated; absent → in-process bus. */
  readonly natsUrl?: string | undefined;
  readonly cluster?: string | undefined;
  readonly failureTimeoutMs?: number | undefined;
  readonly logger?: BusLogger | undefined;
  /**
   * Over NATS: this member's key and the members' public keys (every envelope signed and
   * verified, issue 15), or `insecureUnsigned`; one of the two is required.
   */
  readonly memberKeys?: MemberKeys | null | undefined;
  readonly insecureUnsigned?: boolean | undefined;
  /** NATS credentials and TLS. */
  readonly connectOptions?: Partial<ConnectionOptions> | undefined;
  /** Counts a refused (forged, unsigned, replayed) message: the metric. */
  readonly onRefused?: ((reason: string) => void) | undefined;
  /** Options of the in-process order (used only without `natsUrl`). */
  readonly inProcess?: InProcessOrderOptions;
}

export function createClusterBusFromOptions(options: ClusterBusOptions): ClusterBus {
  const natsUrl = options.natsUrl?.trim();
  if (!natsUrl) return new InProcessOrder(options.inProcess ?? {}).bus(options.nodeId);
  return new JetStreamBus({
    nodeId: options.nodeId,
    servers: natsUrl
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
    ...(options.cluster ? { cluster: options.cluster } : {}),
    ...(options.failureTimeoutMs ? { failureTimeoutMs: options.failureTimeoutMs } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.memberKeys ? { memberKeys: options.memberKeys } : {}),
    ...(options.insecureUnsigned ? { insecureUnsigned: true } : {}),
    ...(options.connectOptions ? { connectOptions: options.connectOptions } : {}),
    ...(options.onRefused ? { onRefused: options.onRefused } : {}),
  });
}
