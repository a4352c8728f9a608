/**
 * Through a real reverse proxy (issue 5): nginx with its default
 * `proxy_buffering on`, in front of Deno, Bun and workerd at once.
 *
 * - `h10`: nginx's default HTTP/1.0 to the upstream. What makes events flow
 *   here is the server's `X-Accel-Buffering: no`.
 * - `h11`: `proxy_http_version 1.1` (and no `Connection: close` upstream).
 * - `ignore` (the control that proves the timing check can fail): as `h10`,
 *   but with `proxy_ignore_headers X-Accel-Buffering`, so nginx buffers.
 *
 * Through `h10` and `h11`: events arrive within 100 ms of their timestamp,
 * the fast burst arrives whole, and a client disconnect through nginx
 * reaches the server (`sse_streams_open` back to 0 within 5 s).
 *
 * Needs `/usr/sbin/nginx` (`apt-get install -y nginx-light`, as `.ci/run`
 * does); without it every test here says SKIP loudly and passes.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type RunningServer, startServers, stopAll, streamsOpen } from "./_server.ts";
import { readStream, type StreamRead } from "./_sse.ts";
import { onEach, runtimesFromEnv, timeUntil } from "./_load.ts";
import { exchange, holdStream } from "./_raw_exchange.ts";
import { nginxVersion, type ProxyRoute, type RunningNginx, startNginx } from "./_nginx.ts";

const RUNTIMES_UNDER_TEST = runtimesFromEnv();
const NGINX = nginxVersion();
const MODES = {
  h10: [],
  h11: ["proxy_http_version 1.1;", 'proxy_set_header Connection "";'],
  ignore: ["proxy_ignore_headers X-Accel-Buffering;"],
} as const;
type Mode = keyof typeof MODES;
// The figure.
const MAX_LAG_MS = 100;
const TICKS = "/events?interval=250&count=8";
const DISCONNECT_SEEN_MS = 5_000;

/** Ms from each event's own timestamp (the server's clock, same machine) to its arrival. */
function lags(read: StreamRead): number[] {
  return read.events.filter((event) => event.event === "tick").map((event) =>
    event.at - Date.parse(JSON.parse(event.data).timestamp)
  );
}

function skipWithoutNginx(): boolean {
  if (NGINX !== undefined) return false;
  console.log("SKIP: nginx not installed — apt-get install -y nginx-light");
  return true;
}

