/**
 * The benchmark's baseline: ssebin's `/events` and `/stream` written the way a
 * Hono user would write them (`streamSSE`, `writeSSE`, `stream.sleep`,
 * `onAbort`), so every figure of ours can be read as a ratio against what
 * someone would pick instead. Used only by `bench/`.
 *
 * The events carry the same fields and data as ours; Hono's `writeSSE`
 * orders the lines `event:`, `data:`, `id:` (ours: `id:`, `event:`,
 * `data:`), which is the same size on the wire and the same event to a
 * parser.
 *
 * Runs unchanged under `deno serve`, `bun run` (which reads `port` and
 * `hostname`) and workerd.
 *
 * @module
 */

import { Hono } from "hono";
import { streamSSE } from "hono/streaming";

const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
  ?.env ?? {};

// Streams whose callback has not returned yet: what a user would count to
// watch for leaks, exposed in ssebin's metric format so the harness reads
// both servers the same way.
let eventsOpen = 0;
let eventsTotal = 0;

/** Reads a non-negative integer query parameter, or `fallback`. */
function integerParam(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : fallback;
}

/** The baseline application. */
export const app: Hono = new Hono();

app.get("/health", (c) => c.json({ status: "healthy", streams_open: eventsOpen }));

app.get("/metrics", (c) =>
  c.text(
    `sse_streams_open{path="/events"} ${eventsOpen}\n` +
      `sse_streams_total{path="/events"} ${eventsTotal}\n`,
  ));

app.get("/events", (c) => {
  const interval = integerParam(c.req.query("interval"), 1000);
  return streamSSE(c, async (stream) => {
    eventsOpen++;
    eventsTotal++;
    let aborted = false;
    stream.onAbort(() => {
      aborted = true;
    });
    try {
      for (let id = 1; !aborted; id++) {
        await stream.writeSSE({
          id: String(id),
          event: "tick",
          data: JSON.stringify({
            id,
            timestamp: new Date().toISOString(),
            message: `Event #${id}`,
          }),
        });
        await stream.sleep(interval);
      }
    } finally {
      eventsOpen--;
    }
  });
});

app.get("/stream", (c) => {
  const interval = integerParam(c.req.query("interval"), 1000);
  const count = integerParam(c.req.query("count"), Number.MAX_SAFE_INTEGER);
  return streamSSE(c, async (stream) => {
    let aborted = false;
    stream.onAbort(() => {
      aborted = true;
    });
    for (let id = 1; id <= count && !aborted; id++) {
      await stream.writeSSE({
        id: String(id),
        data: JSON.stringify({ id, ts: new Date().toISOString() }),
      });
      if (interval > 0) await stream.sleep(interval);
    }
    if (!aborted) await stream.writeSSE({ id: String(count + 1), event: "done", data: "complete" });
  });
});

/**
 * What `deno serve`, `bun run` and workerd load: Hono's `fetch`, plus the
 * port and address Bun reads (from `PORT` and `HOST`, as ssebin does).
 */
export default {
  fetch: app.fetch,
  port: integerParam(env.PORT, 8000),
  hostname: env.HOST ?? "127.0.0.1",
};
