import { describeIssues } from "~/lib/errors";
import { sessionUser } from "~/server/auth";
import { db } from "~/server/db";
import { incidentExport, incidentMarkdown, ZIncidentRef } from "~/server/incident-export";
import { mdCode, mdText } from "~/server/markdown";
import { listEvents, type TEventRow, ZEventFilter } from "~/server/routers/events";
import { mustChangePasswordMessage } from "~/server/trpc";

export const dynamic = "force-dynamic";

const maxRows = 100_000;

/**
 * Export of the events matching a filter, as JSON (machine-readable, DASHBOARD.md
 * complaint 15) or Markdown (for an incident write-up). Streamed page by page.
 *
 * With `incident=1` it exports one incident instead, self-contained (edge 13): its events,
 * the operator actions around it and its chart data (server/incident-export.ts). The
 * incident is named as the incidents list has it: `from`, `to`, `nodeId` (absent: the
 * events with no node) and one of `mirror`, `device`, `kind`.
 */
export async function GET(req: Request) {
  const user = await sessionUser(req.headers);
  if (!user) return new Response("sign in first\n", { status: 401 });
  if (user.mustChangePassword)
    return new Response(`${mustChangePasswordMessage}\n`, { status: 403 });
  const params = new URL(req.url).searchParams;
  const requested = params.get("format") ?? "json";
  if (requested !== "json" && requested !== "md")
    return new Response(
      `Unknown export format “${requested}”: use format=json or format=md (Markdown).\n`,
      { status: 400, headers: { "content-type": "text/plain; charset=utf-8" } },
    );
  const format: "json" | "md" = requested;
  if (params.get("incident") === "1") return exportIncident(params, format, user.username);
  const date = (name: string) => {
    const v = params.get(name);
    return v ? new Date(v) : undefined;
  };
  // "unacknowledged only" as the events page links it (acknowledged=false).
  const acknowledged = params.get("acknowledged");
  const parsed = ZEventFilter.safeParse({
    from: date("from"),
    to: date("to"),
    nodeId: params.get("nodeId") || undefined,
    kind: params.get("kind") || undefined,
    severity: params.getAll("severity").length ? params.getAll("severity") : undefined,
    device: params.get("device") || undefined,
    mirror: params.get("mirror") || undefined,
    text: params.get("text") || undefined,
    acknowledged:
      acknowledged === "false"
        ? false
        : acknowledged === "true"
          ? true
          : (acknowledged ?? undefined),
  });
  if (!parsed.success)
    return new Response(`Cannot export: ${describeIssues(parsed.error.issues)}\n`, {
      status: 400,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  const filter = parsed.data;
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      const write = (s: string) => controller.enqueue(encoder.encode(s));
      let cursor: string | undefined;
      let written = 0;
      if (format === "json")
        write(
          `{"exportedAt":${JSON.stringify(new Date())},"exportedBy":${JSON.stringify(user.username)},"filter":${JSON.stringify(filter)},"events":[\n`,
        );
      else
        write(
          `# Mirrorplane events\n\nExported ${new Date().toISOString()} by ${user.username}. Filter: ${mdCode(JSON.stringify(filter))}\n\n| time (UTC) | severity | kind | node | device | mirror | message | acknowledged |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n`,
        );
      try {
        do {
          const page = await listEvents(db(), filter, 1_000, cursor);
          for (const e of page.items) {
            if (written >= maxRows) break;
            write(
              format === "json" ? `${written ? ",\n" : ""}${JSON.stringify(e)}` : markdownRow(e),
            );
            written++;
          }
          cursor = page.nextCursor ?? undefined;
        } while (cursor && written < maxRows);
        write(
          format === "json"
            ? `\n],"count":${written},"truncated":${cursor !== undefined}}\n`
            : `\n${written} events${cursor ? ` (truncated at ${maxRows})` : ""}.\n`,
        );
        controller.close();
      } catch (error) {
        controller.error(error);
      }
    },
  });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return new Response(stream, {
    headers: {
      "content-type": format === "json" ? "application/json" : "text/markdown; charset=utf-8",
      "content-disposition": `attachment; filename="mirrorplane-events-${stamp}.${format}"`,
      "cache-control": "no-store",
    },
  });
}

async function exportIncident(
  params: URLSearchParams,
  format: "json" | "md",
  username: string,
): Promise<Response> {
  const date = (name: string) => (params.get(name) ? new Date(params.get(name)!) : undefined);
  const parsed = ZIncidentRef.safeParse({
    from: date("from"),
    to: date("to"),
    nodeId: params.get("nodeId") || null,
    mirror: params.get("mirror") || undefined,
    device: params.get("device") || undefined,
    kind: params.get("kind") || undefined,
  });
  if (!parsed.success)
    return new Response(`Cannot export the incident: ${describeIssues(parsed.error.issues)}\n`, {
      status: 400,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  const now = new Date();
  const x = await incidentExport(db(), parsed.data, now);
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  const body =
    format === "json"
      ? `${JSON.stringify({ exportedAt: now, exportedBy: username, ...x })}\n`
      : incidentMarkdown(x, username, now);
  return new Response(body, {
    headers: {
      "content-type": format === "json" ? "application/json" : "text/markdown; charset=utf-8",
      "content-disposition": `attachment; filename="mirrorplane-incident-${stamp}.${format}"`,
      "cache-control": "no-store",
    },
  });
}

const cell = mdText;

/** Who acknowledged it, when, why and until when; "no" when it is not (or it lapsed). */
function ackCell(e: TEventRow, now: Date): string {
  if (!e.acknowledgedAt) return "no";
  const lapsed = e.ackExpiresAt !== null && e.ackExpiresAt <= now;
  return cell(
    `${lapsed ? "lapsed: " : ""}by ${e.acknowledgedBy ?? "?"} at ${e.acknowledgedAt.toISOString()}${e.ackExpiresAt ? ` until ${e.ackExpiresAt.toISOString()}` : ""}${e.ackNote ? ` — ${e.ackNote}` : ""}`,
  );
}

function markdownRow(e: TEventRow, now: Date = new Date()): string {
  return `| ${e.occurredAt.toISOString()} | ${e.severity} | ${cell(e.kind)} | ${cell(e.nodeId)} | ${cell(e.device)} | ${cell(e.mirror)} | ${cell(e.message)} | ${ackCell(e, now)} |\n`;
}
