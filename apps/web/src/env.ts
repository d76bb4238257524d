import "server-only";
import { z } from "zod";
import { invalidProxyEntries } from "./server/client-address";

/** The web app's environment, validated once at start-up (STYLE.md §6). */
const ZEnv = z.object({
  DATABASE_URL: z.string().min(1, "DATABASE_URL is required (npm start sets it)"),
  /** Cluster token the control plane presents to every agent's API; never sent to browsers. */
  MIRRORPLANE_AGENT_TOKEN: z
    .string()
    .min(16, "MIRRORPLANE_AGENT_TOKEN must be at least 16 characters"),
  /** Signs session cookies (better-auth). npm start generates one into the data dir. */
  BETTER_AUTH_SECRET: z.string().min(32, "BETTER_AUTH_SECRET must be at least 32 characters"),
  /** The URL operators use to reach the dashboard (origin checks, cookies). */
  MIRRORPLANE_PUBLIC_URL: z.url().default("http://127.0.0.1:3000"),
  /** Extra origins allowed to post to the API, comma-separated. */
  MIRRORPLANE_TRUSTED_ORIGINS: z
    .string()
    .default("")
    .transform((s) =>
      s
        .split(",")
        .map((o) => o.trim())
        .filter(Boolean),
    ),
  /**
   * Reverse proxies (IP addresses or CIDR ranges, comma-separated) whose X-Forwarded-For /
   * X-Real-IP are believed. Empty: the TCP peer is the client and forwarded headers are
   * ignored (server/client-address.ts).
   */
  MIRRORPLANE_TRUSTED_PROXIES: z
    .string()
    .default("")
    .transform((s) =>
      s
        .split(",")
        .map((o) => o.trim())
        .filter(Boolean),
    )
    .refine((list) => invalidProxyEntries(list).length === 0, {
      message: "MIRRORPLANE_TRUSTED_PROXIES: each entry must be an IP address or a CIDR range",
    }),
  /** Events older than this many days are deleted (server/retention.ts); 0 keeps them all. */
  MIRRORPLANE_EVENT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(90),
  /** Unacknowledged warning/error/critical events are kept up to this many days. */
  MIRRORPLANE_EVENT_RETENTION_OPEN_DAYS: z.coerce.number().int().min(1).max(36_500).default(365),
  /** A mirror out of sync this long, and not recovering on track, raises an alarm (alarms.ts). */
  MIRRORPLANE_ALARM_WITHOUT_REDUNDANCY_MINUTES: z.coerce
    .number()
    .min(1)
    .max(7 * 24 * 60)
    .default(30),
  /** Alarms and critical events are posted here (Alertmanager's webhook body), optional. */
  MIRRORPLANE_ALERT_WEBHOOK_URL: z.url().optional(),
  /** An Alertmanager (base URL; alerts go to /api/v2/alerts), optional. */
  MIRRORPLANE_ALERTMANAGER_URL: z.url().optional(),
});

export type TEnv = z.infer<typeof ZEnv>;

let cached: TEnv | undefined;
export function env(): TEnv {
  cached ??= ZEnv.parse(process.env);
  return cached;
}
