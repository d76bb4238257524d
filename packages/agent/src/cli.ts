import { Command, InvalidArgumentError, Option } from "commander";
import { pino } from "pino";
import { startAgent } from "./agent.ts";
import {
  ConfigError,
  envLayer,
  fileLayer,
  resolveConfig,
  type TAgentConfigLayer,
} from "./config/config.ts";
import { agentVersion } from "./version.ts";

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("not an integer");
  return n;
}

const program = new Command()
  .name("mirrorplane-agent")
  .description("Mirrorplane node agent: cluster-log server, host reporting, tRPC API")
  .version(agentVersion)
  .showHelpAfterError();

program
  .command("run", { isDefault: true })
  .description("run the agent daemon until SIGTERM/SIGINT")
  .option("-c, --config <file>", "JSON config file (flags override it; it overrides env)")
  .option("--node-id <id>", "node identity (default: kept in <data-dir>/node-id)")
  .option("--root <dir>", "root of the kernel files to read (default /)")
  .option("--data-dir <dir>", "state directory (default /var/lib/mirrorplane-agent)")
  .option("--host <addr>", "API listen address (default 127.0.0.1)")
  .addOption(new Option("--port <n>", "API port (default 7460)").argParser(integer))
  .option("--api-url <url>", "URL the control plane uses to reach this agent")
  .option("--token <token>", "API bearer token (prefer --token-file)")
  .option("--token-file <file>", "file holding the API bearer token")
  .option("--database-url <url>", "Postgres URL for samples and events")
  .addOption(new Option("--sample-interval-ms <ms>", "sampling interval").argParser(integer))
  .addOption(
    new Option("--log-level <level>").choices([
      "fatal",
      "error",
      "warn",
      "info",
      "debug",
      "trace",
      "silent",
    ]),
  )
  .action(async (opts: TAgentConfigLayer & { config?: string }) => {
    const { config: configFile, ...flags } = opts;
    let log = pino({ name: "mirrorplane-agent" });
    let config: Awaited<ReturnType<typeof resolveConfig>>;
    try {
      config = await resolveConfig({
        flags,
        ...(configFile ? { file: await fileLayer(configFile) } : {}),
        env: envLayer(process.env),
      });
    } catch (error) {
      if (error instanceof ConfigError) {
        console.error(`mirrorplane-agent: ${error.message}`);
        process.exit(2);
      }
      throw error;
    }
    log = pino({ name: "mirrorplane-agent", level: config.logLevel });
    const agent = await startAgent(config, log);
    installShutdown(log, () => agent.stop());
  });

/** First SIGTERM/SIGINT drains and stops; a second forces exit (STYLE.md §7). */
function installShutdown(log: pino.Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, "shutting down");
    stop().then(
      () => process.exit(0),
      (error) => {
        log.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

await program.parseAsync(process.argv);
