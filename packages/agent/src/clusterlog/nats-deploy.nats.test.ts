import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { canConnect, freePort, natsServerBinary } from "@mirrorplane/simulator/nats-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli } from "../../testing/cli-process.ts";
import { Kernel } from "../../testing/server-harness.ts";
import { TestClient } from "../../testing/uapi-client.ts";
import { writeMemberKeyPair } from "./member-keys.ts";

// Issue 15: the deployment's NATS as docker-compose.yml runs it — the committed
// deploy/nats/nats-server.conf (mutual TLS, one user per member, the members' permissions)
// with certificates from deploy/nats/make-certs.sh — on a real nats-server, only with
// temporary paths (the file reads them from the environment) and a free loopback port. A
// member with its certificate and its password joins and orders a CTR/RESUME; one without
// a client certificate, one with a wrong password and one from a foreign CA are refused.

const repo = resolve(import.meta.dirname, "../../../..");
const config = join(repo, "deploy/nats/nats-server.conf");
const makeCerts = join(repo, "deploy/nats/make-certs.sh");
const CTR = "65536 clustered-core 1024 nosync";
const passwords = { 1: "pw-one-0123456789", 2: "pw-two-0123456789", 3: "pw-three-012345678" };

let dir: string;
let port: number;
let nats: ReturnType<typeof spawn> | null = null;
let natsOutput = "";

describe.skipIf(natsServerBinary() === null)(
  "the deployment's NATS: its config and certificates",
  () => {
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "mp-nats-deploy-"));
      execFileSync("bash", [makeCerts, join(dir, "certs")], { stdio: "ignore" });
      // A second CA and a client certificate of it: what an outsider could make.
      execFileSync("bash", [makeCerts, join(dir, "foreign"), "clusterlog-2"], { stdio: "ignore" });
      for (const node of [1, 2, 3]) {
        await writeMemberKeyPair(join(dir, "keys"), node);
        await writeFile(join(dir, `password-${node}`), `${passwords[node as 1]}\n`, {
          mode: 0o600,
        });
      }
      await writeFile(join(dir, "wrong-password"), "not-the-password\n", { mode: 0o600 });
      port = await freePort();
      nats = spawn(
        natsServerBinary()!,
        ["-c", config, "-a", "127.0.0.1", "-p", String(port), "-m", String(await freePort())],
        {
          stdio: ["ignore", "pipe", "pipe"],
          env: {
            PATH: process.env.PATH ?? "",
            NATS_STORE_DIR: join(dir, "store"),
            NATS_TLS_CERT: join(dir, "certs/server.pem"),
            NATS_TLS_KEY: join(dir, "certs/server.key"),
            NATS_TLS_CA: join(dir, "certs/ca.pem"),
            NATS_PASSWORD_1: passwords[1],
            NATS_PASSWORD_2: passwords[2],
            NATS_PASSWORD_3: passwords[3],
          },
        },
      );
      for (const stream of [nats.stdout, nats.stderr]) {
        stream?.on("data", (chunk: Buffer) => {
          natsOutput += chunk.toString();
        });
      }
      const deadline = Date.now() + 20_000;
      while (!(await canConnect(port)) || !natsOutput.includes("Server is ready")) {
        if (nats.exitCode !== null) throw new Error(`nats-server exited:\n${natsOutput}`);
        if (Date.now() > deadline) throw new Error(`nats-server not ready:\n${natsOutput}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }, 60_000);

    afterAll(async () => {
      if (nats && nats.exitCode === null) {
        const exited = new Promise((r) => nats!.once("exit", r));
        nats.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    });

    const member = (node: number, name: string, access: string[]): CliProcess =>
      startCli(
        ["--socket", join(dir, `${name}.sock`), "--data-dir", join(dir, `data-${name}`)]
          .concat(["--connector", "off", "--node-id", String(node)])
          .concat(["--nats", `tls://127.0.0.1:${port}`]) // the cluster "default" of the config
          .concat(["--member-key", join(dir, "keys", `${node}.key`)])
          .concat(["--member-keys", join(dir, "keys"), ...access]),
      );
    const credentials = (node: number, passwordFile = join(dir, `password-${node}`)) => [
      "--nats-user",
      `clusterlog-${node}`,
      "--nats-password-file",
      passwordFile,
    ];
    const certificate = (certs: string, user: string) => [
      "--nats-tls-ca",
      join(dir, "certs/ca.pem"),
      "--nats-tls-cert",
      join(dir, certs, `${user}.pem`),
      "--nats-tls-key",
      join(dir, certs, `${user}.key`),
    ];

    it("a member with its certificate and password joins and orders; others are refused", async () => {
      const good = member(1, "good", [...credentials(1), ...certificate("certs", "clusterlog-1")]);
      try {
        await good.line(/cluster-log server listening/);
        expect(good.lines.some((l) => l.includes("NATS without credentials"))).toBe(false);
        const kernel = new Kernel(await TestClient.connect(join(dir, "good.sock")));
        kernel.uuid = "LVM-deploy";
        kernel.luid = 0x101n;
        await kernel.up(CTR); // CTR + RESUME: ordered through TLS under the member's permissions
        expect(await kernel.syncCount()).toBe(64);
        kernel.client.destroy();

        for (const [name, node, access, why] of [
          // The right password, no client certificate: dropped in the TLS handshake.
          [
            "no-certificate",
            2,
            [...credentials(2), "--nats-tls-ca", join(dir, "certs/ca.pem")],
            /dropped this member in the TLS handshake/,
          ],
          // Its certificate, a wrong password.
          [
            "wrong-password",
            3,
            [
              ...credentials(3, join(dir, "wrong-password")),
              ...certificate("certs", "clusterlog-3"),
            ],
            /Authorization Violation; NATS refused the credentials/,
          ],
          // The right password, a client certificate of a CA the server does not trust.
          [
            "foreign-ca",
            2,
            [...credentials(2), ...certificate("foreign", "clusterlog-2")],
            /dropped this member in the TLS handshake/,
          ],
          // Its certificate and password, but another cluster's subjects.
          [
            "other-cluster",
            3,
            [...credentials(3), ...certificate("certs", "clusterlog-3"), "--cluster", "other"],
            /Permissions Violation for Publish to "\$JS\.API\.STREAM\.CREATE\.MIRRORPLANE_other"/,
          ],
        ] as const) {
          const refused = member(node, name, [...access]);
          const code = await new Promise<number | null>((resolveExit) =>
            refused.child.once("exit", (c) => resolveExit(c)),
          );
          const said = `${name}: ${refused.stderr()}\n${refused.lines.join("\n")}`;
          expect(code, said).toBe(2);
          expect(
            refused.lines.some((l) => /cluster-log server listening/.test(l)),
            said,
          ).toBe(false);
          expect(refused.stderr(), said).toMatch(why);
        }
      } finally {
        // Wait for it to exit: it writes its final snapshot into its data directory, which
        // the cleanup would otherwise race (ENOTEMPTY once in CI).
        const exited = new Promise((r) => good.child.once("exit", r));
        if (good.child.exitCode === null && good.child.signalCode === null) {
          good.child.kill("SIGTERM");
          await exited;
        }
      }
    }, 120_000);
  },
);
