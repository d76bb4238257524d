import "server-only";
import {
  dehydrate,
  type FetchInfiniteQueryOptions,
  type FetchQueryOptions,
  HydrationBoundary,
  QueryClient,
} from "@tanstack/react-query";
import { createTRPCOptionsProxy } from "@trpc/tanstack-react-query";
import { headers } from "next/headers";
import { cache, type ReactNode } from "react";
import superjson from "superjson";
import { sessionUser } from "~/server/auth";
import { db } from "~/server/db";
import { appRouter } from "~/server/root";
import { serverRuntime } from "~/server/runtime";
import { createContextInner } from "~/server/trpc";

// Server-side prefetch (issue 13, speed): a page's first screen is rendered into its HTML
// with the data it shows, instead of HTML → JavaScript → hydrate → fetch → render. The
// procedures run in this process with the request's session (the same checks as over HTTP);
// the results are handed to the browser's query cache, which then goes on as before.

/** One query client per request, shared by the layout and the page. */
const queryClient = cache(
  () =>
    new QueryClient({
      defaultOptions: {
        queries: { staleTime: 2_000 },
        // Only successes are sent: a failed prefetch is left to the browser to fetch (and
        // to show its error as before).
        dehydrate: { serializeData: superjson.serialize },
      },
    }),
);

const context = cache(async () => {
  return createContextInner({
    db: db(),
    // The agent directory from the composition root (server/runtime.ts).
    agents: serverRuntime().agents,
    now: () => new Date(),
    user: await sessionUser(await headers()),
  });
});

export const trpcServer = createTRPCOptionsProxy({
  router: appRouter,
  ctx: context,
  queryClient,
});

// biome-ignore lint/suspicious/noExplicitAny: any procedure's query options
type TAnyQuery = FetchQueryOptions<any, any, any, any>;
// biome-ignore lint/suspicious/noExplicitAny: any procedure's infinite query options
type TAnyInfiniteQuery = FetchInfiniteQueryOptions<any, any, any, any, any>;

/**
 * Runs the queries (`queryOptions`, or `infiniteQueryOptions` for a list's first page);
 * never throws (a refused or failed query is fetched again by the browser and reported
 * there). A slow one is not waited for past `budgetMs`: the page then renders without it,
 * as it did before.
 */
export async function prefetch(
  queries: Array<TAnyQuery | TAnyInfiniteQuery>,
  budgetMs = 1_000,
): Promise<void> {
  const all = Promise.allSettled(
    queries.map((q) =>
      // An infinite query (a list's first page) is cached as pages, as the browser's is.
      "initialPageParam" in q
        ? queryClient().prefetchInfiniteQuery(q as TAnyInfiniteQuery)
        : queryClient().prefetchQuery(q as TAnyQuery),
    ),
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([all, new Promise((r) => (timer = setTimeout(r, budgetMs)))]);
  clearTimeout(timer);
}

/** This request's query client: what was prefetched (e.g. to choose what to prefetch next). */
export const serverQueries = () => queryClient();

/** Hands what was prefetched to the browser's query cache. */
export function Hydrate({ children }: { children: ReactNode }) {
  return <HydrationBoundary state={dehydrate(queryClient())}>{children}</HydrationBoundary>;
}
