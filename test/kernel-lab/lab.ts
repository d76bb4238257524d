import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect, type Socket } from "node:net";
import { homedir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { createInterface } from "node:readline";
import { serveHostMux } from "./mux.ts";

// The kernel lab (docs/KERNEL-LAB.md): Debian's kernel under QEMU (TCG: these machines
// have no usable KVM) with the real dm-raid1 and dm-log-userspace, the guest running
// inside this machine's own root over 9p so the checkout, node, dmsetup and fio are all
// there. This module prepares what a boot needs (Debian packages, the kernel, the
// initramfs, the guest programs) and boots VMs; tests drive it (`*.lab.test.ts`), and so
// does `npm run lab` by hand.

export const repoRoot = resolve(import.meta.dirname, "../..");
const labDir = import.meta.dirname;

/** Debian packages the lab needs, and a command each provides (to check without dpkg). */
export const LAB_PACKAGES: readonly { pkg: string; path: string }[] = [
  { pkg: "qemu-system-x86", path: "/usr/bin/qemu-system-x86_64" },
  { pkg: "busybox-static", path: "/bin/busybox" },
  { pkg: "kmod", path: "/usr/bin/kmod" },
  { pkg: "dmsetup", path: "/usr/sbin/dmsetup" },
  { pkg: "fio", path: "/usr/bin/fio" },
  { pkg: "socat", path: "/usr/bin/socat" },
  { pkg: "corosync", path: "/usr/sbin/corosync" },
];

/** The 9p chain the initramfs loads before it can see the host's root (KERNEL-LAB.md). */
const INITRAMFS_MODULES = [
  "drivers/virtio/virtio_ring",
  "drivers/virtio/virtio",
  "drivers/virtio/virtio_pci_legacy_dev",
  "drivers/virtio/virtio_pci_modern_dev",
  "drivers/virtio/virtio_pci",
  "net/9p/9pnet",
  "net/9p/9pnet_virtio",
  "fs/netfs/netfs",
  "fs/fscache/fscache",
  "fs/9p/9p",
];

export interface LabKernel {
  /** `6.1.0-57-amd64` */
  readonly release: string;
  /** The extracted package: `boot/vmlinuz-<release>`, `lib/modules/<release>`. */
  readonly root: string;
  readonly vmlinuz: string;
  readonly initrd: string;
}

export interface Lab {
  readonly kernel: LabKernel;
  /** Where guest programs are bundled (inside the checkout, so node_modules resolve). */
  readonly bundleDir: string;
  /** Per-run directories (console logs, results) live under here. */
  readonly runsDir: string;
}

function cacheDir(): string {
  return (
    process.env.MIRRORPLANE_LAB_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "mirrorplane-kernel-lab")
  );
}

function log(line: string): void {
  process.stdout.write(`[lab] ${line}\n`);
}

/**
 * The Debian packages the lab needs: missing ones are installed when we are root (as on
 * CI), and anything still missing is a clear failure, never a skip.
 */
export function ensurePackages(): void {
  let missing = LAB_PACKAGES.filter((p) => !existsSync(p.path));
  if (missing.length > 0 && process.getuid?.() === 0) {
    const names = missing.map((p) => p.pkg);
    log(`installing ${names.join(" ")} from Debian`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    let r = spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...names], {
      stdio: "inherit",
      env,
    });
    if (r.status !== 0) {
      spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
      r = spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...names], {
        stdio: "inherit",
        env,
      });
    }
    missing = LAB_PACKAGES.filter((p) => !existsSync(p.path));
  }
  if (missing.length > 0) {
    throw new Error(
      `kernel lab: missing Debian packages ${missing.map((p) => p.pkg).join(", ")} ` +
        `(apt-get install ${missing.map((p) => p.pkg).join(" ")}; .ci/run installs them)`,
    );
  }
  const busybox = spawnSync("ldd", ["/bin/busybox"], { encoding: "utf8" });
  if (busybox.status === 0 && !/not a dynamic/.test(`${busybox.stdout}${busybox.stderr}`)) {
    throw new Error("kernel lab: /bin/busybox is not static (install busybox-static)");
  }
}

/** The kernel package `linux-image-amd64` depends on now, or null when apt cannot say. */
function currentKernelPackage(): string | null {
  const r = spawnSync("apt-cache", ["depends", "linux-image-amd64"], { encoding: "utf8" });
  const match = /Depends:\s*(linux-image-\d[^\s]*)/.exec(r.stdout ?? "");
  return match ? match[1]! : null;
}

