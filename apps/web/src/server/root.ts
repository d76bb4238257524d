import { alertsRouter } from "./routers/alerts";
import { devicesRouter } from "./routers/devices";
import { eventsRouter } from "./routers/events";
import { khugepagedRouter } from "./routers/khugepaged";
import { liveRouter } from "./routers/live";
import { mirrorsRouter } from "./routers/mirrors";
import { nodesRouter } from "./routers/nodes";
import { overviewRouter } from "./routers/overview";
import { auditRouter, sessionRouter, setupRouter, usersRouter } from "./routers/users";
import { createCallerFactory, createTRPCRouter } from "./trpc";

export const appRouter = createTRPCRouter({
  nodes: nodesRouter,
  khugepaged: khugepagedRouter,
  session: sessionRouter,
  setup: setupRouter,
  users: usersRouter,
  audit: auditRouter,
  live: liveRouter,
  overview: overviewRouter,
  events: eventsRouter,
  mirrors: mirrorsRouter,
  devices: devicesRouter,
  alerts: alertsRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
