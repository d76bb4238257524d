import { describe, expect, it } from "vitest";
import * as T from "./request-types.ts";

describe("request types (spec §1.3)", () => {
  it("masks the upper 24 bits ([REC] §1.2)", () => {
    expect(T.maskRequestType(0x1234_5600 | T.DM_ULOG_FLUSH)).toBe(T.DM_ULOG_FLUSH);
    expect(T.maskRequestType(0x1000 | T.DM_ULOG_MARK_REGION)).toBe(T.DM_ULOG_MARK_REGION);
  });

  it("knows 1..17 and nothing else; numbers match the uapi, not the 2006 precursor", () => {
    expect(T.isRequestType(0)).toBe(false);
    expect(T.isRequestType(18)).toBe(false);
    expect(T.DM_ULOG_IS_REMOTE_RECOVERING).toBe(17);
    expect(T.requestTypeName(12)).toBe("GET_RESYNC_WORK");
    expect(T.requestTypeName(99)).toBe("UNKNOWN(99)");
  });

  it("payload size rules of §2", () => {
    expect(T.checkRequestPayloadSize(T.DM_ULOG_CTR, 0)).toBe(-22);
    expect(T.checkRequestPayloadSize(T.DM_ULOG_IN_SYNC, 4)).toBe(-22);
    expect(T.checkRequestPayloadSize(T.DM_ULOG_SET_REGION_SYNC, 16)).toBe(0);
    expect(T.checkRequestPayloadSize(T.DM_ULOG_MARK_REGION, 12)).toBe(-22);
    expect(T.checkRequestPayloadSize(T.DM_ULOG_FLUSH, 12)).toBe(-22);
    expect(T.checkRequestPayloadSize(T.DM_ULOG_FLUSH, 0)).toBe(0);
    expect(T.checkRequestPayloadSize(T.DM_ULOG_RESUME, 0)).toBe(0);
  });

  it("scenario 13 (table): fixed reply sizes", () => {
    for (const t of [2, 3, 4, 5, 9, 10, 11, 13] as const) expect(T.fixedReplySize(t)).toBe(0);
    for (const t of [6, 7, 8, 14] as const) expect(T.fixedReplySize(t)).toBe(8);
    for (const t of [12, 17] as const) expect(T.fixedReplySize(t)).toBe(16);
  });

  it("routes like cmirrord (§4.2)", () => {
    expect(T.isClusteredRequest(T.DM_ULOG_IN_SYNC)).toBe(false);
    expect(T.isClusteredRequest(T.DM_ULOG_IS_CLEAN)).toBe(true);
    expect(T.isClusteredRequest(T.DM_ULOG_POSTSUSPEND)).toBe(true);
  });
});
