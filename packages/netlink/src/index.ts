import {
  closeSync,
  constants,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

// AF_NETLINK datagram sockets through a small Node-API addon (native/netlink.c). The
// addon only opens, binds, joins groups, sends, receives and polls; framing and protocol
// live in TypeScript (@mirrorplane/clusterlog connector.ts, CLUSTERLOG-SPEC.md §1.1).
//
// `loadNetlink()` never throws: without the addon (not built, not Linux) it returns the
// reason, so a caller can log one clear line and carry on without the kernel bridge.

export const AF_NETLINK = 16;
export const NETLINK_CONNECTOR = 11;
/** Kernel port id: the destination of every reply to the kernel. */
export const KERNEL_PORT_ID = 0;
export const CAP_NET_ADMIN = 12;
export const CAP_SYS_ADMIN = 21;

/**
 * Whether this process has capability `bit` in its effective set (/proc/self/status).
 * dm-log-userspace drops replies from senders without CAP_SYS_ADMIN (CLUSTERLOG-SPEC.md
 * §1.1), and since Linux 6.6 the connector lets anyone *join* its groups, so joining
 * succeeding proves nothing: the agent checks this before serving the kernel.
 */
export function hasCapability(bit: number, statusText?: string): boolean {
  let text = statusText;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/status", "utf8");
    } catch {
      return false;
    }
  }
  const match = /^CapEff:\s*([0-9a-fA-F]+)/m.exec(text);
  return match ? ((BigInt(`0x${match[1]}`) >> BigInt(bit)) & 1n) === 1n : false;
}

interface NativeNetlink {
  open(protocol: number, bindGroups: number): number;
  portId(fd: number): number;
  join(fd: number, group: number): void;
  leave(fd: number, group: number): void;
  memberships(fd: number): number[];
  send(fd: number, bytes: Uint8Array, portId: number, groups: number): number;
  recv(fd: number, buffer: Uint8Array): number;
  poll(fd: number, onReadable: (status: number) => void): unknown;
  unpoll(poller: unknown): void;
  close(fd: number): void;
  flock(fd: number, operation: number): number;
}

/** An error from a system call, with the negative errno (`-EPERM` = -1). */
export class NetlinkError extends Error {
  constructor(
    message: string,
    readonly errno: number,
    readonly syscall: string,
  ) {
    super(message);
    this.name = "NetlinkError";
  }
}

const ADDON_FILE = "build/Release/mirrorplane_netlink.node";

/**
 * Where the addon may be: MIRRORPLANE_NETLINK_ADDON, this package (when run from source),
 * and the package beside the agent's bundle (`packages/agent/dist/cli.mjs` →
 * `packages/netlink/…`), which esbuild inlines this module into.
 */
function candidates(): string[] {
  const here = import.meta.url;
  const list = [
    process.env.MIRRORPLANE_NETLINK_ADDON,
    fileURLToPath(new URL(`../${ADDON_FILE}`, here)),
    fileURLToPath(new URL(`../../netlink/${ADDON_FILE}`, here)),
  ];
  return list.filter((p): p is string => typeof p === "string" && p.length > 0);
}

export type NetlinkLoad =
  | { readonly ok: true; readonly path: string; readonly native: NativeNetlink }
  | { readonly ok: false; readonly reason: string };

let cached: NetlinkLoad | null = null;

export function loadNetlink(): NetlinkLoad {
  if (cached) return cached;
  if (process.platform !== "linux") {
    cached = { ok: false, reason: `AF_NETLINK needs Linux (this is ${process.platform})` };
    return cached;
  }
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const path of candidates()) {
    if (!existsSync(path)) {
      tried.push(path);
      continue;
    }
    try {
      cached = { ok: true, path, native: require(path) as NativeNetlink };
      return cached;
    } catch (error) {
      cached = { ok: false, reason: `cannot load ${path}: ${(error as Error).message}` };
      return cached;
    }
  }
  cached = {
    ok: false,
    reason: `netlink addon not built (looked for ${tried.join(", ")}; run \`npm run build:addon -w @mirrorplane/netlink\`)`,
  };
  return cached;
}

function wrap(error: unknown): NetlinkError {
  const e = error as { message?: string; errno?: number; syscall?: string };
  return new NetlinkError(e.message ?? String(error), e.errno ?? -5, e.syscall ?? "netlink");
}

