/** Runs once when the server starts: a misconfigured server fails now, not on a request. */
export async function register() {
  if (process.env.NEXT_RUNTIME === "nodejs") {
    const { env } = await import("./env");
    env();
    // The mirror watch and event retention run whether or not anyone has a tab open.
    const { startServerBackground } = await import("./server/live/start-background");
    startServerBackground();
  }
}
