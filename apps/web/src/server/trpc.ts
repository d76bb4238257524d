import type { Db } from "@mirrorplane/db";
import { initTRPC } from "@trpc/server";
import superjson from "superjson";
import { ZodError, z } from "zod";
import type { AgentDirectory } from "./agents";

/** Everything a procedure may use; testable without an HTTP request (STYLE.md §4). */
export interface ContextInner {
  db: Db;
  agents: AgentDirectory;
  now: () => Date;
}

export function createContextInner(ctx: ContextInner): ContextInner {
  return ctx;
}

const t = initTRPC.context<ContextInner>().create({
  transformer: superjson,
  isDev: false,
  errorFormatter: ({ shape, error }) => ({
    ...shape,
    data: {
      ...shape.data,
      zodError: error.cause instanceof ZodError ? z.flattenError(error.cause) : null,
    },
  }),
});

export const createTRPCRouter = t.router;
export const createCallerFactory = t.createCallerFactory;
/** Read-only views. Roles (viewer/operator/admin) and audited mutations come with auth. */
export const publicProcedure = t.procedure;
