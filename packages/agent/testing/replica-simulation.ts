import { writeFileSync } from "node:fs";
import {
  type ApplyResult,
  Bitmap,
  type ClusterLog,
  DM_ULOG_CLEAR_REGION,
  DM_ULOG_FLUSH,
  DM_ULOG_GET_RESYNC_WORK,
  DM_ULOG_IS_CLEAN,
  DM_ULOG_MARK_REGION,
  type DmUlogRequest,
  decodeRegionList,
  decodeU64,
  encodeLogImage,
  LOG_OFFSET,
  MemoryBlockDevice,
  maskRequestType,
  type NodeId,
  needsRearm,
  type Reply,
} from "@mirrorplane/clusterlog";
import type { OrderedOperation } from "../src/clusterlog/bus.ts";
import {
  InProcessOrder,
  type Publication,
  type PublishAction,
} from "../src/clusterlog/in-process-bus.ts";
import { BusReplica } from "./bus-replica.ts";
import {
  boolAnswer,
  diskLogArgs,
  hintAnswer,
  KernelRequests,
  recoveringAnswer,
  resyncRegion,
} from "./kernel-requests.ts";

// Deterministic simulation of a cluster of agents over the in-process total order
// (spec §4, ARCHITECTURE.md "The cluster log"). A seeded PRNG decides every step: which
// kernel sends what, which publication is held back, duplicated or lost, when a member
// fails, leaves, re-joins from the latest snapshot or a new one joins. No timers and no
// real I/O, so a seed always replays the same schedule.
//
// Invariants, checked on an observer replica that applies every operation from the start
// (and at the end on every member):
//  1. every request of a live kernel gets exactly one answer;
//  2. no region a live member's kernel holds marked (a MARK/FLUSH answered 0, its CLEAR not
//     yet sent) is ever clean — not in the replica, not in an IS_CLEAN answer, not in a log
//     image written to disk;
//  3. every region a failed or departed member had marked is out of sync at that point of
//     the order and is later handed out as resync work (spec §4.5 [REC], P24, P25);
//  4. every surviving replica ends byte-for-byte equal to the observer;
//  5. no kernel writes a region to the primary leg only ("nosync": below its in_sync
//     hint, IN_SYNC answered 0) while another node is recovering it — the hint guard
//     (hint-guard.ts in @mirrorplane/clusterlog). Kernels keep their hint as the real one
//     does (spec §2.17): from IS_REMOTE_RECOVERING answers, rc after a full sync count,
//     0 after a suspend/resume, unchanged across an agent restart (the -ESRCH re-CTR);
//     an agent whose kernel's hint holds resync work back suspends and resumes it.
//
// MIRRORPLANE_SIM_TRACE=<file> writes the observer's view of the order to <file>.

export const SIM_UUID = "LVM-sim";
const EINVAL = 22;
const ENOENT = 2;
const REGIONS = 32;
const OBSERVER = 1000;

/** mulberry32: small, fast, good enough for schedules. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ScheduleStats {
  seed: number;
  steps: number;
  requests: number;
  operations: number;
  failures: number;
  leaves: number;
  joins: number;
  held: number;
  duplicated: number;
  dropped: number;
  resyncHandedOut: number;
  /** Writes a kernel sent to the primary leg only (a region below its hint, out of sync). */
  nosyncWrites: number;
  /** Suspend/resume cycles agents ran to re-arm their kernel's hint. */
  rearms: number;
  /** Departures holding a mark on the region another member was recovering at that point. */
  recoveryOverlaps: number;
}

export class InvariantViolation extends Error {}

/** One node's kernel: sequential requests (dm-raid1's worker), like the real one. */
class SimKernel {
  readonly requests: KernelRequests;
  phase: "ctr" | "resume" | "active" = "ctr";
  busy = false;
  /** Regions this kernel holds marked: MARK/FLUSH answered 0, CLEAR not sent yet. */
  readonly marked = new Set<number>();
  /** Issued requests not yet answered, by kernel seq. */
  readonly outstanding = new Set<number>();
  recovering: number | null = null;
  /** The kernel's in_sync hint: regions below it are written without asking (§2.17). */
  hint = 0;
  /** Constructed before: a re-construction uses the -ESRCH re-CTR form (P4). */
  constructed = false;
  constructor(node: NodeId, seqBase: number) {
    this.requests = new KernelRequests(SIM_UUID, BigInt(node) * 0x10n + 1n);
    this.requests.seq = seqBase;
  }
}

