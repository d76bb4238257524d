import { EventEmitter } from "node:events";
import { openSync, read, readdirSync, readFileSync, write, writeFileSync } from "node:fs";
import { serveGuestMux } from "../mux.ts";

// The guest half of the TCP mux (mux.ts): listens on the guest's 127.0.0.1 at the ports
// named in argv[2] (comma-separated) and carries each connection over the virtio-serial
// port `lab.mux`. No udev in the guest, so the port is found by its name in sysfs.

function findPort(name: string): string {
  for (const vport of readdirSync("/sys/class/virtio-ports")) {
    const n = readFileSync(`/sys/class/virtio-ports/${vport}/name`, "utf8").trim();
    if (n === name) return `/dev/${vport}`;
  }
  throw new Error(`no virtio-serial port named ${name}`);
}

/** The character device as a duplex: one fd (a virtio port opens once), reads in a loop. */
function openPort(path: string) {
  const fd = openSync(path, "r+");
  const emitter = new EventEmitter();
  const buffer = Buffer.alloc(256 * 1024);
  const loop = () =>
    read(fd, buffer, 0, buffer.length, null, (error, n) => {
      if (error) throw error;
      if (n > 0) {
        emitter.emit("data", Buffer.from(buffer.subarray(0, n)));
        loop();
      } else setTimeout(loop, 10); // the host side is not connected (yet)
    });
  loop();
  let queue: Buffer[] = [];
  let writing = false;
  const pump = () => {
    if (writing || queue.length === 0) return;
    writing = true;
    const chunk = queue.length === 1 ? queue[0]! : Buffer.concat(queue);
    queue = [];
    let at = 0;
    const step = () =>
      write(fd, chunk, at, chunk.length - at, null, (error, n) => {
        if (error) throw error;
        at += n;
        if (at < chunk.length) return step();
        writing = false;
        pump();
      });
    step();
  };
  return {
    write(bytes: Uint8Array): boolean {
      queue.push(Buffer.from(bytes));
      pump();
      return true;
    },
    on(event: "data", listener: (chunk: Buffer) => void) {
      emitter.on(event, listener);
    },
  };
}

const ports = (process.argv[2] ?? "").split(",").filter(Boolean).map(Number);
await serveGuestMux(openPort(findPort("lab.mux")), ports);
writeFileSync("/run/lab/mux.ready", `${ports.join(",")}\n`);
