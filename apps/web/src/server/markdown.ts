// Text from kernels, devices and operators embedded in the Markdown exports (events,
// incidents). Whatever it holds, it must read as the text it is: no HTML, no links or
// images that load from elsewhere, no table cells it breaks out of (issue 15.6).

/** Plain text for a Markdown table cell or heading: HTML and Markdown syntax escaped. */
export function mdText(s: string | null | undefined): string {
  return (
    (s ?? "")
      .replace(/[\r\n]+/g, " ")
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      // Inline syntax only: a cell or a heading's text never starts a line, so list and
      // heading markers there are inert.
      .replace(/[\\`*_{}[\]()|~]/g, (c) => `\\${c}`)
  );
}

/**
 * A code span (e.g. parameters as JSON): nothing in it is Markdown or HTML, so only its own
 * fence and the table's `|` need care. The fence is one backtick longer than the longest
 * run inside (CommonMark §6.1).
 */
export function mdCode(s: string): string {
  const body = s.replace(/[\r\n]+/g, " ").replace(/\|/g, "\\|");
  const longest = Math.max(0, ...(body.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longest + 1);
  const pad = body.startsWith("`") || body.endsWith("`") ? " " : "";
  return `${fence}${pad}${body}${pad}${fence}`;
}
