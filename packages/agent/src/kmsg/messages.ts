import type { TSeverity } from "@mirrorplane/db/enums";
import type { TEventKind, TRangeUnit } from "../events/event.ts";

/**
 * Classifies one kernel log message (the text after the kmsg header) into what the agent
 * reports, or `null` for the lines it does not care about. Pure and allocation-light: it
 * runs on every kernel line, and a storm of per-page lines must parse at ≥ 500 k lines/s
 * (PERF.md PB6). Formats: KERNEL-SOURCES.md §1.1 (memory failure), §1.7–1.8 (pmem/DAX),
 * §3.1 (block layer), §3.2 (NVMe), §3.3 (dm-raid1).
 */
export interface KernelFinding {
  kind: TEventKind;
  severity: TSeverity;
  /** Which message: `action_result`, `sigbus`, `nvme_timeout`, `io_error`, … */
  what: string;
  device: string | null;
  /** Set for per-page outcome lines: these are coalesced into ranges. */
  page?: { pfn: number; pageType: string; result: TMfResult } | undefined;
  range?: { start: bigint; end: bigint; unit: TRangeUnit } | undefined;
  /** A dm-raid1 leg named by the message. */
  leg?: string | undefined;
  simulated?: boolean | undefined;
  /** The pfn an injection line names (later outcome lines for it are simulated too). */
  injectedPfn?: number | undefined;
  data: Record<string, unknown>;
}

/** enum mf_result (§1.1), in the kernel's order. */
export const mfResults = ["Ignored", "Failed", "Delayed", "Recovered"] as const;
export type TMfResult = (typeof mfResults)[number];

/** Ignored is the rarest and most severe outcome (§1.1 kernel-doc). */
export const resultSeverity: Record<TMfResult, TSeverity> = {
  Ignored: "critical",
  Failed: "error",
  Delayed: "warning",
  Recovered: "warning",
};

export const u64Max = 0xffff_ffff_ffff_ffffn;

const PFN = "(0x[0-9a-fA-F]+|\\d+)";
/** `%#lx` prints `0x…`, except for zero, which it prints as `0`. */
function pfnOf(text: string): number {
  return text.startsWith("0x") || text.startsWith("0X")
    ? Number.parseInt(text.slice(2), 16)
    : Number.parseInt(text, 10);
}

/**
 * Page-type names renamed across kernels, normalised so one page type is one name on the
 * dashboard whatever kernel printed it. Other names pass through as printed: the set
 * changes between kernels and is never hard-coded (§1.1 "Design consequence").
 */
function normalisePageType(type: string): string {
  if (type === "already poisoned") return "already poisoned page";
  return type;
}

const reActionResult = /^recovery action for (.+): (Ignored|Failed|Delayed|Recovered)\s*$/;
/** Very old kernels (≤ 3.x): `MCE 0x…: [dirty ]<type> page recovery: <result>`. */
const reOldActionResult = /^(.+?) recovery: (Ignored|Failed|Delayed|Recovered)\s*$/;
const reLeadingPfn = new RegExp(`^${PFN}(?::\\s*|\\s+)(.*)$`);
const reKill = /^(?:Sending SIGBUS to|Killing) (.+):(\d+) due to hardware memory corruption/;
const reForcibly = /^forcibly killing (.+):(\d+) because of failure to unmap corrupted page/;
const reAdvisory = /^Cannot send advisory machine check signal to (.+):(\d+)/;
const reStillReferenced = /^(.+) still referenced by (-?\d+) users/;
const reOverflow = new RegExp(`^buffer overflow when queuing memory failure at ${PFN}`);
const reSendError = /^Error sending signal to (.+):(\d+): (-?\d+)/;
const reUnableToFind = /^Unable to find user space address ([0-9a-fA-F]+) in (.+)$/;
const reInvalidNid = new RegExp(`^pfn=${PFN}, invalid nid=(-?\\d+)`);
const reBadResult = /^mf_result=(-?\d+) is not properly handled/;
const rePanic = /(?:^|: )Memory failure on page ([0-9a-fA-F]+)/;
const reInjectAt = new RegExp(`Injecting memory failure at pfn ${PFN}`);
const reInjectFor = new RegExp(
  `Injecting memory failure for pfn ${PFN} at process virtual address (0x[0-9a-fA-F]+)`,
);
const reSoftOfflining = new RegExp(
  `Soft offlining pfn ${PFN} at process virtual address (0x[0-9a-fA-F]+)`,
);
const reMceKill =
  /^MCE: Killing (.+):(\d+) due to hardware memory corruption fault at ([0-9a-fA-F]+)/;
