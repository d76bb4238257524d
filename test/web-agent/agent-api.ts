import { type AgentApiServer, startApiServer } from "@mirrorplane/agent";
import { pino } from "pino";

type TServices = Parameters<typeof startApiServer>[0]["services"];

const unused = (): never => {
  throw new Error("unused by this test");
};

/**
 * A real agent API (the daemon's own server and router) on an ephemeral local port,
 * answering with `services`; the required services a test does not give throw.
 */
export function startTestAgent(
  token: string,
  services: Partial<TServices> = {},
): Promise<AgentApiServer> {
  return startApiServer({
    host: "127.0.0.1",
    port: 0,
    token,
    log: pino({ level: "silent" }),
    services: { nodeInfo: unused, readKhugepaged: unused, ...services },
  });
}
