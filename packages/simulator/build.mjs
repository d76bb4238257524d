// Bundles the simulator into dist/cli.mjs for `npm start` (the demo cluster runs beside the
// agent as plain Node, no TypeScript loader at run time, as the agent does: PERF.md PB8).
// Workspace packages are TypeScript source and get bundled; npm dependencies stay external.
import { readFileSync } from "node:fs";
import { build } from "esbuild";

const pkg = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
const external = new Set();
for (const path of [
  "./package.json",
  "../agent/package.json",
  "../db/package.json",
  "../clusterlog/package.json",
  "../contracts/package.json",
]) {
  for (const name of Object.keys(pkg(path).dependencies ?? {})) {
    if (!name.startsWith("@mirrorplane/")) external.add(name);
  }
}

await build({
  entryPoints: ["src/cli.ts"],
  outfile: "dist/cli.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  external: [...external].flatMap((name) => [name, `${name}/*`]),
  // Bundled ESM still has CommonJS dependencies that call require().
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: "warning",
});