/**
 * Debian's kernel, downloaded and extracted once into the cache (KERNEL-LAB.md: the
 * package `linux-image-amd64` depends on), its modules indexed with depmod.
 */
export function ensureKernel(): Omit<LabKernel, "initrd"> {
  const cache = cacheDir();
  mkdirSync(cache, { recursive: true });
  let pkg = currentKernelPackage();
  if (!pkg || !existsSync(join(cache, pkg, ".complete"))) {
    const cached = readdirSync(cache).filter(
      (d) => d.startsWith("linux-image-") && existsSync(join(cache, d, ".complete")),
    );
    if (!pkg && cached.length > 0) pkg = cached.sort().at(-1)!;
  }
  if (!pkg)
    throw new Error("kernel lab: apt-cache cannot name the kernel package (apt-get update?)");
  const root = join(cache, pkg);
  const release = pkg.replace(/^linux-image-/, "");
  if (!existsSync(join(root, ".complete"))) {
    log(`downloading ${pkg} from Debian`);
    const download = join(cache, "download");
    rmSync(download, { recursive: true, force: true });
    mkdirSync(download, { recursive: true });
    let r = spawnSync("apt-get", ["download", pkg], { cwd: download, stdio: "inherit" });
    if (r.status !== 0) {
      spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
      r = spawnSync("apt-get", ["download", pkg], { cwd: download, stdio: "inherit" });
    }
    const deb = readdirSync(download).find((f) => f.endsWith(".deb"));
    if (r.status !== 0 || !deb) throw new Error(`kernel lab: apt-get download ${pkg} failed`);
    rmSync(root, { recursive: true, force: true });
    execFileSync("dpkg-deb", ["-x", join(download, deb), root]);
    execFileSync("depmod", ["-b", root, release]);
    rmSync(download, { recursive: true, force: true });
    writeFileSync(join(root, ".complete"), `${deb}\n`);
  }
  const vmlinuz = join(root, "boot", `vmlinuz-${release}`);
  if (!existsSync(vmlinuz)) throw new Error(`kernel lab: ${vmlinuz} is missing`);
  return { release, root, vmlinuz };
}

/** The initramfs (busybox, the 9p modules, init.sh), rebuilt when any of them changes. */
export function ensureInitramfs(kernel: Omit<LabKernel, "initrd">): string {
  const init = readFileSync(join(labDir, "init.sh"));
  const key = createHash("sha256")
    .update(init)
    .update(kernel.release)
    .update(readFileSync("/bin/busybox"))
    .digest("hex")
    .slice(0, 16);
  const out = join(cacheDir(), `initrd-${kernel.release}-${key}.gz`);
  if (existsSync(out)) return out;
  log("building the initramfs");
  const tree = join(cacheDir(), "initrd-tree");
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(join(tree, "bin"), { recursive: true });
  mkdirSync(join(tree, "lib", "modules"), { recursive: true });
  copyFileSync("/bin/busybox", join(tree, "bin", "busybox"));
  const modules = join(kernel.root, "lib", "modules", kernel.release, "kernel");
  for (const module of INITRAMFS_MODULES) {
    const from = join(modules, `${module}.ko`);
    if (!existsSync(from)) throw new Error(`kernel lab: ${from} is missing`);
    copyFileSync(from, join(tree, "lib", "modules", `${module.split("/").at(-1)}.ko`));
  }
  writeFileSync(join(tree, "init"), init);
  chmodSync(join(tree, "init"), 0o755);
  const tmp = `${out}.tmp`;
  execFileSync("sh", [
    "-c",
    `cd "${tree}" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "${tmp}"`,
  ]);
  execFileSync("mv", [tmp, out]);
  rmSync(tree, { recursive: true, force: true });
  return out;
}

/**
 * The agent's production bundle (what a storage host runs) and the guest programs, built
 * from this checkout: the agent through its own build, the guest programs with esbuild.
 */
export async function buildGuestPrograms(bundleDir: string): Promise<void> {
  const agent = spawnSync(
    "npx",
    ["turbo", "run", "build", "--filter=@mirrorplane/agent", "--output-logs=errors-only"],
    {
      cwd: repoRoot,
      stdio: "inherit",
    },
  );
  if (agent.status !== 0) throw new Error("kernel lab: building the agent failed");
  const addon = join(repoRoot, "packages/netlink/build/Release/mirrorplane_netlink.node");
  if (!existsSync(addon)) {
    const r = spawnSync("npm", ["run", "build:addon", "-w", "@mirrorplane/netlink"], {
      cwd: repoRoot,
      stdio: "inherit",
    });
    if (r.status !== 0) throw new Error("kernel lab: building the netlink addon failed");
  }
  const { build } = await import("esbuild");
  const guest = join(labDir, "guest");
  const entryPoints = readdirSync(guest)
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && f !== "lib.ts")
    .map((f) => join(guest, f));
  await build({
    entryPoints,
    outdir: bundleDir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  });
}

