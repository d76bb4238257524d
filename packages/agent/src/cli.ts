import { Command, InvalidArgumentError, Option } from "commander";
import { startAgent } from "./agent.ts";
import {
  ConnectorHeldError,
  startClusterLogCommand,
  type TClusterLogFlags,
} from "./clusterlog/command.ts";
import {
  ConfigError,
  envLayer,
  fileLayer,
  logLevels,
  resolveConfig,
  type TAgentConfigLayer,
} from "./config/config.ts";
import { processLog } from "./logging.ts";
import { installShutdown } from "./shutdown.ts";
import { agentVersion } from "./version.ts";

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("not an integer");
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError("not a positive number");
  return n;
}

function boolean(value: string): boolean {
  if (/^(true|on|yes|1)$/i.test(value)) return true;
  if (/^(false|off|no|0)$/i.test(value)) return false;
  throw new InvalidArgumentError("not true/false");
}

function logLevelOption(): Option {
  return new Option("--log-level <level>").choices(logLevels);
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
    new Option("--kmsg <bool>", "follow <root>/dev/kmsg for failures (default true)").argParser(
      boolean,
    ),
  )
  .addOption(
    new Option("--kmsg-poll-ms <ms>", "kernel log poll interval (default 500)").argParser(integer),
  )
  .addOption(
    new Option(
      "--coalesce-window-ms <ms>",
      "per-page memory failures closer than this form one range (default 1000)",
    ).argParser(integer),
  )
  .addOption(
    new Option(
      "--spool-max-bytes <n>",
      "bound of the event spool used while Postgres is down (default 64 MiB)",
    ).argParser(integer),
  )
  .addOption(
    new Option(
      "--sample-retention-days <days>",
      "delete samples older than this (default 30)",
    ).argParser(positive),
  )
  .addOption(
    new Option(
      "--sample-raw-retention-hours <hours>",
      "down-sample samples older than this (default 48)",
    ).argParser(positive),
  )
  .addOption(
    new Option(
      "--sample-downsample-seconds <s>",
      "one sample per series per this many seconds after that (default 300)",
    ).argParser(integer),
  )
  .addOption(
    new Option(
      "--metrics-require-token <bool>",
      "whether /metrics needs the bearer token (default true)",
    ).argParser(boolean),
  )
  .option(
    "--smartctl <path>",
    "smartmontools' smartctl, run as `<path> --json=c -a -n standby /dev/<disk>` (default smartctl on PATH)",
  )
  .addOption(
    new Option(
      "--smart-interval-ms <ms>",
      "how often SMART is read; 0: only on demand (default 600000)",
    ).argParser(integer),
  )
  .addOption(logLevelOption())
  .action(async (opts: TAgentConfigLayer & { config?: string }) => {
    const { config: configFile, ...flags } = opts;
    const logs = processLog({ name: "mirrorplane-agent" });
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
    logs.log.level = config.logLevel;
    let agent: Awaited<ReturnType<typeof startAgent>>;
    try {
      agent = await startAgent(config, logs.log);
    } catch (error) {
      if (!(error instanceof ConnectorHeldError)) throw error;
      console.error(`mirrorplane-agent: ${error.message}`);
      process.exit(error.exitCode);
    }
    installShutdown(logs, () => agent.stop());
  });

