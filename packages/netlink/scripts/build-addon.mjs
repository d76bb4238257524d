// Builds the Node-API addon with node-gyp against the local Node headers (npm's `nodedir`
// setting, or node-gyp's own lookup). Runs as this workspace package's `install` script,
// so `npm install` / `npm ci` on a fresh clone builds it. A failed build does not fail the
// install: the agent then starts without the netlink connector and says so in its log
// (see src/index.ts `loadNetlink`). `--strict` (npm run build:addon) fails loudly instead.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const strict = process.argv.includes("--strict");

if (process.platform !== "linux") {
  console.log("@mirrorplane/netlink: not Linux, no AF_NETLINK: skipping the addon build");
  process.exit(0);
}

const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
  "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
  "/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
].filter((p) => p && existsSync(p));

// Node's own headers: npm's `nodedir` when run by npm, else the headers installed beside
// this Node (Debian: /usr/include/node), so node-gyp never tries to download them.
const nodedir =
  process.env.npm_config_nodedir ??
  [join(dirname(process.execPath), ".."), "/usr", "/usr/local"].find((d) =>
    existsSync(join(d, "include/node/node_api.h")),
  );
const gypArgs = ["rebuild", ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const [cmd, args] =
  candidates.length > 0 ? [process.execPath, [candidates[0], ...gypArgs]] : ["node-gyp", gypArgs];
const result = spawnSync(cmd, args, { cwd: here, stdio: "inherit" });
const built = existsSync(join(here, "build/Release/mirrorplane_netlink.node"));
if (result.status === 0 && built) {
  console.log("@mirrorplane/netlink: addon built");
  process.exit(0);
}
console.warn(
  `@mirrorplane/netlink: addon build failed (${result.error?.message ?? `exit ${result.status}`}); ` +
    "the agent will run without the netlink connector (needs python3, make, a C compiler and Node headers)",
);
process.exit(strict ? 1 : 0);
