import { z } from "zod";

// The cluster-log server's settings: flags of `mirrorplane-agent clusterlog`, and the
// `clusterLog` section of the host agent's config file (`mirrorplane-agent run` hosts the
// same server when it is there). No imports beyond zod, so the config module stays light.

export const ZClusterLogFlags = z.object({
  socket: z.string().min(1),
  dataDir: z.string().min(1),
  tcp: z
    .string()
    .regex(/^(.+):(\d{1,5})$/, "expected <loopback address>:<port>")
    .optional(),
  /**
   * Credentials of the TCP listener (issue 15: it is as powerful as the root-only socket):
   * a token file (mode 0600, the client sends its token first) and/or mutual TLS.
   */
  tcpTokenFile: z.string().min(1).optional(),
  tcpTlsCert: z.string().min(1).optional(),
  tcpTlsKey: z.string().min(1).optional(),
  tcpTlsCa: z.string().min(1).optional(),
  logDevice: z.array(z.string().regex(/^\d+:\d+=.+$/, "expected M:m=<path>")).default([]),
  nodeId: z.coerce.number().int().min(1).max(0xffff_fffe).default(1),
  root: z.string().min(1).default("/"),
  snapshotEvery: z.coerce.number().int().min(0).default(4096),
  /**
   * Limits of the core (issue 15): regions per log (a CTR above fails with -EINVAL) and
   * logs per node (one more fails with -ENOSPC). Every member of a cluster must use the
   * same values (they are part of the replicated state machine).
   */
  maxRegions: z.coerce
    .number()
    .int()
    .min(1)
    .max(2 ** 31)
    .default(2 ** 24),
  maxLogs: z.coerce.number().int().min(1).max(1_000_000).default(1024),
  /**
   * The kernel bridge (netlink connector, group 7): `auto` serves it when it can and logs
   * why not otherwise; `on` refuses to start without it; `off` serves sockets only.
   */
  connector: z.enum(["auto", "on", "off"]).default("auto"),
  /**
   * The host-wide lock (flock) a connector server holds while it serves group 7: one per
   * host. A second agent with `--connector on` exits with status 3; with `auto` it serves
   * its sockets only. Change it only for tests (or a host with a different /run).
   */
  connectorLock: z.string().min(1).default("/run/mirrorplane/connector.lock"),
  /**
   * After answering the kernel, try the connector socket this many more times (one
   * non-blocking recv each) before sleeping in the event loop (issue 11): the kernel's
   * next request often follows the reply at once (IN_SYNC twice per new region), and is
   * then read without a sleep and a wake-up. 0 = never spin. Costs CPU only while the
   * kernel is sending: at most this many recv() calls after each batch of requests.
   * Default 20: in the kernel lab it took random 4 KiB writes from 593 to 742 IOPS
   * (docs/BENCHMARKS.md PB9). On hardware a non-blocking recv() is on the order of a
   * microsecond, so 20 tries should cost tens of µs per batch (an estimate, not measured).
   */
  connectorSpin: z.coerce.number().int().min(0).max(10_000).default(20),
  /** NATS server URL(s), comma-separated: join a multi-host cluster over JetStream. */
  nats: z
    .string()
    .regex(/^\s*(nats|tls|ws|wss):\/\/[^,\s]+(\s*,\s*(nats|tls|ws|wss):\/\/[^,\s]+)*\s*$/, {
      message: "expected nats://host:port[,nats://host:port...]",
    })
    .optional(),
  /**
   * Who may write the replicated log (issue 15): this member's Ed25519 private key (PEM,
   * mode 0600) and the trusted public keys (a directory of `<node id>.pub`, or a JSON
   * file of node id → PEM). Required with `nats` unless `insecureUnsigned`.
   */
  memberKey: z.string().min(1).optional(),
  memberKeys: z.string().min(1).optional(),
  insecureUnsigned: z.boolean().default(false),
  /** NATS credentials: a creds file (JWT + nkey seed), or a user and a password file. */
  natsCreds: z.string().min(1).optional(),
  natsUser: z.string().min(1).optional(),
  natsPasswordFile: z.string().min(1).optional(),
  /** NATS over TLS: the CA to trust, and a client certificate and key (mutual TLS). */
  natsTlsCa: z.string().min(1).optional(),
  natsTlsCert: z.string().min(1).optional(),
  natsTlsKey: z.string().min(1).optional(),
  /** Names the JetStream stream and KV buckets; every member of one cluster uses the same. */
  cluster: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, "expected 1-64 of [A-Za-z0-9_-]")
    .optional(),
  /** A member whose heartbeat is older than this is declared failed (JetStream only). */
  failureTimeoutMs: z.coerce.number().int().min(500).max(3_600_000).optional(),
  /**
   * Re-arming this host's kernels when their in_sync hint holds resync work back
   * (rearm.ts): `dmsetup` suspends and resumes the mirror device; `auto` does so when the
   * kernel bridge is served; `off` leaves it to the operator (the agent logs which log
   * waits).
   */
  rearm: z.enum(["auto", "dmsetup", "off"]).default("auto"),
});
export type TClusterLogFlags = z.input<typeof ZClusterLogFlags>;