program
  .command("clusterlog")
  .description(
    "run only the cluster-log server until SIGTERM/SIGINT (one host, or a cluster member with --nats)",
  )
  .requiredOption("--socket <path>", "Unix socket of the length-prefixed dm_ulog_request transport")
  .requiredOption("--data-dir <dir>", "state directory (latest snapshot)")
  .option(
    "--tcp <addr:port>",
    "also listen on loopback TCP, e.g. 127.0.0.1:7461 (needs --tcp-token-file or --tcp-tls-*)",
  )
  .option("--tcp-token-file <file>", "TCP clients must first send this token (file mode 0600)")
  .option("--tcp-tls-cert <file>", "TCP over mutual TLS: this server's certificate (PEM)")
  .option("--tcp-tls-key <file>", "TCP over mutual TLS: this server's private key (PEM)")
  .option("--tcp-tls-ca <file>", "TCP over mutual TLS: the CA client certificates must chain to")
  .option(
    "--log-device <M:m=path>",
    "use a file for log device M:m (repeatable)",
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .option("--node-id <n>", "cluster node id (default 1)")
  .option("--nats <url>", "NATS server(s), comma-separated: join a multi-host cluster")
  .option("--cluster <name>", 'cluster name: stream and buckets (default "default")')
  .option("--member-key <file>", "this member's Ed25519 private key (PEM, mode 0600; keygen)")
  .option(
    "--member-keys <dir|file>",
    "trusted public keys: a directory of <node id>.pub, or a JSON file of node id -> PEM",
  )
  .option(
    "--insecure-unsigned",
    "join over NATS without signing or verifying operations (anyone who can publish can change the log)",
  )
  .option("--nats-creds <file>", "NATS credentials file (JWT + nkey seed, mode 0600)")
  .option("--nats-user <user>", "NATS user (with --nats-password-file)")
  .option("--nats-password-file <file>", "file holding the NATS password (mode 0600)")
  .option("--nats-tls-ca <file>", "CA certificate to verify the NATS server with (PEM)")
  .option("--nats-tls-cert <file>", "client certificate for NATS (mutual TLS, PEM)")
  .option("--nats-tls-key <file>", "client key for NATS (mutual TLS, PEM, mode 0600)")
  .option(
    "--failure-timeout-ms <ms>",
    "declare a silent cluster member failed after (default 10000)",
  )
  .option("--root <dir>", "root of /sys and /dev for log-device lookup (default /)")
  .option(
    "--max-regions <n>",
    "largest log a CTR may construct, in regions (default 16777216 = 2^24; same on every member)",
  )
  .option(
    "--max-logs <n>",
    "most logs this node may hold at once (default 1024; same on every member)",
  )
  .addOption(
    new Option(
      "--connector <mode>",
      "serve the kernel over the netlink connector: auto (if root and available), on, off",
    ).choices(["auto", "on", "off"]),
  )
  .addOption(
    new Option(
      "--connector-lock <path>",
      "host-wide lock held while serving the connector; another holder: exit 3 with --connector on, sockets only with auto (default /run/mirrorplane/connector.lock)",
    ).env("MIRRORPLANE_CONNECTOR_LOCK"),
  )
  .addOption(
    new Option(
      "--connector-spin <tries>",
      "after answering the kernel, read the connector socket this many more times before sleeping: its next request is then taken without a wake-up (default 20; 0: never; docs/BENCHMARKS.md PB9)",
    ).env("MIRRORPLANE_CONNECTOR_SPIN"),
  )
  .addOption(
    new Option(
      "--rearm <mode>",
      "suspend/resume a mirror whose kernel's in_sync hint holds resync back: auto (with the connector), dmsetup, off",
    ).choices(["auto", "dmsetup", "off"]),
  )
  .addOption(logLevelOption())
  .action(async (opts: TClusterLogFlags & { logLevel?: string }) => {
    const { logLevel, ...flags } = opts;
    const logs = processLog({ name: "mirrorplane-clusterlog", level: logLevel ?? "info" });
    let running: Awaited<ReturnType<typeof startClusterLogCommand>>;
    try {
      running = await startClusterLogCommand(flags, logs.log);
    } catch (error) {
      console.error(`mirrorplane-agent clusterlog: ${(error as Error).message}`);
      // 3: another agent serves this host's connector (ConnectorHeldError); 2: anything else.
      process.exit(error instanceof ConnectorHeldError ? error.exitCode : 2);
    }
    installShutdown(logs, () => running.stop());
  });

program
  .command("keygen")
  .description(
    "write a cluster member's Ed25519 key pair: <out>/<node-id>.key (0600) and <out>/<node-id>.pub",
  )
  .requiredOption("--node-id <n>", "the member's cluster node id")
  .requiredOption("--out <dir>", "where to write the pair (an existing pair is never replaced)")
  .action(async (opts: { nodeId: string; out: string }) => {
    const { writeMemberKeyPair } = await import("./clusterlog/member-keys.ts");
    const node = Number(opts.nodeId);
    if (!Number.isInteger(node) || node < 1 || node > 0xffff_fffe) {
      console.error("mirrorplane-agent keygen: --node-id must be 1..4294967294");
      process.exit(2);
    }
    try {
      const written = await writeMemberKeyPair(opts.out, node);
      console.log(
        `private key ${written.privatePath} (keep on node ${node} only)\n` +
          `public key  ${written.publicPath} (copy into every member's --member-keys directory)`,
      );
    } catch (error) {
      console.error(`mirrorplane-agent keygen: ${(error as Error).message}`);
      process.exit(2);
    }
  });

await program.parseAsync(process.argv);
