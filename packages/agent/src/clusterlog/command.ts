import { readFileSync } from "node:fs";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type ConnectionOptions, credsAuthenticator } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import {
  clusterLogMetrics,
  type OrderStatus,
  registerMembershipMetrics,
  registerOrderMetrics,
} from "../metrics.ts";
import type { BusSnapshot, ClusterBus } from "./bus.ts";
import {
  type ConnectorClaim,
  type ConnectorTransport,
  claimConnector,
  startConnectorTransport,
} from "./connector-transport.ts";
import { createClusterBusFromOptions } from "./create-cluster-bus.ts";
import { dmsetupSuspendResume, mirrorBlockDevices, readDirect } from "./dmsetup.ts";
import { type TClusterLogFlags, ZClusterLogFlags } from "./flags.ts";
import { type Handoff, takeHandoff, writeHandoff } from "./handoff.ts";
import { JetStreamBus } from "./jetstream-bus.ts";
import { FileLogDevices } from "./log-devices.ts";
import { loadMemberKeys, type MemberKeys } from "./member-keys.ts";
import { HintRearmer } from "./rearm.ts";
import { ClusterLogServer } from "./server.ts";
import type { TcpAuth } from "./stream-transport.ts";
import { readTokenFile } from "./tcp-auth.ts";
import { ResyncWaker } from "./wake.ts";

// `mirrorplane-agent clusterlog`: only the cluster-log server, in the foreground
// (CLUSTERLOG-SERVER.md). Without `--nats` the order is in-process and the node is the only
// member; with `--nats <url>` it is one member of a multi-host cluster over NATS JetStream
// (README "Three storage hosts"), ordered by the cluster's stream.

export { type TClusterLogFlags, ZClusterLogFlags } from "./flags.ts";

/** Exit status of an agent refused because another one serves this host's connector. */
export const EXIT_CONNECTOR_HELD = 3;

/**
 * A handover older than this is not used. Not for safety (the lock guarantees no other
 * server answered the kernel since), only so a forgotten one from long ago is not picked
 * up by surprise.
 */
const HANDOFF_MAX_AGE_MS = 60 * 60_000;

/** `--connector on` and another process on this host holds the connector lock. */
export class ConnectorHeldError extends Error {
  readonly exitCode = EXIT_CONNECTOR_HELD;
  constructor(reason: string) {
    super(`netlink connector unavailable: ${reason}; refusing to start (--connector on)`);
    this.name = "ConnectorHeldError";
  }
}

export interface RunningClusterLog {
  readonly server: ClusterLogServer;
  /** The order it replicates through: in-process, or JetStream (`--nats`). */
  readonly bus: ClusterBus;
  /** The order's kind and, over NATS, its connection and progress (API, /metrics). */
  order(): OrderStatus;
  readonly tcpPort: number | null;
  /** The netlink connector transport, when serving the kernel. */
  readonly connector: ConnectorTransport | null;
  /** Re-arms this host's kernels (with `--rearm off`, or `auto` without a kernel, it only reports). */
  readonly rearmer: HintRearmer;
  /** Whether re-arming runs dmsetup. */
  readonly rearmWithDmsetup: boolean;
  /** Wakes this host's idle mirrors when resync work is given back (null: no kernel here). */
  readonly waker: ResyncWaker | null;
  /** First call drains and stops. */
  stop(): Promise<void>;
}

/**
 * Reads one block of each of this host's mirror devices on a log (wake.ts), the devices
 * found with dmsetup once and again only after a read failed (a removed or reloaded device).
 */
function wakeMirrorDevices(): (uuid: string) => Promise<void> {
  const devicesOf = new Map<string, string[]>();
  return async (uuid) => {
    let devices = devicesOf.get(uuid);
    if (!devices) {
      devices = await mirrorBlockDevices(uuid);
      devicesOf.set(uuid, devices);
    }
    try {
      await Promise.all(devices.map((device) => readDirect(device, directReadBytes(device))));
    } catch (error) {
      devicesOf.delete(uuid);
      throw error;
    }
  };
}

