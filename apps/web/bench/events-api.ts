// PB7 (PERF.md): events API p95 ≤ 100 ms with 1 M events stored (keyset pagination).
// A real embedded Postgres, the real schema, 1 M events generated in SQL, then the tRPC
// `events.list` procedure called through createCaller (the same code the HTTP route runs)
// for: the newest page, pages deep in the history (by keyset cursor), and filtered pages.
// As a baseline in the same run: the same deep page fetched by OFFSET, which keyset avoids.
//   cd apps/web && npx tsx --conditions=react-server bench/events-api.ts [events=1000000] [requests=200]
// (`react-server`: the server modules import "server-only", which is empty under that condition)
import { performance } from "node:perf_hooks";
import { createDb } from "@mirrorplane/db";
import { startBenchPostgres } from "@mirrorplane/db/testing";
import { createAgentDirectory } from "../src/server/agents";
import { createCaller } from "../src/server/root";
import { createContextInner } from "../src/server/trpc";

const total = Number(process.argv[2] ?? 1_000_000);
const requests = Number(process.argv[3] ?? 200);
const pg = await startBenchPostgres("mirrorplane-pb7-", 54392);
const db = createDb(pg.url, { poolSize: 4 });

let t = performance.now();
await db.$executeRawUnsafe(`
  INSERT INTO nodes (id, hostname, api_url, agent_version, sample_interval_ms, started_at, last_seen_at)
  SELECT 'node-' || n, 'host-' || n, 'http://127.0.0.1:1', '0', 10000, now(), now() FROM generate_series(0, 7) n`);
await db.$executeRawUnsafe(`
  INSERT INTO events (idempotency_key, node_id, kind, severity, source, occurred_at, device, message, mirror)
  SELECT 'bench-' || i,
         'node-' || (i % 8),
         (ARRAY['memory_failure','device_failure','resync','tunable_change'])[1 + i % 4],
         (ARRAY['info','warning','error','notice','debug','critical']::"Severity"[])[1 + (i * 7) % 6],
         'kmsg',
         now() - make_interval(secs => (${total} - i) * 0.5),
         'nvme' || (i % 16) || 'n1',
         'event number ' || i,
         CASE WHEN i % 5 = 0 THEN 'mirror-' || (i % 40) END
    FROM generate_series(1, ${total}) i`);
await db.$executeRawUnsafe("ANALYZE events");
console.log(
  `loaded ${total.toLocaleString("en-US")} events in ${((performance.now() - t) / 1000).toFixed(1)} s`,
);

const caller = createCaller(
  createContextInner({
    db,
    agents: createAgentDirectory("bench-token-0123456789"),
    now: () => new Date(),
    user: { id: "b", username: "bench", role: "viewer" },
  }),
);

async function measure(label: string, fn: (i: number) => Promise<unknown>) {
  const times: number[] = [];
  for (let i = 0; i < 10; i++) await fn(i); // warm-up
  for (let i = 0; i < requests; i++) {
    const s = performance.now();
    await fn(i);
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
  console.log(
    `${label.padEnd(46)} p50 ${p(0.5).toFixed(2).padStart(7)} ms   p95 ${p(0.95).toFixed(2).padStart(7)} ms`,
  );
  return p(0.95);
}

// Cursors deep in the history: walk once, keep every 50th page's cursor.
const cursors: string[] = [];
let cursor: string | undefined;
t = performance.now();
for (let page = 0; page < 2_000 && cursors.length < 40; page++) {
  const r = await caller.events.list({ limit: 100, ...(cursor ? { cursor } : {}) });
  cursor = r.nextCursor ?? undefined;
  if (!cursor) break;
  if (page % 50 === 49) cursors.push(cursor);
}

const results = {
  newest: await measure("newest page (100 rows)", () => caller.events.list({ limit: 100 })),
  deep: await measure("deep pages by keyset cursor (up to page 2,000)", (i) =>
    caller.events.list({ limit: 100, cursor: cursors[i % cursors.length]! }),
  ),
  byNode: await measure("filtered: node", (i) =>
    caller.events.list({ limit: 100, nodeId: `node-${i % 8}` }),
  ),
  bySeverity: await measure("filtered: severity error+critical", () =>
    caller.events.list({ limit: 100, severity: ["error", "critical"] }),
  ),
  byMirror: await measure("filtered: mirror", (i) =>
    caller.events.list({ limit: 100, mirror: `mirror-${(i * 5) % 40}` }),
  ),
  facets: await measure("facets (filter pickers)", () => caller.events.facets()),
};
const offsetBaseline = await measure("baseline: same deep pages by OFFSET", (i) =>
  db.event.findMany({
    orderBy: [{ occurredAt: "desc" }, { id: "desc" }],
    skip: 100 * 50 * ((i % cursors.length) + 1),
    take: 100,
    select: { id: true, message: true },
  }),
);
const worst = Math.max(...Object.values(results));
console.log(
  `\nPB7 events API: worst p95 ${worst.toFixed(2)} ms (target ≤ 100 ms) — ${worst <= 100 ? "met" : "NOT met"}`,
);
console.log(
  `keyset deep-page p95 is ${(offsetBaseline / results.deep).toFixed(1)}x faster than OFFSET`,
);

await db.$disconnect();
await pg.stop();
process.exit(0);