const reMceUserAccess = /^mce: Uncorrected hardware memory error in user-access at ([0-9a-fA-F]+)/;
const reXfsRemove = /^XFS \(([^)]+)\): device is about to be removed!/;
const reDaxRemove = /^(?:(\S+) )?(\S+): DAX active at remove, trigger mass memory failure/;
const reBadRange = /^(?:(\S+) )?(\S+):.*adding bad range \((0x[0-9a-fA-F]+), (0x[0-9a-fA-F]+)\)/;
const reBadblocksFailed = /badblocks: .*failed for sector ([0-9a-fA-F]+)/;

/** Details whose wording says the page could not be contained. */
const errorDetails = [
  "Failed to punch page",
  "failed to release buffers",
  "Failed to invalidate",
  "Unknown page state",
  "cannot catch tail",
  "unhandlable page",
  "could not lock mapping",
  "failed to unmap page",
  "memory outside kernel control",
];

function finding(
  kind: TEventKind,
  severity: TSeverity,
  what: string,
  data: Record<string, unknown> = {},
  device: string | null = null,
): KernelFinding {
  return { kind, severity, what, device, data };
}

/** The outcome line in one regex: the hot path of a per-page storm (PB6). */
const reActionResultLine = new RegExp(
  `^${PFN}: recovery action for (.+): (Ignored|Failed|Delayed|Recovered)\\s*$`,
);

/** The body of a `Memory failure: ` line (or an old `MCE 0x…: ` one, pfn included). */
function parseMemoryFailureBody(body: string): KernelFinding {
  const fast = reActionResultLine.exec(body);
  if (fast) return pageFinding(pfnOf(fast[1]!), normalisePageType(fast[2]!), fast[3] as TMfResult);
  const lead = reLeadingPfn.exec(body);
  if (lead) {
    const pfn = pfnOf(lead[1]!);
    const rest = lead[2]!;
    let m = reActionResult.exec(rest);
    if (m) return pageFinding(pfn, normalisePageType(m[1]!), m[2] as TMfResult);
    m = reOldActionResult.exec(rest);
    if (m) {
      const type = m[1]!.endsWith(" page") ? m[1]! : `${m[1]} page`;
      return pageFinding(pfn, normalisePageType(type), m[2] as TMfResult);
    }
    m = reKill.exec(rest);
    if (m)
      return finding("process_killed", "error", rest.startsWith("Sending") ? "sigbus" : "kill", {
        pfn,
        comm: m[1],
        pid: Number(m[2]),
      });
    m = reForcibly.exec(rest);
    if (m)
      return finding("process_killed", "error", "forced_kill", {
        pfn,
        comm: m[1],
        pid: Number(m[2]),
      });
    m = reAdvisory.exec(rest);
    if (m)
      return finding("process_killed", "warning", "advisory_signal_failed", {
        pfn,
        comm: m[1],
        pid: Number(m[2]),
      });
    if (rest.startsWith("already hardware poisoned"))
      return finding("memory_failure", "info", "already_poisoned", { pfn });
    m = reStillReferenced.exec(rest);
    if (m)
      return finding("memory_failure", "error", "still_referenced", {
        pfn,
        pageType: normalisePageType(m[1]!),
        users: Number(m[2]),
      });
    const severity: TSeverity = errorDetails.some((d) => rest.startsWith(d)) ? "error" : "notice";
    return finding("memory_failure", severity, "detail", { pfn, detail: rest.trim() });
  }
  let m = reOverflow.exec(body);
  if (m) return finding("memory_failure_lost", "critical", "queue_overflow", { pfn: pfnOf(m[1]!) });
  m = reSendError.exec(body);
  if (m)
    return finding("process_killed", "error", "signal_failed", {
      comm: m[1],
      pid: Number(m[2]),
      errno: Number(m[3]),
    });
  if (body.startsWith("Out of memory while machine check handling"))
    return finding("memory_failure", "critical", "oom_in_handler");
  m = reUnableToFind.exec(body);
  if (m)
    return finding("memory_failure", "warning", "address_not_found", {
      pfn: Number.parseInt(m[1]!, 16),
      comm: m[2],
    });
  m = reInvalidNid.exec(body);
  if (m)
    return finding("memory_failure", "error", "invalid_nid", {
      pfn: pfnOf(m[1]!),
      nid: Number(m[2]),
    });
  m = reBadResult.exec(body);
  if (m) return finding("memory_failure", "error", "unhandled_result", { result: Number(m[1]) });
  return finding("memory_failure", "notice", "detail", { detail: body.trim() });
}

