/**
 * `/metrics`: the registry's counters in the Prometheus text format.
 *
 * @module
 */

import { CORS_HEADERS } from "../lib/http.ts";
import { type PathStats, registry } from "../lib/stream_registry.ts";

interface Metric {
  name: string;
  type: "gauge" | "counter";
  help: string;
  read(stats: PathStats): number;
}

const PER_PATH: readonly Metric[] = [
  { name: "sse_streams_open", type: "gauge", help: "Streams open now.", read: (s) => s.open },
  {
    name: "sse_streams_total",
    type: "counter",
    help: "Streams opened since start.",
    read: (s) => s.total,
  },
  { name: "sse_events_total", type: "counter", help: "Events written.", read: (s) => s.events },
  {
    name: "sse_events_dropped_total",
    type: "counter",
    help: "Events skipped because the client was not reading.",
    read: (s) => s.dropped,
  },
];

/**
 * Renders every metric; a path appears once it has served a stream.
 *
 * @example Usage
 * ```ts
 * import { renderMetrics } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(renderMetrics(), /# TYPE sse_streams_open gauge/);
 * ```
 */
export function renderMetrics(): string {
  registry.sweepSoon(Date.now());
  const paths = [...registry.entries()];
  let out = "";
  for (const metric of PER_PATH) {
    out += `# HELP ${metric.name} ${metric.help}\n# TYPE ${metric.name} ${metric.type}\n`;
    for (const [path, stats] of paths) {
      out += `${metric.name}{path="${path}"} ${metric.read(stats)}\n`;
    }
  }
  out += "# HELP sse_disconnects_total Streams ended, by why.\n" +
    "# TYPE sse_disconnects_total counter\n";
  for (const [path, stats] of paths) {
    for (const [reason, n] of Object.entries(stats.disconnects)) {
      out += `sse_disconnects_total{path="${path}",reason="${reason}"} ${n}\n`;
    }
  }
  out += "# HELP sse_rejected_total Stream requests refused at the stream cap or in shutdown.\n" +
    `# TYPE sse_rejected_total counter\nsse_rejected_total ${registry.rejected}\n`;
  return out;
}

/**
 * Answers `/metrics` as `text/plain; version=0.0.4`.
 *
 * @example Usage
 * ```ts
 * import { handleMetrics } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(handleMetrics().headers.get("content-type")!, /version=0.0.4/);
 * ```
 */
export function handleMetrics(): Response {
  return new Response(renderMetrics(), {
    headers: {
      ...CORS_HEADERS,
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
      "cache-control": "no-store",
    },
  });
}
