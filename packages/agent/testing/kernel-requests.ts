import {
  DM_ULOG_CLEAR_REGION,
  DM_ULOG_CTR,
  DM_ULOG_FLUSH,
  DM_ULOG_GET_RESYNC_WORK,
  DM_ULOG_GET_SYNC_COUNT,
  DM_ULOG_IN_SYNC,
  DM_ULOG_IS_CLEAN,
  DM_ULOG_IS_REMOTE_RECOVERING,
  DM_ULOG_MARK_REGION,
  DM_ULOG_POSTSUSPEND,
  DM_ULOG_PRESUSPEND,
  DM_ULOG_RESUME,
  DM_ULOG_SET_REGION_SYNC,
  type DmUlogRequest,
  decodePair64,
  decodeU64,
  encodeAscii,
  encodeSetRegionSync,
  encodeU64,
  encodeU64List,
  makeRequest,
  type Reply,
} from "@mirrorplane/clusterlog";

// What a node's kernel sends (dm-log-userspace, spec §1–§2), for tests, the simulation
// and the benchmark: request builders with the kernel's global sequence counter, and
// decoders for the answers they wait on.

export class KernelRequests {
  seq = 1;
  constructor(
    readonly uuid: string,
    readonly luid: bigint,
  ) {}

  #make(type: number, data?: Uint8Array): DmUlogRequest {
    return makeRequest({ node: 0, type, uuid: this.uuid, luid: this.luid, seq: this.seq++, data });
  }

  ctr(args: string): DmUlogRequest {
    return this.#make(DM_ULOG_CTR, encodeAscii(args));
  }
  /** The CTR dm-log-userspace re-sends after -ESRCH: the same string, NUL included (P4). */
  reCtr(args: string): DmUlogRequest {
    return this.#make(DM_ULOG_CTR, encodeAscii(args, true));
  }
  presuspend(): DmUlogRequest {
    return this.#make(DM_ULOG_PRESUSPEND);
  }
  inSync(region: number): DmUlogRequest {
    return this.#make(DM_ULOG_IN_SYNC, encodeU64(region));
  }
  getSyncCount(): DmUlogRequest {
    return this.#make(DM_ULOG_GET_SYNC_COUNT);
  }
  resume(): DmUlogRequest {
    return this.#make(DM_ULOG_RESUME);
  }
  postsuspend(): DmUlogRequest {
    return this.#make(DM_ULOG_POSTSUSPEND);
  }
  mark(regions: readonly number[]): DmUlogRequest {
    return this.#make(DM_ULOG_MARK_REGION, encodeU64List(regions));
  }
  clear(regions: readonly number[]): DmUlogRequest {
    return this.#make(DM_ULOG_CLEAR_REGION, encodeU64List(regions));
  }
  /** FLUSH, optionally carrying marks (integrated flush, P7). */
  flush(marks: readonly number[] = []): DmUlogRequest {
    return this.#make(DM_ULOG_FLUSH, encodeU64List(marks));
  }
  isClean(region: number): DmUlogRequest {
    return this.#make(DM_ULOG_IS_CLEAN, encodeU64(region));
  }
  isRemoteRecovering(region: number): DmUlogRequest {
    return this.#make(DM_ULOG_IS_REMOTE_RECOVERING, encodeU64(region));
  }
  getResyncWork(): DmUlogRequest {
    return this.#make(DM_ULOG_GET_RESYNC_WORK);
  }
  setRegionSync(region: number, inSync: boolean): DmUlogRequest {
    return this.#make(DM_ULOG_SET_REGION_SYNC, encodeSetRegionSync(region, inSync));
  }
}

/** CTR string of a clustered-disk log on `device` with `regions` regions of 1024 sectors. */
export function diskLogArgs(regions: number, device = "7:0", sync: "nosync" | "sync" | "" = "") {
  return `${regions * 1024} clustered-disk ${device} 1024${sync ? ` ${sync}` : ""}`;
}

/** CTR string of a clustered-core log. */
export function coreLogArgs(regions: number, sync: "nosync" | "sync" | "" = "") {
  return `${regions * 1024} clustered-core 1024${sync ? ` ${sync}` : ""}`;
}

/** IS_CLEAN / IN_SYNC answer (0/1), or null when the request failed. */
export function boolAnswer(reply: Reply): number | null {
  return reply.error === 0 && reply.payload.length === 8 ? decodeU64(reply.payload) : null;
}

/** IS_REMOTE_RECOVERING answer: whether the region is (to be) recovered; null on failure. */
export function recoveringAnswer(reply: Reply): boolean | null {
  if (reply.error !== 0 || reply.payload.length !== 16) return null;
  return decodePair64(reply.payload).first === 1;
}

/** The in_sync hint of an IS_REMOTE_RECOVERING answer (spec §2.17); null on failure. */
export function hintAnswer(reply: Reply): number | null {
  if (reply.error !== 0 || reply.payload.length !== 16) return null;
  return decodePair64(reply.payload).second;
}

/** GET_RESYNC_WORK answer: the region handed out, or null for none / failure. */
export function resyncRegion(reply: Reply): number | null {
  if (reply.error !== 0 || reply.payload.length !== 16) return null;
  const { first, second } = decodePair64(reply.payload);
  return first === 1 ? second : null;
}
