/**
 * `/health`: liveness for load balancers and people.
 *
 * @module
 */

import { jsonResponse } from "../lib/http.ts";
import { runtimeName } from "../lib/runtime.ts";
import { registry } from "../lib/stream_registry.ts";

const startedAt = Date.now();

/**
 * Answers `{"status":"healthy",…}` with the runtime, uptime and open streams.
 *
 * @example Usage
 * ```ts
 * import { handleHealth } from "./health.ts";
 * import assert from "node:assert/strict";
 *
 * const body = await handleHealth().json();
 * assert.equal(body.status, "healthy");
 * ```
 */
export function handleHealth(): Response {
  registry.sweepSoon(Date.now());
  return jsonResponse({
    status: registry.draining ? "draining" : "healthy",
    runtime: runtimeName,
    uptime_s: Math.round((Date.now() - startedAt) / 100) / 10,
    streams_open: registry.openCount,
  });
}