function pageFinding(pfn: number, pageType: string, result: TMfResult): KernelFinding {
  // "already poisoned page" is a repeat report of a page counted before (§1.1).
  const severity = pageType === "already poisoned page" ? "info" : resultSeverity[result];
  return {
    kind: "memory_failure",
    severity,
    what: "action_result",
    device: null,
    page: { pfn, pageType, result },
    data: { pageType, result },
  };
}

function parseSoftOffline(body: string): KernelFinding {
  if (body.startsWith("disabled"))
    return finding("soft_offline", "notice", "disabled", { detail: body.trim() });
  const lead = reLeadingPfn.exec(body);
  if (!lead) return finding("soft_offline", "notice", "detail", { detail: body.trim() });
  const pfn = pfnOf(lead[1]!);
  const rest = lead[2]!.trim();
  let m = /^(page|hugepage) migration failed (-?\d+), type (.*)$/.exec(rest);
  if (m)
    return finding("soft_offline", "warning", "migration_failed", {
      pfn,
      page: m[1],
      ret: Number(m[2]),
      flags: m[3],
    });
  m = /^(page|hugepage) isolation failed, page count (-?\d+), type (.*)$/.exec(rest);
  if (m)
    return finding("soft_offline", "warning", "isolation_failed", {
      pfn,
      page: m[1],
      pageCount: Number(m[2]),
      flags: m[3],
    });
  if (rest.startsWith("thp split failed"))
    return finding("soft_offline", "warning", "thp_split_failed", { pfn });
  if (rest.startsWith("page already poisoned"))
    return finding("soft_offline", "info", "already_poisoned", { pfn });
  if (rest.startsWith("invalidated"))
    return finding("soft_offline", "info", "invalidated", { pfn });
  return finding("soft_offline", "notice", "detail", { pfn, detail: rest });
}

function parseUnpoison(body: string): KernelFinding {
  const lead = reLeadingPfn.exec(body);
  if (!lead) return finding("unpoison", "notice", "detail", { detail: body.trim() });
  const pfn = pfnOf(lead[1]!);
  const rest = lead[2]!.trim();
  if (rest.startsWith("software-unpoisoned page"))
    return finding("unpoison", "info", "unpoisoned", { pfn });
  if (rest.startsWith("disabled after HW memory failure"))
    return finding("unpoison", "notice", "refused_after_hw_failure", { pfn });
  return finding("unpoison", "notice", "refused", { pfn, detail: rest });
}

// §3.1: blk_errors[] status strings; `critical nexus` is the old name of reservation conflict.
const reBlock =
  /^(?:(blk_update_request|print_req_error): )?(operation not supported|timeout|critical space allocation|recoverable transport|critical target|reservation conflict|critical nexus|critical medium|protection|kernel resource|device resource|nonblocking retry|device offline|dm internal retry|open zones exceeded|active zones exceeded|duration limit exceeded|invalid|I\/O) error, dev (\S+), sector (\d+)(.*)$/;
const reBlockTail =
  /^(?: op 0x([0-9a-fA-F]+):\((\w+)\))?(?: flags 0x([0-9a-fA-F]+))?(?: phys_seg (\d+))?(?: prio class (\d+))?/;
const blockSeverity: Record<string, TSeverity> = {
  "critical medium": "critical",
  "critical target": "critical",
  "device offline": "critical",
  "nonblocking retry": "notice",
  "dm internal retry": "notice",
};
const reBufferIo = /^Buffer I\/O error on dev(?:ice)? (\S+), logical block (\d+)/;

function parseBlock(text: string): KernelFinding | null {
  const m = reBlock.exec(text);
  if (!m) {
    const b = reBufferIo.exec(text);
    if (!b) return null;
    return finding(
      "device_failure",
      "error",
      "buffer_io_error",
      { logicalBlock: Number(b[2]) },
      b[1]!,
    );
  }
  const status = m[2]!;
  const disk = m[3] === "?" ? null : m[3]!;
  const sector = BigInt(m[4]!);
  const tail = reBlockTail.exec(m[5] ?? "");
  const data: Record<string, unknown> = { status, sector: m[4] };
  if (m[1]) data.caller = m[1];
  if (tail?.[2]) {
    data.op = tail[2];
    data.opCode = Number.parseInt(tail[1]!, 16);
  }
  if (tail?.[3]) data.flags = Number.parseInt(tail[3], 16);
  if (tail?.[4]) data.physSeg = Number(tail[4]);
  if (tail?.[5]) data.prioClass = Number(tail[5]);
  return {
    ...finding("device_failure", blockSeverity[status] ?? "error", "io_error", data, disk),
    range: { start: sector, end: sector, unit: "sector" },
  };
}

