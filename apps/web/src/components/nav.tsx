"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";

const links = [
  { href: "/nodes", label: "Nodes" },
  { href: "/khugepaged", label: "khugepaged" },
];

export function Nav() {
  const pathname = usePathname();
  return (
    <nav>
      {links.map((l) => (
        <Link
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
