import { getSessionCookie } from "better-auth/cookies";
import { type NextRequest, NextResponse } from "next/server";
import { contentSecurityPolicy } from "~/lib/security-headers";

/**
 * Every page gets a Content-Security-Policy with a fresh nonce (Next.js reads it from the
 * request's CSP header and puts it on its scripts; lib/security-headers.ts), and
 * signed-out browsers go to /login. The sign-in check only looks for the session cookie
 * (cheap, no database); every tRPC call checks the session and the role on the server.
 */
export function proxy(request: NextRequest) {
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(18))));
  const csp = contentSecurityPolicy(nonce, {
    dev: process.env.NODE_ENV === "development",
    https:
      request.nextUrl.protocol === "https:" || request.headers.get("x-forwarded-proto") === "https",
  });
  const path = request.nextUrl.pathname;
  const signInPage = path === "/login" || path.startsWith("/login/");
  let response: NextResponse;
  if (signInPage || getSessionCookie(request, { cookiePrefix: "mirrorplane" })) {
    const headers = new Headers(request.headers);
    headers.set("content-security-policy", csp);
    response = NextResponse.next({ request: { headers } });
  } else {
    const url = new URL("/login", request.url);
    const next = request.nextUrl.pathname + request.nextUrl.search;
    if (next !== "/") url.searchParams.set("next", next);
    response = NextResponse.redirect(url);
  }
  response.headers.set("content-security-policy", csp);
  return response;
}

export const config = {
  // Every page (the sign-in page too); not the APIs and not static assets (next.config.ts
  // gives those their headers).
  matcher: ["/((?!api/|_next/static|_next/image|favicon.ico).*)"],
};