describe(`through nginx (${NGINX ?? "not installed"})`, () => {
  let servers: RunningServer[] = [];
  let nginx: RunningNginx | undefined;
  const via = (server: RunningServer, mode: Mode) => `${nginx!.url}/${server.runtime}/${mode}`;

  before(async () => {
    if (NGINX === undefined) return;
    servers = await startServers(RUNTIMES_UNDER_TEST);
    const routes: ProxyRoute[] = servers.flatMap((server) =>
      (Object.keys(MODES) as Mode[]).map((mode) => ({
        prefix: `/${server.runtime}/${mode}/`,
        upstreamPort: Number(new URL(server.url).port),
        directives: [...MODES[mode]],
      }))
    );
    nginx = await startNginx(routes);
    console.log(`${NGINX} on ${nginx.url} (pid ${nginx.pid}), proxy_buffering on (default)`);
  });
  after(async () => {
    await nginx?.stop();
    await stopAll(servers);
  });

  it(`delivers each event within ${MAX_LAG_MS} ms of its timestamp, HTTP/1.0 and 1.1 upstream`, async () => {
    if (skipWithoutNginx()) return;
    await onEach(servers, async (server) => {
      const direct = await fetch(`${server.url}${TICKS}`);
      const accel = direct.headers.get("x-accel-buffering");
      await direct.body?.cancel();
      for (const mode of ["h10", "h11"] as const) {
        const read = await readStream(`${via(server, mode)}${TICKS}`, { timeoutMs: 10_000 });
        const lagMs = lags(read);
        console.log(
          `${server.runtime} ${mode}: ${read.status}, ${read.events.length} events, ` +
            `lag (ms) ${lagMs.join(" ")}; the server's X-Accel-Buffering: ${accel}`,
        );
        assert.equal(read.status, 200);
        assert.equal(read.outcome, "end");
        assert.equal(lagMs.length, 8);
        for (const lag of lagMs) assert.ok(lag < MAX_LAG_MS, `${mode}: an event ${lag} ms late`);
      }
      assert.equal(accel, "no");
    });
  });

  it("control: with X-Accel-Buffering ignored, nginx holds back a close-delimited body", async () => {
    if (skipWithoutNginx()) return;
    await onEach(servers, async (server) => {
      // What the server answers nginx's HTTP/1.0 request with: nginx 1.22
      // buffers a close-delimited body, but passes chunks on as they come.
      const direct = await exchange({
        port: Number(new URL(server.url).port),
        request: `GET ${TICKS} HTTP/1.0\r\nhost: 127.0.0.1\r\n\r\n`,
        streamMs: 300,
      });
      const chunked = direct.headers.get("transfer-encoding")?.includes("chunked") ?? false;
      const read = await readStream(`${via(server, "ignore")}${TICKS}`, { timeoutMs: 10_000 });
      const lagMs = lags(read);
      console.log(
        `${server.runtime} ignore: ${read.status}, ${read.events.length} events, lag (ms) ` +
          `${lagMs.join(" ")}; the server answers HTTP/1.0 with "${direct.statusLine}" and a ` +
          `${chunked ? "CHUNKED" : "close-delimited"} body`,
      );
      assert.equal(read.status, 200);
      assert.equal(lagMs.length, 8);
      if (chunked) {
        // workerd (wrangler dev) sends chunked framing even to HTTP/1.0, which
        // HTTP/1.0 does not have: nginx then streams it whatever the header says.
        assert.ok(lagMs.every((lag) => lag < MAX_LAG_MS), "chunks pass through nginx at once");
      } else {
        assert.ok(lagMs[0] > 1_000, "the first event should have waited for the end (about 2 s)");
      }
    });
  });

  it("delivers the fast burst whole, paced and reader-driven", async () => {
    if (skipWithoutNginx()) return;
    await onEach(servers, async (server) => {
      for (const mode of ["h10", "h11"] as const) {
        for (const path of ["/stream/fast", "/stream/fast?interval=0"]) {
          const read = await readStream(`${via(server, mode)}${path}`, { timeoutMs: 15_000 });
          const seqs = read.events.slice(0, -1).map((event) => JSON.parse(event.data).seq);
          const last = read.events[read.events.length - 1];
          console.log(
            `${server.runtime} ${mode} ${path}: ${read.outcome}, ${read.events.length} events, ` +
              `last ${last?.event} ${last?.data}`,
          );
          assert.equal(read.outcome, "end", `${mode} ${path}`);
          assert.deepEqual(seqs, Array.from({ length: 100 }, (_, i) => i), `${mode} ${path}`);
          assert.equal(last.id, "100");
          assert.equal(last.event, "done");
          assert.equal(last.data, "complete");
        }
      }
    });
  });

  it(`passes a client disconnect on to the server (open streams back to 0 within ${DISCONNECT_SEEN_MS / 1000} s)`, async () => {
    if (skipWithoutNginx()) return;
    await onEach(servers, async (server) => {
      for (const mode of ["h10", "h11"] as const) {
        const port = Number(new URL(nginx!.url).port);
        const stream = await holdStream(port, `/${server.runtime}/${mode}/events?interval=200`);
        const gotEvent = await stream.waitFor((text) => text.includes("\n\n"), 5_000);
        const openBefore = await streamsOpen(server.url);
        stream.close();
        const zero = await timeUntil(() => streamsOpen(server.url), 0, DISCONNECT_SEEN_MS);
        console.log(
          `${server.runtime} ${mode}: first event ${gotEvent}; open streams ${openBefore} -> ` +
            `${zero.value} ${zero.ms} ms after the client left nginx`,
        );
        assert.equal(stream.status, 200);
        assert.ok(gotEvent);
        assert.equal(openBefore, 1);
        assert.equal(zero.value, 0, `${mode}: the server still streams to nginx`);
      }
    });
  });
});
