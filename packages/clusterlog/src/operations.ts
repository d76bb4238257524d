import type { DmUlogRequest, RequestHeader } from "./codec.ts";
import type { ReplyForm } from "./request-types.ts";

// The ordered operations that drive the replicated cluster log, and what applying one
// produces. Every replica applies the same operations in the same (total) order — the
// ordering layer (JetStream, or in-process on one host) guarantees that, including
// membership changes at a consistent point (spec §4.1, §10). Nothing in here reads a
// clock or does I/O: disk reads and writes are *requested* as `IoRequest`s, executed by
// the named node's agent, and their outcome comes back as an `io-done` operation.

/** Corosync-style node id; the lowest member of a log's group is its server (spec §4.1). */
export type NodeId = number;

export type Operation =
  /** A kernel request, originated by `node`'s kernel, as delivered in total order. */
  | { readonly kind: "request"; readonly node: NodeId; readonly request: DmUlogRequest }
  /** Completion of `IoRequest` `ioId`: error 0 or a negative errno; `data` for reads. */
  | {
      readonly kind: "io-done";
      readonly ioId: number;
      readonly error: number;
      readonly data?: Uint8Array;
    }
  /** An agent joins the cluster (its replica starts from a snapshot, spec §4.3). */
  | { readonly kind: "node-join"; readonly node: NodeId }
  /** An agent leaves the cluster; treated like a failure for the logs it still holds. */
  | { readonly kind: "node-leave"; readonly node: NodeId }
  /** An agent is declared failed (e.g. its heartbeat expired). */
  | { readonly kind: "node-failed"; readonly node: NodeId }
  /** Operator resync control: start (range out of sync), pause/unpause, cancel (resync.ts). */
  | { readonly kind: "resync"; readonly resync: ResyncOperation };

/**
 * An answer for `node`'s kernel, in the form `replyForm` gives its request type: a bare
 * connector ACK/NACK, or a full dm_ulog_request reply whose payload is empty whenever
 * error ≠ 0.
 */
export interface Reply {
  readonly node: NodeId;
  readonly header: RequestHeader;
  readonly form: ReplyForm;
  readonly error: number;
  readonly payload: Uint8Array;
}

export type IoRequest =
  | {
      readonly kind: "read";
      readonly ioId: number;
      /** The agent that must do it. */
      readonly node: NodeId;
      readonly uuid: string;
      /** The log-device argument as that node's table named it. */
      readonly logDevice: string;
      readonly length: number;
    }
  | {
      readonly kind: "write";
      readonly ioId: number;
      readonly node: NodeId;
      readonly uuid: string;
      readonly logDevice: string;
      /** Whole log image, written at offset 0 and made durable before completing (P33). */
      readonly image: Uint8Array;
    };

export interface ApplyResult {
  readonly replies: Reply[];
  readonly io: IoRequest[];
  /** For a `resync` operation: what it did (the same on every replica). */
  readonly resync?: ResyncOutcome;
}

export type ResyncOperation =
  | {
      readonly action: "start";
      readonly uuid: string;
      readonly id: string;
      /** Inclusive; clamped to the log's regions. Omitted: the whole mirror. */
      readonly first?: number;
      readonly last?: number;
      /**
       * Hand out nothing until `unpause`: the agent suspends and resumes every node's
       * mirror meanwhile, so no kernel writes the range "nosync" through a stale in_sync
       * hint while another copies it (docs/KERNEL-BRIDGE.md).
       */
      readonly armed?: boolean;
    }
  | { readonly action: "cancel"; readonly uuid: string; readonly id: string }
  | { readonly action: "pause" | "unpause"; readonly uuid: string; readonly id: string }
  /**
   * A throttle window begins: the sweep may hand out `regions` more (null: no limit).
   * Not added to what is left: an unspent allowance lapses with its window.
   */
  | {
      readonly action: "allow";
      readonly uuid: string;
      readonly id: string;
      readonly regions: number | null;
    };

/** What applying a resync operation did (all replicas compute the same). */
export type ResyncOutcome =
  | { readonly ok: true; readonly regions: number }
  | {
      readonly ok: false;
      readonly reason: "no-such-log" | "bad-range" | "busy" | "no-such-resync";
    };
