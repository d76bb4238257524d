import type { Metadata } from "next";
import type { ReactNode } from "react";
import { LiveBridge, LiveIndicator } from "~/components/live-bridge";
import { Nav } from "~/components/nav";
import { UserMenu } from "~/components/user-menu";
import { Providers } from "~/trpc/react";
import "./globals.css";

// Every page is rendered per request: its scripts carry that response's CSP nonce (proxy.ts).
export const dynamic = "force-dynamic";

export const metadata: Metadata = {
  title: "Mirrorplane",
  description: "Control plane for device-mapper mirrored storage clusters",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <Providers>
          <header className="top">
            <span className="brand">Mirrorplane</span>
            <Nav />
            <LiveIndicator />
            <UserMenu />
          </header>
          <LiveBridge />
          <main>{children}</main>
        </Providers>
      </body>
    </html>
  );
}
