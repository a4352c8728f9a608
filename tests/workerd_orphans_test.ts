/**
 * Orphans on workerd (issue 5). workerd sees a client's disconnect only at
 * the stream's next write, and after an event written in several pieces
 * (`chunk`) it may fire neither `cancel()` nor the abort signal, and drop the
 * request's timers. Such streams must still end themselves: here 100 clients
 * disconnect mid-stream from `chunk=1` streams and `sse_streams_open` must be
 * back to 0 shortly after the stall timeout. The log says how each ended
 * (`reason=client detail=abort`, or `reason=orphaned` when the registry's
 * sweep found a stream whose timer would never fire again).
 *
 * Also: an idle stream (nothing to write for an hour) whose client left ends
 * at its next heartbeat; and the sweep must not mistake a stream that is
 * merely late — its isolate busy, its client reading — for an orphan: 100
 * reading clients of `chunk=1` streams at 10 events a second must all stay
 * connected (under workerd on this machine that load puts timers seconds
 * behind).
 *
 * Deno and Bun run the same attacks for comparison: they call `cancel()` at
 * once, and have no sweep.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type RunningServer, startServers, stopAll, streamsOpen } from "./_server.ts";
import { onEach, runPool, runtimesFromEnv, timeUntil } from "./_load.ts";
import { type HeldStream, holdStream } from "./_raw_exchange.ts";

const RUNTIMES_UNDER_TEST = runtimesFromEnv();
const CLIENTS = 100;
const STALL_TIMEOUT_MS = 3_000;
// With every stream orphaned no timer runs: one is swept 2 s after its timer
// was due (the stall check) and 4 s after any timer ran; the sweep runs at
// most once a second, when any code runs (here: our /metrics polls). Plus
// slack for a loaded machine.
const ORPHANS_GONE_MS = STALL_TIMEOUT_MS + 8_000;
const IDLE_HEARTBEAT_MS = 2_000;
// Every event written byte by byte. Two events a second keeps 100 such
// streams within what workerd serves on time on a shared 2-core machine
// (at 10 a second it falls seconds behind: see the last test).
const LEAVING = "/stream?interval=500&chunk=1";
const BUSY = "/stream?interval=100&chunk=1";
const BUSY_HOLD_MS = 8_000;

/** `reason[ detail]` of every "stream closed" line for `path` after line `from`. */
function closeReasons(server: RunningServer, path: string, from: number): Map<string, number> {
  const reasons = new Map<string, number>();
  for (const line of server.log().split("\n").slice(from)) {
    if (!line.includes('"stream closed"') || !line.includes(` path=${path} `)) continue;
    const reason = / reason=(\w+)/.exec(line)?.[1] ?? "?";
    const detail = / detail=("[^"]*"|\S+)/.exec(line)?.[1] ?? "";
    const key = `${reason}${detail ? " " + detail.replace(/ by \d+ ms/, "") : ""}`;
    reasons.set(key, (reasons.get(key) ?? 0) + 1);
  }
  return reasons;
}

const show = (reasons: Map<string, number>) =>
  [...reasons].map(([reason, n]) => `${reason}×${n}`).join(", ");

