import { processLog } from "../src/logging.ts";

// Test support (logging.test.ts): a process that logs `lines` lines through the daemon's
// log and then exits through it, as the agent's shutdown does, waiting at most `flushMs`
// for stdout. Its parent decides whether stdout is read.
const lines = Number(process.argv[2] ?? "20000");
const flushMs = Number(process.argv[3] ?? "300");
const logs = processLog({ name: "log-writer" });
for (let i = 0; i < lines; i++) logs.log.info({ i, pad: "x".repeat(200) }, "line");
process.stderr.write(`logged ${lines}\n`);
await logs.exit(0, flushMs);
