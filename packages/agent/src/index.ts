export { type RunningAgent, startAgent } from "./agent.ts";
export type { AgentRouter } from "./api/router.ts";
export { type AgentApiServer, startApiServer } from "./api/server.ts";
export {
  type KhugepagedSnapshot,
  khugepagedSeries,
  khugepagedTunables,
  readKhugepaged,
} from "./collectors/khugepaged.ts";
export { TunableWriter } from "./collectors/tunables.ts";
export { resolveConfig, type TAgentConfig } from "./config/config.ts";
