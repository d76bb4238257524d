import { UsersAdmin } from "./users-admin";

export const dynamic = "force-dynamic";
export const metadata = { title: "Users — Mirrorplane" };

export default function UsersPage() {
  return (
    <>
      <h1>Users</h1>
      <UsersAdmin />
    </>
  );
}
