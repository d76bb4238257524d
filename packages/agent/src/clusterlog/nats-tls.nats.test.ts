import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canConnect, freePort, natsServerBinary } from "@mirrorplane/simulator/nats-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCli } from "../../testing/cli-process.ts";
import { Kernel } from "../../testing/server-harness.ts";
import { TestClient } from "../../testing/uapi-client.ts";
import { writeMemberKeyPair } from "./member-keys.ts";

// Issue 15: a member reaches NATS over mutual TLS (`--nats tls://…`, --nats-tls-ca/-cert/
// -key), as the README's deployment says. A real nats-server verifies client certificates
// (--tlsverify) against the cluster's CA; certificates are made here with openssl. A member
// with the CA's client certificate joins and serves; one with a certificate from another
// CA, or none, is refused and exits. (nats.js names a loopback server "localhost" for
// TLS, so the server certificate carries that name beside 127.0.0.1.)

const CTR = "65536 clustered-core 1024 nosync";
let dir: string;
let port: number;
let nats: ReturnType<typeof spawn>;

function openssl(args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}

/** A CA, and `names` certificates it signed (127.0.0.1 as the server's SAN). */
function makeCa(ca: string, names: string[]): void {
  openssl(
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"].concat([
      "-keyout",
      `${ca}.key`,
      "-out",
      `${ca}.pem`,
      "-subj",
      `/CN=${ca}`,
    ]),
  );
  for (const name of names) {
    openssl(
      ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`].concat([
        "-out",
        `${name}.csr`,
        "-subj",
        `/CN=${name}`,
      ]),
    );
    openssl(
      ["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`]
        .concat(["-CAcreateserial", "-days", "2", "-out", `${name}.pem`])
        .concat(["-extfile", `${name}.ext`]),
    );
  }
}

const member = (name: string, node: number, tls: string[]) =>
  startCli([
    "--socket",
    join(dir, `${name}.sock`),
    "--data-dir",
    join(dir, `data-${name}`),
    "--connector",
    "off",
    "--node-id",
    String(node),
    "--nats",
    `tls://127.0.0.1:${port}`,
    "--cluster",
    "tls_test",
    "--member-key",
    join(dir, "keys", `${node}.key`),
    "--member-keys",
    join(dir, "keys"),
    ...tls,
  ]);

describe.skipIf(natsServerBinary() === null)("NATS over mutual TLS", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mp-nats-tls-"));
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    await writeFile(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
    await writeFile(join(dir, "rogue-client.ext"), "extendedKeyUsage=clientAuth\n");
    makeCa("ca", ["server", "client"]);
    makeCa("rogue-ca", ["rogue-client"]);
    for (const node of [1, 2, 3]) await writeMemberKeyPair(join(dir, "keys"), node);
    port = await freePort();
    nats = spawn(
      natsServerBinary()!,
      ["-js", "-sd", join(dir, "store"), "-a", "127.0.0.1", "-p", String(port)]
        .concat(["--tlsverify", "--tlscert", join(dir, "server.pem")])
        .concat(["--tlskey", join(dir, "server.key"), "--tlscacert", join(dir, "ca.pem")]),
      { stdio: "ignore" },
    );
    const deadline = Date.now() + 20_000;
    while (!(await canConnect(port))) {
      if (Date.now() > deadline) throw new Error("nats-server did not listen");
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 60_000);

  afterAll(async () => {
    nats?.kill("SIGTERM");
    if (!process.env.KEEP_TLS_DIR) await rm(dir, { recursive: true, force: true });
    else console.log(dir);
  });

  it("a member with the cluster CA's certificate joins and serves; others are refused", async () => {
    const tlsArgs = (cert: string) => [
      "--nats-tls-ca",
      join(dir, "ca.pem"),
      "--nats-tls-cert",
      join(dir, `${cert}.pem`),
      "--nats-tls-key",
      join(dir, `${cert}.key`),
    ];
    const good = member("good", 1, tlsArgs("client"));
    try {
      await good.line(/cluster-log server listening/);
      const kernel = new Kernel(await TestClient.connect(join(dir, "good.sock")));
      kernel.uuid = "LVM-tls";
      kernel.luid = 0x101n;
      await kernel.up(CTR); // CTR + RESUME: ordered through the TLS connection
      expect(await kernel.syncCount()).toBe(64);
      kernel.client.destroy();

      for (const [name, node, args] of [
        ["rogue", 2, tlsArgs("rogue-client")],
        ["anonymous", 3, ["--nats-tls-ca", join(dir, "ca.pem")]],
      ] as const) {
        const refused = member(name, node, [...args]);
        const code = await new Promise<number | null>((resolve) =>
          refused.child.once("exit", (c) => resolve(c)),
        );
        expect(code, `${name}: ${refused.lines.join("\n")}`).not.toBe(0);
        expect(refused.lines.some((l) => /cluster-log server listening/.test(l))).toBe(false);
      }
    } finally {
      // Exited before NATS goes and the directory is removed (afterAll).
      expect(await good.stop()).toBe(0);
    }
  }, 120_000);
});
