import type { ProcessLog } from "./logging.ts";

/**
 * First SIGTERM/SIGINT drains and stops; a second forces exit (STYLE.md §7). Neither waits
 * for a log reader that stopped reading: after `stop` the buffered lines get a bounded
 * flush (logging.ts), and the second signal gives them up at once.
 */
export function installShutdown(logs: ProcessLog, stop: () => Promise<void>): void {
  const { log } = logs;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      logs.abandon();
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, "shutting down");
    stop().then(
      () => logs.exit(0),
      (error) => {
        log.error({ err: error }, "shutdown failed");
        return logs.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
