/** Runs once when the server starts: a misconfigured server fails now, not on a request. */
export async function register() {
  if (process.env.NEXT_RUNTIME === "nodejs") {
    const { env } = await import("./env");
    env();
    // The composition root (server/runtime.ts): the live hub, and the background jobs (the
    // mirror watch, alerting, event retention) that run whether or not anyone has a tab open.
    const { startServerRuntime } = await import("./server/runtime");
    startServerRuntime();
  }
}