export interface NetlinkSocketOptions {
  /** Netlink protocol (family), e.g. NETLINK_CONNECTOR. */
  readonly protocol: number;
  /** `nl_groups` bitmask given to bind (0: join groups with `join` instead). */
  readonly bindGroups?: number;
  /** Multicast groups to join with NETLINK_ADD_MEMBERSHIP (group numbers). */
  readonly groups?: readonly number[];
  /** Receive buffer size; a longer datagram is reported as truncated. */
  readonly receiveBufferSize?: number;
}

/** A datagram and whether it was longer than the receive buffer. */
export interface Datagram {
  readonly bytes: Uint8Array;
  readonly truncated: boolean;
}

/**
 * One open AF_NETLINK socket. Non-blocking: `send` returns at once (a negative errno when
 * the kernel refuses), datagrams arrive through `onDatagram` once `start` was called.
 */
export class NetlinkSocket {
  readonly #native: NativeNetlink;
  readonly #buffer: Uint8Array;
  #fd: number;
  #poller: unknown = null;
  #onDatagram: ((datagram: Datagram) => void) | null = null;

  private constructor(native: NativeNetlink, fd: number, bufferSize: number) {
    this.#native = native;
    this.#fd = fd;
    this.#buffer = new Uint8Array(bufferSize);
  }

  /** Opens, binds and joins; throws NetlinkError (e.g. EPERM without CAP_NET_ADMIN). */
  static open(options: NetlinkSocketOptions): NetlinkSocket {
    const loaded = loadNetlink();
    if (!loaded.ok) throw new NetlinkError(loaded.reason, -38 /* ENOSYS */, "load");
    const native = loaded.native;
    let fd: number;
    try {
      fd = native.open(options.protocol, options.bindGroups ?? 0);
    } catch (error) {
      throw wrap(error);
    }
    const socket = new NetlinkSocket(native, fd, options.receiveBufferSize ?? 65536);
    try {
      for (const group of options.groups ?? []) native.join(fd, group);
    } catch (error) {
      socket.close();
      throw wrap(error);
    }
    return socket;
  }