/** A direct read's size: 4 KiB, or the device's logical block size where that is larger. */
function directReadBytes(device: string): number {
  try {
    const name = device.replace(/^\/dev\//, "");
    const lbs = Number(readFileSync(`/sys/block/${name}/queue/logical_block_size`, "utf8"));
    return Number.isInteger(lbs) && lbs > 4096 ? lbs : 4096;
  } catch {
    return 4096;
  }
}

/** Parses `M:m=<path>` overrides. */
export function parseLogDeviceOverrides(entries: readonly string[]): Map<string, string> {
  const overrides = new Map<string, string>();
  for (const entry of entries) {
    const at = entry.indexOf("=");
    overrides.set(entry.slice(0, at), resolve(entry.slice(at + 1)));
  }
  return overrides;
}

/**
 * The TCP listener's credentials from the flags, checked before anything starts: none is
 * an error (issue 15), as is half a TLS configuration or an unreadable token file.
 */
export async function tcpAuthFromFlags(flags: {
  tcpTokenFile?: string | undefined;
  tcpTlsCert?: string | undefined;
  tcpTlsKey?: string | undefined;
  tcpTlsCa?: string | undefined;
}): Promise<TcpAuth> {
  const tlsParts = [flags.tcpTlsCert, flags.tcpTlsKey, flags.tcpTlsCa];
  const tlsGiven = tlsParts.filter((p) => p !== undefined).length;
  if (tlsGiven > 0 && tlsGiven < 3) {
    throw new Error("mutual TLS needs all of --tcp-tls-cert, --tcp-tls-key and --tcp-tls-ca");
  }
  if (!flags.tcpTokenFile && tlsGiven === 0) {
    throw new Error(
      "--tcp needs credentials: --tcp-token-file <file> (mode 0600), or " +
        "--tcp-tls-cert/--tcp-tls-key/--tcp-tls-ca (mutual TLS); the listener is as powerful as root",
    );
  }
  const tokenFile = flags.tcpTokenFile ? resolve(flags.tcpTokenFile) : null;
  if (tokenFile) await readTokenFile(tokenFile); // a bad file fails the start, not a client
  return {
    ...(tokenFile ? { token: () => readTokenFile(tokenFile) } : {}),
    ...(tlsGiven === 3
      ? {
          tls: {
            cert: await readFile(flags.tcpTlsCert!),
            key: await readFile(flags.tcpTlsKey!),
            ca: await readFile(flags.tcpTlsCa!),
          },
        }
      : {}),
  };
}

/** A secret file: refused when group or others may read it. */
async function readSecret(path: string, what: string): Promise<Buffer> {
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(
      `${what} ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`,
    );
  }
  return readFile(path);
}

export interface NatsSecurity {
  readonly memberKeys: MemberKeys | null;
  readonly insecureUnsigned: boolean;
  readonly connectOptions: Partial<ConnectionOptions>;
  /** Whether NATS is reached with credentials (without, the member warns). */
  readonly credentials: boolean;
}

/**
 * How a member joins a multi-host cluster (issue 15): its signing keys — required unless
 * `--insecure-unsigned` — and its NATS credentials and TLS, all checked before it starts.
 */
export async function natsSecurityFromFlags(flags: {
  nodeId: number;
  memberKey?: string | undefined;
  memberKeys?: string | undefined;
  insecureUnsigned?: boolean | undefined;
  natsCreds?: string | undefined;
  natsUser?: string | undefined;
  natsPasswordFile?: string | undefined;
  natsTlsCa?: string | undefined;
  natsTlsCert?: string | undefined;
  natsTlsKey?: string | undefined;
}): Promise<NatsSecurity> {
  let memberKeys: MemberKeys | null = null;
  if (flags.memberKey || flags.memberKeys) {
    if (!flags.memberKey || !flags.memberKeys) {
      throw new Error("signing needs both --member-key (this node's) and --member-keys (trusted)");
    }
    memberKeys = await loadMemberKeys(flags.nodeId, flags.memberKey, flags.memberKeys);
  } else if (!flags.insecureUnsigned) {
    throw new Error(
      "refusing to join a multi-host cluster with unsigned operations: give --member-key " +
        "and --member-keys (mirrorplane-agent keygen), or --insecure-unsigned",
    );
  }
  const connectOptions: { -readonly [K in keyof ConnectionOptions]?: ConnectionOptions[K] } = {};
  if (flags.natsCreds && flags.natsUser) {
    throw new Error("give --nats-creds or --nats-user/--nats-password-file, not both");
  }
  if (flags.natsCreds) {
    connectOptions.authenticator = credsAuthenticator(
      new Uint8Array(await readSecret(flags.natsCreds, "NATS credentials")),
    );
  }
  if (flags.natsUser || flags.natsPasswordFile) {
    if (!flags.natsUser || !flags.natsPasswordFile) {
      throw new Error("--nats-user and --nats-password-file go together");
    }
    connectOptions.user = flags.natsUser;
    connectOptions.pass = (await readSecret(flags.natsPasswordFile, "NATS password"))
      .toString("utf8")
      .trim();
  }
  if (flags.natsTlsCa || flags.natsTlsCert || flags.natsTlsKey) {
    if (Boolean(flags.natsTlsCert) !== Boolean(flags.natsTlsKey)) {
      throw new Error("--nats-tls-cert and --nats-tls-key go together");
    }
    connectOptions.tls = {
      ...(flags.natsTlsCa ? { ca: await readFile(flags.natsTlsCa, "utf8") } : {}),
      ...(flags.natsTlsCert ? { cert: await readFile(flags.natsTlsCert, "utf8") } : {}),
      ...(flags.natsTlsKey
        ? { key: (await readSecret(flags.natsTlsKey, "NATS TLS key")).toString("utf8") }
        : {}),
    };
  }
  return {
    memberKeys,
    insecureUnsigned: memberKeys === null,
    connectOptions,
    credentials: Boolean(flags.natsCreds || flags.natsUser),
  };
}