const reNvmeTimeout =
  /^I\/O (?:tag )?(\d+) (?:\(([0-9a-fA-F]+)\) )?(?:opcode (0x[0-9a-fA-F]+) \(([^)]*)\) )?QID (\d+) timeout(?:, (aborting|reset controller|disable controller|completion polled))?(?: req_op:(\S+?)\((\d+)\) size:(\d+))?/;
const nvmeTimeoutSeverity: Record<string, TSeverity> = {
  aborting: "warning",
  "reset controller": "error",
  "disable controller": "error",
  "completion polled": "notice",
};
const reNvmeCommand =
  /^(nvme\d+(?:c\d+)?n\d+): (.+?)\((0x[0-9a-fA-F]+)\) @ LBA (\d+), (\d+) blocks, (.+?) \(sct (0x[0-9a-fA-F]+) \/ sc (0x[0-9a-fA-F]+)\)\s*(MORE )?(DNR )?/;

function parseNvmeController(ctrl: string, body: string): KernelFinding | null {
  const m = reNvmeTimeout.exec(body);
  if (m) {
    const data: Record<string, unknown> = {
      tag: Number(m[1]),
      qid: Number(m[5]),
      // Fabrics transports (rdma/tcp/fc) print the timeout without an action.
      action: m[6] ?? "timeout",
    };
    if (m[2]) data.cid = m[2];
    if (m[3]) {
      data.opcode = Number.parseInt(m[3].slice(2), 16);
      data.opName = m[4];
    }
    if (m[7]) {
      data.reqOp = m[7];
      data.size = Number(m[9]);
    }
    return finding(
      "device_failure",
      nvmeTimeoutSeverity[m[6] ?? "aborting"]!,
      "nvme_timeout",
      data,
      ctrl,
    );
  }
  let s = /^Abort status: (0x[0-9a-fA-F]+)/.exec(body);
  if (s) return finding("device_failure", "notice", "nvme_abort_status", { status: s[1] }, ctrl);
  if (body.startsWith("controller is down; will reset:")) {
    // Match the prefix only: a proposed refactor splits CSTS and PCI_STATUS (§3.2).
    const csts = /CSTS=(0x[0-9a-fA-F]+)/.exec(body)?.[1];
    const pci = /PCI_STATUS=(0x[0-9a-fA-F]+)/.exec(body)?.[1];
    return finding(
      "device_failure",
      "error",
      "nvme_controller_down",
      { csts, pciStatus: pci ?? (body.includes("read failed") ? "read failed" : undefined) },
      ctrl,
    );
  }
  if (
    body.startsWith("Does your device have a faulty power saving mode") ||
    body.startsWith('Try "nvme_core.default_ps_max_latency_us=0')
  )
    return finding("device_failure", "info", "nvme_power_saving_hint", {}, ctrl);
  s = /^(?:Disabling device after reset failure|Removing after probe failure status): (-?\d+)/.exec(
    body,
  );
  if (s)
    return finding("device_failure", "critical", "nvme_removed", { errno: Number(s[1]) }, ctrl);
  s = /^Device not ready; aborting (reset|initialisation), CSTS=(0x[0-9a-fA-F]+)/.exec(body);
  if (s)
    return finding("device_failure", "error", "nvme_not_ready", { during: s[1], csts: s[2] }, ctrl);
  if (body.startsWith("IO queues lost"))
    return finding("device_failure", "error", "nvme_io_queues_lost", {}, ctrl);
  if (body.startsWith("failed to mark controller"))
    return finding("device_failure", "error", "nvme_state_change_failed", { detail: body }, ctrl);
  if (/^ctrl state \d+ is not RESETTING/.test(body))
    return finding("device_failure", "warning", "nvme_state_change_failed", { detail: body }, ctrl);
  if (body.startsWith("frozen state error detected, reset controller"))
    return finding("device_failure", "error", "nvme_pci_error", {}, ctrl);
  if (body.startsWith("controller reset completed after pcie flr"))
    return finding("device_recovered", "notice", "nvme_flr_reset", {}, ctrl);
  return null;
}