  get fd(): number {
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** The port id (nl_pid) the kernel assigned: replies to the kernel carry it. */
  get portId(): number {
    return this.#native.portId(this.#fd);
  }

  /** Groups this socket is a member of, as the kernel reports them (NETLINK_LIST_MEMBERSHIPS). */
  memberships(): number[] {
    try {
      return this.#native.memberships(this.#fd);
    } catch (error) {
      throw wrap(error);
    }
  }

  join(group: number): void {
    try {
      this.#native.join(this.#fd, group);
    } catch (error) {
      throw wrap(error);
    }
  }

  leave(group: number): void {
    try {
      this.#native.leave(this.#fd, group);
    } catch (error) {
      throw wrap(error);
    }
  }

  /**
   * Send one datagram to `portId` (0 = the kernel) and/or the groups in the `groups`
   * bitmask. Returns the bytes sent or a negative errno; never throws.
   */
  send(bytes: Uint8Array, portId = KERNEL_PORT_ID, groups = 0): number {
    if (this.#fd < 0) return -9; // EBADF
    return this.#native.send(this.#fd, bytes, portId, groups);
  }

  /** One waiting datagram (a copy), or null when none is waiting. Throws on other errors. */
  receive(): Datagram | null {
    const got = this.#native.recv(this.#fd, this.#buffer);
    if (got === -11) return null; // EAGAIN
    if (got < 0) throw new NetlinkError(`recv failed (errno ${-got})`, got, "recv");
    const length = Math.min(got, this.#buffer.length);
    return { bytes: this.#buffer.slice(0, length), truncated: got > this.#buffer.length };
  }

  /**
   * Deliver every datagram to `onDatagram` as it arrives (libuv poll on the fd). Errors
   * while reading go to `onError`; ENOBUFS (the socket's queue overflowed, messages lost)
   * is reported there too and reading goes on.
   *
   * `options.onDrained` runs whenever the socket has been read empty after datagrams
   * arrived (a transport sends its replies there, in the same callback). With
   * `options.spin` > 0 the socket is then tried that many more times before the callback
   * returns to the event loop: a request that follows its predecessor's reply within that
   * window (the kernel's mirror worker asks IN_SYNC twice in a row for a new region) is
   * read without the process sleeping and being woken again. Each try is one non-blocking
   * recv(); a caller bounds the time by the count.
   */
  start(
    onDatagram: (datagram: Datagram) => void,
    onError: (error: NetlinkError) => void,
    options: { readonly onDrained?: () => void; readonly spin?: number } = {},
  ): void {
    if (this.#poller || this.#fd < 0) return;
    this.#onDatagram = onDatagram;
    const onDrained = options.onDrained;
    const spin = Math.max(0, Math.floor(options.spin ?? 0));
    this.#poller = this.#native.poll(this.#fd, (status) => {
      if (status < 0) {
        onError(new NetlinkError(`poll failed (${status})`, status, "poll"));
        return;
      }
      // Drain everything waiting: level-triggered poll would call again anyway, this
      // just saves the round trips. At most 1,024 reads per callback, spins included, so
      // a flood never holds the event loop for long.
      let delivered = false;
      let tries = 0;
      try {
        for (let i = 0; i < 1024 && this.#fd >= 0; i++) {
          let datagram: Datagram | null;
          try {
            datagram = this.receive();
          } catch (error) {
            onError(error as NetlinkError);
            if ((error as NetlinkError).errno === -105 /* ENOBUFS */) continue;
            return;
          }
          if (!datagram) {
            if (delivered) {
              delivered = false;
              onDrained?.();
            }
            if (tries++ >= spin) return;
            continue;
          }
          tries = 0;
          delivered = true;
          this.#onDatagram?.(datagram);
        }
      } finally {
        if (delivered) onDrained?.();
      }
    });
  }

  /** Stop delivering (the fd stays open). */
  stop(): void {
    if (this.#poller) this.#native.unpoll(this.#poller);
    this.#poller = null;
    this.#onDatagram = null;
  }

  close(): void {
    if (this.#fd < 0) return;
    this.stop();
    const fd = this.#fd;
    this.#fd = -1;
    try {
      this.#native.close(fd);
    } catch {
      // already closed: nothing left to release
    }
  }
}

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

/** A held host-wide lock: `release` (or this process's death) lets the next holder in. */
export interface HostLock {
  readonly path: string;
  release(): void;
}

export type HostLockResult =
  | { readonly ok: true; readonly lock: HostLock }
  /** Another process holds it; `holder` is what it wrote there (its pid), if readable. */
  | { readonly ok: false; readonly held: true; readonly holder: string | null }
  | { readonly ok: false; readonly held: false; readonly reason: string };

/**
 * Takes the kernel's exclusive advisory lock (flock LOCK_EX|LOCK_NB) on `path`, creating
 * it (and its directory) if needed, without waiting. The lock belongs to the open file:
 * the kernel drops it when the holder closes it or dies, SIGKILL included, so a stale lock
 * cannot outlive its process (unlike a PID file). The holder's pid is written into the
 * file only to name it in the refusal; it is never read to decide anything. The file is
 * never removed: a new file under the old name would be a second, unrelated lock.
 */
export function acquireHostLock(path: string): HostLockResult {
  const loaded = loadNetlink();
  if (!loaded.ok) return { ok: false, held: false, reason: loaded.reason };
  let fd: number;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    // libuv opens with O_CLOEXEC: a child (dmsetup) never inherits the lock.
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (error) {
    return { ok: false, held: false, reason: `cannot open ${path}: ${(error as Error).message}` };
  }
  const rc = loaded.native.flock(fd, LOCK_EX | LOCK_NB);
  if (rc === -EWOULDBLOCK) {
    let holder: string | null = null;
    try {
      holder = readFileSync(path, "utf8").trim() || null;
    } catch {
      // unreadable: the refusal just names no pid
    }
    closeSync(fd);
    return { ok: false, held: true, holder };
  }
  if (rc < 0) {
    closeSync(fd);
    return { ok: false, held: false, reason: `flock ${path} failed (errno ${-rc})` };
  }
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch {
    // the pid is only for the message: the lock is what counts
  }
  let open = true;
  return {
    ok: true,
    lock: {
      path,
      release: () => {
        if (!open) return;
        open = false;
        closeSync(fd);
      },
    },
  };
}
