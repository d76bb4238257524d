import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "agent",
    include: ["src/**/*.test.ts"],
    testTimeout: 30_000,
    // Agents the tests start as root would otherwise take this host's real connector lock
    // (/run/mirrorplane/connector.lock), or be refused by a real agent holding it.
    env: { MIRRORPLANE_CONNECTOR_LOCK: join(tmpdir(), `mp-test-connector-${process.pid}.lock`) },
  },
});
