import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseKernelMessage, u64Max } from "./messages.ts";

const p = parseKernelMessage;

describe("memory-failure lines across kernel generations (KERNEL-SOURCES §1.1)", () => {
  it("parses the pr_fmt outcome line with every result", () => {
    for (const [result, severity] of [
      ["Ignored", "critical"],
      ["Failed", "error"],
      ["Delayed", "warning"],
      ["Recovered", "warning"],
    ] as const) {
      const f = p(`Memory failure: 0x10e802: recovery action for dirty LRU page: ${result}`);
      expect(f).toMatchObject({
        kind: "memory_failure",
        what: "action_result",
        severity,
        page: { pfn: 0x10e802, pageType: "dirty LRU page", result },
      });
    }
  });

  it("keeps page-type names it has never seen, new and removed ones alike", () => {
    for (const type of [
      "get hwpoison page",
      "kernel slab page",
      "different compound page after locking",
      "huge page already hardware poisoned",
      "non-pmd-sized huge page",
      "free buddy page (2nd try)",
      "unsplit thp",
      "dax page",
      "non struct page pfn",
    ]) {
      expect(p(`Memory failure: 0x1: recovery action for ${type}: Recovered`)?.page?.pageType).toBe(
        type,
      );
    }
  });

  it("normalises the 2025 rename of 'already poisoned' and reports it as a repeat", () => {
    for (const type of ["already poisoned", "already poisoned page"]) {
      const f = p(`Memory failure: 0x2000: recovery action for ${type}: Failed`);
      expect(f?.page?.pageType).toBe("already poisoned page");
      expect(f?.severity).toBe("info");
    }
  });

  it("reads pfn 0, which %#lx prints without 0x", () => {
    expect(p("Memory failure: 0: recovery action for free buddy page: Recovered")?.page?.pfn).toBe(
      0,
    );
  });

  it("parses the pre-pr_fmt MCE shapes (4.x and ≤ 3.x)", () => {
    expect(p("MCE 0x3f2a1: recovery action for clean LRU page: Recovered")?.page).toEqual({
      pfn: 0x3f2a1,
      pageType: "clean LRU page",
      result: "Recovered",
    });
    expect(p("MCE 0x3f2a1: dirty LRU page recovery: Delayed")?.page).toEqual({
      pfn: 0x3f2a1,
      pageType: "dirty LRU page",
      result: "Delayed",
    });
    expect(p("MCE 0x10: free buddy page recovery: Recovered")?.page?.pageType).toBe(
      "free buddy page",
    );
    expect(p("MCE 0x10: huge recovery: Failed")?.page?.pageType).toBe("huge page");
  });

  it("parses kills and signals, new and old wording", () => {
    expect(
      p("Memory failure: 0x10e802: Sending SIGBUS to fio:4242 due to hardware memory corruption"),
    ).toMatchObject({ kind: "process_killed", what: "sigbus", data: { comm: "fio", pid: 4242 } });
    expect(
      p("Memory failure: 0x10e802: Killing qemu-kvm:77 due to hardware memory corruption"),
    ).toMatchObject({ kind: "process_killed", what: "kill", data: { comm: "qemu-kvm", pid: 77 } });
    expect(p("MCE 0x10e802: Killing dd:9 due to hardware memory corruption")).toMatchObject({
      kind: "process_killed",
      data: { pid: 9 },
    });
    expect(
      p(
        "Memory failure: 0x5: forcibly killing a.out:12 because of failure to unmap corrupted page",
      ),
    ).toMatchObject({ kind: "process_killed", what: "forced_kill" });
    expect(
      p("Memory failure: 0x5: Cannot send advisory machine check signal to a.out:12"),
    ).toMatchObject({ kind: "process_killed", severity: "warning" });
    expect(p("Memory failure: Error sending signal to a.out:12: -3")).toMatchObject({
      what: "signal_failed",
      data: { errno: -3 },
    });
    expect(
      p("MCE: Killing postgres:311 due to hardware memory corruption fault at 7f3a2c001000"),
    ).toMatchObject({ kind: "process_killed", what: "mce_kill", data: { pid: 311 } });
  });

  it("reports a queue overflow as lost events", () => {
    expect(p("Memory failure: buffer overflow when queuing memory failure at 0x3f000")).toEqual(
      expect.objectContaining({ kind: "memory_failure_lost", severity: "critical" }),
    );
  });

  it("parses the other Memory failure lines", () => {
    const cases: Array<[string, string, string]> = [
      ["Memory failure: Out of memory while machine check handling", "oom_in_handler", "critical"],
      [
        "Memory failure: Unable to find user space address 3f000 in fio",
        "address_not_found",
        "warning",
      ],
      ["Memory failure: 0x3f000: Failed to punch page: -5", "detail", "error"],
      ["Memory failure: 0x3f000: failed to release buffers", "detail", "error"],
      ["Memory failure: 0x3f000: Failed to invalidate", "detail", "error"],
      [
        "Memory failure: 0x3f000: dirty LRU page still referenced by 2 users",
        "still_referenced",
        "error",
      ],
      ["Memory failure: 0x3f000: Unknown page state", "detail", "error"],
      ["Memory failure: 0x3f000 cannot catch tail", "detail", "error"],
      ["Memory failure: 0x3f000: unhandlable page.", "detail", "error"],
      ["Memory failure: 0x3f000: keeping poisoned page in swap cache", "detail", "notice"],
      [
        "Memory failure: 0x3f000: corrupted page was clean: dropped without side effects",
        "detail",
        "notice",
      ],
      [
        "Memory failure: 0x3f000: could not lock mapping for mapped hugetlb folio",
        "detail",
        "error",
      ],
      ["Memory failure: 0x3f000: failed to unmap page (folio mapcount=3)", "detail", "error"],
      ["Memory failure: 0x3f000: memory outside kernel control", "detail", "error"],
      ["Memory failure: 0x3f000: already hardware poisoned", "already_poisoned", "info"],
      ["Memory failure: pfn=0x3f000, invalid nid=-1", "invalid_nid", "error"],
      ["Memory failure: mf_result=7 is not properly handled", "unhandled_result", "error"],
      ["Kernel panic - not syncing: Memory failure on page 3f000", "panic", "critical"],
      ["Memory error not recovered", "not_recovered", "critical"],
      [
        "mce: Uncorrected hardware memory error in user-access at 3f000123",
        "user_access_error",
        "error",
      ],
    ];
    for (const [line, what, severity] of cases) {
      expect(p(line), line).toMatchObject({ what, severity });
    }
    expect(p("Memory failure: 0x3f000 cannot catch tail")?.data.pfn).toBe(0x3f000);
  });

  it("parses Soft offline and Unpoison lines", () => {
    const cases: Array<[string, string, string]> = [
      ["Soft offline: 0x2a: thp split failed", "soft_offline", "thp_split_failed"],
      ["Soft offline: 0x2a: page already poisoned", "soft_offline", "already_poisoned"],
      ["Soft offline: 0x2a: invalidated", "soft_offline", "invalidated"],
      [
        "Soft offline: 0x2a: page migration failed -16, type 0x17ffffc0000020(lru)",
        "soft_offline",
        "migration_failed",
      ],
      [
        "Soft offline: 0x2a: hugepage isolation failed, page count 3, type 0x57ffffc0010000(head)",
        "soft_offline",
        "isolation_failed",
      ],
      ["Soft offline: disabled by /proc/sys/vm/enable_soft_offline", "soft_offline", "disabled"],
      [
        "Soft offline: disabled for HugeTLB pages by /proc/sys/vm/enable_soft_offline",
        "soft_offline",
        "disabled",
      ],
      ["Unpoison: 0x2a: software-unpoisoned page", "unpoison", "unpoisoned"],
      ["Unpoison: 0x2a: disabled after HW memory failure", "unpoison", "refused_after_hw_failure"],
      ["Unpoison: 0x2a: huge zero page is not supported", "unpoison", "refused"],
      ["Unpoison: 0x2a: page was already unpoisoned", "unpoison", "refused"],
      ["Unpoison: 0x2a: someone grabs the hwpoison page", "unpoison", "refused"],
      ["Unpoison: 0x2a: the hwpoison page has non-NULL mapping", "unpoison", "refused"],
    ];
    for (const [line, kind, what] of cases) expect(p(line), line).toMatchObject({ kind, what });
    expect(p("Soft offline: 0x2a: page migration failed -16, type 0x1(lru)")?.data).toMatchObject({
      pfn: 0x2a,
      ret: -16,
    });
  });

  it("tags injection lines as simulated and names the pfn", () => {
    expect(p("Injecting memory failure at pfn 0x3f000")).toMatchObject({
      simulated: true,
      injectedPfn: 0x3f000,
    });
    expect(
      p("Injecting memory failure for pfn 0x3f001 at process virtual address 0x7f0000001000"),
    ).toMatchObject({ simulated: true, injectedPfn: 0x3f001, kind: "memory_failure" });
    expect(p("Soft offlining pfn 0x3f002 at process virtual address 0x7f0000002000")).toMatchObject(
      { simulated: true, kind: "soft_offline" },
    );
    expect(p("Memory failure: Injecting memory failure at pfn 0x9")?.injectedPfn).toBe(9);
  });

  it("reports a whole-device removal as one u64 range", () => {
    const f = p("XFS (pmem0): device is about to be removed!");
    expect(f).toMatchObject({ kind: "memory_device_loss", device: "pmem0", severity: "critical" });
    expect(f?.range).toEqual({ start: 0n, end: u64Max, unit: "byte" });
    expect(
      p("nd_pmem namespace0.0: DAX active at remove, trigger mass memory failure")?.device,
    ).toBe("namespace0.0");
  });

  it("parses libnvdimm bad-range discovery", () => {
    const f = p("nd_region region0: ars_complete: adding bad range (0x240000000, 0x1000)");
    expect(f).toMatchObject({ kind: "pmem_badblocks", device: "region0" });
    expect(f?.range).toEqual({ start: 0x240000000n, end: 0x240000fffn, unit: "byte" });
  });
});

