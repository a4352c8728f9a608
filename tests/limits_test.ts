/**
 * The server's limits under attack (issue 5): the `MAX_STREAMS` cap, the
 * stall timeout for clients that stop reading (with events dropped, not
 * buffered, meanwhile), graceful shutdown on SIGTERM and SIGINT, and idle
 * keepalive (heartbeats).
 *
 * Cap and stall run under Deno, Bun and workerd at once, each server started
 * with `MAX_STREAMS=3` and `STALL_TIMEOUT_MS=3000`. Shutdown runs under Deno
 * and Bun (workerd has no signals), four servers at once. The heartbeat
 * streams are held for 45 s on servers of their own, from the start of the
 * file, while the other tests run.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import {
  metric,
  type RunningServer,
  startServer,
  startServers,
  stopAll,
  streamsOpen,
} from "./_server.ts";
import { onEach, runtimesFromEnv, sleep, timeUntil } from "./_load.ts";
import {
  type Exchange,
  exchange,
  type HeldStream,
  holdStream,
  openConnection,
} from "./_raw_exchange.ts";

const RUNTIMES_UNDER_TEST = runtimesFromEnv();
const MAX_STREAMS = 3;
const STALL_TIMEOUT_MS = 3_000;
// How long a stalled stream may take to be closed: the stall timeout, plus
// the time the kernel's socket buffers take to fill (they hold a few MiB on
// loopback before the runtime stops reading the stream), plus slack for a
// shared 2-core machine.
const STALL_CLOSE_MS = STALL_TIMEOUT_MS + 12_000;
// workerd notices a client that left at the stream's next write; the streams
// held here write every 200 ms. Generous for a loaded machine.
const CLOSE_SEEN_MS = 5_000;
// The figure for a graceful exit. The server exits 250 ms after the
// signal, so 2 s leaves room for a loaded machine.
const SHUTDOWN_EXIT_MS = 2_000;

const portOf = (server: RunningServer) => Number(new URL(server.url).port);
const closedLines = (server: RunningServer, reason: string) =>
  server.log().split("\n").filter((line) =>
    line.includes('"stream closed"') && line.includes(` reason=${reason} `)
  );

// Idle keepalive: the figure is 45 s, over four times Bun's idle
// timeout (10 s), which closes connections that stay quiet.
const HOLD_MS = 45_000;
const QUIET = "/events?interval=60000&delay=60000";
const QUIET_CASES = [
  // The default heartbeat, 15 s from the start: at 15 s, 30 s and (just about) 45 s.
  { target: QUIET, atLeast: 2 },
  // Every 4 s: 11 in 45 s; at least 9 leaves room for a late timer or two.
  { target: `${QUIET}&heartbeat=4000`, atLeast: 9 },
];

/** What holding one quiet stream for {@linkcode HOLD_MS} saw. */
interface QuietHold {
  case: typeof QUIET_CASES[number];
  status: number;
  outcome: string;
  heartbeats: number;
  /** Seconds from the start at which each heartbeat was seen. */
  seenAt: number[];
  events: number;
  text: string;
}

/** Holds every quiet case on `server` for {@linkcode HOLD_MS}, noting each heartbeat's arrival. */
async function holdQuietStreams(server: RunningServer): Promise<QuietHold[]> {
  const port = portOf(server);
  const streams = await Promise.all(QUIET_CASES.map((c) => holdStream(port, c.target)));
  const started = Date.now();
  const seenAt = streams.map(() => [] as number[]);
  const poll = setInterval(() => {
    streams.forEach((stream, i) => {
      const n = stream.text().split(": heartbeat").length - 1;
      while (seenAt[i].length < n) seenAt[i].push(Math.round((Date.now() - started) / 100) / 10);
    });
  }, 100);
  const outcomes = await Promise.all(
    streams.map((stream) =>
      Promise.race([stream.ended, new Promise<string>((r) => setTimeout(r, HOLD_MS, "open"))])
    ),
  );
  clearInterval(poll);
  for (const stream of streams) stream.close();
  return streams.map((stream, i) => ({
    case: QUIET_CASES[i],
    status: stream.status,
    outcome: outcomes[i],
    heartbeats: stream.text().split(": heartbeat").length - 1,
    seenAt: seenAt[i],
    events: (stream.text().match(/^id: /gm) ?? []).length,
    text: stream.text(),
  }));
}

