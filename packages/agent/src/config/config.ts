import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { z } from "zod";
import { ZClusterLogFlags } from "../clusterlog/flags.ts";
import { ZMirrorConfig } from "../events/mirror-map.ts";

/**
 * Agent configuration, layered flags > config file > environment > defaults (STYLE.md §7).
 * This module is the only place the agent reads `process.env`.
 */
/** pino's levels, as `--log-level` accepts them. */
export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export const ZAgentConfig = z
  .object({
    /** Stable identity of this host in the cluster; default: kept in `<dataDir>/node-id`. */
    nodeId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "letters, digits, '.', '_' or '-', max 63")
      .optional(),
    /** Root of the kernel files to read: `/` in production, a fixture tree in tests. */
    root: z.string().min(1),
    dataDir: z.string().min(1),
    host: z.string().min(1),
    port: z.number().int().min(0).max(65535),
    /** URL the control plane uses to reach this agent; default derived from host/port. */
    apiUrl: z.url().optional(),
    /** Bearer token every API request must carry. */
    token: z.string().min(16, "the agent token must be at least 16 characters"),
    databaseUrl: z.string().min(1).optional(),
    sampleIntervalMs: z.number().int().min(250).max(3_600_000),
    logLevel: z.enum(logLevels),
    /** Follow `<root>/dev/kmsg` for memory and device failures (KERNEL-SOURCES §1.1, §3). */
    kmsg: z.boolean(),
    /** How often the kernel log is read when it has nothing new. */
    kmsgPollMs: z.number().int().min(50).max(60_000),
    /** Per-page memory-failure lines further apart than this start a new range. */
    coalesceWindowMs: z.number().int().min(1).max(60_000),
    /** Bound of the local event spool used while Postgres is unreachable. */
    spoolMaxBytes: z
      .number()
      .int()
      .min(4096)
      .max(2 ** 40),
    /** Events per INSERT. */
    eventBatchSize: z.number().int().min(1).max(50_000),
    /** Samples older than this are deleted. */
    sampleRetentionDays: z.number().positive().max(36_500),
    /** Samples older than this are down-sampled to one per `sampleDownsampleSeconds`. */
    sampleRawRetentionHours: z.number().positive().max(876_000),
    sampleDownsampleSeconds: z.number().int().min(1).max(86_400),
    /** How often retention and down-sampling run. */
    retentionIntervalMs: z.number().int().min(1000).max(86_400_000),
    /** Whether `/metrics` needs the bearer token like the API (Prometheus: `authorization`). */
    metricsRequireToken: z.boolean(),
    /**
     * smartmontools' smartctl (a path, or a name on PATH): the disk inventory runs
     * `<smartctl> --json=c -a -n standby /dev/<disk>` for SMART health.
     */
    smartctl: z.string().min(1),
    /** How often SMART is read (each disk, a few at a time); 0: only when asked through the API. */
    smartIntervalMs: z.number().int().min(0).max(86_400_000),
    /** Mirror legs on this host, so failures name their mirror and regions (file only). */
    mirrors: z.array(ZMirrorConfig),
    /**
     * Host the cluster-log server (cmirrord's job) in this process, with resync control
     * on the API: the `clusterlog` command's settings (file only; `dataDir` defaults to
     * `<dataDir>/clusterlog`). Absent: run it as `mirrorplane-agent clusterlog` instead.
     */
    clusterLog: ZClusterLogFlags.partial({ dataDir: true }).optional(),
  })
  .strict();
export type TAgentConfig = z.infer<typeof ZAgentConfig>;

/** Every key optional: what one layer (flags, file, env) contributes. */
export const ZAgentConfigLayer = ZAgentConfig.partial()
  .extend({ tokenFile: z.string().min(1).optional() })
  .strict();
export type TAgentConfigLayer = z.infer<typeof ZAgentConfigLayer>;

export const defaults = {
  root: "/",
  dataDir: "/var/lib/mirrorplane-agent",
  host: "127.0.0.1",
  port: 7460,
  sampleIntervalMs: 10_000,
  logLevel: "info",
  kmsg: true,
  kmsgPollMs: 500,
  coalesceWindowMs: 1000,
  spoolMaxBytes: 64 * 1024 * 1024,
  eventBatchSize: 2000,
  sampleRetentionDays: 30,
  sampleRawRetentionHours: 48,
  sampleDownsampleSeconds: 300,
  retentionIntervalMs: 3_600_000,
  metricsRequireToken: true,
  smartctl: "smartctl",
  smartIntervalMs: 600_000,
  mirrors: [],
} satisfies Partial<TAgentConfig>;

