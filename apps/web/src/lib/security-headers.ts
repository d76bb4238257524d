// Response headers that keep the dashboard's pages to themselves (issue 15.6). Pure, so the
// proxy (per page, with a fresh nonce) and next.config.ts (every response) share them.

/**
 * The page policy: scripts only with this response's nonce (Next.js puts it on its own
 * scripts, read from the request's CSP header; 'strict-dynamic' lets them load the rest),
 * styles from the app's stylesheet or with the nonce; style *attributes* stay allowed
 * (React renders `style={…}` and the charts position with them; no script runs from one).
 * Nothing may frame a page (clickjacking); forms post only here; no plugins; no <base>.
 */
export function contentSecurityPolicy(
  nonce: string,
  opts: { dev?: boolean; https?: boolean } = {},
): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${opts.dev ? " 'unsafe-eval'" : ""}`,
    `style-src 'self' 'nonce-${nonce}'`,
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' blob: data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    ...(opts.https ? ["upgrade-insecure-requests"] : []),
  ].join("; ");
}

/** On every response, pages, API and static files alike. */
export const commonSecurityHeaders = [
  { key: "X-Frame-Options", value: "DENY" },
  { key: "X-Content-Type-Options", value: "nosniff" },
  { key: "Referrer-Policy", value: "same-origin" },
  { key: "Cross-Origin-Opener-Policy", value: "same-origin" },
  { key: "Permissions-Policy", value: "camera=(), microphone=(), geolocation=(), usb=()" },
] as const;

/** API replies are data, never documents: nothing in them may run, and nothing frames them. */
export const apiContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'";
