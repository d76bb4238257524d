"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { usePathname } from "next/navigation";
import { useTRPC } from "~/trpc/react";

const links = [
  { href: "/overview", label: "Overview", admin: false },
  { href: "/mirrors", label: "Mirrors", admin: false },
  { href: "/events", label: "Events", admin: false },
  { href: "/devices", label: "Memory & devices", admin: false },
  { href: "/nodes", label: "Nodes", admin: false },
  { href: "/khugepaged", label: "khugepaged", admin: false },
  { href: "/audit", label: "Audit", admin: false },
  { href: "/admin/users", label: "Users", admin: true },
];

// Every page is rendered per request (force-dynamic): prefetching each link on sight cost a
// server render per link per page view (issue 13: ~20 of 35 requests). Links navigate
// client-side on click, without prefetching.
export function Nav() {
  const pathname = usePathname();
  const trpc = useTRPC();
  const me = useQuery(trpc.session.me.queryOptions());
  if (pathname.startsWith("/login")) return null;
  return (
    <nav>
      {links
        .filter((l) => !l.admin || me.data?.role === "admin")
        .map((l) => (
          <Link
            prefetch={false}
            key={l.href}
            href={l.href}
            aria-current={pathname.startsWith(l.href) ? "page" : undefined}
          >
            {l.label}
          </Link>
        ))}
    </nav>
  );
}
