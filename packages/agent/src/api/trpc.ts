import { createHash, timingSafeEqual } from "node:crypto";
import type {
  TClusterMembership,
  TDiskInventory,
  TEventStatus,
  TNodeInfo,
  TTunableChange,
  TTunableWrite,
} from "@mirrorplane/contracts";
import { rethrowAppError } from "@mirrorplane/contracts/trpc";
import { initTRPC, TRPCError } from "@trpc/server";
import superjson from "superjson";
import type { ResyncController } from "../clusterlog/resync-control.ts";
import type { KhugepagedSnapshot } from "../collectors/khugepaged.ts";

/** What the API's handlers may use: plain functions of the agent's domain layer. */
export interface AgentServices {
  nodeInfo(): NodeInfo;
  readKhugepaged(): Promise<KhugepagedSnapshot>;
  /**
   * Validates like the kernel, writes, and records an audited event; throws TunableError.
   * Optional so API-only embeddings (tests, the web app's fakes) need not provide it.
   */
  setTunable?(input: TTunableWrite): Promise<TTunableChange>;
  /** Event pipeline counters and which host sources were found at start. */
  eventStatus?(): TEventStatus;
  /**
   * The cluster as this member sees it (issue 14): members, each log's serving node, the
   * recent joins/leaves/failures, and how it replicates (in-process, or JetStream and
   * whether its NATS connection is up).
   */
  membership?(): ClusterMembership;
  /** The node's disks with SMART (issue 13): sysfs now, SMART as last read / read now. */
  disks?: {
    list(): Promise<TDiskInventory>;
    refresh(device?: string): Promise<TDiskInventory>;
  };
  /** Operator resync control over this node's cluster-log replica (issue 5). */
  resync?: Pick<
    ResyncController,
    "logs" | "progress" | "startResync" | "cancel" | "throttle" | "regionMap"
  >;
}

export type NodeInfo = TNodeInfo;

export interface AgentContext {
  /** The bearer token presented with the request, if any. */
  presentedToken: string | null;
  expectedToken: string;
  services: AgentServices;
}

/** Testable inner context (STYLE.md §4): no HTTP request needed. */
export function createContextInner(ctx: AgentContext): AgentContext {
  return ctx;
}

export function bearerToken(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1] ?? null;
}

/** Constant-time comparison over digests, so neither content nor length leaks. */
export function tokensMatch(presented: string, expected: string): boolean {
  const a = createHash("sha256").update(presented).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

// isDev false: error responses never carry stack traces to callers.
const t = initTRPC.context<AgentContext>().create({ transformer: superjson, isDev: false });

export const createTRPCRouter = t.router;
export const createCallerFactory = t.createCallerFactory;

/**
 * Every agent procedure needs the cluster token: a request without it, or with a wrong
 * one, is refused with UNAUTHORIZED (HTTP 401) before any handler runs.
 */
/** An AppError thrown by a handler fails as its tRPC error (@mirrorplane/contracts/trpc). */
const appErrors = t.middleware(async ({ next }) => rethrowAppError(await next()));

export const agentProcedure = t.procedure
  .use(({ ctx, next }) => {
    if (ctx.presentedToken === null) {
      throw new TRPCError({ code: "UNAUTHORIZED", message: "missing bearer token" });
    }
    if (!tokensMatch(ctx.presentedToken, ctx.expectedToken)) {
      throw new TRPCError({ code: "UNAUTHORIZED", message: "invalid bearer token" });
    }
    return next({ ctx: { services: ctx.services } });
  })
  .use(appErrors);

/** The API's membership answer, as the cluster-log server keeps it (read-only). */
export type ClusterMembership = ReadonlyDeep<TClusterMembership>;

type ReadonlyDeep<T> = T extends (infer E)[]
  ? readonly ReadonlyDeep<E>[]
  : T extends object
    ? { readonly [K in keyof T]: ReadonlyDeep<T[K]> }
    : T;
