"use client";

import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from "@trpc/client";
import { createTRPCContext } from "@trpc/tanstack-react-query";
import { type ReactNode, useState } from "react";
import superjson from "superjson";
import { trpcErrorCode } from "~/lib/errors";
import type { AppRouter } from "~/server/root";

export const { TRPCProvider, useTRPC } = createTRPCContext<AppRouter>();

/**
 * A session that ended on the server (signed out elsewhere, the account disabled, its
 * password reset by an admin) shows the sign-in page at the next call, not a page of
 * "sign in first" errors.
 */
function toSignInWhenSignedOut(error: unknown) {
  if (trpcErrorCode(error) !== "UNAUTHORIZED" || window.location.pathname.startsWith("/login"))
    return;
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(next)}`);
}

function makeQueryClient() {
  return new QueryClient({
    queryCache: new QueryCache({ onError: toSignInWhenSignedOut }),
    mutationCache: new MutationCache({ onError: toSignInWhenSignedOut }),
    defaultOptions: {
      queries: { staleTime: 2_000, refetchOnWindowFocus: true, retry: 1 },
      // What the server prefetched for the first screen (trpc/server.tsx), superjson-encoded.
      hydrate: { deserializeData: superjson.deserialize },
    },
  });
}

export function Providers({ children }: { children: ReactNode }) {
  const [queryClient] = useState(makeQueryClient);
  const [trpcClient] = useState(() =>
    createTRPCClient<AppRouter>({
      links: [
        // Subscriptions over SSE (one stream per tab), everything else batched over HTTP.
        splitLink({
          condition: (op) => op.type === "subscription",
          true: httpSubscriptionLink({ url: "/api/trpc", transformer: superjson }),
          false: httpBatchLink({ url: "/api/trpc", transformer: superjson }),
        }),
      ],
    }),
  );
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  );
}