describe("block-layer errors (§3.1)", () => {
  it("parses today's line with op, flags, phys_seg and prio", () => {
    const f = p(
      "I/O error, dev nvme1n1, sector 2161435200 op 0x1:(WRITE) flags 0x800 phys_seg 2 prio class 0",
    );
    expect(f).toMatchObject({
      kind: "device_failure",
      what: "io_error",
      device: "nvme1n1",
      data: { status: "I/O", op: "WRITE", opCode: 1, flags: 0x800, physSeg: 2, prioClass: 0 },
    });
    expect(f?.range).toEqual({ start: 2161435200n, end: 2161435200n, unit: "sector" });
  });

  it("parses the old blk_update_request:/print_req_error: prefixes and short shapes", () => {
    expect(p("blk_update_request: I/O error, dev sda, sector 12345")).toMatchObject({
      device: "sda",
      data: { caller: "blk_update_request", status: "I/O" },
    });
    expect(
      p(
        "blk_update_request: critical medium error, dev sdb, sector 77 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
      ),
    ).toMatchObject({ severity: "critical", data: { status: "critical medium", op: "READ" } });
    expect(p("print_req_error: critical nexus error, dev sdc, sector 5")?.data.status).toBe(
      "critical nexus",
    );
  });

  it("knows every blk_errors status string and a missing disk", () => {
    for (const status of [
      "operation not supported",
      "timeout",
      "critical space allocation",
      "recoverable transport",
      "critical target",
      "reservation conflict",
      "protection",
      "kernel resource",
      "device resource",
      "nonblocking retry",
      "device offline",
      "dm internal retry",
      "open zones exceeded",
      "active zones exceeded",
      "duration limit exceeded",
      "invalid",
    ])
      expect(
        p(`${status} error, dev sdb, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0`)
          ?.data.status,
      ).toBe(status);
    expect(
      p("I/O error, dev ?, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0")?.device,
    ).toBeNull();
  });
});

