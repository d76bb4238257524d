import { readFileSync } from "node:fs";
import {
  CN_IDX_DM,
  CONNECTOR_MAX_MSG_SIZE,
  connectorBody,
  NLMSG_HDRLEN,
} from "@mirrorplane/clusterlog";
import {
  acquireHostLock,
  CAP_SYS_ADMIN,
  type HostLock,
  hasCapability,
  KERNEL_PORT_ID,
  loadNetlink,
  NETLINK_CONNECTOR,
  type NetlinkError,
  NetlinkSocket,
} from "@mirrorplane/netlink";
import type { Logger } from "pino";
import {
  connectorFraming,
  connectorMessages,
  connectorReplyType,
  isConnectorAck,
} from "./reply-framing.ts";
import type { ClusterLogServer } from "./server.ts";
import type { Session } from "./session.ts";

// The kernel bridge (CLUSTERLOG-SPEC.md §1.1, docs/KERNEL-BRIDGE.md): dm-log-userspace
// multicasts `struct dm_ulog_request` in connector framing to netlink group 7; this
// transport takes each request out of its nlmsghdr + cn_msg (the core's `connectorBody`),
// hands it to the cluster-log server exactly like a frame of the local socket, and sends
// the answers back to the kernel (port id 0) as its session framed them
// (`connectorFraming`: a full reply, or a bare ACK/NACK where the core's `replyForm` says
// so: CLEAR_REGION and type 0, scenario 12, P22), one datagram each.
// The re-CTR after -ESRCH (§1.5, P4) needs nothing here: it is an ordinary CTR whose
// payload counts its NUL, and the core answers it without a device name.

const NLMSG_ALIGNTO = 4;

export interface ConnectorStats {
  received: number;
  requests: number;
  replies: number;
  acks: number;
  /** Datagrams of another connector user (idx/val not dm-log-userspace). */
  foreign: number;
  /** Dropped like the kernel drops them: shorter than the header, or framing overruns. */
  malformed: number;
  sendErrors: number;
  truncated: number;
}

export interface ConnectorClaimOptions {
  /** Skip the CAP_SYS_ADMIN check (tests of the framing as an unprivileged user). */
  readonly requireCapability?: boolean;
  /**
   * The host-wide lock file taken before joining the group and held while serving
   * (DEFAULT_CONNECTOR_LOCK); `null` takes none (in-process framing tests only).
   */
  readonly lockPath?: string | null;
}

export interface ConnectorTransportOptions extends ConnectorClaimOptions {
  readonly server: ClusterLogServer;
  readonly log: Logger;
  /** Multicast group to join: CN_IDX_DM (7) for the kernel; tests use another one. */
  readonly group?: number;
  /** Where replies go: the kernel (0); tests point it at a fake kernel's port id. */
  readonly replyPortId?: number;
  /** Taken beforehand with `claimConnector` (the command claims before it joins a cluster). */
  readonly claim?: ConnectorClaim;
  /** Extra reads of the socket after the replies went out, before sleeping (`--connector-spin`). */
  readonly spin?: number;
}

/** One connector server per host: every agent on the host takes this flock first. */
export const DEFAULT_CONNECTOR_LOCK = "/run/mirrorplane/connector.lock";

/** The right to serve this host's kernel: the preconditions held and the host lock taken. */
export interface ConnectorClaim {
  readonly lock: HostLock | null;
  /** Gives the right up (the transport does so when it closes). */
  release(): void;
}

export type ConnectorClaimResult =
  | { readonly ok: true; readonly claim: ConnectorClaim }
  /** `held`: another process on this host serves the connector (holds the lock). */
  | { readonly ok: false; readonly reason: string; readonly held?: boolean };

export type ConnectorStart =
  | { readonly ok: true; readonly transport: ConnectorTransport }
  | { readonly ok: false; readonly reason: string; readonly held?: boolean };

/**
 * Whether this process may serve the kernel, and if so the host lock: no addon, no
 * connector in this kernel, not privileged, or another server on this host say no.
 * Never throws.
 */