describe("limits", () => {
  let quietServers: RunningServer[] = [];
  const holds = new Map<string, Promise<QuietHold[]>>();
  before(async () => {
    quietServers = await startServers(RUNTIMES_UNDER_TEST);
    for (const server of quietServers) {
      const hold = holdQuietStreams(server);
      hold.catch(() => {}); // Awaited (and reported) by the last test.
      holds.set(server.runtime, hold);
    }
  });
  after(() => stopAll(quietServers));

  describe("the stream cap and the stall timeout", () => {
    let servers: RunningServer[] = [];
    before(async () => {
      servers = await startServers(RUNTIMES_UNDER_TEST, {
        env: { MAX_STREAMS: String(MAX_STREAMS), STALL_TIMEOUT_MS: String(STALL_TIMEOUT_MS) },
      });
    });
    after(() => stopAll(servers));

    it(`refuses stream ${MAX_STREAMS + 1} with 503, Retry-After and JSON, counts it, and frees a slot on disconnect`, async () => {
      await onEach(servers, async (server) => {
        const port = portOf(server);
        const held: HeldStream[] = [];
        try {
          for (let i = 0; i < MAX_STREAMS; i++) {
            const stream = await holdStream(port, "/events?interval=200");
            assert.equal(stream.status, 200);
            held.push(stream);
          }
          assert.equal(
            (await timeUntil(() => streamsOpen(server.url), MAX_STREAMS, 5_000)).value,
            3,
          );
          const rejectedBefore = await metric(server.url, "sse_rejected_total");
          // The cap is per process, not per path.
          for (const path of ["/events", "/stream/fast", "/stream?interval=0"]) {
            const refused = await exchange({
              port,
              request: `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`,
            });
            assert.equal(refused.status, 503, `${path}: ${refused.body}`);
            assert.match(refused.headers.get("retry-after") ?? "", /^\d+$/, `${path}: Retry-After`);
            assert.equal(refused.headers.get("content-type"), "application/json");
            assert.deepEqual(JSON.parse(refused.body.toString()), {
              error: "too many open streams",
              limit: MAX_STREAMS,
            });
          }
          const rejectedAfter = await metric(server.url, "sse_rejected_total");
          // Non-stream routes are not capped.
          for (const path of ["/health", "/metrics", "/"]) {
            const response = await fetch(server.url + path);
            await response.body?.cancel();
            assert.equal(response.status, 200, path);
          }
          held.shift()!.close();
          const freed = await timeUntil(
            () => streamsOpen(server.url),
            MAX_STREAMS - 1,
            CLOSE_SEEN_MS,
          );
          const again = await holdStream(port, "/events?interval=200");
          held.push(again);
          console.log(
            `${server.runtime}: cap ${MAX_STREAMS}: 3 refused with 503, sse_rejected_total ` +
              `${rejectedBefore} -> ${rejectedAfter}; a disconnect freed a slot in ${freed.ms} ms; ` +
              `next stream got ${again.status}`,
          );
          assert.equal(rejectedAfter - rejectedBefore, 3);
          assert.equal(freed.value, MAX_STREAMS - 1);
          assert.equal(again.status, 200);
        } finally {
          for (const stream of held) stream.close();
        }
        const open = await timeUntil(() => streamsOpen(server.url), 0, CLOSE_SEEN_MS);
        assert.equal(open.value, 0, "streams left open after the clients left");
      });
    });

    it(`closes a stream whose client reads nothing for STALL_TIMEOUT_MS (${STALL_TIMEOUT_MS} ms), dropping paced events meanwhile`, async () => {
      await onEach(servers, async (server) => {
        const port = portOf(server);
        const stalledBefore = closedLines(server, "stalled").length;
        const droppedBefore = await metric(server.url, 'sse_events_dropped_total{path="/events"}');
        const started = Date.now();
        // Reader-driven and paced: both must give up on a reader that stopped.
        const burst = await holdStream(port, "/stream?interval=0&size=4096", {
          pauseAfterHead: true,
          discardBody: true,
        });
        const paced = await holdStream(port, "/events?interval=5&size=16384", {
          pauseAfterHead: true,
          discardBody: true,
        });
        try {
          const closed = await timeUntil(() => streamsOpen(server.url), 0, STALL_CLOSE_MS, 250);
          const dropped = await metric(server.url, 'sse_events_dropped_total{path="/events"}') -
            droppedBefore;
          const stalled = closedLines(server, "stalled").slice(stalledBefore);
          console.log(
            `${server.runtime}: 2 paused clients; open streams ${closed.value} after ` +
              `${Date.now() - started} ms; stalled closes ${stalled.length}; paced events ` +
              `dropped ${dropped}; client bytes before pausing: ${burst.bytes()} + ${paced.bytes()}`,
          );
          for (const line of stalled) console.log(`  ${line.slice(0, 200)}`);
          assert.equal(closed.value, 0, `stalled streams still open after ${STALL_CLOSE_MS} ms`);
          assert.equal(stalled.length, 2, "both close with reason=stalled, and say so in the log");
          assert.ok(stalled.some((line) => line.includes("path=/stream ")));
          assert.ok(stalled.some((line) => line.includes("path=/events ")));
          assert.ok(dropped > 0, "a paced stream skips events its reader cannot take");
          for (const path of ["/stream", "/events"]) {
            const series = `sse_disconnects_total{path="${path}",reason="stalled"}`;
            assert.ok(await metric(server.url, series) >= 1, series);
          }
        } finally {
          burst.close();
          paced.close();
        }
      });
    });

    it("keeps a slow reader that reads now and then (a control: the stall clock resets on reading)", async () => {
      await onEach(servers, async (server) => {
        const stalledBefore = closedLines(server, "stalled").length;
        const stream = await holdStream(portOf(server), "/stream?interval=0&size=4096", {
          pauseAfterHead: true,
          discardBody: true,
        });
        try {
          // Read for a moment every second, for well over twice the stall timeout.
          for (let i = 0; i < 7; i++) {
            await sleep(1_000);
            stream.resume();
            await sleep(50);
            stream.pause();
          }
          const open = await streamsOpen(server.url);
          console.log(
            `${server.runtime}: a client reading 50 ms a second for 7 s received ` +
              `${stream.bytes()} bytes; stream still open: ${open === 1}`,
          );
          assert.equal(open, 1, "a reader that reads is not stalled");
          assert.equal(closedLines(server, "stalled").length, stalledBefore);
        } finally {
          stream.close();
        }
        assert.equal((await timeUntil(() => streamsOpen(server.url), 0, CLOSE_SEEN_MS)).value, 0);
      });
    });
  });

  describe("graceful shutdown (Deno and Bun)", () => {
    const cases = (["deno", "bun"] as const).filter((runtime) =>
      RUNTIMES_UNDER_TEST.includes(runtime)
    ).flatMap((runtime) => (["SIGTERM", "SIGINT"] as const).map((signal) => ({ runtime, signal })));
    let servers: RunningServer[] = [];
    before(async () => {
      servers = await Promise.all(cases.map((c) => startServer(c.runtime)));
    });
    after(() => stopAll(servers));

    it("sends every stream retry: and a last comment, ends it cleanly, refuses new streams, exits 0 within 2 s", async () => {
      const runs = cases.map((c, i) => ({
        ...c,
        server: servers[i],
        runtime: `${c.runtime} ${c.signal}`,
      }));
      await onEach(runs, async ({ server, signal }) => {
        const port = portOf(server);
        const paths = [
          "/events?interval=100",
          "/stream?interval=50&eol=crlf",
          "/events?delay=60000",
        ];
        const held = await Promise.all(paths.map((path) => holdStream(port, path)));
        assert.equal((await timeUntil(() => streamsOpen(server.url), 3, 5_000)).value, 3);
        // A connection accepted before the signal, to ask for a stream during
        // shutdown even once the server has stopped accepting connections.
        const kept = await openConnection(port);
        const warmup = await kept.send("GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
        assert.equal(warmup.status, 200);
        const signalledAt = Date.now();
        process.kill(server.pid, signal);
        await sleep(50);
        // A stream asked for during shutdown: 503, or no connection at all.
        const [late, lateKept] = await Promise.all([
          exchange({
            port,
            request: "GET /events HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
            timeoutMs: 5_000,
          }),
          kept.send("GET /events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n", { timeoutMs: 5_000 }),
        ]);
        kept.close();
        const ends = await Promise.all(held.map((stream) => stream.ended));
        const code = await server.exited;
        const exitMs = Date.now() - signalledAt;
        const saw = (response: Exchange) =>
          response.status ?? `${response.end}${response.error ? " " + response.error : ""}`;
        console.log(
          `${server.runtime} ${signal}: 3 streams ended ${ends.join(", ")}; a stream asked for ` +
            `during shutdown got ${saw(late)} (new connection), ${saw(lateKept)} (kept-alive ` +
            `connection); exit code ${code} after ${exitMs} ms`,
        );
        for (const [i, stream] of held.entries()) {
          assert.equal(ends[i], "complete", `${paths[i]}: a clean end of body`);
          const eol = paths[i].includes("crlf") ? "\r\n" : "\n";
          const tail = `retry: 3000${eol}: server shutting down${eol}${eol}`;
          assert.ok(
            stream.text().endsWith(tail),
            `${paths[i]} ends with ${JSON.stringify(stream.text().slice(-80))}`,
          );
        }
        for (const response of [late, lateKept]) {
          if (response.status !== undefined) {
            assert.equal(response.status, 503);
            assert.equal(JSON.parse(response.body.toString()).error, "server is shutting down");
          } else {
            assert.ok(["error", "closed"].includes(response.end), `late request: ${response.end}`);
          }
        }
        assert.equal(code, 0);
        assert.ok(exitMs < SHUTDOWN_EXIT_MS, `exited after ${exitMs} ms`);
        // Every stream opened was closed, each once: no stream (and no timer of one) left behind.
        const log = server.log();
        const opened = [...log.matchAll(/"stream open" stream=(\d+)/g)].map((m) => m[1]).sort();
        const closed = [...log.matchAll(/"stream closed" stream=(\d+)/g)].map((m) => m[1]).sort();
        assert.deepEqual(closed, opened);
        assert.equal(closedLines(server, "shutdown").length, 3);
        assert.match(log, new RegExp(`"shutting down" signal=${signal} streams_closed=3`));
      });
    });
  });

  it(`keeps a quiet stream open on heartbeats for ${HOLD_MS / 1000} s under every runtime (Bun: past its idle timeout)`, async () => {
    await onEach(quietServers, async (server) => {
      for (const hold of await holds.get(server.runtime)!) {
        const { target, atLeast } = hold.case;
        console.log(
          `${server.runtime}: ${target} held ${HOLD_MS / 1000} s: ${hold.outcome}; ` +
            `${hold.heartbeats} heartbeats (at ~${
              hold.seenAt.join(", ")
            } s); ${hold.events} events`,
        );
        assert.equal(hold.status, 200);
        assert.equal(hold.outcome, "open", `${target}: the connection ended early`);
        assert.ok(
          hold.heartbeats >= atLeast,
          `${target}: ${hold.heartbeats} heartbeats, want >= ${atLeast}`,
        );
        assert.ok(
          hold.text.startsWith(": first event in 60000 ms\n\n"),
          JSON.stringify(hold.text.slice(0, 60)),
        );
        assert.equal(hold.events, 0, "no event is due within the hold");
      }
    });
  });
});