describe("NVMe (§3.2)", () => {
  it("parses timeouts in the current and the ≤ 6.0 shapes", () => {
    expect(
      p(
        "nvme nvme0: I/O tag 12 (a00c) opcode 0x2 (Read) QID 3 timeout, aborting req_op:READ(0) size:4096",
      ),
    ).toMatchObject({
      what: "nvme_timeout",
      device: "nvme0",
      severity: "warning",
      data: { tag: 12, cid: "a00c", qid: 3, opcode: 2, opName: "Read", reqOp: "READ", size: 4096 },
    });
    expect(
      p("nvme nvme0: I/O tag 12 (a00c) opcode 0x1 (Write) QID 3 timeout, reset controller"),
    ).toMatchObject({
      severity: "error",
      data: { action: "reset controller" },
    });
    expect(p("nvme nvme0: I/O tag 3 (1003) QID 0 timeout, disable controller")?.data.action).toBe(
      "disable controller",
    );
    expect(p("nvme nvme0: I/O tag 3 (1003) QID 1 timeout, completion polled")?.severity).toBe(
      "notice",
    );
    expect(p("nvme nvme1: I/O 17 QID 2 timeout, aborting")).toMatchObject({
      device: "nvme1",
      data: { tag: 17, qid: 2, action: "aborting" },
    });
    expect(p("nvme nvme1: I/O 17 QID 2 timeout, reset controller")?.data.action).toBe(
      "reset controller",
    );
    expect(p("nvme nvme1: I/O 17 QID 2 timeout, completion polled")?.data.action).toBe(
      "completion polled",
    );
    expect(p("nvme nvme2: I/O tag 9 (0009) opcode 0x2 (Read) QID 4 timeout")).toMatchObject({
      device: "nvme2",
      data: { tag: 9, qid: 4, action: "timeout", opName: "Read" },
    });
  });

  it("parses controller down, removal and the rest", () => {
    expect(
      p("nvme nvme0: controller is down; will reset: CSTS=0xffffffff, PCI_STATUS=0xffff"),
    ).toMatchObject({
      what: "nvme_controller_down",
      data: { csts: "0xffffffff", pciStatus: "0xffff" },
    });
    expect(
      p("nvme nvme0: controller is down; will reset: CSTS=0x3, PCI_STATUS read failed (134)")?.data
        .pciStatus,
    ).toBe("read failed");
    expect(p("nvme nvme0: controller is down; will reset: CSTS=0x3")?.data.csts).toBe("0x3");
    expect(p("nvme nvme0: Disabling device after reset failure: -19")).toMatchObject({
      what: "nvme_removed",
      severity: "critical",
    });
    expect(p("nvme nvme0: Removing after probe failure status: -19")?.what).toBe("nvme_removed");
    expect(p("nvme nvme0: Abort status: 0x0")?.what).toBe("nvme_abort_status");
    expect(
      p("nvme nvme0: Does your device have a faulty power saving mode enabled?")?.severity,
    ).toBe("info");
    expect(
      p(
        'nvme nvme0: Try "nvme_core.default_ps_max_latency_us=0 pcie_aspm=off pcie_port_pm=off" and report a bug',
      )?.severity,
    ).toBe("info");
    expect(p("nvme nvme0: IO queues lost")?.what).toBe("nvme_io_queues_lost");
    expect(p("nvme nvme0: failed to mark controller CONNECTING")?.what).toBe(
      "nvme_state_change_failed",
    );
    expect(p("nvme nvme0: failed to mark controller live state")?.what).toBe(
      "nvme_state_change_failed",
    );
    expect(p("nvme nvme0: ctrl state 5 is not RESETTING")?.what).toBe("nvme_state_change_failed");
    expect(p("nvme nvme0: Device not ready; aborting reset, CSTS=0x1")?.data.during).toBe("reset");
    expect(p("nvme nvme0: Device not ready; aborting initialisation, CSTS=0x0")?.data.during).toBe(
      "initialisation",
    );
    expect(p("nvme nvme0: frozen state error detected, reset controller")?.what).toBe(
      "nvme_pci_error",
    );
    expect(p("nvme nvme0: controller reset completed after pcie flr")?.kind).toBe(
      "device_recovered",
    );
    expect(p("nvme nvme0: pci function 0000:01:00.0")).toBeNull();
  });

  it("parses per-command errors with an LBA range", () => {
    const f = p(
      "nvme0n1: Read(0x2) @ LBA 4096, 8 blocks, Unrecovered Read Error (sct 0x2 / sc 0x81) DNR ",
    );
    expect(f).toMatchObject({
      device: "nvme0n1",
      what: "nvme_command_error",
      data: {
        op: "Read",
        status: "Unrecovered Read Error",
        sct: 2,
        sc: 0x81,
        dnr: true,
        more: false,
      },
    });
    expect(f?.range).toEqual({ start: 4096n, end: 4103n, unit: "lba" });
  });
});

