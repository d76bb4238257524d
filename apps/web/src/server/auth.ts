import "server-only";
import { type BetterAuthOptions, betterAuth } from "better-auth";
import { prismaAdapter } from "better-auth/adapters/prisma";
import { nextCookies } from "better-auth/next-js";
import { username } from "better-auth/plugins";
import { env } from "~/env";
import { db } from "./db";
import { usernamePattern } from "./users";

/**
 * Sign-in and sessions come from better-auth (no hand-rolled crypto or session handling):
 * username + password, sessions in Postgres, its own password hashing (scrypt), CSRF
 * protection by origin check, and rate-limited sign-in. Self sign-up is off: the first
 * admin is created on first run or with `npm run user:create`; admins create the rest.
 */
function authOptions(): BetterAuthOptions {
  const e = env();
  return {
    appName: "Mirrorplane",
    secret: e.BETTER_AUTH_SECRET,
    baseURL: e.MIRRORPLANE_PUBLIC_URL,
    trustedOrigins: e.MIRRORPLANE_TRUSTED_ORIGINS,
    database: prismaAdapter(db(), { provider: "postgresql" }),
    emailAndPassword: {
      enabled: true,
      disableSignUp: true,
      minPasswordLength: 10,
      maxPasswordLength: 256,
    },
    user: {
      additionalFields: {
        // `input: false`: a role can never be set from a sign-in or profile request.
        role: { type: "string", required: false, defaultValue: "viewer", input: false },
        disabledAt: { type: "date", required: false, input: false },
      },
    },
    session: { expiresIn: 60 * 60 * 12, updateAge: 60 * 60 },
    rateLimit: {
      enabled: true,
      window: 60,
      max: 100,
      // Login attempts per client address: 5 a minute.
      customRules: {
        "/sign-in/username": { window: 60, max: 5 },
        "/sign-in/email": { window: 60, max: 5 },
      },
    },
    advanced: { cookiePrefix: "mirrorplane" },
    plugins: [
      username({
        minUsernameLength: 2,
        maxUsernameLength: 64,
        usernameValidator: (u) => usernamePattern.test(u),
      }),
      nextCookies(),
    ],
  };
}

let instance: ReturnType<typeof betterAuth> | undefined;
export function auth() {
  instance ??= betterAuth(authOptions());
  return instance;
}

export interface SessionUser {
  id: string;
  username: string;
  name: string;
  role: "viewer" | "operator" | "admin";
}

/** The signed-in user for a request, or null. Disabled users have no session. */
export async function sessionUser(headers: Headers): Promise<SessionUser | null> {
  const session = await auth().api.getSession({ headers });
  if (!session) return null;
  const user = session.user as typeof session.user & {
    username?: string | null;
    role?: string;
    disabledAt?: Date | null;
  };
  if (user.disabledAt) return null;
  const role = user.role === "admin" || user.role === "operator" ? user.role : "viewer";
  return { id: user.id, username: user.username ?? user.name, name: user.name, role };
}
