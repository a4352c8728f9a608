import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import server, { handle } from "../mod.ts";
import { registry } from "../lib/stream_registry.ts";
import { type CapturedLog, captureLog } from "./_log.ts";

const get = (path: string, init?: RequestInit) =>
  handle(new Request(`http://localhost${path}`, init));

describe("mod.ts routing", () => {
  let log: CapturedLog;
  beforeEach(() => void (log = captureLog()));
  afterEach(() => log.restore());

  it("exports default { fetch } for deno serve, bun and workers", () => {
    assert.equal(typeof server.fetch, "function");
  });

  it("serves the page at / with its security headers", async () => {
    const response = get("/");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(response.headers.get("content-security-policy")!, /default-src 'self'/);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    assert.ok(response.headers.get("referrer-policy"));
    const html = await response.text();
    assert.match(html, /<script src="\/static\/app.js"/);
    assert.doesNotMatch(html, /<script>|<style>|\son\w+=/, "nothing inline: the CSP forbids it");
  });

  it("serves the page's files with exact types", async () => {
    for (
      const [path, type] of [
        ["/static/app.js", "text/javascript; charset=utf-8"],
        ["/static/style.css", "text/css; charset=utf-8"],
        ["/static/favicon.svg", "image/svg+xml"],
      ]
    ) {
      const response = get(path);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get("content-type"), type, path);
      assert.ok((await response.text()).length > 0);
    }
  });

  it("answers /health as JSON", async () => {
    const response = get("/health");
    assert.equal(response.headers.get("content-type"), "application/json");
    const body = await response.json();
    assert.equal(body.status, "healthy");
    assert.equal(typeof body.uptime_s, "number");
    assert.equal(body.streams_open, registry.openCount);
    assert.match(body.runtime, /^Deno\//);
  });

  it("answers /metrics in the Prometheus text format", async () => {
    const stream = get("/stream/fast?interval=0");
    await stream.text();
    const response = get("/metrics");
    assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const text = await response.text();
    for (
      const name of [
        "sse_streams_open",
        "sse_streams_total",
        "sse_events_total",
        "sse_disconnects_total",
        "sse_events_dropped_total",
        "sse_rejected_total",
      ]
    ) {
      assert.match(text, new RegExp(`^# TYPE ${name} (gauge|counter)$`, "m"), name);
    }
    assert.match(text, /^sse_streams_open\{path="\/stream\/fast"\} 0$/m);
    assert.match(text, /^sse_events_total\{path="\/stream\/fast"\} [1-9]\d*$/m);
    assert.match(text, /^sse_disconnects_total\{path="\/stream\/fast",reason="done"\} [1-9]\d*$/m);
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("# ")) continue;
      assert.match(line, /^[a-z_]+(\{[a-z_]+="[^"\n]*"(,[a-z_]+="[^"\n]*")*\})? \d+$/, line);
    }
  });

  it("404s an unknown path with JSON naming it", async () => {
    const response = get("/nope/../nothing");
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { error: "not found", path: "/nothing" });
  });

  it("answers 400, not 500, when the runtime could not build a URL (bad Host)", async () => {
    const request = new Request("http://localhost/health");
    Object.defineProperty(request, "url", { value: "http://x y/health" });
    const response = handle(request);
    assert.equal(response.status, 400);
    assert.match((await response.json()).error, /Host/);
    // Bun hands over a bare path when HTTP/1.0 sends no Host: route it.
    const bare = new Request("http://localhost/health");
    Object.defineProperty(bare, "url", { value: "/health" });
    assert.equal(handle(bare).status, 200);
  });

  it("405s other methods with Allow and JSON", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const response = get("/events", { method });
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get("allow"), "GET, HEAD, OPTIONS");
      const body = await response.json();
      assert.equal(body.error, "method not allowed");
      assert.equal(body.method, method);
    }
    assert.equal(registry.openCount, 0);
  });

  it("answers CORS preflight for the resume headers", () => {
    const response = get("/events", {
      method: "OPTIONS",
      headers: { origin: "https://example.com", "access-control-request-headers": "last-event-id" },
    });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get("access-control-allow-origin"), "*");
    assert.match(response.headers.get("access-control-allow-methods")!, /GET/);
    assert.match(response.headers.get("access-control-allow-headers")!, /Last-Event-ID/i);
    assert.match(response.headers.get("access-control-allow-headers")!, /Cache-Control/i);
  });

  it("answers HEAD with headers only, and opens no stream", () => {
    for (const path of ["/", "/health", "/events", "/stream/fast", "/stream", "/metrics"]) {
      const response = get(path, { method: "HEAD" });
      assert.equal(response.status, 200, path);
      assert.equal(response.body, null, path);
    }
    assert.equal(
      get("/events", { method: "HEAD" }).headers.get("content-type"),
      "text/event-stream; charset=utf-8",
    );
    assert.equal(get("/events?interval=x", { method: "HEAD" }).status, 400);
    assert.equal(registry.openCount, 0);
  });
});
