/**
 * Cross-site request forgery guard for the control-plane API: a mutation must come from a
 * page of this dashboard. Browsers send `Origin` on every POST made by `fetch`; it must be
 * one of the trusted origins (MIRRORPLANE_PUBLIC_URL and MIRRORPLANE_TRUSTED_ORIGINS).
 * Without `Origin`, `Sec-Fetch-Site: same-origin` (sent by every current browser and not
 * settable by a page) is accepted; a request with neither is refused, so a forged form or
 * a script on another site never reaches a handler. Queries stay readable (they are
 * GET, change nothing, and a foreign page cannot read their replies).
 */
export interface TRequestOrigin {
  trusted: boolean;
  /** The Origin header as sent (or null). */
  origin: string | null;
  /** Why the request is not trusted (null when it is). */
  reason: string | null;
}

/** Origins compared as the browser spells them: scheme://host[:port], no path. */
export function trustedOriginSet(origins: string[]): Set<string> {
  const set = new Set<string>();
  for (const o of origins) {
    try {
      set.add(new URL(o).origin);
    } catch {
      // env.ts validates the public URL; an unparsable extra origin matches nothing.
    }
  }
  return set;
}

export function requestOrigin(headers: Headers, trusted: Set<string>): TRequestOrigin {
  const origin = headers.get("origin");
  if (origin !== null) {
    let normalised: string | null = null;
    try {
      normalised = origin === "null" ? null : new URL(origin).origin;
    } catch {
      normalised = null;
    }
    if (normalised !== null && trusted.has(normalised))
      return { trusted: true, origin, reason: null };
    return { trusted: false, origin, reason: `a request from ${origin}, not from this dashboard` };
  }
  const site = headers.get("sec-fetch-site");
  if (site === "same-origin") return { trusted: true, origin: null, reason: null };
  return {
    trusted: false,
    origin: null,
    reason: site
      ? `a ${site} request, not from this dashboard`
      : "a request without an Origin header",
  };
}
