import { tracked } from "@trpc/server";
import { z } from "zod";
import type { LiveMessage } from "../live/live-state";
import { createTRPCRouter, protectedProcedure } from "../trpc";

export const liveRouter = createTRPCRouter({
  /**
   * One stream per tab over SSE. Each message is tracked by its version, so a reconnect
   * (EventSource's Last-Event-ID) resumes with the changes it missed, or a snapshot.
   */
  stream: protectedProcedure
    .input(z.object({ lastEventId: z.string().nullish() }).optional())
    .subscription(async function* ({ ctx, input, signal }) {
      // The process's hub, from the composition root (server/runtime.ts) via the context.
      if (!ctx.live) throw new Error("live stream unavailable");
      const h = ctx.live;
      const queue: LiveMessage[] = [];
      let wake: (() => void) | undefined;
      const unsubscribe = h.subscribe((m) => {
        queue.push(m);
        wake?.();
      });
      try {
        await h.ready();
        const since = input?.lastEventId ? Number(input.lastEventId) : null;
        let sent = -1;
        for (const m of h.log.catchUp(Number.isFinite(since) ? since : null)) {
          sent = m.version;
          yield tracked(String(m.version), m);
        }
        while (!signal?.aborted) {
          while (queue.length > 0) {
            const m = queue.shift()!;
            // Broadcasts that raced with the catch-up above are already covered by it.
            if (m.version <= sent) continue;
            sent = m.version;
            yield tracked(String(m.version), m);
          }
          // One abort listener per wait, removed when a message wakes it (they piled up on
          // the request's signal, one per message: MaxListenersExceededWarning).
          await new Promise<void>((resolve) => {
            const onAbort = () => resolve();
            wake = () => {
              signal?.removeEventListener("abort", onAbort);
              resolve();
            };
            signal?.addEventListener("abort", onAbort, { once: true });
          });
          wake = undefined;
        }
      } finally {
        unsubscribe();
      }
    }),
});