/**
 * Why a member could not join over NATS, in words an operator can act on: the NATS client's
 * own message ("timeout", "Authorization Violation", a TLS error) is kept and explained.
 */
export function natsJoinError(nats: string, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  let hint = "";
  if (/timeout/i.test(message)) {
    // A server with `tls { verify: true }` drops a client that presents no certificate of
    // its CA after the handshake; the client sees only the connection time out.
    hint =
      "NATS did not complete the connection: it is unreachable, or it dropped this member in the TLS handshake (a server that verifies clients needs --nats-tls-cert/--nats-tls-key of its CA)";
  } else if (/authorization violation|authentication/i.test(message)) {
    hint = "NATS refused the credentials (--nats-user/--nats-password-file, or --nats-creds)";
  } else if (/certificate|self.signed|tls|ssl/i.test(message)) {
    hint =
      "TLS: the NATS server's certificate does not verify against --nats-tls-ca, or its names do not match the URL";
  } else if (/permissions violation/i.test(message)) {
    hint = "NATS refused a subject to this user: its permissions must cover this --cluster";
  }
  return new Error(
    `cannot join the cluster over NATS (${nats}): ${message}${hint ? `; ${hint}` : ""}`,
    {
      cause: error,
    },
  );
}

export interface ClusterLogCommandHooks {
  /** The agent's Prometheus registry: refused operations are counted there. */
  readonly metrics?: Registry;
}