let prepared: Promise<Lab> | null = null;

/** Everything a boot needs, prepared once per process. */
export function prepareLab(): Promise<Lab> {
  prepared ??= (async () => {
    ensurePackages();
    const k = ensureKernel();
    const kernel = { ...k, initrd: ensureInitramfs(k) };
    const base = join(repoRoot, ".mirrorplane", "kernel-lab");
    const bundleDir = join(base, "bundle");
    await buildGuestPrograms(bundleDir);
    const runsDir = join(base, "runs");
    mkdirSync(runsDir, { recursive: true });
    return { kernel, bundleDir, runsDir };
  })();
  return prepared;
}

export interface VmDisk {
  /** A file on this machine: shared by every VM it is given to (share-rw, cache=none). */
  readonly file: string;
  /** The guest finds it by this serial (`/sys/block/vdX/serial`). */
  readonly serial: string;
}

export interface VmOptions {
  /** Hostname and log prefix. */
  readonly name: string;
  /** The guest's script (bash, run as root in the host's root, cwd the checkout). */
  readonly script: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly smp?: number;
  readonly memoryMiB?: number;
  readonly disks?: readonly VmDisk[];
  /** Guest 127.0.0.1 port → this machine's 127.0.0.1 port, carried over virtio-serial. */
  readonly forward?: ReadonlyMap<number, number>;
  /** Kill the VM after this long (a hung guest is a failure, not a stuck CI run). */
  readonly timeoutMs?: number;
  /** Console lines (without the prefix); every line is also printed prefixed. */
  readonly onLine?: (line: string) => void;
  readonly quiet?: boolean;
}

export interface VmExit {
  /** The guest script's status (`LAB-EXIT n`), or null when the VM died before saying it. */
  readonly status: number | null;
  /** QEMU's own exit. */
  readonly qemuCode: number | null;
  readonly qemuSignal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly seconds: number;
}

/** One QEMU guest. */
export class Vm {
  readonly name: string;
  /** This boot's directory: `console.log`, the script, whatever the guest writes. */
  readonly runDir: string;
  readonly exited: Promise<VmExit>;
  readonly #qemu: ChildProcess;
  #muxes: { close(): void }[] = [];
  #lines: string[] = [];
  #waiters: { match: RegExp; resolve: (line: string) => void }[] = [];

