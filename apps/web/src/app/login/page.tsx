import { Hydrate, prefetch, trpcServer } from "~/trpc/server";
import { LoginForm } from "./login-form";

export const dynamic = "force-dynamic";
export const metadata = { title: "Sign in — Mirrorplane" };

export default async function LoginPage({
  searchParams,
}: {
  searchParams: Promise<{ next?: string }>;
}) {
  const { next } = await searchParams;
  // Only same-site paths: never redirect to another origin after sign-in.
  const target = next?.startsWith("/") && !next.startsWith("//") ? next : "/overview";
  // Whether this is the first run is known before the page is sent: no "Loading…" first.
  await prefetch([trpcServer.setup.status.queryOptions()]);
  return (
    <Hydrate>
      <LoginForm next={target} />
    </Hydrate>
  );
}