export async function startClusterLogCommand(
  input: TClusterLogFlags,
  log: Logger,
  hooks: ClusterLogCommandHooks = {},
): Promise<RunningClusterLog> {
  const flags = ZClusterLogFlags.parse(input);
  const tcpAuth = flags.tcp ? await tcpAuthFromFlags(flags) : null;
  const security = flags.nats ? await natsSecurityFromFlags(flags) : null;
  if (security && !security.credentials) {
    log.warn(
      { nats: flags.nats },
      "NATS without credentials: anyone who reaches it can disturb the cluster (give --nats-creds or --nats-user)",
    );
  }
  if (security?.insecureUnsigned) {
    log.warn(
      { nats: flags.nats },
      "--insecure-unsigned: operations are neither signed nor verified; anyone who can publish on NATS can change the log",
    );
  }
  const refused = hooks.metrics ? clusterLogMetrics(hooks.metrics).refused : null;
  const dataDir = resolve(flags.dataDir);
  await mkdir(dataDir, { recursive: true });
  const snapshotPath = join(dataDir, "clusterlog.snapshot");
  // The latest snapshot is kept in the data directory for inspection and support. It is
  // deliberately not loaded at start: after a restart the kernel re-constructs and
  // resumes its logs and the disk log is the truth (as with cmirrord); a snapshot older
  // than the last FLUSH would call regions clean that the disk has dirty.
  let writing = Promise.resolve();
  const keepSnapshotFile = (snapshot: BusSnapshot) => {
    writing = writing
      .then(async () => {
        await writeFile(`${snapshotPath}.tmp`, snapshot.bytes);
        await rename(`${snapshotPath}.tmp`, snapshotPath);
      })
      .catch((error) => log.warn({ err: error }, "writing the snapshot file failed"));
  };
  // The kernel bridge is claimed before this node joins any cluster: a second agent
  // of this host is refused (or told it serves sockets only) before it does anything.
  let claim: ConnectorClaim | null = null;
  let connectorUnavailable: string | null = null;
  if (flags.connector !== "off") {
    const claimed = claimConnector({ lockPath: flags.connectorLock });
    if (claimed.ok) claim = claimed.claim;
    else if (flags.connector === "on") {
      if (claimed.held) throw new ConnectorHeldError(claimed.reason);
      throw new Error(`netlink connector unavailable: ${claimed.reason}`);
    } else connectorUnavailable = claimed.reason;
  }
  // A clean restart's handover (handoff.ts): taken holding the lock, by whoever takes it
  // next, used or not. Only one host's in-process order is handed over: a cluster
  // member's state lives in the cluster, which it rejoins.
  let handoff: Handoff | null = null;
  if (claim?.lock) {
    const taken = await takeHandoff(claim.lock.path, {
      nodeId: flags.nodeId,
      now: Date.now(),
      maxAgeMs: HANDOFF_MAX_AGE_MS,
    });
    if (taken.ok && !flags.nats) {
      handoff = taken.handoff;
      log.info(
        { seq: handoff.snapshot.seq, fromPid: handoff.pid, ageMs: Date.now() - handoff.writtenAt },
        "starting from the state the previous agent handed over: its logs go on without a resync",
      );
    } else if (taken.ok) {
      log.warn("the previous agent's handover is not used: this agent joins a cluster over NATS");
    } else if (taken.reason) {
      log.warn(
        { reason: taken.reason },
        `the previous agent's handover is not used: ${taken.reason}`,
      );
    }
  }
  let serverRef: ClusterLogServer | null = null;
  let lastSaved: { snapshot: BusSnapshot; pendingIo: number } | null = handoff
    ? { snapshot: handoff.snapshot, pendingIo: 0 }
    : null;
  const clusterBus = createClusterBusFromOptions({
    nodeId: flags.nodeId,
    natsUrl: flags.nats,
    cluster: flags.cluster,
    failureTimeoutMs: flags.failureTimeoutMs,
    logger: log.child({ component: "cluster-bus" }),
    memberKeys: security?.memberKeys,
    insecureUnsigned: security?.insecureUnsigned,
    connectOptions: security?.connectOptions,
    onRefused: refused ? (reason) => refused.inc({ reason }) : undefined,
    inProcess: {
      onSnapshot: (snapshot) => {
        // The server's last save is its final state: stop() saves after the drain and
        // before leaving the order (whose node-leave would drop this node's logs).
        lastSaved = { snapshot, pendingIo: serverRef?.clusterLog.state.pendingIo.size ?? 0 };
        keepSnapshotFile(snapshot);
      },
      ...(handoff ? { initialSnapshot: handoff.snapshot } : {}),
    },
  });
  const bus = clusterBus;
  if (flags.nats) {
    log.info(
      { nats: flags.nats, cluster: flags.cluster ?? "default", nodeId: flags.nodeId },
      "joining the cluster over NATS JetStream",
    );
  }
  const devices = new FileLogDevices({
    root: flags.root,
    overrides: parseLogDeviceOverrides(flags.logDevice),
  });
  const server = new ClusterLogServer({
    bus,
    devices,
    log,
    snapshotEvery: flags.snapshotEvery,
    // Over NATS the snapshot goes to the cluster's KV bucket (for joiners); a copy is kept
    // in the data directory for inspection, as in-process (whose bus keeps it itself).
    ...(flags.nats ? { snapshotCopy: keepSnapshotFile } : {}),
    // After a restart the kernel still has its logs: -ESRCH makes it re-construct them
    // (spec §1.5) instead of failing requests for a log this process never saw.
    clusterLog: {
      esrchForUnknownLog: true,
      maxRegions: flags.maxRegions,
      maxLogs: flags.maxLogs,
    },
  });
  const order = (): OrderStatus =>
    clusterBus instanceof JetStreamBus
      ? { kind: "jetstream", ...clusterBus.status() }
      : { kind: "in-process" };
  if (hooks.metrics) {
    registerMembershipMetrics(hooks.metrics, server);
    registerOrderMetrics(hooks.metrics, order);
  }
  serverRef = server;
  try {
    await server.start();
  } catch (error) {
    claim?.release();
    throw flags.nats ? natsJoinError(flags.nats, error) : error;
  }
  let connector: ConnectorTransport | null = null;
  if (claim) {
    const started = startConnectorTransport({ server, log, claim, spin: flags.connectorSpin });
    if (started.ok) connector = started.transport;
    else if (flags.connector === "on") {
      await server.stop();
      throw new Error(`netlink connector unavailable: ${started.reason}`);
    } else connectorUnavailable = started.reason;
  }
  if (connectorUnavailable !== null) {
    // One clear line: a host without dm-log-userspace or root, or whose connector another
    // agent serves, still serves the socket.
    log.warn(
      { reason: connectorUnavailable },
      `netlink connector unavailable (${connectorUnavailable}); serving the local socket only`,
    );
  }
  const useDmsetup = flags.rearm === "dmsetup" || (flags.rearm === "auto" && connector !== null);
  // Without dmsetup the rearmer still watches, so a resync held by this kernel's hint is
  // logged (with the uuid, every 30 s) and shown in its `lastError` instead of waiting
  // silently.
  const rearmer = new HintRearmer({
    server,
    log,
    rearm: useDmsetup
      ? async (uuid) => {
          const devices = await dmsetupSuspendResume(uuid);
          log.info({ uuid, devices }, "mirror suspended and resumed: its kernel asks again");
        }
      : async () => {
          throw new Error(
            `re-arming is off (--rearm ${flags.rearm}${connector ? "" : ", no kernel connector"}): ` +
              "suspend and resume this mirror by hand (dmsetup suspend, dmsetup resume)",
          );
        },
  });
  rearmer.start();
  // With the kernel served here, an idle mirror is woken when a throttle window or a
  // release gives resync work back (wake.ts).
  const waker = useDmsetup ? new ResyncWaker({ server, log, wake: wakeMirrorDevices() }) : null;
  waker?.start();
  let tcpPort: number | null = null;
  try {
    await server.listenUnix(resolve(flags.socket));
    if (flags.tcp) {
      const at = flags.tcp.lastIndexOf(":");
      const host = flags.tcp.slice(0, at).replace(/^\[(.*)\]$/, "$1");
      tcpPort = await server.listenTcp(host, Number(flags.tcp.slice(at + 1)), tcpAuth!);
    }
  } catch (error) {
    rearmer.stop();
    waker?.stop();
    connector?.close();
    await server.stop();
    throw error;
  }
  let stopping: Promise<void> | null = null;
  return {
    server,
    bus,
    order,
    tcpPort,
    connector,
    rearmer,
    rearmWithDmsetup: useDmsetup,
    waker,
    stop: () => {
      stopping ??= (async () => {
        rearmer.stop();
        waker?.stop();
        // One host's clean restart hands its state over (handoff.ts); a cluster member
        // leaves, and its logs live on in the cluster.
        const lockPath = !flags.nats && connector ? (claim?.lock?.path ?? null) : null;
        let answered = false;
        if (lockPath) answered = await connector!.handOff();
        else connector?.close();
        // Over NATS a request in flight is answered within milliseconds or not at all (NATS
        // unreachable): 1 s of draining, then the bus's own bounded close, so SIGTERM exits
        // within 2 s (issue 14); what was not answered the kernel resends after a restart.
        await server.stop(flags.nats ? { drainTimeoutMs: 1000 } : {});
        await writing;
        if (lockPath) {
          // Still holding the lock: no other server can have answered the kernel since.
          const final = lastSaved as { snapshot: BusSnapshot; pendingIo: number } | null;
          if (!answered) log.warn("no handover: a kernel request was still unanswered");
          else if (!final) log.info("no handover: no state to hand over");
          else if (final.pendingIo > 0) log.warn("no handover: log I/O was pending");
          else {
            await writeHandoff(lockPath, {
              nodeId: flags.nodeId,
              snapshot: final.snapshot,
              now: Date.now(),
            }).then(
              () => log.info("handed over: the next agent starts from this state, no resync"),
              (error) => log.warn({ err: error }, "writing the handover failed"),
            );
          }
        }
        claim?.release();
      })();
      return stopping;
    },
  };
}
