// Shared helpers for the package's tests (not exported from index.ts): a harness that
// speaks the kernel's side of the protocol to a LocalDriver.
import type { ClusterLogOptions } from "./cluster-state.ts";
import {
  decodeAscii,
  decodePair64,
  decodeU64,
  encodeAscii,
  encodeSetRegionSync,
  encodeU64,
  encodeU64List,
} from "./codec.ts";
import { LocalDriver } from "./local-driver.ts";
import { MemoryBlockDevice } from "./memory-block-device.ts";
import type { NodeId, Reply } from "./operations.ts";
import * as T from "./request-types.ts";

export const U = "LVM-test";
export const L1 = 0x1111n;
export const L2 = 0x2222n;
export const A = 1;
export const B = 2;
export const C = 3;

export class Harness {
  readonly devices = new Map<string, MemoryBlockDevice>();
  readonly driver: LocalDriver;
  seq = 1;

  constructor(options: ClusterLogOptions = {}) {
    this.driver = new LocalDriver((_node, dev) => this.devices.get(dev) ?? null, options);
    this.devices.set("7:0", new MemoryBlockDevice());
  }

  get log() {
    return this.driver.log;
  }

  device(name = "7:0"): MemoryBlockDevice {
    return this.devices.get(name)!;
  }

  send(
    node: NodeId,
    type: number,
    data: Uint8Array = new Uint8Array(0),
    opts: { uuid?: string; luid?: bigint; version?: number; seq?: number } = {},
  ): Reply {
    const seq = opts.seq ?? this.seq++;
    const reply = this.driver.request({
      node,
      type,
      uuid: opts.uuid ?? U,
      luid: opts.luid ?? L1,
      seq,
      data,
      ...(opts.version === undefined ? {} : { version: opts.version }),
    });
    if (!reply) throw new Error(`no reply to ${T.requestTypeName(type)} seq ${seq}`);
    return reply;
  }

  ctr(node: NodeId, args: string, opts: { luid?: bigint; version?: number; nul?: boolean } = {}) {
    return this.send(node, T.DM_ULOG_CTR, encodeAscii(args, opts.nul ?? false), opts);
  }

  /** CTR + RESUME, expecting both to succeed. */
  up(node: NodeId, args: string, luid = L1): void {
    const c = this.ctr(node, args, { luid });
    if (c.error !== 0) throw new Error(`CTR failed ${c.error}`);
    const r = this.resume(node, luid);
    if (r.error !== 0) throw new Error(`RESUME failed ${r.error}`);
  }

  resume(node: NodeId, luid = L1) {
    return this.send(node, T.DM_ULOG_RESUME, undefined, { luid });
  }
  presuspend(node: NodeId, luid = L1) {
    return this.send(node, T.DM_ULOG_PRESUSPEND, undefined, { luid });
  }
  postsuspend(node: NodeId, luid = L1) {
    return this.send(node, T.DM_ULOG_POSTSUSPEND, undefined, { luid });
  }
  /** `dmsetup suspend` + `dmsetup resume`: what an agent does to re-arm its kernel's hint. */
  suspendResume(node: NodeId, luid = L1): void {
    this.presuspend(node, luid);
    this.postsuspend(node, luid);
    this.resume(node, luid);
  }
  dtr(node: NodeId, luid = L1) {
    return this.send(node, T.DM_ULOG_DTR, undefined, { luid });
  }
  mark(node: NodeId, regions: number[]) {
    return this.send(node, T.DM_ULOG_MARK_REGION, encodeU64List(regions));
  }
  clear(node: NodeId, regions: number[]) {
    return this.send(node, T.DM_ULOG_CLEAR_REGION, encodeU64List(regions));
  }
  flush(node: NodeId, regions: number[] = []) {
    return this.send(node, T.DM_ULOG_FLUSH, encodeU64List(regions));
  }
  setRegionSync(node: NodeId, region: number, inSync: boolean) {
    return this.send(node, T.DM_ULOG_SET_REGION_SYNC, encodeSetRegionSync(region, inSync));
  }

  /** Value of an 8-byte answer, or the error if it failed. */
  value(reply: Reply): number {
    if (reply.error !== 0) return reply.error;
    expectSize(reply, 8);
    return decodeU64(reply.payload);
  }

  isClean(node: NodeId, region: number): number {
    return this.value(this.send(node, T.DM_ULOG_IS_CLEAN, encodeU64(region)));
  }
  inSync(node: NodeId, region: number, luid = L1): number {
    return this.value(this.send(node, T.DM_ULOG_IN_SYNC, encodeU64(region), { luid }));
  }
  syncCount(node: NodeId, luid = L1): number {
    return this.value(this.send(node, T.DM_ULOG_GET_SYNC_COUNT, undefined, { luid }));
  }
  regionSize(node: NodeId, luid = L1): number {
    return this.value(this.send(node, T.DM_ULOG_GET_REGION_SIZE, undefined, { luid }));
  }

  /** GET_RESYNC_WORK → [i, r]. */
  resyncWork(node: NodeId): [number, number] {
    const reply = this.send(node, T.DM_ULOG_GET_RESYNC_WORK);
    if (reply.error !== 0) throw new Error(`GET_RESYNC_WORK failed ${reply.error}`);
    expectSize(reply, 16);
    const { first, second } = decodePair64(reply.payload);
    return [first, second];
  }

  /** IS_REMOTE_RECOVERING → [is_recovering, hint]. */
  remoteRecovering(node: NodeId, region: number): [number, number] {
    const reply = this.send(node, T.DM_ULOG_IS_REMOTE_RECOVERING, encodeU64(region));
    if (reply.error !== 0) throw new Error(`IS_REMOTE_RECOVERING failed ${reply.error}`);
    expectSize(reply, 16);
    const { first, second } = decodePair64(reply.payload);
    return [first, second];
  }

  statusInfo(node: NodeId): string | number {
    const reply = this.send(node, T.DM_ULOG_STATUS_INFO);
    return reply.error === 0 ? decodeAscii(reply.payload) : reply.error;
  }
  statusTable(node: NodeId, luid = L1): string | number {
    const reply = this.send(node, T.DM_ULOG_STATUS_TABLE, undefined, { luid });
    return reply.error === 0 ? decodeAscii(reply.payload) : reply.error;
  }

  /** Clean bit `region` of the on-disk bitmap (spec §5). */
  diskBit(region: number, device = "7:0"): number {
    return (this.device(device).data[1024 + (region >> 3)]! >> (region & 7)) & 1;
  }
}

function expectSize(reply: Reply, size: number): void {
  if (reply.payload.length !== size) {
    throw new Error(`reply payload ${reply.payload.length} bytes, expected ${size}`);
  }
}
