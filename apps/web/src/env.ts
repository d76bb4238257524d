import "server-only";
import { z } from "zod";

/** The web app's environment, validated once at start-up (STYLE.md §6). */
const ZEnv = z.object({
  DATABASE_URL: z.string().min(1, "DATABASE_URL is required (npm start sets it)"),
  /** Cluster token the control plane presents to every agent's API. */
  MIRRORPLANE_AGENT_TOKEN: z
    .string()
    .min(16, "MIRRORPLANE_AGENT_TOKEN must be at least 16 characters"),
});

export type TEnv = z.infer<typeof ZEnv>;

let cached: TEnv | undefined;
export function env(): TEnv {
  cached ??= ZEnv.parse(process.env);
  return cached;
}
