import { khugepagedRouter } from "./routers/khugepaged";
import { nodesRouter } from "./routers/nodes";
import { createCallerFactory, createTRPCRouter } from "./trpc";

export const appRouter = createTRPCRouter({
  nodes: nodesRouter,
  khugepaged: khugepagedRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
