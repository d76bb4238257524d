import { toNextJsHandler } from "better-auth/next-js";
import { env } from "~/env";
import { auth } from "~/server/auth";
import { type TrustedProxies, trustedProxies, withClientAddress } from "~/server/client-address";

export const dynamic = "force-dynamic";

let proxies: TrustedProxies | undefined;

/** better-auth sees the client address resolved from the TCP peer (server/client-address.ts). */
function authRequest(req: Request): Request {
  proxies ??= trustedProxies(env().MIRRORPLANE_TRUSTED_PROXIES);
  return withClientAddress(req, proxies);
}

export async function GET(req: Request) {
  return toNextJsHandler(auth()).GET(authRequest(req));
}
export async function POST(req: Request) {
  return toNextJsHandler(auth()).POST(authRequest(req));
}