describe("dm-raid1 (§3.3)", () => {
  it("parses leg, read, resync and log-device failures", () => {
    const cases: Array<[string, string, string | null]> = [
      [
        "device-mapper: raid1: Primary mirror (253:2) failed while out-of-sync: Reads may fail.",
        "primary_failed_out_of_sync",
        "253:2",
      ],
      ["device-mapper: raid1: All sides of mirror have failed.", "all_legs_failed", null],
      [
        "device-mapper: raid1: Unable to read primary mirror during recovery",
        "recovery_read_failed",
        null,
      ],
      [
        "device-mapper: raid1: Write error during recovery (error = 0x1)",
        "recovery_write_failed",
        null,
      ],
      [
        "device-mapper: raid1: Read failure on mirror device 253:3.  Trying alternative device.",
        "read_failed_retrying",
        "253:3",
      ],
      [
        "device-mapper: raid1: Read failure on mirror device 253:3.  Failing I/O.",
        "read_failed",
        "253:3",
      ],
      ["device-mapper: raid1: Mirror read failed.", "read_failed", null],
      [
        "device-mapper: raid1: Mirror read failed from 253:4. Trying alternative device.",
        "read_failed_retrying",
        "253:4",
      ],
      ["device-mapper: raid1: All replicated volumes dead, failing I/O", "all_legs_dead", null],
      ["device-mapper: raid1: log presuspend failed", "log_operation_failed", null],
      ["device-mapper: raid1: log postsuspend failed", "log_operation_failed", null],
      ["device-mapper: raid1: log resume failed", "log_operation_failed", null],
      [
        "device-mapper: dirty region log: 253:5: Failed to read header on dirty region log device",
        "log_device_failed",
        "253:5",
      ],
      [
        "device-mapper: dirty region log: 253:5: Failed to write header on dirty region log device",
        "log_device_failed",
        "253:5",
      ],
    ];
    for (const [line, what, device] of cases) {
      const f = p(line);
      expect(f, line).toMatchObject({ kind: "device_failure", what, device });
    }
    expect(
      p("device-mapper: raid1: Primary mirror (253:2) failed while out-of-sync: Reads may fail.")
        ?.leg,
    ).toBe("253:2");
  });
});

describe("hostile input", () => {
  it("ignores ordinary kernel lines", () => {
    for (const line of [
      "",
      "Linux version 6.18.44",
      "EXT4-fs (sda1): mounted filesystem",
      "usb 1-1: new high-speed USB device",
    ])
      expect(p(line)).toBeNull();
  });

  it("never throws, whatever the text", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc
            .constantFrom(
              "Memory failure: ",
              "nvme nvme0: ",
              "Soft offline: ",
              "MCE ",
              "device-mapper: raid1: ",
              "I/O error, dev ",
            )
            .chain((prefix) => fc.string({ maxLength: 200 }).map((s) => prefix + s)),
        ),
        (line) => {
          p(line);
        },
      ),
      { numRuns: 2000 },
    );
    expect(() =>
      p(`Memory failure: 0x${"f".repeat(100_000)}: recovery action for x: Recovered`),
    ).not.toThrow();
  });
});
