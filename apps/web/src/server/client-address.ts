import { BlockList, isIP } from "node:net";

/**
 * Who is on the other end of a request, for rate limits and the audit log.
 *
 * `server.mjs` (the web app's HTTP server) writes the TCP peer's address into
 * `x-mirrorplane-peer` on every request, replacing whatever a client sent there. That is
 * the client, unless the peer is one of the configured reverse proxies
 * (`MIRRORPLANE_TRUSTED_PROXIES`); only then are `X-Forwarded-For` (walked from the right,
 * skipping trusted hops: every hop appends, so only the right end is vouched for) and, without
 * it, `X-Real-IP` believed. A forwarded header from anyone else is ignored, so rotating it
 * buys an attacker nothing.
 */
export const peerHeader = "x-mirrorplane-peer";
/** What better-auth reads the client address from (`advanced.ipAddress.ipAddressHeaders`). */
export const clientAddressHeader = "x-mirrorplane-client-ip";

/** "::ffff:10.0.0.1" (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
export function normalizeAddress(raw: string): string | null {
  let a = raw.trim();
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) a = mapped[1]!;
  const family = isIP(a);
  if (family === 0) return null;
  return family === 6 ? a.toLowerCase() : a;
}

/** An IP address or CIDR range ("10.0.0.0/8", "::1"), or null if it is neither. */
function parseRange(entry: string): { address: string; prefix: number; v: 4 | 6 } | null {
  const [addr, prefixText, ...rest] = entry.trim().split("/");
  if (rest.length > 0 || !addr) return null;
  const address = normalizeAddress(addr);
  if (!address) return null;
  const v = isIP(address) as 4 | 6;
  const max = v === 4 ? 32 : 128;
  if (prefixText === undefined) return { address, prefix: max, v };
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return null;
  return { address, prefix: Number(prefixText), v };
}

/** Entries of a trusted-proxy list that are not an IP address or CIDR range. */
export function invalidProxyEntries(entries: string[]): string[] {
  return entries.filter((e) => parseRange(e) === null);
}

export interface TrustedProxies {
  has(address: string): boolean;
}

/** Node's own CIDR matcher (net.BlockList) over the configured list. */
export function trustedProxies(entries: string[]): TrustedProxies {
  const list = new BlockList();
  for (const entry of entries) {
    const r = parseRange(entry);
    if (!r) throw new Error(`not an IP address or CIDR range: ${entry}`);
    list.addSubnet(r.address, r.prefix, r.v === 4 ? "ipv4" : "ipv6");
  }
  return {
    has(address) {
      const a = normalizeAddress(address);
      if (!a) return false;
      return list.check(a, isIP(a) === 4 ? "ipv4" : "ipv6");
    },
  };
}

/**
 * The client's address, or null when the request did not come through `server.mjs` (no
 * peer header: e.g. `next dev`), in which case nothing a client sent is believed.
 */
export function clientAddress(headers: Headers, trusted: TrustedProxies): string | null {
  const peer = normalizeAddress(headers.get(peerHeader) ?? "");
  if (!peer) return null;
  if (!trusted.has(peer)) return peer;
  const forwarded = headers.get("x-forwarded-for");
  if (forwarded) {
    const hops = forwarded.split(",").map((h) => h.trim());
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeAddress(hops[i]!);
      // A malformed hop: the chain cannot be followed further; the last trusted hop is the
      // best we know.
      if (!hop) return peer;
      if (!trusted.has(hop)) return hop;
    }
    return peer;
  }
  const real = normalizeAddress(headers.get("x-real-ip") ?? "");
  return real ?? peer;
}

/**
 * The request as the auth library and the audit log should see it: the resolved client
 * address in `x-mirrorplane-client-ip`, and no client-supplied value in that header.
 */
export function withClientAddress(req: Request, trusted: TrustedProxies): Request {
  const headers = new Headers(req.headers);
  headers.delete(clientAddressHeader);
  const address = clientAddress(req.headers, trusted);
  if (address) headers.set(clientAddressHeader, address);
  return new Request(req, { headers });
}
