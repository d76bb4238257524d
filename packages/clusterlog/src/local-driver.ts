import { type BlockDevice, performLogIo } from "./block-device.ts";
import { ClusterLog } from "./cluster-log.ts";
import type { ClusterLogOptions } from "./cluster-state.ts";
import type { DmUlogRequest } from "./codec.ts";
import type { ApplyResult, IoRequest, NodeId, Operation, Reply } from "./operations.ts";
import { DM_ULOG_REQUEST_VERSION } from "./request-types.ts";

/** Resolves a log-device argument on a node to the device its agent opened. */
export type DeviceResolver = (node: NodeId, logDevice: string) => BlockDevice | null;

export interface RequestSpec {
  readonly node: NodeId;
  readonly type: number;
  readonly uuid: string;
  readonly luid: bigint;
  readonly seq: number;
  readonly data?: Uint8Array;
  readonly version?: number;
}

export function makeRequest(spec: RequestSpec): DmUlogRequest {
  return {
    luid: spec.luid,
    uuid: spec.uuid,
    version: spec.version ?? DM_ULOG_REQUEST_VERSION,
    error: 0,
    seq: spec.seq,
    requestType: spec.type,
    data: spec.data ?? new Uint8Array(0),
  };
}

/**
 * Drives a ClusterLog in one process: every I/O request is performed at once against the
 * resolved device and its completion applied right after, the way a single-host agent
 * (or a simulation) would serve the ordered stream. The operations it applied, I/O
 * completions included, are recorded so another replica can be fed the same sequence.
 */
export class LocalDriver {
  readonly log: ClusterLog;
  readonly applied: Operation[] = [];
  readonly #resolve: DeviceResolver;

  constructor(
    resolve: DeviceResolver = () => null,
    options: ClusterLogOptions = {},
    log?: ClusterLog,
  ) {
    this.#resolve = resolve;
    this.log = log ?? new ClusterLog(options);
  }

  /** Apply `op` and every I/O completion it leads to; returns all replies produced. */
  submit(op: Operation): Reply[] {
    const replies: Reply[] = [];
    const queue: Operation[] = [op];
    while (queue.length > 0) {
      const next = queue.shift()!;
      this.applied.push(next);
      const result: ApplyResult = this.log.apply(next);
      replies.push(...result.replies);
      for (const io of result.io) queue.push(this.#perform(io));
    }
    return replies;
  }

  /** Submit one kernel request and return the reply addressed to it (if any yet). */
  request(spec: RequestSpec): Reply | undefined {
    const replies = this.submit({ kind: "request", node: spec.node, request: makeRequest(spec) });
    return replies.find((r) => r.node === spec.node && r.header.seq === spec.seq);
  }

  #perform(io: IoRequest): Operation {
    return performLogIo(io, this.#resolve(io.node, io.logDevice));
  }
}
