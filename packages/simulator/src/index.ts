// What tests, benchmarks and the kernel lab use from the simulator. The private nats-server
// launcher is its own entry (`@mirrorplane/simulator/nats-server`): it needs nothing else.
export {
  type SimKernelHost,
  SimMirror,
  type SimMirrorHooks,
  type SimMirrorOptions,
  type SimMirrorStats,
} from "./kernel/dm-raid1.ts";
export { SocketUlogLink, type UlogLink } from "./kernel/ulog-socket-link.ts";
export {
  KERNEL_TIMINGS,
  type KernelTimings,
  type LogIdentity,
  type UlogAnswer,
  UlogClient,
  type UlogClientStats,
} from "./kernel/ulog-transfer.ts";
export {
  type MirrorSpec,
  SimCluster,
  type SimClusterOptions,
  type Violation,
  WriteLoad,
} from "./simulated-cluster.ts";
export { SimMirrorInventory } from "./simulated-inventory.ts";
