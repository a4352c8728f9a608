/**
 * Test helper: checks response bytes for injected content. An SSE body may
 * only hold the lines ssebin writes; a response head may not carry the
 * injection marker at all.
 *
 * @module
 */

/** SSE comments ssebin writes (without the leading `: `). */
const KNOWN_COMMENTS = [/^heartbeat$/, /^first event in \d+ ms$/, /^server shutting down$/];
// The event-name rule of the `event` parameter (lib/stream_params.ts).
const EVENT_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Returns every line of `body` (an SSE body, possibly cut mid-line) that
 * ssebin would not write: a field other than `id`, `event`, `data` or
 * `retry`, a non-numeric id or retry, an `event:` not in `allowedEvents`, an
 * unknown comment, or any line holding `marker`. An empty list means clean.
 *
 * @example Usage
 * ```ts
 * import { sseViolations } from "./_wire_check.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(sseViolations("id: 1\nevent: tick\ndata: {}\n\n", ["tick"], "X"), []);
 * assert.equal(sseViolations("event: X\n\n", ["tick"], "X").length, 1);
 * ```
 */
export function sseViolations(
  body: string,
  allowedEvents: readonly string[],
  marker: string,
): string[] {
  // The last piece may be a line cut short by our disconnect (or the first
  // half of a CRLF): judge complete lines only.
  const lines = body.split(/\r\n|\r(?!$)|\n/);
  lines.pop();
  const bad: string[] = [];
  for (const line of lines) {
    if (line === "") continue;
    if (line.toUpperCase().includes(marker.toUpperCase())) {
      bad.push(line);
      continue;
    }
    if (line.startsWith(": ")) {
      if (!KNOWN_COMMENTS.some((known) => known.test(line.slice(2)))) bad.push(line);
      continue;
    }
    const colon = line.indexOf(": ");
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? "" : line.slice(colon + 2);
    switch (field) {
      case "id":
      case "retry":
        if (!/^\d+$/.test(value)) bad.push(line);
        break;
      case "event":
        if (!EVENT_NAME.test(value) || !allowedEvents.includes(value)) bad.push(line);
        break;
      case "data":
        break;
      default:
        bad.push(line);
    }
  }
  return bad;
}

/**
 * Returns the header lines of a response head that carry `marker` (any
 * case): request text that reached a header.
 */
export function headViolations(headerLines: readonly string[], marker: string): string[] {
  const needle = marker.toLowerCase();
  return headerLines.filter((line) => line.toLowerCase().includes(needle));
}
