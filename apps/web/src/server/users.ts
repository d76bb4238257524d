// User management shared by the control-plane API and `npm run user:create`. Passwords
// are hashed by better-auth's own `hashPassword`, the same function its sign-in verifies
// against, so users created here sign in like any other.
import type { Db, Prisma } from "@mirrorplane/db";
import { hashPassword } from "better-auth/crypto";
import { z } from "zod";

export const usernamePattern = /^[a-z0-9][a-z0-9._-]{1,63}$/;

export const ZRole = z.enum(["viewer", "operator", "admin"]);
export type TRole = z.infer<typeof ZRole>;

export const ZPassword = z.string().min(10, "at least 10 characters").max(256);

export const ZNewUser = z.object({
  username: z
    .string()
    .regex(usernamePattern, "2–64 characters: lower-case letters, digits, '.', '_' or '-'"),
  name: z.string().min(1).max(128).optional(),
  password: ZPassword,
  role: ZRole,
});
export type TNewUser = z.infer<typeof ZNewUser>;

export class UserExistsError extends Error {
  override name = "UserExistsError";
}

type Tx = Prisma.TransactionClient;

async function insertUser(tx: Tx, input: TNewUser) {
  const exists = await tx.user.findUnique({
    where: { username: input.username },
    select: { id: true },
  });
  if (exists) throw new UserExistsError(`user ${input.username} already exists`);
  const id = crypto.randomUUID();
  const now = new Date();
  await tx.user.create({
    data: {
      id,
      name: input.name ?? input.username,
      email: `${input.username}@users.mirrorplane.invalid`,
      emailVerified: false,
      username: input.username,
      displayUsername: input.username,
      role: input.role,
      createdAt: now,
      updatedAt: now,
      accounts: {
        create: {
          id: crypto.randomUUID(),
          accountId: id,
          providerId: "credential",
          password: await hashPassword(input.password),
          createdAt: now,
          updatedAt: now,
        },
      },
    },
    select: { id: true },
  });
  return { id, username: input.username, role: input.role };
}

export async function createUser(db: Db, input: TNewUser) {
  const parsed = ZNewUser.parse(input);
  return db.$transaction((tx) => insertUser(tx, parsed));
}

/**
 * The first-run step: creates the first admin only while no user exists. A transaction-
 * level advisory lock makes two simultaneous first-run requests create one admin.
 */
export async function createFirstAdmin(db: Db, input: Omit<TNewUser, "role">) {
  const parsed = ZNewUser.parse({ ...input, role: "admin" });
  return db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(7270736901)`;
    if ((await tx.user.count()) > 0) return null;
    return insertUser(tx, parsed);
  });
}

export async function needsFirstRun(db: Db): Promise<boolean> {
  return (await db.user.count()) === 0;
}
