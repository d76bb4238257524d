import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { env } from "~/env";
import { type AgentDirectory, createAgentDirectory } from "~/server/agents";
import { sessionUser } from "~/server/auth";
import { db } from "~/server/db";
import { LiveHub } from "~/server/live/live-hub";
import { appRouter } from "~/server/root";
import { setLiveHub } from "~/server/routers/live";
import { createContextInner } from "~/server/trpc";

export const dynamic = "force-dynamic";

let agents: AgentDirectory | undefined;
let hubStarted = false;

function handler(req: Request) {
  return fetchRequestHandler({
    endpoint: "/api/trpc",
    req,
    router: appRouter,
    createContext: async () => {
      agents ??= createAgentDirectory(env().MIRRORPLANE_AGENT_TOKEN);
      if (!hubStarted) {
        setLiveHub(new LiveHub(db()));
        hubStarted = true;
      }
      const user = await sessionUser(req.headers);
      return createContextInner({ db: db(), agents, now: () => new Date(), user });
    },
    onError: ({ error, path }) => {
      if (error.code === "INTERNAL_SERVER_ERROR") console.error(`tRPC ${path}:`, error);
    },
  });
}

export { handler as GET, handler as POST };
