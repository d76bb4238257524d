import { createHash, timingSafeEqual } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import type { Socket } from "node:net";

// Authentication of the cluster-log server's TCP listener (issue 15). The server runs as
// root and a CTR names a block device it then writes, so the listener is as powerful as
// the root-only Unix socket: it refuses to start without a credential, and refuses every
// connection that does not present it.
//
// The token preamble: before any `dm_ulog_request`, the client sends one frame on the
// same length-prefixed framing (a 32-bit little-endian length `L`, then `L` bytes):
//
//     "MPAUTH1\0" (8 bytes) | token (L - 8 bytes, 16..1024)
//
// and the server answers one frame `"MPAUTH1\0" | s32 status` (0, or -EACCES before it
// closes). A kernel request can never be mistaken for it: its frame is at least 160 bytes
// and starts with a luid, and the preamble is only accepted as the very first frame.
// Tokens are compared as SHA-256 digests with `timingSafeEqual` (equal lengths, no early
// exit). With mutual TLS (`node:tls`, requestCert + rejectUnauthorized) the handshake
// authenticates the client; a token, when also configured, is still required.

export const AUTH_MAGIC = Buffer.from("MPAUTH1\0", "latin1");
export const MIN_TOKEN_LENGTH = 16;
export const MAX_TOKEN_LENGTH = 1024;
/** A connection that has not authenticated by then is closed. */
export const AUTH_TIMEOUT_MS = 5_000;
const EACCES = 13;

/** The preamble a client sends first. */
export function authPreamble(token: string | Uint8Array): Buffer {
  const bytes = typeof token === "string" ? Buffer.from(token, "utf8") : Buffer.from(token);
  const frame = Buffer.alloc(4 + AUTH_MAGIC.length + bytes.length);
  frame.writeUInt32LE(AUTH_MAGIC.length + bytes.length, 0);
  AUTH_MAGIC.copy(frame, 4);
  bytes.copy(frame, 4 + AUTH_MAGIC.length);
  return frame;
}

function authReply(status: number): Buffer {
  const frame = Buffer.alloc(4 + AUTH_MAGIC.length + 4);
  frame.writeUInt32LE(AUTH_MAGIC.length + 4, 0);
  AUTH_MAGIC.copy(frame, 4);
  frame.writeInt32LE(status, 4 + AUTH_MAGIC.length);
  return frame;
}

/**
 * Reads a token file: the whole file, trailing whitespace trimmed. Refused when it is
 * readable by group or others (the token is a root credential) or too short.
 */
export async function readTokenFile(path: string): Promise<Buffer> {
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(
      `${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`,
    );
  }
  const token = Buffer.from((await readFile(path, "utf8")).trim(), "utf8");
  if (token.length < MIN_TOKEN_LENGTH || token.length > MAX_TOKEN_LENGTH) {
    throw new Error(
      `the token in ${path} must be ${MIN_TOKEN_LENGTH}-${MAX_TOKEN_LENGTH} bytes (it is ${token.length})`,
    );
  }
  return token;
}

/** Whether `offered` is `expected`, in time independent of where they differ. */
export function tokenMatches(offered: Uint8Array, expected: Uint8Array): boolean {
  const a = createHash("sha256").update(offered).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b) && offered.length === expected.length;
}

export type AuthOutcome =
  | { readonly ok: true; readonly rest: Buffer }
  | { readonly ok: false; readonly reason: string };

/**
 * Waits for the preamble on `socket` and checks it against `expected()` (read per
 * connection, so a rotated token file takes effect for the next connection). On success
 * answers status 0 and resolves with the bytes that followed the preamble (pipelined
 * requests); otherwise answers -EACCES where it can, ends the socket and resolves with
 * why. The socket's `data` listener is removed either way.
 */
export function awaitTokenPreamble(
  socket: Socket,
  expected: () => Promise<Uint8Array>,
  timeoutMs = AUTH_TIMEOUT_MS,
): Promise<AuthOutcome> {
  return new Promise((resolve) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (outcome: AuthOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (!outcome.ok) {
        if (!socket.destroyed) socket.end(authReply(-EACCES));
        socket.destroySoon?.();
      }
      resolve(outcome);
    };
    const timer = setTimeout(
      () => finish({ ok: false, reason: "no credentials in time" }),
      timeoutMs,
    );
    timer.unref?.();
    const onClose = () => finish({ ok: false, reason: "closed before authenticating" });
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (buffered.length < 4) return;
      const length = buffered.readUInt32LE(0);
      if (
        length < AUTH_MAGIC.length + MIN_TOKEN_LENGTH ||
        length > AUTH_MAGIC.length + MAX_TOKEN_LENGTH
      ) {
        finish({ ok: false, reason: "first frame is not an authentication preamble" });
        return;
      }
      if (buffered.length >= 4 + AUTH_MAGIC.length) {
        if (!buffered.subarray(4, 4 + AUTH_MAGIC.length).equals(AUTH_MAGIC)) {
          finish({ ok: false, reason: "first frame is not an authentication preamble" });
          return;
        }
      }
      if (buffered.length < 4 + length) return;
      socket.pause();
      const offered = buffered.subarray(4 + AUTH_MAGIC.length, 4 + length);
      const rest = buffered.subarray(4 + length);
      expected().then(
        (token) => {
          if (tokenMatches(offered, token)) {
            if (settled) return;
            socket.write(authReply(0));
            finish({ ok: true, rest: Buffer.from(rest) });
          } else finish({ ok: false, reason: "wrong token" });
        },
        (error: Error) => finish({ ok: false, reason: `token unavailable: ${error.message}` }),
      );
    };
    socket.on("data", onData);
    socket.on("close", onClose);
  });
}

/**
 * Client side: writes the preamble and resolves once the server accepted it; rejects
 * with the server's refusal (or its close). Bytes after the reply are handed to the
 * caller's own `data` listener, which must be attached only after this resolves.
 */
export function sendTokenPreamble(socket: Socket, token: string | Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const need = 4 + AUTH_MAGIC.length + 4;
    const done = (error: Error | null) => {
      socket.off("data", onData);
      socket.off("close", onClose);
      if (error) reject(error);
      else resolve(Buffer.from(buffered.subarray(need)));
    };
    const onClose = () => done(new Error("the cluster-log server closed the connection (refused)"));
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < need) return;
      const status = buffered.readInt32LE(4 + AUTH_MAGIC.length);
      if (!buffered.subarray(4, 4 + AUTH_MAGIC.length).equals(AUTH_MAGIC)) {
        done(new Error("the server's answer is not an authentication reply"));
      } else if (status !== 0) {
        done(new Error(`the cluster-log server refused the credentials (${status})`));
      } else {
        socket.pause();
        done(null);
      }
    };
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.write(authPreamble(token));
  });
}