interface SimMember {
  readonly node: NodeId;
  readonly replica: BusReplica;
  readonly kernel: SimKernel;
}

export interface ScheduleOptions {
  readonly steps?: number;
  /**
   * Require re-recovery of a region a departed member had marked while another member was
   * recovering it (default). False only counts such cases in `recoveryOverlaps`. The core
   * hands out no region another member has marked, and a mark ordered during the recovery
   * (or the departure of its marker) invalidates it (`invalidateRecovery`), so the strict
   * check holds (seed 7146 found the case before that).
   */
  readonly strictRecoveryOverlap?: boolean;
}

/** Every counter of `ScheduleStats` at zero (a schedule's start, or a total over many). */
export function zeroCounts(): Omit<ScheduleStats, "seed" | "steps"> {
  return {
    requests: 0,
    operations: 0,
    failures: 0,
    leaves: 0,
    joins: 0,
    held: 0,
    duplicated: 0,
    dropped: 0,
    resyncHandedOut: 0,
    nosyncWrites: 0,
    rearms: 0,
    recoveryOverlaps: 0,
  };
}

export async function runSchedule(
  seed: number,
  { steps = 120, strictRecoveryOverlap = true }: ScheduleOptions = {},
): Promise<ScheduleStats> {
  const rng = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
  const chance = (p: number) => rng() < p;
  const stats: ScheduleStats = { seed, steps, ...zeroCounts() };
  const violations: string[] = [];
  /** Records a violation; `check()` throws the first one after the current step. */
  const fail = (message: string): void => {
    violations.push(`seed ${seed}: ${message}`);
  };
  const check = () => {
    if (violations.length === 0) return;
    const tail = trace ? `\n${trace.slice(-40).join("\n")}` : "";
    if (trace) writeFileSync(`${process.env.MIRRORPLANE_SIM_TRACE}`, trace.join("\n"));
    throw new InvariantViolation(violations.join("\n") + tail);
  };
  const trace: string[] | null = process.env.MIRRORPLANE_SIM_TRACE ? [] : null;

  // A shared log device, formatted with every region clean and in sync, so only failures
  // make regions out of sync.
  const device = new MemoryBlockDevice(64 * 1024);
  const allClean = new Bitmap(REGIONS);
  allClean.fill(true);
  device.write(0, encodeLogImage(allClean));

  let faultsOn = true;
  const order = new InProcessOrder({
    onPublish: (p: Publication): PublishAction => {
      if (!faultsOn || p.origin === OBSERVER) return "order";
      const r = rng();
      if (r < 0.12) {
        stats.held++;
        return "hold";
      }
      if (r < 0.17) {
        stats.duplicated++;
        return "duplicate";
      }
      if (r < 0.2) {
        stats.dropped++;
        return "drop";
      }
      return "order";
    },
  });

  const members = new Map<NodeId, SimMember>();
  /** Kernel seqs continue across agent restarts: the kernel outlives its agent. */
  const kernelSeq = new Map<NodeId, number>();
  /** …and so do its in_sync hint and the fact that its table was loaded. */
  const kernelHint = new Map<NodeId, number>();
  /** Node ids whose failure or leave is ordered, with the regions they held. */
  const owed = new Map<number, number>(); // region → seq of the failure that owes it
  const lastMarkedBy = new Map<NodeId, number[]>();

  // ---- the observer: applies everything from the start and checks invariants 2 and 3 ----
  const liveKernelMarks = (): [NodeId, Set<number>][] =>
    [...members.values()].map((m) => [m.node, m.kernel.marked]);

  let hadGroup = false;
  let lastRecovering = { region: -1, recoverer: -1 };
  const diskDirty = () => {
    const out: number[] = [];
    for (let r = 0; r < REGIONS; r++) {
      if (!((device.data[LOG_OFFSET + (r >> 3)]! >> (r & 7)) & 1)) out.push(r);
    }
    return out;
  };
  const observe = (entry: OrderedOperation, result: ApplyResult, log: ClusterLog) => {
    stats.operations++;
    if (trace) {
      const op = entry.op;
      const what =
        op.kind === "request"
          ? `req n${op.node} t${maskRequestType(op.request.requestType)} s${op.request.seq} [${regionsOf(op.request)}]`
          : op.kind === "io-done"
            ? `io-done ${op.ioId} ${op.error}`
            : op.kind === "resync"
              ? `resync ${op.resync.action}`
              : `${op.kind} n${op.node}`;
      const replies = result.replies.map((r) => `n${r.node}/s${r.header.seq}:${r.error}`).join(" ");
      const g = log.state.groups.get(SIM_UUID);
      const outOfSync: number[] = [];
      for (let r = 0; g && r < REGIONS; r++) if (!g.syncBits.test(r)) outOfSync.push(r);
      const handed = result.replies.map((r) => resyncRegion(r)).filter((r) => r !== null);
      trace.push(
        `${entry.seq} ${entry.msgId} ${what} -> ${replies} io:${result.io.length}` +
          ` handed:[${handed}] nosync:[${outOfSync}] owed:[${[...owed.keys()]}]` +
          ` diskdirty:[${diskDirty()}] w${device.writeCount}`,
      );
    }
    const group = log.state.groups.get(SIM_UUID);
    const op = entry.op;
    if (op.kind === "node-failed" || op.kind === "node-leave") {
      for (const region of lastMarkedBy.get(op.node) ?? []) {
        if (group?.syncBits.test(region)) {
          fail(`region ${region} of departed node ${op.node} still in sync at ${entry.seq}`);
        }
        if (
          !strictRecoveryOverlap &&
          lastRecovering.region === region &&
          lastRecovering.recoverer !== op.node
        ) {
          // Another member is recovering this region right now: its SET_REGION_SYNC will
          // call it in sync although the departed node may have written it during the
          // copy. Counted only when not strict.
          stats.recoveryOverlaps++;
          continue;
        }
        owed.set(region, entry.seq);
      }
      lastMarkedBy.delete(op.node);
    }
    lastRecovering = group
      ? { region: group.recoveringRegion, recoverer: group.recoverer }
      : { region: -1, recoverer: -1 };
    if (!group && hadGroup) {
      // Every member is gone: the disk log is the truth for the next master resume. A
      // region it has clean was never flushed dirty, so no data was written to it.
      for (const region of [...owed.keys()]) {
        if ((device.data[LOG_OFFSET + (region >> 3)]! >> (region & 7)) & 1) owed.delete(region);
      }
    }
    hadGroup = group !== undefined;
    if (group) {
      for (const [node, marked] of liveKernelMarks()) {
        if (!group.members.some((m) => m.node === node)) continue;
        for (const region of marked) {
          if (group.cleanBits.test(region)) {
            fail(`region ${region} marked by live node ${node} is clean at ${entry.seq}`);
          }
        }
      }
      lastMarkedBy.clear();
      for (const [node, regions] of group.markedBy) lastMarkedBy.set(node, [...regions]);
    } else {
      lastMarkedBy.clear();
    }
    const request = op.kind === "request" ? op.request : null;
    for (const reply of result.replies) {
      const type = maskRequestType(reply.header.requestType);
      if (type === DM_ULOG_IS_CLEAN && request && boolAnswer(reply) === 1) {
        const region = decodeU64(request.data);
        for (const [node, marked] of liveKernelMarks()) {
          if (marked.has(region)) fail(`IS_CLEAN(${region}) = 1 while node ${node} has it marked`);
        }
      }
      if (type === DM_ULOG_GET_RESYNC_WORK) {
        const region = resyncRegion(reply);
        if (region !== null) {
          stats.resyncHandedOut++;
          owed.delete(region);
        }
      }
    }
    for (const io of result.io) {
      if (io.kind !== "write") continue;
      for (const [node, marked] of liveKernelMarks()) {
        for (const region of marked) {
          const byte = io.image[LOG_OFFSET + (region >> 3)]!;
          if ((byte >> (region & 7)) & 1) {
            fail(`log image written at ${entry.seq} has region ${region} of node ${node} clean`);
          }
        }
      }
    }
  };
  const observer = new BusReplica({
    bus: order.bus(OBSERVER),
    resolveDevice: () => null,
    runId: "observer",
    onApplied: observe,
  });
  await observer.start();

  // ---- members and their kernels ----
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

  const join = async (node: NodeId) => {
    const replica = new BusReplica({
      bus: order.bus(node),
      resolveDevice: () => device,
      runId: `r${stats.joins}`,
    });
    const kernel = new SimKernel(node, kernelSeq.get(node) ?? 1);
    if (kernelHint.has(node)) {
      kernel.hint = kernelHint.get(node)!;
      kernel.constructed = true;
    }
    members.set(node, { node, replica, kernel });
    stats.joins++;
    await replica.start();
  };

  const send = (m: SimMember, request: DmUlogRequest, onReply: (reply: Reply) => void) => {
    const k = m.kernel;
    k.busy = true;
    k.outstanding.add(request.seq);
    kernelSeq.set(m.node, k.requests.seq);
    stats.requests++;
    void m.replica.request(request).then((reply) => {
      if (members.get(m.node) !== m) return; // this agent died meanwhile
      if (!k.outstanding.delete(request.seq))
        fail(`second answer to node ${m.node} seq ${request.seq}`);
      k.busy = false;
      if (reply.error === -11) return; // EAGAIN: the kernel sends it again
      onReply(reply);
    });
  };

  const kernelStep = (m: SimMember) => {
    const k = m.kernel;
    if (k.busy) return;
    if (k.phase === "ctr") {
      const args = diskLogArgs(REGIONS, "7:0");
      send(m, k.constructed ? k.requests.reCtr(args) : k.requests.ctr(args), (r) => {
        if (r.error !== 0) return;
        k.phase = "resume";
        k.constructed = true;
      });
      return;
    }
    if (k.phase === "resume") {
      send(m, k.requests.resume(), (r) => {
        k.phase = r.error === 0 ? "active" : "ctr";
      });
      return;
    }
    const onError = (r: Reply) => {
      if (r.error === -EINVAL || r.error === -ENOENT) {
        // The log is gone for this node: re-construct it, as after -ESRCH (spec §1.5).
        k.phase = "ctr";
        k.marked.clear();
        k.recovering = null;
      }
      return r.error !== 0;
    };
    if (k.recovering !== null) {
      const region = k.recovering;
      send(m, k.requests.setRegionSync(region, true), (r) => {
        if (onError(r)) return;
        k.recovering = null;
        // Recovery ends with a clear of the region (dm-region-hash, P9). The kernel
        // quiesced its own writes to it first, so its mark ends here too.
        k.marked.delete(region);
        send(m, k.requests.clear([region]), () => {});
      });
      return;
    }
    const setHint = (hint: number) => {
      k.hint = hint;
      kernelHint.set(m.node, hint);
    };
    if (needsRearm(m.replica.log.state, m.node, SIM_UUID)) {
      // The agent re-arms its kernel: `dmsetup suspend` (marks cleared, PRESUSPEND,
      // POSTSUSPEND) and `dmsetup resume` (the hint zeroed, RESUME).
      stats.rearms++;
      const regions = [...k.marked].sort((a, b) => a - b);
      k.marked.clear();
      const suspend = () =>
        send(m, k.requests.presuspend(), (r) => {
          if (onError(r)) return;
          send(m, k.requests.postsuspend(), (p) => {
            if (onError(p)) return;
            setHint(0);
            k.phase = "resume";
          });
        });
      if (regions.length > 0) send(m, k.requests.clear(regions), suspend);
      else suspend();
      return;
    }
    const r = rng();
    const region = Math.floor(rng() * REGIONS);
    const write = () => {
      const request = chance(0.5) ? k.requests.flush([region]) : k.requests.mark([region]);
      send(m, request, (reply) => {
        if (!onError(reply)) k.marked.add(region);
      });
    };
    if (r < 0.35 && !k.marked.has(region) && region < k.hint) {
      // Below the hint the kernel does not ask IS_REMOTE_RECOVERING; IN_SYNC decides
      // between a mirrored write and a "nosync" one to the primary leg only, unmarked.
      send(m, k.requests.inSync(region), (answer) => {
        if (onError(answer)) return;
        if (boolAnswer(answer) === 1) return write();
        stats.nosyncWrites++;
        const g = observer.log.state.groups.get(SIM_UUID);
        // (A recovery invalidated meanwhile cannot call the region in sync: not a race.)
        if (
          g &&
          g.recoveringRegion === region &&
          g.recoverer !== m.node &&
          !g.recoveryInvalidated
        ) {
          fail(
            `node ${m.node} wrote region ${region} to the primary leg only (hint ${k.hint})` +
              ` while node ${g.recoverer} recovers it`,
          );
        }
      });
    } else if (r < 0.35 && !k.marked.has(region)) {
      // A write: dm-raid1 asks IS_REMOTE_RECOVERING first and re-queues the write while
      // the region is out of sync anywhere (spec §3.5); only then is it marked.
      send(m, k.requests.isRemoteRecovering(region), (answer) => {
        if (onError(answer)) return;
        setHint(hintAnswer(answer) ?? k.hint);
        if (recoveringAnswer(answer) !== false) return;
        write();
      });
    } else if (r < 0.38) {
      // `dmsetup status`: a full count moves the hint to rc (userspace_get_sync_count).
      send(m, k.requests.getSyncCount(), (answer) => {
        if (onError(answer)) return;
        if ((boolAnswer(answer) ?? 0) >= REGIONS) setHint(REGIONS);
      });
    } else if (r < 0.6 && k.marked.size > 0) {
      const victim = pick([...k.marked].sort((a, b) => a - b));
      k.marked.delete(victim); // the kernel forgets the mark when it sends the clear
      send(m, k.requests.clear([victim]), () => {});
    } else if (r < 0.7) {
      send(m, k.requests.flush(), (reply) => onError(reply));
    } else if (r < 0.85) {
      send(m, k.requests.isClean(region), (reply) => onError(reply));
    } else if (k.hint < REGIONS) {
      // userspace_get_resync_work: a kernel whose hint reached rc never asks (§2.17).
      send(m, k.requests.getResyncWork(), (reply) => {
        if (onError(reply)) return;
        k.recovering = resyncRegion(reply);
      });
    }
  };

  /** A member's publications still held back either land before it dies, or never. */
  const settleHeldOf = (node: NodeId) => {
    for (let i = order.held.length - 1; i >= 0; i--) {
      // One already lost stays lost: it is a previous run's (same node id) publication,
      // which must not reach the order after that run's failure or leave.
      if (order.held[i]!.origin !== node || lostHeld.has(order.held[i]!)) continue;
      if (chance(0.5)) order.release(i);
      else dropHeld(i);
    }
  };
  const dropHeld = (index: number) => {
    // InProcessOrder has no "forget"; ordering a lost copy is not an option, so we keep
    // it out by releasing it only if its member is alive (see the main loop).
    lostHeld.add(order.held[index]!);
  };
  const lostHeld = new Set<Publication>();

  const nextNodeId = () => {
    for (let n = 1; n < 10; n++) if (!members.has(n)) return n;
    return null;
  };

  for (let n = 1; n <= 3; n++) await join(n);

  for (let step = 0; step < steps; step++) {
    const live = [...members.values()];
    const r = rng();
    if (r < 0.6 && live.length > 0) {
      kernelStep(pick(live));
    } else if (r < 0.75) {
      const releasable = order.held
        .map((p, i) => [p, i] as const)
        .filter(([p]) => !lostHeld.has(p) && members.has(p.origin));
      if (releasable.length > 0) order.release(pick(releasable)[1]);
    } else if (r < 0.82 && live.length > 0) {
      order.reconnect(pick(live).node); // re-publishes what was lost (P23)
    } else if (r < 0.86 && live.length > 1) {
      const victim = pick(live);
      settleHeldOf(victim.node);
      members.delete(victim.node);
      order.fail(victim.node);
      stats.failures++;
    } else if (r < 0.88 && live.length > 1) {
      const victim = pick(live);
      settleHeldOf(victim.node);
      members.delete(victim.node);
      await victim.replica.bus.close();
      stats.leaves++;
    } else if (r < 0.92 && live.length < 5) {
      const node = nextNodeId();
      if (node !== null) await join(node);
    } else if (r < 0.95 && live.length > 0) {
      await pick(live).replica.saveSnapshot();
    }
    await settle();
    check();
  }

  // ---- drain: no more faults; every live kernel finishes, clears, and resyncs ----
  faultsOn = false;
  const drainRound = async () => {
    for (let i = order.held.length - 1; i >= 0; i--) {
      const p = order.held[i]!;
      if (!lostHeld.has(p) && members.has(p.origin)) order.release(i);
    }
    for (const m of members.values()) order.reconnect(m.node);
    await settle();
  };
  for (let round = 0; round < 2_000; round++) {
    await drainRound();
    const kernels = [...members.values()];
    if (kernels.every((m) => !m.kernel.busy && m.kernel.phase === "active")) break;
    for (const m of kernels) if (!m.kernel.busy && m.kernel.phase !== "active") kernelStep(m);
  }
  for (let round = 0; round < 8 * REGIONS + 100; round++) {
    await drainRound();
    const idle = [...members.values()].filter((m) => !m.kernel.busy);
    if (idle.length !== members.size) continue;
    // Agents re-arm kernels whose hint holds resync work back; kernels come back up.
    const pending = idle.find(
      (m) => m.kernel.phase !== "active" || needsRearm(m.replica.log.state, m.node, SIM_UUID),
    );
    if (pending && pending.kernel.recovering === null) {
      kernelStep(pending);
      continue;
    }
    const withMarks = idle.find((m) => m.kernel.marked.size > 0);
    if (withMarks) {
      const k = withMarks.kernel;
      const regions = [...k.marked].sort((a, b) => a - b);
      k.marked.clear();
      send(withMarks, k.requests.clear(regions), () => {});
      continue;
    }
    const recoverer =
      idle.find((m) => m.kernel.recovering !== null) ?? idle.find((m) => m.kernel.hint < REGIONS);
    if (!recoverer) {
      if (owed.size === 0) break;
      continue; // only a re-arm (above) can make a kernel ask again
    }
    if (recoverer.kernel.recovering !== null) {
      kernelStep(recoverer);
      continue;
    }
    let done = false;
    send(recoverer, recoverer.kernel.requests.getResyncWork(), (reply) => {
      recoverer.kernel.recovering = resyncRegion(reply);
      done = recoverer.kernel.recovering === null;
    });
    await drainRound();
    if (done && owed.size === 0) break;
  }
  await drainRound();

  check();
  // ---- final checks ----
  for (const m of members.values()) {
    if (m.kernel.outstanding.size > 0) {
      fail(`node ${m.node} has ${m.kernel.outstanding.size} unanswered request(s)`);
    }
    for (const [key, count] of m.replica.answers) {
      if (count !== 1)
        fail(`node ${m.node} request ${JSON.stringify(key)} answered ${count} times`);
    }
  }
  if (members.size > 0 && owed.size > 0) {
    fail(
      `regions never handed out for resync: ${[...owed.keys()].sort((a, b) => a - b).join(",")}`,
    );
  }
  check();
  const reference = Buffer.from(observer.log.snapshot()).toString("hex");
  for (const m of members.values()) {
    if (Buffer.from(m.replica.log.snapshot()).toString("hex") !== reference) {
      fail(`replica of node ${m.node} differs from the observer`);
    }
  }
  check();
  for (const m of members.values()) await m.replica.bus.close();
  await observer.bus.close();
  if (trace) writeFileSync(`${process.env.MIRRORPLANE_SIM_TRACE}`, trace.join("\n"));
  return stats;
}

/** Regions in a MARK/CLEAR/FLUSH payload (for diagnostics). */
export function regionsOf(request: DmUlogRequest): number[] {
  const type = maskRequestType(request.requestType);
  return type === DM_ULOG_MARK_REGION || type === DM_ULOG_CLEAR_REGION || type === DM_ULOG_FLUSH
    ? decodeRegionList(request.data)
    : [];
}