export function claimConnector(options: ConnectorClaimOptions = {}): ConnectorClaimResult {
  const loaded = loadNetlink();
  if (!loaded.ok) return { ok: false, reason: loaded.reason };
  try {
    readFileSync("/proc/net/connector");
  } catch {
    return { ok: false, reason: "this kernel has no netlink connector (/proc/net/connector)" };
  }
  if ((options.requireCapability ?? true) && !hasCapability(CAP_SYS_ADMIN)) {
    // Joining would succeed on Linux ≥ 6.6, but dm-log-userspace ignores replies from a
    // sender without CAP_SYS_ADMIN: every kernel request would time out and be resent
    // forever. Refuse instead of pretending.
    return {
      ok: false,
      reason:
        "not privileged: dm-log-userspace only accepts replies from CAP_SYS_ADMIN (run as root)",
    };
  }
  // One server per host (issue 14): every kernel request reaches every member of group 7
  // and the kernel takes the first reply, so two servers with different states would
  // answer the same mirror differently. The lock is the kernel's flock: taken before the
  // join, held while serving, dropped by the kernel when this process dies however it dies.
  const lockPath = options.lockPath === undefined ? DEFAULT_CONNECTOR_LOCK : options.lockPath;
  let lock: HostLock | null = null;
  if (lockPath !== null) {
    const got = acquireHostLock(lockPath);
    if (!got.ok && got.held) {
      return {
        ok: false,
        held: true,
        reason: `another connector server holds ${lockPath}${got.holder ? ` (pid ${got.holder})` : ""}`,
      };
    }
    if (!got.ok) return { ok: false, reason: `cannot take the connector lock: ${got.reason}` };
    lock = got.lock;
  }
  return { ok: true, claim: { lock, release: () => lock?.release() } };
}

/**
 * Opens the connector socket and starts serving, or says why it cannot (claimConnector's
 * reasons, or the socket refused). Never throws.
 */
export function startConnectorTransport(options: ConnectorTransportOptions): ConnectorStart {
  let claim = options.claim;
  if (!claim) {
    const claimed = claimConnector(options);
    if (!claimed.ok) return claimed;
    claim = claimed.claim;
  }
  let socket: NetlinkSocket;
  try {
    socket = NetlinkSocket.open({
      protocol: NETLINK_CONNECTOR,
      groups: [options.group ?? CN_IDX_DM],
      // One connector message at most (spec §1.1), plus room to notice a longer one.
      receiveBufferSize: CONNECTOR_MAX_MSG_SIZE + 4096,
    });
  } catch (error) {
    claim.release();
    return { ok: false, reason: `cannot open the connector socket: ${(error as Error).message}` };
  }
  return { ok: true, transport: new ConnectorTransport(socket, options, claim) };
}

export class ConnectorTransport {
  readonly stats: ConnectorStats = {
    received: 0,
    requests: 0,
    replies: 0,
    acks: 0,
    foreign: 0,
    malformed: 0,
    sendErrors: 0,
    truncated: 0,
  };
  readonly #socket: NetlinkSocket;
  readonly #log: Logger;
  readonly #replyPortId: number;
  readonly #portId: number;
  readonly #session: Session;
  readonly #claim: ConnectorClaim;
  readonly #group: number;
  #closed = false;