describe("streams whose client left", () => {
  let servers: RunningServer[] = [];
  before(async () => {
    servers = await startServers(RUNTIMES_UNDER_TEST, {
      env: { STALL_TIMEOUT_MS: String(STALL_TIMEOUT_MS) },
    });
  });
  after(() => stopAll(servers));

  it(`${CLIENTS} clients leave chunk=1 streams mid-stream: all end soon after the stall timeout`, async () => {
    await onEach(servers, async (server) => {
      const port = Number(new URL(server.url).port);
      const logFrom = server.log().split("\n").length;
      const clients: HeldStream[] = [];
      await runPool(CLIENTS, 20, async () => {
        clients.push(await holdStream(port, LEAVING));
      });
      // Mid-stream: a few events in, then all leave at once, some of them
      // in the middle of an event arriving byte by byte.
      const inFlow = await Promise.all(
        clients.map((client) => client.waitFor((text) => text.includes("id: 3\n"), 15_000)),
      );
      const open = await streamsOpen(server.url);
      for (const client of clients) client.close();
      const gone = await timeUntil(() => streamsOpen(server.url), 0, ORPHANS_GONE_MS);
      // wrangler relays workerd's log lines a moment later.
      const count = (reasons: Map<string, number>) =>
        [...reasons.values()].reduce((a, b) => a + b, 0);
      const logged = () => Promise.resolve(count(closeReasons(server, "/stream", logFrom)));
      await timeUntil(logged, CLIENTS, 3_000);
      const reasons = closeReasons(server, "/stream", logFrom);
      console.log(
        `${server.runtime}: ${open} streams open, ${inFlow.filter(Boolean).length} clients ` +
          `past id 3; all left; open ${gone.value} after ${gone.ms} ms ` +
          `(stall timeout ${STALL_TIMEOUT_MS} ms); ended by: ${show(reasons)}`,
      );
      assert.equal(inFlow.filter(Boolean).length, CLIENTS, "every client received events");
      assert.equal(open, CLIENTS, "no stream ended before its client left");
      assert.equal(gone.value, 0, `streams left open ${ORPHANS_GONE_MS} ms after the clients left`);
      assert.equal(count(reasons), CLIENTS, "each stream logged one close");
      assert.ok(
        [...reasons.keys()].every((reason) => /^(client|orphaned)/.test(reason)),
        `only client or orphaned closes: ${show(reasons)}`,
      );
    });
  });

  it(`an idle stream whose client left ends by its next heartbeat (heartbeat=${IDLE_HEARTBEAT_MS})`, async () => {
    await onEach(servers, async (server) => {
      const port = Number(new URL(server.url).port);
      const logFrom = server.log().split("\n").length;
      const target = `/events?interval=3600000&delay=60000&heartbeat=${IDLE_HEARTBEAT_MS}`;
      const clients = await Promise.all(Array.from({ length: 10 }, () => holdStream(port, target)));
      await Promise.all(clients.map((client) => client.waitFor((text) => text.length > 0, 5_000)));
      for (const client of clients) client.close();
      // The next write is the heartbeat; a runtime that drops the request's
      // timers leaves it to the sweep, a stall timeout later.
      const bound = IDLE_HEARTBEAT_MS + STALL_TIMEOUT_MS + 5_000;
      const gone = await timeUntil(() => streamsOpen(server.url), 0, bound);
      console.log(
        `${server.runtime}: 10 idle streams (interval 1 h, heartbeat ${IDLE_HEARTBEAT_MS} ms) ` +
          `left: open ${gone.value} after ${gone.ms} ms; ended by: ` +
          show(closeReasons(server, "/events", logFrom)),
      );
      assert.equal(gone.value, 0, `idle streams still open ${bound} ms after their clients left`);
    });
  });

  it(`keeps ${CLIENTS} busy chunk=1 streams whose clients are reading (no false orphans)`, async () => {
    await onEach(servers, async (server) => {
      const port = Number(new URL(server.url).port);
      const logFrom = server.log().split("\n").length;
      const clients: HeldStream[] = [];
      await runPool(CLIENTS, 20, async () => {
        clients.push(await holdStream(port, BUSY));
      });
      try {
        const ended = await Promise.race([
          Promise.all(clients.map((client) => client.ended)),
          new Promise((resolve) => setTimeout(resolve, BUSY_HOLD_MS)),
        ]);
        const stillOpen = (await Promise.all(
          clients.map((client) => Promise.race([client.ended, Promise.resolve("open")])),
        )).filter((end) => end === "open").length;
        const events = clients.map((client) => client.text().split("id: ").length - 1);
        console.log(
          `${server.runtime}: ${CLIENTS} clients reading ${BUSY} for ${BUSY_HOLD_MS} ms: ` +
            `${stillOpen} connections still open; events per client min ${Math.min(...events)} ` +
            `max ${Math.max(...events)} (${BUSY_HOLD_MS / 100} due); closed by the server: ` +
            (show(closeReasons(server, "/stream", logFrom)) || "none"),
        );
        assert.equal(ended, undefined, "the hold ended early: every stream ended");
        assert.equal(stillOpen, CLIENTS, "streams whose clients were reading were closed");
      } finally {
        for (const client of clients) client.close();
      }
    });
  });
});
