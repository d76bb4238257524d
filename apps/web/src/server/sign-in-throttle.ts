import type { Db } from "@mirrorplane/db";

/**
 * The per-account layer of sign-in throttling, beside better-auth's per-client limit
 * (5 attempts a minute per client address, server/auth.ts).
 *
 * Failures are kept per (account, client). A client with a clean record for an account
 * (no failure on it in the last `windowMs`) is never delayed by this layer, so nobody can
 * lock an account for anyone else: the real owner, from their own address, always gets
 * to present the right password. A client that keeps failing on an account waits
 * exponentially longer before each further try: 5 s, 10 s, 20 s … at most `maxDelayMs`,
 * after `freeFailures` free ones. When the account as a whole is being guessed at (at
 * least `underAttackFailures` failures from all clients in the window), every client's
 * back-off starts at its first failure, so each address gets one guess before it waits.
 * It is never a hard lock: every delay ends, and a success clears that client's record.
 */
export const signInPolicy = {
  windowMs: 15 * 60_000,
  freeFailures: 3,
  underAttackFailures: 10,
  firstDelayMs: 5_000,
  maxDelayMs: 15 * 60_000,
  /** Rows older than this are deleted. */
  keepMs: 24 * 60 * 60_000,
} as const;

export interface TSignInAttempt {
  /** The account as typed, normalised (see `accountKey`); also for names that do not exist. */
  account: string;
  /** The resolved client address (server/client-address.ts), or "unknown". */
  client: string;
}

export type TSignInVerdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** One key per account whether it is named by username or by its placeholder e-mail. */
export function accountKey(body: { username?: unknown; email?: unknown }): string | null {
  const raw =
    typeof body.username === "string"
      ? body.username
      : typeof body.email === "string"
        ? body.email
        : null;
  if (raw === null) return null;
  const name = raw.trim().toLowerCase();
  // users.ts gives every user the address <username>@users.mirrorplane.invalid.
  return name.endsWith("@users.mirrorplane.invalid")
    ? name.slice(0, -"@users.mirrorplane.invalid".length)
    : name.slice(0, 320);
}

/** The wait after `failures` failures when back-off starts at `threshold` failures. */
export function backoffMs(failures: number, threshold: number): number {
  if (failures < threshold) return 0;
  return Math.min(
    signInPolicy.firstDelayMs * 2 ** Math.min(failures - threshold, 30),
    signInPolicy.maxDelayMs,
  );
}

export async function signInVerdict(
  db: Db,
  attempt: TSignInAttempt,
  now: Date,
): Promise<TSignInVerdict> {
  const since = new Date(now.getTime() - signInPolicy.windowMs);
  const mine = await db.signInFailure.findUnique({
    where: { account_client: { account: attempt.account, client: attempt.client } },
    select: { failures: true, lastFailureAt: true },
  });
  if (!mine || mine.lastFailureAt < since) return { allowed: true };
  const total = await db.signInFailure.aggregate({
    where: { account: attempt.account, lastFailureAt: { gte: since } },
    _sum: { failures: true },
  });
  const threshold =
    (total._sum.failures ?? 0) >= signInPolicy.underAttackFailures ? 1 : signInPolicy.freeFailures;
  const wait = backoffMs(mine.failures, threshold);
  const until = mine.lastFailureAt.getTime() + wait;
  if (now.getTime() >= until) return { allowed: true };
  return { allowed: false, retryAfterSeconds: Math.ceil((until - now.getTime()) / 1000) };
}

/** Counts a wrong password (or unknown name); a failure older than the window starts over. */
export async function recordSignInFailure(
  db: Db,
  attempt: TSignInAttempt,
  now: Date,
): Promise<void> {
  const since = new Date(now.getTime() - signInPolicy.windowMs);
  await db.$executeRaw`
    INSERT INTO sign_in_failures (account, client, failures, last_failure_at)
    VALUES (${attempt.account}, ${attempt.client}, 1, ${now})
    ON CONFLICT (account, client) DO UPDATE
       SET failures = CASE WHEN sign_in_failures.last_failure_at < ${since} THEN 1
                           ELSE sign_in_failures.failures + 1 END,
           last_failure_at = ${now}`;
  await db.signInFailure.deleteMany({
    where: { lastFailureAt: { lt: new Date(now.getTime() - signInPolicy.keepMs) } },
  });
}

/** A correct password clears this client's record for the account (not anyone else's). */
export async function recordSignInSuccess(db: Db, attempt: TSignInAttempt): Promise<void> {
  await db.signInFailure.deleteMany({
    where: { account: attempt.account, client: attempt.client },
  });
}