  constructor(lab: Lab, options: VmOptions) {
    this.name = options.name;
    this.runDir = join(
      lab.runsDir,
      `${new Date().toISOString().replace(/[:.]/g, "-")}-${options.name}-${process.pid}`,
    );
    mkdirSync(this.runDir, { recursive: true });
    const env = {
      LAB_NAME: options.name,
      LAB_RUN_DIR: this.runDir,
      LAB_BUNDLE: lab.bundleDir,
      LAB_MODULES: lab.kernel.root,
      LAB_FORWARD: [...(options.forward?.keys() ?? [])].join(","),
      ...options.env,
    };
    const exports = Object.entries(env)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
      .join("\n");
    const script = join(this.runDir, "run.sh");
    writeFileSync(
      script,
      `set -euo pipefail\n${exports}\ncd ${shellQuote(repoRoot)}\nexport PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n` +
        `source ${shellQuote(join(labDir, "guest", "prelude.sh"))}\n${options.script}\n`,
    );
    const muxSocket = join(this.runDir, "mux.sock");
    const args = [
      "-accel",
      "tcg,thread=multi",
      "-cpu",
      "max",
      "-smp",
      String(options.smp ?? 2),
      "-m",
      String(options.memoryMiB ?? 3072),
      "-nographic",
      "-no-reboot",
      // No network device at all: the only way out of a guest is the virtio-serial mux.
      "-nic",
      "none",
      // qboot instead of SeaBIOS: 14 s instead of 23 s from start to power-off.
      "-bios",
      "/usr/share/qemu/qboot.rom",
      "-kernel",
      lab.kernel.vmlinuz,
      "-initrd",
      lab.kernel.initrd,
      "-append",
      `console=ttyS0 quiet loglevel=3 panic=-1 lab.name=${options.name} lab.run=${script}`,
      "-virtfs",
      "local,path=/,mount_tag=hostroot,security_model=passthrough,id=hr,multidevs=remap",
      "-device",
      "virtio-serial-pci",
      "-chardev",
      `socket,id=mux,path=${muxSocket},server=on,wait=off`,
      "-device",
      "virtserialport,chardev=mux,name=lab.mux",
    ];
    (options.disks ?? []).forEach((disk, i) => {
      args.push(
        "-drive",
        `file=${disk.file},if=none,id=disk${i},format=raw,cache=none,aio=threads,file.locking=off`,
        "-device",
        `virtio-blk-pci,drive=disk${i},serial=${disk.serial},share-rw=on`,
      );
    });
    const started = Date.now();
    this.#qemu = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
    const consoleLog = join(this.runDir, "console.log");
    let status: number | null = null;
    const onLine = (raw: string) => {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the serial console's escapes
      const line = raw.replace(/\r$/, "").replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, "");
      writeFileSync(consoleLog, `${line}\n`, { flag: "a" });
      // The kernel's power-off line may land on the same console line before its newline.
      const exit = /^LAB-EXIT (\d+)(?!\d)/.exec(line);
      if (exit) status = Number(exit[1]);
      if (!options.quiet) process.stdout.write(`[${options.name}] ${line}\n`);
      options.onLine?.(line);
      this.#lines.push(line);
      if (this.#lines.length > 5000) this.#lines.splice(0, 1000);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match.test(line)) return true;
        w.resolve(line);
        return false;
      });
    };
    createInterface({ input: this.#qemu.stdout! }).on("line", onLine);
    createInterface({ input: this.#qemu.stderr! }).on("line", (l) => onLine(`qemu: ${l}`));
    let timedOut = false;
    const timer = setTimeout(
      () => {
        timedOut = true;
        onLine(
          `lab: ${options.name} still running after ${(options.timeoutMs ?? 0) / 1000} s: killed`,
        );
        this.#qemu.kill("SIGKILL");
      },
      options.timeoutMs ?? 20 * 60_000,
    );
    this.exited = new Promise((resolveExit) => {
      this.#qemu.on("exit", (code, signal) => {
        clearTimeout(timer);
        for (const mux of this.#muxes) mux.close();
        resolveExit({
          status,
          qemuCode: code,
          qemuSignal: signal,
          timedOut,
          seconds: (Date.now() - started) / 1000,
        });
      });
    });
    if (options.forward && options.forward.size > 0) this.#attachMux(muxSocket, options.forward);
  }

  /** The host half of the mux, once QEMU has created its socket. */
  #attachMux(path: string, forward: ReadonlyMap<number, number>): void {
    let tries = 0;
    const attempt = () => {
      const socket: Socket = connect(path);
      socket.once("connect", () => {
        this.#muxes.push(
          serveHostMux(socket, forward, (l) => process.stdout.write(`[${this.name}] ${l}\n`)),
        );
      });
      socket.once("error", () => {
        socket.destroy();
        if (++tries < 200 && this.#qemu.exitCode === null) setTimeout(attempt, 50);
      });
    };
    attempt();
  }

  /** Resolves with the first console line (from now on) matching `match`. */
  waitForLine(match: RegExp, timeoutMs = 10 * 60_000): Promise<string> {
    return new Promise((resolveLine, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`${this.name}: no console line matching ${match} in ${timeoutMs / 1000} s`),
          ),
        timeoutMs,
      );
      this.#waiters.push({
        match,
        resolve: (line) => {
          clearTimeout(timer);
          resolveLine(line);
        },
      });
    });
  }

  /** A whole-host crash: QEMU itself is killed. */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.#qemu.kill(signal);
  }

  /** A file the guest wrote into its run directory (`$LAB_RUN_DIR`), parsed as JSON. */
  result<T = unknown>(file = "result.json"): T {
    return JSON.parse(readFileSync(join(this.runDir, file), "utf8")) as T;
  }

  /** The run directory relative to the checkout, for messages. */
  get where(): string {
    return relative(repoRoot, this.runDir);
  }
}

/** Boot one VM, run `script`, and return how it ended. */
export async function runVm(options: VmOptions): Promise<{ vm: Vm; exit: VmExit }> {
  const lab = await prepareLab();
  const vm = new Vm(lab, options);
  const exit = await vm.exited;
  return { vm, exit };
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A sparse or filled file for a shared leg disk. */
export function makeDiskFile(path: string, sizeMiB: number): void {
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  execFileSync("truncate", ["-s", `${sizeMiB}M`, path]);
}