function parseNvmeCommand(text: string): KernelFinding | null {
  const m = reNvmeCommand.exec(text);
  if (!m) return null;
  const lba = BigInt(m[4]!);
  const blocks = BigInt(m[5]!);
  return {
    ...finding(
      "device_failure",
      "error",
      "nvme_command_error",
      {
        op: m[2],
        opcode: Number.parseInt(m[3]!.slice(2), 16),
        status: m[6],
        sct: Number.parseInt(m[7]!.slice(2), 16),
        sc: Number.parseInt(m[8]!.slice(2), 16),
        more: m[9] !== undefined,
        dnr: m[10] !== undefined,
      },
      m[1]!,
    ),
    range: { start: lba, end: lba + (blocks > 0n ? blocks - 1n : 0n), unit: "lba" },
  };
}

const raid1 = "device-mapper: raid1: ";
const dirtyLog = "device-mapper: dirty region log: ";

function parseRaid1(body: string): KernelFinding | null {
  let m = /^Primary mirror \((.+)\) failed while out-of-sync: Reads may fail\./.exec(body);
  if (m) return legFinding("critical", "primary_failed_out_of_sync", m[1]!);
  if (body.startsWith("All sides of mirror have failed"))
    return finding("device_failure", "critical", "all_legs_failed");
  if (body.startsWith("Unable to read primary mirror during recovery"))
    return finding("device_failure", "error", "recovery_read_failed");
  m = /^Write error during recovery \(error = (0x[0-9a-fA-F]+)\)/.exec(body);
  if (m)
    return finding("device_failure", "error", "recovery_write_failed", {
      errorBits: Number.parseInt(m[1]!.slice(2), 16),
    });
  m = /^Read failure on mirror device (.+?)\.\s+(Trying alternative device|Failing I\/O)\./.exec(
    body,
  );
  if (m)
    return legFinding(
      m[2] === "Failing I/O" ? "error" : "warning",
      m[2] === "Failing I/O" ? "read_failed" : "read_failed_retrying",
      m[1]!,
    );
  m = /^Mirror read failed from (.+?)\. Trying alternative device\./.exec(body);
  if (m) return legFinding("warning", "read_failed_retrying", m[1]!);
  if (body.startsWith("Mirror read failed"))
    return finding("device_failure", "error", "read_failed");
  if (body.startsWith("All replicated volumes dead"))
    return finding("device_failure", "critical", "all_legs_dead");
  m = /^log (presuspend|postsuspend|resume) failed/.exec(body);
  if (m) return finding("device_failure", "error", "log_operation_failed", { operation: m[1] });
  return null;
}

function legFinding(severity: TSeverity, what: string, leg: string): KernelFinding {
  return { ...finding("device_failure", severity, what, {}, leg), leg };
}

function parseDirtyLog(body: string): KernelFinding | null {
  const m = /^(\S+): Failed to (read|write) header on dirty region log device/.exec(body);
  if (!m) return null;
  return finding(
    "device_failure",
    "critical",
    "log_device_failed",
    { operation: m[2], logDevice: true },
    m[1]!,
  );
}

