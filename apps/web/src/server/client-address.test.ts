import { describe, expect, it } from "vitest";
import {
  clientAddress,
  clientAddressHeader,
  invalidProxyEntries,
  normalizeAddress,
  peerHeader,
  trustedProxies,
  withClientAddress,
} from "./client-address";

const h = (o: Record<string, string>) => new Headers(o);

describe("the client address behind the TCP peer and the trusted proxies", () => {
  const none = trustedProxies([]);
  const proxies = trustedProxies(["10.9.9.9", "172.16.0.0/12", "fd00:9::/64"]);

  it("normalises IPv4-mapped IPv6 peers and refuses what is not an address", () => {
    expect(normalizeAddress("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(normalizeAddress("[::1]")).toBe("::1");
    expect(normalizeAddress("FD00:9::1")).toBe("fd00:9::1");
    expect(normalizeAddress("evil, 1.2.3.4")).toBeNull();
    expect(invalidProxyEntries(["10.0.0.0/8", "::1", "10.0.0.0/33", "nope", "1.2.3.4/x"])).toEqual([
      "10.0.0.0/33",
      "nope",
      "1.2.3.4/x",
    ]);
  });

  it("is the peer when no proxy is trusted, whatever the forwarded headers say", () => {
    const headers = h({
      [peerHeader]: "::ffff:10.0.0.5",
      "x-forwarded-for": "1.1.1.1",
      "x-real-ip": "2.2.2.2",
    });
    expect(clientAddress(headers, none)).toBe("10.0.0.5");
    expect(clientAddress(headers, proxies)).toBe("10.0.0.5");
  });

  it("walks X-Forwarded-For from the right past trusted hops only", () => {
    expect(
      clientAddress(
        h({ [peerHeader]: "10.9.9.9", "x-forwarded-for": "6.6.6.6, 203.0.113.7, 172.20.0.1" }),
        proxies,
      ),
    ).toBe("203.0.113.7");
    expect(
      clientAddress(h({ [peerHeader]: "fd00:9::2", "x-forwarded-for": "2001:db8::7" }), proxies),
    ).toBe("2001:db8::7");
    // A malformed hop stops the walk at the last trusted hop.
    expect(
      clientAddress(
        h({ [peerHeader]: "10.9.9.9", "x-forwarded-for": "203.0.113.7, junk" }),
        proxies,
      ),
    ).toBe("10.9.9.9");
    // X-Real-IP only without X-Forwarded-For, and only from a trusted proxy.
    expect(
      clientAddress(h({ [peerHeader]: "10.9.9.9", "x-real-ip": "198.51.100.4" }), proxies),
    ).toBe("198.51.100.4");
  });

  it("believes nothing without the peer header (a request that did not come through server.mjs)", () => {
    expect(clientAddress(h({ "x-forwarded-for": "1.1.1.1" }), proxies)).toBeNull();
  });

  it("replaces a client-supplied client-address header", () => {
    const req = new Request("http://x/api/auth/sign-in/username", {
      method: "POST",
      headers: { [peerHeader]: "10.0.0.5", [clientAddressHeader]: "9.9.9.9" },
      body: "{}",
    });
    expect(withClientAddress(req, none).headers.get(clientAddressHeader)).toBe("10.0.0.5");
    const bare = new Request("http://x/", { headers: { [clientAddressHeader]: "9.9.9.9" } });
    expect(withClientAddress(bare, none).headers.get(clientAddressHeader)).toBeNull();
  });
});