const envNames: Record<string, keyof TAgentConfigLayer> = {
  MIRRORPLANE_NODE_ID: "nodeId",
  MIRRORPLANE_ROOT: "root",
  MIRRORPLANE_AGENT_DATA_DIR: "dataDir",
  MIRRORPLANE_AGENT_HOST: "host",
  MIRRORPLANE_AGENT_PORT: "port",
  MIRRORPLANE_AGENT_API_URL: "apiUrl",
  MIRRORPLANE_AGENT_TOKEN: "token",
  MIRRORPLANE_AGENT_TOKEN_FILE: "tokenFile",
  DATABASE_URL: "databaseUrl",
  MIRRORPLANE_SAMPLE_INTERVAL_MS: "sampleIntervalMs",
  MIRRORPLANE_LOG_LEVEL: "logLevel",
  MIRRORPLANE_AGENT_SPOOL_MAX_BYTES: "spoolMaxBytes",
  MIRRORPLANE_SAMPLE_RETENTION_DAYS: "sampleRetentionDays",
  MIRRORPLANE_SMARTCTL: "smartctl",
  MIRRORPLANE_SMART_INTERVAL_MS: "smartIntervalMs",
};
const numericKeys = new Set<keyof TAgentConfigLayer>([
  "port",
  "sampleIntervalMs",
  "spoolMaxBytes",
  "sampleRetentionDays",
  "smartIntervalMs",
]);

export function envLayer(env: NodeJS.ProcessEnv): TAgentConfigLayer {
  const layer: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(envNames)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    layer[key] = numericKeys.has(key) ? Number(value) : value;
  }
  return parseLayer(layer, "environment");
}

export async function fileLayer(path: string): Promise<TAgentConfigLayer> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseLayer(parsed, `config file ${path}`);
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

function parseLayer(value: unknown, where: string): TAgentConfigLayer {
  const result = ZAgentConfigLayer.safeParse(value);
  if (!result.success) throw new ConfigError(`invalid ${where}: ${z.prettifyError(result.error)}`);
  return result.data;
}

function definedOnly<T extends object>(layer: T): Partial<T> {
  return Object.fromEntries(Object.entries(layer).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Merges layers (later wins), resolves `tokenFile`, and validates the result once.
 * `flags` are the parsed command-line options, `file` the config file's contents.
 */
export async function resolveConfig(layers: {
  flags: TAgentConfigLayer;
  file?: TAgentConfigLayer;
  env: TAgentConfigLayer;
}): Promise<TAgentConfig> {
  const merged: TAgentConfigLayer = {
    ...defaults,
    ...definedOnly(layers.env),
    ...definedOnly(layers.file ?? {}),
    ...definedOnly(parseLayer(definedOnly(layers.flags), "command-line flags")),
  };
  const { tokenFile, ...rest } = merged;
  // An explicit token at a higher layer than the token file wins; otherwise read the file.
  if (tokenFile && !definedOnly(layers.flags).token && !definedOnly(layers.file ?? {}).token) {
    try {
      rest.token = (await readFile(tokenFile, "utf8")).trim();
    } catch (error) {
      throw new ConfigError(`cannot read token file ${tokenFile}: ${(error as Error).message}`);
    }
  }
  if (!rest.token) {
    throw new ConfigError(
      "no agent token: pass --token-file, --token, MIRRORPLANE_AGENT_TOKEN or set it in the config file",
    );
  }
  const result = ZAgentConfig.safeParse(rest);
  if (!result.success)
    throw new ConfigError(`invalid configuration: ${z.prettifyError(result.error)}`);
  return result.data;
}

export function defaultApiUrl(config: Pick<TAgentConfig, "host" | "port" | "apiUrl">): string {
  if (config.apiUrl) return config.apiUrl;
  const host = config.host === "0.0.0.0" || config.host === "::" ? hostname() : config.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${config.port}`;
}