/** Classifies one kernel message. Never throws, whatever the input. */
export function parseKernelMessage(text: string): KernelFinding | null {
  // Fast rejections first: most kernel lines are none of ours.
  const c = text.charCodeAt(0);
  if (c === 77 /* M */) {
    if (text.startsWith("Memory failure: ")) {
      const body = text.slice(16);
      if (body.startsWith("Memory failure on page")) return panicFinding(body);
      const inj = parseInjection(body);
      return inj ?? parseMemoryFailureBody(body);
    }
    if (text.startsWith("MCE ")) {
      // ≤ 4.x: `MCE 0x…: <same text as today>` or `MCE 0x…: <type> page recovery: <r>`.
      if (/^MCE (0x[0-9a-fA-F]+|\d+):? /.test(text)) return parseMemoryFailureBody(text.slice(4));
    }
    if (text.startsWith("MCE: Killing ")) {
      const m = reMceKill.exec(text);
      if (m)
        return finding("process_killed", "error", "mce_kill", {
          comm: m[1],
          pid: Number(m[2]),
          address: m[3],
        });
    }
    if (text.startsWith("Memory error not recovered"))
      return finding("memory_failure", "critical", "not_recovered");
    if (text.startsWith("Memory failure on page")) return panicFinding(text);
  }
  if (c === 83 /* S */) {
    if (text.startsWith("Soft offline: ")) return parseSoftOffline(text.slice(14));
    if (text.startsWith("Soft offlining pfn ")) return parseInjection(text);
  }
  if (c === 85 /* U */ && text.startsWith("Unpoison: ")) return parseUnpoison(text.slice(10));
  if (c === 73 /* I */) {
    if (text.startsWith("Injecting memory failure")) return parseInjection(text);
    if (text.startsWith("I/O error, dev ")) return parseBlock(text);
  }
  if (c === 110 /* n */) {
    if (text.startsWith("nvme nvme")) {
      const sp = text.indexOf(": ", 5);
      if (sp > 0) return parseNvmeController(text.slice(5, sp), text.slice(sp + 2));
      return null;
    }
    if (text.startsWith("nvme")) return parseNvmeCommand(text);
  }
  if (c === 100 /* d */) {
    if (text.startsWith(raid1)) return parseRaid1(text.slice(raid1.length));
    if (text.startsWith(dirtyLog)) return parseDirtyLog(text.slice(dirtyLog.length));
  }
  if (c === 88 /* X */ && text.startsWith("XFS (")) {
    const m = reXfsRemove.exec(text);
    if (m) return deviceLoss(m[1]!, "fsdax_pre_remove");
    return null;
  }
  if (c === 109 /* m */ && text.startsWith("mce: Uncorrected hardware memory error")) {
    const m = reMceUserAccess.exec(text);
    if (m) return finding("memory_failure", "error", "user_access_error", { address: m[1] });
  }
  if (c === 75 /* K */ && text.startsWith("Kernel panic - not syncing: Memory failure on page"))
    return panicFinding(text);
  // Block-layer lines, with or without a caller prefix (§3.1), and status strings that
  // do not begin with one of the letters above.
  if (text.includes(" error, dev ")) return parseBlock(text);
  if (text.startsWith("Buffer I/O error")) return parseBlock(text);
  if (text.includes("DAX active at remove")) {
    const m = reDaxRemove.exec(text);
    if (m) return deviceLoss(m[2]!, "dax_active_at_remove");
  }
  if (text.includes("adding bad range")) {
    const m = reBadRange.exec(text);
    if (m) {
      const start = BigInt(m[3]!);
      const len = BigInt(m[4]!);
      return {
        ...finding("pmem_badblocks", "warning", "bad_range_added", {}, m[2]!),
        range: { start, end: len > 0n ? start + len - 1n : start, unit: "byte" },
      };
    }
  }
  if (text.includes("badblocks: ")) {
    const m = reBadblocksFailed.exec(text);
    if (m)
      return finding("pmem_badblocks", "error", "badblocks_table_full", {
        sector: Number.parseInt(m[1]!, 16),
      });
  }
  return null;
}

function panicFinding(text: string): KernelFinding {
  const m = rePanic.exec(text);
  return finding("memory_failure", "critical", "panic", {
    pfn: m ? Number.parseInt(m[1]!, 16) : undefined,
  });
}

/** Injection lines (§1.1): tagged simulated, never reported as real failures. */
function parseInjection(text: string): KernelFinding | null {
  let m = reInjectAt.exec(text);
  if (m) {
    const pfn = pfnOf(m[1]!);
    return {
      ...finding("memory_failure", "info", "injected", { pfn }),
      simulated: true,
      injectedPfn: pfn,
    };
  }
  m = reInjectFor.exec(text);
  if (m) {
    const pfn = pfnOf(m[1]!);
    return {
      ...finding("memory_failure", "info", "injected", { pfn, address: m[2] }),
      simulated: true,
      injectedPfn: pfn,
    };
  }
  m = reSoftOfflining.exec(text);
  if (m) {
    const pfn = pfnOf(m[1]!);
    return {
      ...finding("soft_offline", "info", "injected", { pfn, address: m[2] }),
      simulated: true,
      injectedPfn: pfn,
    };
  }
  return null;
}

/** Whole-device loss: offset 0, length U64_MAX (§1.8) — one range, never pages. */
function deviceLoss(device: string, what: string): KernelFinding {
  return {
    ...finding("memory_device_loss", "critical", what, {}, device),
    range: { start: 0n, end: u64Max, unit: "byte" },
  };
}
