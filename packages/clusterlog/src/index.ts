// The pure cluster-log core (CLUSTERLOG-SPEC.md). No I/O, clocks or timers live here:
// everything the state machine needs from the world is passed in, so replicas fed the
// same operations produce the same state and replies. See README.md for the module map.

export { Bitmap, BitmapCopy, COPY_PIECE_BYTES, popcount32 } from "./bitmap.ts";
export {
  type BlockDevice,
  type IoResult,
  performLogIo,
  writeLogImage,
} from "./block-device.ts";
export { ClusterLog } from "./cluster-log.ts";
export type { ClusterLogOptions, PendingIo } from "./cluster-state.ts";
export { DEFAULT_MAX_LOGS, DEFAULT_MAX_REGIONS } from "./cluster-state.ts";
export {
  type CodecErrorCode,
  type DecodeOptions,
  DM_ULOG_HEADER_SIZE,
  DM_UUID_LEN,
  type DmUlogRequest,
  decodeAscii,
  decodePair64,
  decodeRegionList,
  decodeRequest,
  decodeS64,
  decodeSetRegionSync,
  decodeU64,
  encodeAscii,
  encodeBool64,
  encodePair64,
  encodeReply,
  encodeRequest,
  encodeSetRegionSync,
  encodeU64,
  encodeU64List,
  MAX_UUID_CHARS,
  type RequestHeader,
  ULOG_HEADER,
  writeReply,
} from "./codec.ts";
export {
  CN_IDX_DM,
  CN_MSG_LEN,
  CN_VAL_DM_USERSPACE_LOG,
  type CnMsg,
  CONNECTOR_MAX_MSG_SIZE,
  type ConnectorBody,
  type ConnectorErrorCode,
  type ConnectorMessage,
  connectorBody,
  decodeConnectorMessage,
  encodeConnectorAck,
  encodeConnectorReply,
  encodeConnectorRequest,
  NLMSG_DONE,
  NLMSG_HDRLEN,
  writeConnectorHeader,
} from "./connector.ts";
export {
  type CtrParseResult,
  type LogConfig,
  type LogType,
  MAX_REGION_COUNT,
  type ParsedCtr,
  parseCtr,
  type SyncMode,
} from "./ctr-args.ts";
export {
  type DiskHeader,
  decodeLogHeader,
  encodeLogImage,
  initialCleanBits,
  LOG_OFFSET,
  logImageSize,
  MIRROR_DISK_VERSION,
  MIRROR_MAGIC,
} from "./disk-format.ts";
export * as errno from "./errno.ts";
export {
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  FRAME_PREFIX_SIZE,
  type FrameErrorCode,
  FrameSplitter,
  type FrameSplitterOptions,
} from "./frame-splitter.ts";
export { needsRearm } from "./hint-guard.ts";
export { type DeviceResolver, LocalDriver, makeRequest, type RequestSpec } from "./local-driver.ts";
export type { LogGroup, LogInstance, PendingReply, ResyncState } from "./log-state.ts";
export { NO_NODE, NO_REGION, serverOf } from "./log-state.ts";
export { MemoryBlockDevice } from "./memory-block-device.ts";
export type {
  ApplyResult,
  IoRequest,
  NodeId,
  Operation,
  Reply,
  ResyncOperation,
  ResyncOutcome,
} from "./operations.ts";
export * from "./request-types.ts";
export type { CoreError, Result } from "./result.ts";
export {
  applyResync,
  countInSync,
  resyncDone,
} from "./resync.ts";
export type { SnapshotError, SnapshotJob, SnapshotJobOptions } from "./snapshot.ts";
export { statusInfo, statusTable } from "./status.ts";
