// What the agent and the dashboard agree on, in one place (zod only, browser-safe): the
// agent API's procedures with their input and output schemas, event kinds and the groups
// the dashboard shows, region states, leg health, the error codes agents answer with.
// Types come from the schemas (z.infer); neither side writes them again.
export * from "./agent-api.ts";
export * from "./client.ts";
export * from "./disks.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./mirrors.ts";
export * from "./tunables.ts";
