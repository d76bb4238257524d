import { getSessionCookie } from "better-auth/cookies";
import { type NextRequest, NextResponse } from "next/server";

/**
 * Signed-out browsers go to /login. This only looks for the session cookie (cheap, no
 * database); every tRPC call checks the session and the role on the server.
 */
export function proxy(request: NextRequest) {
  if (getSessionCookie(request, { cookiePrefix: "mirrorplane" })) return NextResponse.next();
  const url = new URL("/login", request.url);
  const next = request.nextUrl.pathname + request.nextUrl.search;
  if (next !== "/") url.searchParams.set("next", next);
  return NextResponse.redirect(url);
}

export const config = {
  // Everything except the login page, the auth and tRPC APIs, and static assets.
  matcher: ["/((?!login|api/|_next/|favicon.ico).*)"],
};
