// Bundles the agent into dist/cli.mjs for production (systemd, containers, `npm start`):
// plain Node, no TypeScript loader at run time (≈ 30 MB less RSS, PERF.md PB8). Workspace
// packages are TypeScript source and get bundled; npm dependencies stay external.
// `node build.mjs [outfile]` (default dist/cli.mjs) also writes esbuild's metafile beside
// the bundle (`cli.meta.json`: every input file), which bundle.test.ts reads.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url));
const outfile = resolve(process.argv[2] ?? resolve(here, "dist/cli.mjs"));

const pkg = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
const external = new Set();
for (const path of [
  "./package.json",
  "../db/package.json",
  "../clusterlog/package.json",
  "../contracts/package.json",
]) {
  for (const name of Object.keys(pkg(path).dependencies ?? {})) {
    if (!name.startsWith("@mirrorplane/")) external.add(name);
  }
}

const result = await build({
  absWorkingDir: here,
  entryPoints: ["src/cli.ts"],
  outfile,
  metafile: true,
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
mkdirSync(dirname(outfile), { recursive: true });
writeFileSync(outfile.replace(/\.mjs$/, ".meta.json"), JSON.stringify(result.metafile));