  constructor(socket: NetlinkSocket, options: ConnectorTransportOptions, claim: ConnectorClaim) {
    this.#socket = socket;
    this.#claim = claim;
    this.#log = options.log;
    this.#replyPortId = options.replyPortId ?? KERNEL_PORT_ID;
    this.#group = options.group ?? CN_IDX_DM;
    this.#portId = socket.portId;
    // The kernel is one client: one session, whose in-flight requests are matched by the
    // server's own wire seqs, so the kernel's global seq counter needs nothing special.
    this.#session = options.server.openSession(
      {
        write: (bytes, written) => {
          this.#sendReplies(bytes);
          written?.(); // sent: the datagrams are copied into the kernel
        },
        end: () => {},
      },
      connectorFraming(this.#portId),
    );
    socket.start(
      (datagram) => {
        this.stats.received++;
        if (datagram.truncated) {
          this.stats.truncated++;
          this.#log.warn(
            { length: datagram.bytes.length },
            "connector message longer than CONNECTOR_MAX_MSG_SIZE dropped",
          );
          return;
        }
        this.#receive(datagram.bytes);
      },
      (error: NetlinkError) => {
        // ENOBUFS: the socket queue overflowed and requests were lost; the kernel resends
        // each after its 15 s timeout (spec §1.4), so this costs latency, not correctness.
        this.#log.warn({ err: error }, "connector receive error");
      },
      {
        // The replies of what was just read go out now, in this callback, not at the end
        // of the event-loop turn: the kernel's worker is waiting on them (issue 11), and
        // a spin (below) can only catch the next request once they are sent.
        onDrained: () => {
          if (!this.#closed) this.#session.flushTurn();
        },
        spin: options.spin ?? 0,
      },
    );
    options.log.info(
      { group: options.group ?? CN_IDX_DM, portId: this.#portId, lock: claim.lock?.path ?? null },
      "netlink connector: serving dm-log-userspace (CN_IDX_DM/CN_VAL_DM_USERSPACE_LOG)",
    );
  }

  get portId(): number {
    return this.#portId;
  }

  /** One datagram: one or more netlink messages, each a connector message. */
  #receive(bytes: Uint8Array): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let off = 0;
    while (bytes.length - off >= NLMSG_HDRLEN) {
      const nlmsgLen = view.getUint32(off, true);
      if (nlmsgLen < NLMSG_HDRLEN || off + nlmsgLen > bytes.length) {
        this.stats.malformed++;
        return;
      }
      this.#message(bytes.subarray(off, off + nlmsgLen));
      off += Math.ceil(nlmsgLen / NLMSG_ALIGNTO) * NLMSG_ALIGNTO;
    }
  }

  #message(msg: Uint8Array): void {
    const framed = connectorBody(msg);
    if (!framed.ok) {
      if (framed.error.code === "not-dm-log") {
        this.stats.foreign++;
      } else {
        // The kernel itself logs "Incomplete message" and drops these (spec §1.1).
        this.stats.malformed++;
        this.#log.debug({ reason: framed.error.message }, "malformed connector message dropped");
      }
      return;
    }
    const body = framed.value.body;
    if (body === null) return; // an ACK: the kernel never sends us one
    this.stats.requests++;
    // A copy: the server keeps the header to build the reply.
    this.#session.frame(body.slice());
  }

  /** What the session wrote in one turn: netlink messages back to back, one datagram each. */
  #sendReplies(bytes: Uint8Array): void {
    if (this.#closed) return;
    for (const message of connectorMessages(bytes)) {
      if (isConnectorAck(message)) this.stats.acks++;
      else this.stats.replies++;
      const sent = this.#socket.send(message, this.#replyPortId);
      if (sent < 0) {
        // The kernel times out and resends with a new seq (spec §1.4).
        this.stats.sendErrors++;
        this.#log.warn(
          { errno: sent, type: connectorReplyType(message) },
          "sending a reply to the kernel failed",
        );
      }
    }
  }

  /**
   * A clean restart (SIGTERM, an upgrade; issue 11): leave group 7 first, so the kernel's
   * next request finds no server at once (-ESRCH: it retries its CTR every 2 s until the
   * next agent serves, spec §1.5) instead of waiting out its 15 s timeout for an answer
   * that never comes; answer everything already queued on the socket and in flight; then
   * close. Resolves true when every request received was answered: what the kernel was
   * told is then exactly the server's state, which can be handed over (handoff.ts).
   */
  async handOff(deadlineMs = 3000): Promise<boolean> {
    if (this.#closed) return false;
    const deadline = Date.now() + deadlineMs;
    try {
      this.#socket.leave(this.#group);
    } catch (error) {
      this.#log.warn({ err: error }, "could not leave the connector group: closing instead");
      this.#shut();
      return false;
    }
    // Whatever the kernel sent before the leave is queued on the socket: the poller still
    // delivers it. Wait for the answers (and the session's flush, on the next turn).
    const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
    await turn();
    while (this.#session.inflight > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await turn();
    await turn();
    const answered = this.#session.inflight === 0;
    // The lock stays held: the caller writes the handover first, then releases it.
    this.#shut();
    return answered;
  }

  /** Stop serving: what is still in flight is released; the kernel resends it (§1.4, §1.5). */
  close(): void {
    if (this.#closed) return;
    this.#shut();
    // Only after leaving the group: the next server may join once this one cannot answer.
    this.#claim.release();
  }

  #shut(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#session.lost();
    this.#socket.close();
    this.#log.info("netlink connector closed");
  }
}
