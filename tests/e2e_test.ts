/**
 * The same conformance checks over real HTTP against the server under Deno,
 * Bun and workerd, and under `wrangler dev` (workerd behind wrangler's local
 * proxy, as users run it), each on an ephemeral loopback port.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  eventually,
  type RunningServer,
  RUNTIMES,
  startServers,
  stopAll,
  streamsOpen,
  type Target,
} from "./_server.ts";
import { readStream } from "./_sse.ts";
import { rawRequest } from "./_raw_http.ts";

const TARGETS: readonly Target[] = [...RUNTIMES, "wrangler dev"];
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const closedLines = (server: RunningServer, path: string) =>
  server.log().split("\n").filter((line) =>
    line.includes('"stream closed"') && line.includes(`path=${path} `)
  );

describe("over HTTP, under every runtime", () => {
  let servers: RunningServer[] = [];
  before(async () => {
    servers = await startServers(TARGETS);
  });
  after(() => stopAll(servers));

  for (const [index, target] of TARGETS.entries()) {
    describe(target, () => {
      const server = () => servers[index];

      it("sends the stream headers, and no hop-by-hop ones of ours", async () => {
        const response = await rawRequest(`${server().url}/events`, { until: "\n\n" });
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
        assert.equal(response.headers.get("cache-control"), "no-cache, no-transform");
        assert.equal(response.headers.get("x-accel-buffering"), "no");
        assert.equal(response.headers.get("access-control-allow-origin"), "*");
        // HTTP/1.1 framing is the runtime's: chunked, never a Connection header we set.
        assert.notEqual(response.headers.get("connection"), "keep-alive");
      });

      it("sends the first tick within 200 ms, then consecutive ids a second apart", async () => {
        const started = Date.now();
        const read = await readStream(`${server().url}/events`, { limit: 3, timeoutMs: 6_000 });
        assert.equal(read.status, 200);
        assert.equal(read.events.length, 3);
        const firstMs = read.events[0].at - started;
        assert.ok(firstMs < 200, `first event after ${firstMs} ms`);
        read.events.forEach((event, i) => {
          assert.equal(event.id, String(i + 1));
          assert.equal(event.event, "tick");
          const data = JSON.parse(event.data);
          assert.deepEqual(Object.keys(data), ["id", "timestamp", "message"]);
          assert.equal(data.id, i + 1);
          assert.equal(data.message, `Event #${i + 1}`);
          assert.match(data.timestamp, ISO_UTC);
        });
        assert.match(
          read.raw,
          /^id: 1\nevent: tick\ndata: \{"id":1,"timestamp":"[^"]+","message":"Event #1"\}\n\n/,
        );
        const gap = Date.parse(JSON.parse(read.events[2].data).timestamp) -
          Date.parse(JSON.parse(read.events[1].data).timestamp);
        assert.ok(gap >= 900 && gap <= 1100, `ticks ${gap} ms apart`);
      });

      it("delivers the fast burst whole: seq 0…99, then done, then the end", async () => {
        const read = await readStream(`${server().url}/stream/fast`, { timeoutMs: 15_000 });
        assert.equal(read.outcome, "end");
        assert.equal(read.events.length, 101);
        read.events.slice(0, 100).forEach((event, i) => {
          assert.equal(event.event, undefined);
          const data = JSON.parse(event.data);
          assert.deepEqual(Object.keys(data), ["seq", "ts"]);
          assert.equal(data.seq, i);
          assert.match(data.ts, ISO_UTC);
        });
        assert.equal(read.events[100].event, "done");
        assert.equal(read.events[100].data, "complete");
        const spanMs = read.events[99].at - read.events[0].at;
        assert.ok(spanMs >= 99 * 50 * 0.9, `100 events at 50 ms took ${spanMs} ms`);
      });

      it("logs exactly one disconnect and closes the stream when the client leaves", async () => {
        const before = closedLines(server(), "/events").length;
        const read = await readStream(`${server().url}/events?interval=100`, { limit: 2 });
        assert.equal(read.events.length, 2);
        assert.equal(await eventually(() => streamsOpen(server().url), 0, 2_000), 0);
        await server().waitForLog(/"stream closed".*path=\/events .*reason=client/, 2_000);
        // Both signals may fire (cancel and abort): still one line.
        await new Promise((resolve) => setTimeout(resolve, 300));
        const lines = closedLines(server(), "/events").slice(before);
        assert.equal(lines.length, 1, lines.join("\n"));
        assert.match(lines[0], /reason=client detail=(cancel|abort) events=\d+ duration_ms=\d+/);
      });

      it("answers 404, 405, HEAD and OPTIONS as specified", async () => {
        const missing = await fetch(`${server().url}/missing`);
        assert.equal(missing.status, 404);
        assert.deepEqual(await missing.json(), { error: "not found", path: "/missing" });
        const post = await fetch(`${server().url}/events`, { method: "POST", body: "x" });
        assert.equal(post.status, 405);
        assert.equal(post.headers.get("allow"), "GET, HEAD, OPTIONS");
        assert.equal((await post.json()).error, "method not allowed");
        const head = await rawRequest(`${server().url}/events`, { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("content-type"), "text/event-stream; charset=utf-8");
        const options = await fetch(`${server().url}/events`, {
          method: "OPTIONS",
          headers: { origin: "http://elsewhere.test", "access-control-request-method": "GET" },
        });
        assert.equal(options.status, 204);
        assert.match(options.headers.get("access-control-allow-headers") ?? "", /Last-Event-ID/);
        assert.equal(await eventually(() => streamsOpen(server().url), 0, 2_000), 0);
      });

      it("serves the page, its files and /health", async () => {
        const page = await fetch(`${server().url}/`);
        assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
        assert.match(await page.text(), /EventSource|app\.js/);
        const health = await (await fetch(`${server().url}/health`)).json();
        assert.equal(health.status, "healthy");
      });
    });
  }

  it("every runtime serves the same bytes", async () => {
    const normalise = (text: string) => text.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<ts>");
    for (
      const path of [
        "/",
        "/static/app.js",
        "/stream/fast?interval=0",
        "/events?count=3&interval=0&eol=crlf&lines=4&size=200",
      ]
    ) {
      const bodies = await Promise.all(
        servers.map(async (server) => normalise((await rawRequest(server.url + path)).body)),
      );
      assert.ok(bodies[0].length > 0, path);
      for (const body of bodies.slice(1)) assert.equal(body, bodies[0], path);
    }
  });
});
