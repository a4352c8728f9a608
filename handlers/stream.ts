/**
 * `/events`, `/stream/fast` and `/stream`: three presets of one stream,
 * shaped by query parameters and resumable with `Last-Event-ID`.
 *
 * @module
 */

import { openEventStream, SSE_HEADERS, type StreamPlan } from "../lib/event_stream.ts";
import { jsonResponse } from "../lib/http.ts";
import { log } from "../lib/log.ts";
import { payloadShaper } from "../lib/payload.ts";
import type { Peer } from "../lib/runtime.ts";
import { settings } from "../lib/settings.ts";
import { parseStreamQuery, resumeAfter, type StreamQuery } from "../lib/stream_params.ts";
import { registry } from "../lib/stream_registry.ts";

/** A stream endpoint as data: its defaults and the shape of its events. */
export interface StreamPreset {
  path: string;
  /** The id of the first event; ids then count up by one. */
  firstId: number;
  interval: number;
  /** Events before `done`; `undefined`: the stream never ends. */
  count: number | undefined;
  event: string | undefined;
  /** The JSON data of event `id` sent at `ts` (ISO 8601, UTC). */
  payload(id: number, ts: string): string;
}

/**
 * The stream endpoints.
 *
 * @example Reading a preset
 * ```ts
 * import { STREAM_PRESETS } from "./stream.ts";
 * import assert from "node:assert/strict";
 *
 * const fast = STREAM_PRESETS.find((preset) => preset.path === "/stream/fast")!;
 * assert.equal(fast.payload(7, "2026-01-01T00:00:00.000Z"), '{"seq":7,"ts":"2026-01-01T00:00:00.000Z"}');
 * ```
 */
export const STREAM_PRESETS: readonly StreamPreset[] = [
  {
    path: "/events",
    firstId: 1,
    interval: 1000,
    count: undefined,
    event: "tick",
    payload: (id, ts) => `{"id":${id},"timestamp":"${ts}","message":"Event #${id}"}`,
  },
  {
    path: "/stream/fast",
    firstId: 0,
    interval: 50,
    count: 100,
    event: undefined,
    payload: (id, ts) => `{"seq":${id},"ts":"${ts}"}`,
  },
  {
    path: "/stream",
    firstId: 1,
    interval: 1000,
    count: undefined,
    event: undefined,
    payload: (id, ts) => `{"id":${id},"ts":"${ts}"}`,
  },
];

/** Default ms of silence before a `: heartbeat` comment. */
export const DEFAULT_HEARTBEAT_MS = 15_000;
// chunk × this bounds the work one event can cost: size=1MiB&chunk=1 would be
// a million enqueues per event.
const MAX_PIECES_PER_EVENT = 65_536;
// Statuses whose responses must not have a body (Fetch: null body status).
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * Answers a request for `preset`: a 400 for a bad parameter, a status the
 * caller asked for, a 204 for a stream already complete, a 503 at the stream
 * cap, or the stream.
 *
 * @example Usage
 * ```ts
 * import { handleStream, STREAM_PRESETS } from "./stream.ts";
 * import assert from "node:assert/strict";
 *
 * const peer = { address: undefined, keepAlive() {} };
 * const request = new Request("http://localhost/events?interval=abc");
 * const response = handleStream(request, new URL(request.url), STREAM_PRESETS[0], peer);
 * assert.equal(response.status, 400);
 * ```
 */
export function handleStream(
  request: Request,
  url: URL,
  preset: StreamPreset,
  peer: Peer,
): Response {
  const parsed = parseStreamQuery(url.searchParams);
  if (!parsed.ok) return jsonResponse(parsed.error, 400);
  const query = parsed.query;
  const size = query.size ?? 0;
  if (query.chunk !== undefined && Math.max(size, 256) / query.chunk > MAX_PIECES_PER_EVENT) {
    return jsonResponse({
      error:
        `chunk is too small for size: events would be split into more than ${MAX_PIECES_PER_EVENT} pieces`,
      param: "chunk",
      value: String(query.chunk),
    }, 400);
  }
  if (query.status !== undefined && query.status !== 200) return statusResponse(query.status);

  const count = query.count ?? preset.count;
  const doneId = count === undefined ? undefined : preset.firstId + count;
  const firstId = resumeId(request, url, preset, query);
  if (firstId > (doneId ?? Number.MAX_SAFE_INTEGER)) {
    // Complete already: 204 is the one answer that stops EventSource reconnecting.
    return new Response(null, { status: 204, headers: SSE_HEADERS });
  }
  registry.sweepSoon(Date.now());
  const isHead = request.method === "HEAD";
  if (registry.draining || registry.openCount >= settings.maxStreams) {
    // HEAD answers what GET would, but only a refused stream counts.
    if (!isHead) registry.rejected++;
    return jsonResponse(
      {
        error: registry.draining ? "server is shutting down" : "too many open streams",
        limit: settings.maxStreams,
      },
      503,
      { "retry-after": "5" },
    );
  }
  if (isHead) return new Response(null, { headers: SSE_HEADERS });

  const plan: StreamPlan = {
    path: preset.path,
    firstId,
    doneId,
    intervalMs: query.interval ?? preset.interval,
    delayMs: query.delay ?? 0,
    heartbeatMs: query.heartbeat ?? DEFAULT_HEARTBEAT_MS,
    retryMs: query.retry,
    eventName: query.event ?? preset.event,
    chunkBytes: query.chunk,
    failAfter: query.failAfter,
    lineEnding: query.eol ?? "lf",
    payload: shapedPayload(preset, size, query.lines ?? 1),
    client: peer.address,
  };
  peer.keepAlive();
  return openEventStream(plan, request);
}

function shapedPayload(
  preset: StreamPreset,
  size: number,
  lines: number,
): StreamPlan["payload"] {
  if (size === 0 && lines === 1) return preset.payload;
  const shape = payloadShaper({ size, lines });
  return (id, ts) => shape(preset.payload(id, ts));
}

/** The id to start from: after the client's last one, else the preset's first. */
function resumeId(request: Request, url: URL, preset: StreamPreset, query: StreamQuery): number {
  const last = resumeAfter(request, query);
  if (last === undefined) return preset.firstId;
  if (last === "invalid") {
    log("warn", "ignoring malformed Last-Event-ID; starting afresh", {
      path: url.pathname,
      value: (request.headers.get("last-event-id") ?? query.lastEventId ?? "").slice(0, 100),
    });
    return preset.firstId;
  }
  return Math.max(preset.firstId, last + 1);
}

function statusResponse(status: number): Response {
  if (NULL_BODY_STATUSES.has(status)) return new Response(null, { status, headers: SSE_HEADERS });
  const retry: Record<string, string> = status === 429 || status === 503
    ? { "retry-after": "1" }
    : {};
  return jsonResponse({ status, reason: "requested by the status parameter" }, status, retry);
}
