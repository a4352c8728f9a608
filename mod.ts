/**
 * ssebin: an httpbin for Server-Sent Events.
 *
 * The whole server is one web-standard handler, `fetch(request) → Response`,
 * exported as `default { fetch }`, so this file runs unchanged under
 * `deno serve`, `bun run` and Cloudflare Workers (`wrangler dev`/`deploy`).
 *
 * @example Calling the handler directly
 * ```ts
 * import server from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const response = await server.fetch(new Request("http://localhost/health"));
 * assert.equal((await response.json()).status, "healthy");
 * ```
 *
 * @module
 */

import { handleHealth } from "./handlers/health.ts";
import { handleMetrics } from "./handlers/metrics.ts";
import { handleStatic, STATIC_FILES } from "./handlers/static.ts";
import { handleStream, STREAM_PRESETS } from "./handlers/stream.ts";
import { ALLOWED_METHODS, jsonResponse, preflightResponse } from "./lib/http.ts";
import { log } from "./lib/log.ts";
import {
  exitProcess,
  onShutdownSignal,
  type Peer,
  peerOf,
  processEnv,
  runtimeName,
  stopListening,
  totalMemoryBytes,
  workerEnvOf,
} from "./lib/runtime.ts";
import { applySettings, loadSettings, settings } from "./lib/settings.ts";
import { registry } from "./lib/stream_registry.ts";

export { SseEncoder } from "./lib/sse_encoder.ts";
export type { LineEnding, ServerSentEvent } from "./lib/sse_encoder.ts";
export { STREAM_PARAMS } from "./lib/stream_params.ts";
export { openEventStream, type StreamPlan } from "./lib/event_stream.ts";
export { STREAM_PRESETS, type StreamPreset } from "./handlers/stream.ts";

type Route = (request: Request, url: URL, peer: Peer) => Response;

const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  ...[...STATIC_FILES.keys()].map((path): [string, Route] => [path, () => handleStatic(path)]),
  ["/health", handleHealth],
  ["/metrics", handleMetrics],
  ...STREAM_PRESETS.map((preset): [string, Route] => [
    preset.path,
    (request, url, peer) => handleStream(request, url, preset, peer),
  ]),
]);

// The longest path echoed back in a 404.
const ECHO_PATH_LIMIT = 512;
// After closing every stream, the time the runtime gets to write them out.
const SHUTDOWN_FLUSH_MS = 250;

// Deno and Bun: settings from the process environment, checked at startup so
// that a typo stops the server here rather than running it with a default.
applySettings(loadSettings(processEnv, totalMemoryBytes()));
let workerEnvRead = false;

/**
 * Routes one request. `info` and `ctx` are whatever the runtime passes after
 * the request (Deno: serve info; Bun: the server; Workers: env and context).
 *
 * @example Usage
 * ```ts
 * import { handle } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const response = handle(new Request("http://localhost/nope"));
 * assert.equal(response.status, 404);
 * ```
 */
export function handle(request: Request, info?: unknown, ctx?: unknown): Response {
  try {
    readWorkerEnvOnce(info, ctx);
    const url = parseUrl(request.url);
    if (url === undefined) {
      // Runtimes build request.url from the Host header: a bad one (or none,
      // under HTTP/1.0 on Bun) leaves it unparsable.
      return jsonResponse({ error: "bad request: the URL or Host header is not valid" }, 400);
    }
    const route = ROUTES.get(url.pathname);
    if (route === undefined) {
      return jsonResponse(
        { error: "not found", path: url.pathname.slice(0, ECHO_PATH_LIMIT) },
        404,
      );
    }
    switch (request.method) {
      case "GET":
        return route(request, url, peerOf(request, info, ctx));
      case "HEAD": {
        const response = route(request, url, peerOf(request, info, ctx));
        return response.body === null ? response : new Response(null, response);
      }
      case "OPTIONS":
        return preflightResponse();
      default:
        return jsonResponse(
          { error: "method not allowed", method: request.method, allowed: ALLOWED_METHODS },
          405,
          { allow: ALLOWED_METHODS },
        );
    }
  } catch (error) {
    // A bug, never a client's fault; keep the process and say so.
    log("error", "unhandled error", { error: String(error), url: request.url.slice(0, 200) });
    return jsonResponse({ error: "internal error" }, 500);
  }
}

function parseUrl(text: string): URL | undefined {
  try {
    // A bare path (Bun without a Host header) is resolved against a stand-in origin.
    return new URL(text, "http://localhost");
  } catch {
    return undefined;
  }
}

/** Workers pass their variables to `fetch`, not to the process: read them once. */
function readWorkerEnvOnce(info: unknown, ctx: unknown): void {
  if (workerEnvRead) return;
  const env = workerEnvOf(info, ctx);
  if (env === undefined) return;
  workerEnvRead = true;
  try {
    const lookup = (name: string) =>
      typeof env[name] === "string" ? env[name] as string : undefined;
    applySettings(loadSettings(lookup, undefined));
  } catch (error) {
    log("error", "bad setting; using defaults", { error: String(error) });
  }
}

onShutdownSignal((signal) => {
  if (registry.draining) return;
  stopListening();
  const streams = registry.shutdownAll();
  log("info", "shutting down", { signal, streams_closed: streams });
  setTimeout(() => exitProcess(0), SHUTDOWN_FLUSH_MS);
});

log("info", "ssebin ready", {
  runtime: runtimeName,
  max_streams: settings.maxStreams,
  stall_timeout_ms: settings.stallTimeoutMs,
  max_lifetime_ms: settings.maxLifetimeMs,
});

/**
 * The server. `fetch` is the handler every runtime calls; `port` and
 * `hostname` are read by Bun only (`deno serve` takes flags, Workers ignore
 * them), from `PORT` and `HOST`.
 */
export default {
  fetch: handle,
  port: settings.port,
  hostname: settings.hostname,
};
