import { describe, expect, it } from "vitest";
import { encodeU64, encodeU64List } from "./codec.ts";
import * as T from "./request-types.ts";
import { A, Harness } from "./test-support.ts";

// `esrchForUnknownLog`: after an agent restart the kernel still has its log, the new
// replica does not. -ESRCH sends the kernel through its re-construct path (spec §1.5)
// instead of failing the request.

describe("esrchForUnknownLog", () => {
  it("wrapped requests for a never-constructed log get -ESRCH; lifecycle ones do not", () => {
    const h = new Harness({ esrchForUnknownLog: true });
    expect(h.send(A, T.DM_ULOG_IN_SYNC, encodeU64(1)).error).toBe(-3);
    expect(h.send(A, T.DM_ULOG_FLUSH, encodeU64List([1])).error).toBe(-3);
    expect(h.send(A, T.DM_ULOG_IS_REMOTE_RECOVERING, encodeU64(1)).error).toBe(-3);
    expect(h.send(A, T.DM_ULOG_GET_SYNC_COUNT).error).toBe(-3);
    expect(h.send(A, T.DM_ULOG_RESUME).error).toBe(-22);
    expect(h.send(A, T.DM_ULOG_POSTSUSPEND).error).not.toBe(-3);
    // Constructed but not resumed: a real error, not "server lost the log".
    h.ctr(A, "4096 clustered-core 1024");
    expect(h.send(A, T.DM_ULOG_IN_SYNC, encodeU64(1)).error).toBe(-22);
  });

  it("off by default (cmirrord's answers, scenario 5)", () => {
    const h = new Harness();
    expect(h.send(A, T.DM_ULOG_IS_CLEAN, encodeU64(1)).error).toBe(-2);
    expect(h.send(A, T.DM_ULOG_IN_SYNC, encodeU64(1)).error).toBe(-22);
  });
});
