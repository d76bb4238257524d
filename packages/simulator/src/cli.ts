import { processLog } from "@mirrorplane/agent/logging";
import { installShutdown } from "@mirrorplane/agent/shutdown";
import { agentVersion } from "@mirrorplane/agent/version";
import { Command, InvalidArgumentError, Option } from "commander";

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("not an integer");
  return n;
}

const program = new Command()
  .name("mirrorplane-sim")
  .description("Mirrorplane simulator: simulated kernels and mirrors driving real agents")
  .version(agentVersion)
  .showHelpAfterError();

program
  .command("demo")
  .description(
    "run a simulated three-agent cluster with mirrors under write load and the resync API (npm start)",
  )
  .requiredOption("--data-dir <dir>", "where the simulated legs and logs live (recreated)")
  .requiredOption("--token-file <file>", "file holding the API bearer token")
  .option("--host <addr>", "API listen address (default 127.0.0.1)")
  .addOption(new Option("--port <n>", "API port (default 7461)").argParser(integer))
  .option("--database-url <url>", "Postgres URL for progress samples and resync events")
  .addOption(new Option("--sample-interval-ms <ms>", "sampling interval").argParser(integer))
  .addOption(
    new Option("--resync-every-ms <ms>", "start a range resync this often (0: never)").argParser(
      integer,
    ),
  )
  .addOption(
    new Option(
      "--nats <mode>",
      "order the demo cluster over JetStream on a private nats-server: auto (if installed), off",
    )
      .choices(["auto", "off"])
      .env("MIRRORPLANE_DEMO_NATS"),
  )
  .action(
    async (opts: {
      nats?: "auto" | "off";
      dataDir: string;
      tokenFile: string;
      host?: string;
      port?: number;
      databaseUrl?: string;
      sampleIntervalMs?: number;
      resyncEveryMs?: number;
    }) => {
      const logs = processLog({ name: "mirrorplane-demo", level: "info" });
      const { readFile, rm } = await import("node:fs/promises");
      const { startDemo } = await import("./demo.ts");
      try {
        const token = (await readFile(opts.tokenFile, "utf8")).trim();
        await rm(opts.dataDir, { recursive: true, force: true });
        const demo = await startDemo({
          dataDir: opts.dataDir,
          host: opts.host ?? "127.0.0.1",
          port: opts.port ?? 7461,
          token,
          databaseUrl: opts.databaseUrl,
          sampleIntervalMs: opts.sampleIntervalMs ?? 5000,
          resyncEveryMs: opts.resyncEveryMs ?? 180_000,
          nats: opts.nats ?? "auto",
          log: logs.log,
        });
        installShutdown(logs, () => demo.stop());
      } catch (error) {
        console.error(`mirrorplane-sim demo: ${(error as Error).message}`);
        process.exit(2);
      }
    },
  );

await program.parseAsync(process.argv);
