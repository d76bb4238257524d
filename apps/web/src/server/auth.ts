import "server-only";
import { type BetterAuthOptions, betterAuth } from "better-auth";
import { prismaAdapter } from "better-auth/adapters/prisma";
import { APIError, createAuthMiddleware, isAPIError } from "better-auth/api";
import { nextCookies } from "better-auth/next-js";
import { username } from "better-auth/plugins";
import { env } from "~/env";
import { clientAddressHeader } from "./client-address";
import { db } from "./db";
import {
  accountKey,
  recordSignInFailure,
  recordSignInSuccess,
  signInVerdict,
  type TSignInAttempt,
} from "./sign-in-throttle";
import { audit } from "./trpc";
import { usernamePattern } from "./users";

const signInPaths = new Set(["/sign-in/username", "/sign-in/email"]);

/** What a disabled user is told when the password was right (a wrong one is told as usual). */
export const accountDisabledMessage =
  "This account is disabled. Ask an admin of this dashboard to enable it again.";

/**
 * The session token lives only in its httpOnly cookie: better-auth also puts it in the JSON
 * of sign-in and session replies, where any script on the page (or a log of response
 * bodies) could read it. Removed from every auth reply.
 */
export function withoutSessionTokens(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSessionTokens);
  if (value === null || typeof value !== "object" || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === "token") continue;
    out[key] = key === "session" || key === "sessions" ? withoutSessionTokens(v) : v;
  }
  return out;
}

function signInAttempt(ctx: {
  body?: unknown;
  request?: Request;
  headers?: Headers;
}): TSignInAttempt | null {
  const account = accountKey((ctx.body ?? {}) as { username?: unknown; email?: unknown });
  if (!account) return null;
  const client =
    ctx.request?.headers.get(clientAddressHeader) ??
    ctx.headers?.get(clientAddressHeader) ??
    "unknown";
  return { account, client };
}

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
        passwordChangeRequired: {
          type: "boolean",
          required: false,
          defaultValue: false,
          input: false,
        },
      },
    },
    databaseHooks: {
      session: {
        create: {
          // A disabled user gets no session: the same hook better-auth's admin plugin uses
          // for banned users, run after the password was verified.
          async before(session) {
            const user = await db().user.findUnique({
              where: { id: session.userId },
              select: { disabledAt: true },
            });
            if (user?.disabledAt)
              throw new APIError("FORBIDDEN", {
                code: "ACCOUNT_DISABLED",
                message: accountDisabledMessage,
              });
          },
        },
      },
    },
    session: { expiresIn: 60 * 60 * 12, updateAge: 60 * 60 },
    rateLimit: {
      enabled: true,
      window: 60,
      max: 100,
      // Login attempts per client address: 5 a minute. Kept in Postgres (rate_limits), so a
      // restart or a second web process does not hand out a fresh allowance.
      storage: "database",
      customRules: {
        "/sign-in/username": { window: 60, max: 5 },
        "/sign-in/email": { window: 60, max: 5 },
      },
    },
    advanced: {
      cookiePrefix: "mirrorplane",
      // The only address believed is the one the auth route resolved from the TCP peer and
      // the trusted proxies (server/client-address.ts); it replaces any client value.
      ipAddress: { ipAddressHeaders: [clientAddressHeader] },
    },
    hooks: {
      // The per-account back-off (server/sign-in-throttle.ts): refused before the password
      // is even checked, so a waiting client learns nothing about it.
      before: createAuthMiddleware(async (ctx) => {
        if (!signInPaths.has(ctx.path)) return;
        const attempt = signInAttempt(ctx);
        if (!attempt) return;
        const verdict = await signInVerdict(db(), attempt, new Date());
        if (!verdict.allowed)
          throw new APIError(
            "TOO_MANY_REQUESTS",
            {
              code: "SIGN_IN_BACKING_OFF",
              message: `Too many failed sign-ins for this account from your address; try again in ${verdict.retryAfterSeconds} s.`,
            },
            { "Retry-After": String(verdict.retryAfterSeconds) },
          );
      }),
      after: createAuthMiddleware(async (ctx) => {
        const returned = ctx.context.returned;
        if (ctx.path === "/change-password" && returned && !isAPIError(returned))
          await passwordChanged((returned as { user?: { id?: string } }).user?.id);
        if (signInPaths.has(ctx.path)) {
          const attempt = signInAttempt(ctx);
          if (attempt && isAPIError(returned)) {
            if (returned.statusCode === 401) await recordSignInFailure(db(), attempt, new Date());
          } else if (attempt && returned) {
            await recordSignInSuccess(db(), attempt);
          }
        }
        if (returned && typeof returned === "object" && !isAPIError(returned))
          return ctx.json(withoutSessionTokens(returned) as Record<string, unknown>);
      }),
    },
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

/**
 * The user changed their own password through better-auth's /change-password (which checked
 * the current one): a temporary password set by an admin is no longer in force. Audited.
 */
async function passwordChanged(userId: string | undefined) {
  if (!userId) return;
  const user = await db().user.update({
    where: { id: userId },
    data: { passwordChangeRequired: false },
    select: { id: true, username: true, role: true },
  });
  await audit(
    {
      db: db(),
      user: { id: user.id, username: user.username ?? user.id, role: roleOf(user.role) },
    },
    { action: "account.changePassword", target: `user:${user.username}`, outcome: "ok" },
  );
}

function roleOf(role: string | undefined): SessionUser["role"] {
  return role === "admin" || role === "operator" ? role : "viewer";
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
  /** An admin set a temporary password: nothing but changing it is allowed until then. */
  mustChangePassword: boolean;
}

/** The signed-in user for a request, or null. Disabled users have no session. */
export async function sessionUser(headers: Headers): Promise<SessionUser | null> {
  const session = await auth().api.getSession({ headers });
  if (!session) return null;
  const user = session.user as typeof session.user & {
    username?: string | null;
    role?: string;
    disabledAt?: Date | null;
    passwordChangeRequired?: boolean | null;
  };
  if (user.disabledAt) return null;
  return {
    id: user.id,
    username: user.username ?? user.name,
    name: user.name,
    role: roleOf(user.role),
    mustChangePassword: user.passwordChangeRequired === true,
  };
}

/**
 * What an admin does to another account, done by better-auth itself (its internal adapter
 * and password hasher — what its admin plugin's ban-user / set-user-password endpoints call),
 * never by writing sessions or hashes here. The admin plugin is not mounted: its HTTP
 * endpoints (impersonation, user removal, its own roles) would be a second admin API
 * outside the role checks and the audit log of the tRPC procedures.
 */
export const accountAdmin = {
  /** Ends every session of the user at once (the next request of theirs is signed out). */
  async endSessions(userId: string): Promise<void> {
    const c = await auth().$context;
    await c.internalAdapter.deleteUserSessions(userId);
  },
  /** Sets the credential password, hashed by better-auth's own hasher. */
  async setPassword(userId: string, password: string): Promise<void> {
    const c = await auth().$context;
    const hash = await c.password.hash(password);
    if (await c.internalAdapter.findCredentialAccount(userId))
      await c.internalAdapter.updatePassword(userId, hash);
    else
      await c.internalAdapter.createAccount({
        userId,
        providerId: "credential",
        accountId: userId,
        password: hash,
      });
  },
};
