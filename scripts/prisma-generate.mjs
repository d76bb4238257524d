// postinstall: generate the Prisma client into packages/db/src/generated.
//
// The Prisma CLI fetches a native schema engine before every command, and our machines
// cannot reach that host (STYLE.md). `prisma generate` does not use the engine, so we
// point PRISMA_SCHEMA_ENGINE_BINARY at a stub executable and skip the download.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stub = join(root, "node_modules", ".cache", "mirrorplane", "schema-engine-stub");
if (!existsSync(stub)) {
  mkdirSync(dirname(stub), { recursive: true });
  writeFileSync(stub, "#!/bin/sh\necho 'schema engine stub: use npm run db:migrate' >&2\nexit 1\n");
  chmodSync(stub, 0o755);
}
const prismaBin = join(root, "node_modules", "prisma", "build", "index.js");
if (!existsSync(prismaBin)) {
  console.log("prisma-generate: prisma CLI not installed yet, skipping");
  process.exit(0);
}
const result = spawnSync(process.execPath, [prismaBin, "generate"], {
  cwd: root,
  stdio: "inherit",
  env: {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? stub,
    PRISMA_HIDE_UPDATE_MESSAGE: "1",
    CHECKPOINT_DISABLE: "1",
  },
});
process.exit(result.status ?? 1);
