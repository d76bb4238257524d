import type { Metadata } from "next";
import type { ReactNode } from "react";
import { LiveBridge, LiveIndicator } from "~/components/live-bridge";
import { Nav } from "~/components/nav";
import { PasswordGate } from "~/components/password-gate";
import { UserMenu } from "~/components/user-menu";
import { Providers } from "~/trpc/react";
import { Hydrate, prefetch, trpcServer } from "~/trpc/server";
import "./globals.css";

// Every page is rendered per request: its scripts carry that response's CSP nonce (proxy.ts).
export const dynamic = "force-dynamic";

export const metadata: Metadata = {
  title: "Mirrorplane",
  description: "Control plane for device-mapper mirrored storage clusters",
};

export default async function RootLayout({ children }: { children: ReactNode }) {
  // Who is signed in, for the header and the role-dependent controls of the first screen.
  await prefetch([trpcServer.session.me.queryOptions()]);
  return (
    <html lang="en">
      <body>
        <Providers>
          <Hydrate>
            <header className="top">
              <span className="brand">Mirrorplane</span>
              <Nav />
              <LiveIndicator />
              <UserMenu />
            </header>
            <LiveBridge />
            <main>
              <PasswordGate>{children}</PasswordGate>
            </main>
          </Hydrate>
        </Providers>
      </body>
    </html>
  );
}
