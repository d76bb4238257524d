import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, envLayer, fileLayer, resolveConfig } from "./config.ts";

const token = "0123456789abcdef0123";

describe("agent configuration layering", () => {
  it("uses defaults when nothing else is given", async () => {
    const c = await resolveConfig({ flags: { token }, env: {} });
    expect(c).toMatchObject({
      root: "/",
      host: "127.0.0.1",
      port: 7460,
      sampleIntervalMs: 10_000,
      logLevel: "info",
    });
  });

  it("orders layers flags > file > env > defaults", async () => {
    const env = envLayer({
      MIRRORPLANE_AGENT_PORT: "9001",
      MIRRORPLANE_ROOT: "/env-root",
      MIRRORPLANE_AGENT_HOST: "0.0.0.0",
      MIRRORPLANE_AGENT_TOKEN: token,
    });
    const dir = await mkdtemp(join(tmpdir(), "agent-config-"));
    const file = join(dir, "agent.json");
    await writeFile(file, JSON.stringify({ port: 9002, root: "/file-root" }));
    const c = await resolveConfig({ flags: { port: 9003 }, file: await fileLayer(file), env });
    expect(c.port).toBe(9003); // flag
    expect(c.root).toBe("/file-root"); // file over env
    expect(c.host).toBe("0.0.0.0"); // env over default
    expect(c.dataDir).toBe("/var/lib/mirrorplane-agent"); // default
  });

  it("reads the token from a token file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "agent-token-"));
    await writeFile(join(dir, "t"), `${token}\n`);
    const c = await resolveConfig({ flags: { tokenFile: join(dir, "t") }, env: {} });
    expect(c.token).toBe(token);
  });

  it("refuses to start without a token, with an actionable message", async () => {
    await expect(resolveConfig({ flags: {}, env: {} })).rejects.toThrow(/no agent token/);
  });

  it("rejects invalid values and unknown keys with a clear error", async () => {
    await expect(resolveConfig({ flags: { token, port: 70000 }, env: {} })).rejects.toBeInstanceOf(
      ConfigError,
    );
    await expect(resolveConfig({ flags: { token: "short" }, env: {} })).rejects.toThrow(
      /at least 16/,
    );
    const dir = await mkdtemp(join(tmpdir(), "agent-config-"));
    await writeFile(join(dir, "bad.json"), JSON.stringify({ prot: 1 }));
    await expect(fileLayer(join(dir, "bad.json"))).rejects.toThrow(/prot/);
    await writeFile(join(dir, "broken.json"), "{");
    await expect(fileLayer(join(dir, "broken.json"))).rejects.toThrow(/not valid JSON/);
    expect(() => envLayer({ MIRRORPLANE_AGENT_PORT: "nope" })).toThrow(ConfigError);
  });
});
