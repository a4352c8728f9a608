/**
 * Churn (issue 5): 10 000 cycles of connect → first event → disconnect per
 * runtime, Deno, Bun and workerd at once. Afterwards every stream opened was
 * closed exactly once (metrics and log agree), `sse_streams_open` is back to
 * 0, no timer of a closed stream still does work (the event counters stand
 * still), and under Deno and Bun the process exits on SIGTERM with code 0
 * within 2 s, without a forced kill.
 *
 * `CHURN_CYCLES=<n>` changes the count per runtime (default 10 000).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { metric, type RunningServer, startServers, stopAll, streamsOpen } from "./_server.ts";
import { onEach, runPool, runtimesFromEnv, sleep, summary, timeUntil } from "./_load.ts";
import { exchange } from "./_raw_exchange.ts";
import { mib, rssBytes, serverProcessId } from "./_proc.ts";

const RUNTIMES_UNDER_TEST = runtimesFromEnv();
const CYCLES = Number(process.env.CHURN_CYCLES ?? 10_000);
// Connections in flight per runtime (three runtimes at once).
const CONCURRENCY = 32;
const PATH = "/stream/fast";
// Generous for a loaded machine: the first event is due at once.
const FIRST_EVENT_MS = 10_000;
// Deno and Bun see a disconnect at once; workerd at the stream's next write
// (50 ms here), and some it drops silently: those hold a slot until the
// registry's sweep finds their timer overdue (2–5 s). At workerd's pace
// that is hundreds of slots at once; workerd's default cap (512: the memory of
// an isolate is unknown to it) is not what this test is about, so every
// server gets room for them. The cap has its own test (limits_test.ts).
const STALL_TIMEOUT_MS = 3_000;
const MAX_STREAMS = 20_000;
const BACK_TO_ZERO_MS = 10_000;
// Long enough for any timer of a /stream/fast stream (every 50 ms) to fire
// many times over, were one left running.
const QUIET_MS = 1_500;
const EXIT_MS = 2_000;

describe("churn", () => {
  let servers: RunningServer[] = [];
  before(async () => {
    servers = await startServers(RUNTIMES_UNDER_TEST, {
      env: { STALL_TIMEOUT_MS: String(STALL_TIMEOUT_MS), MAX_STREAMS: String(MAX_STREAMS) },
    });
  });
  after(() => stopAll(servers));

  it(`${CYCLES} connect → first event → disconnect cycles: all closed once, nothing left running`, async () => {
    await onEach(servers, async (server) => {
      const pid = serverProcessId(server);
      const port = Number(new URL(server.url).port);
      const rssBefore = rssBytes(pid);
      const failures = new Map<string, number>();
      const firstEventMs: number[] = [];
      const started = Date.now();
      await runPool(CYCLES, CONCURRENCY, async () => {
        const cycle = await exchange({
          port,
          request: `GET ${PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`,
          streamMs: FIRST_EVENT_MS,
          streamDone: (body) => body.includes("\n\n"),
          timeoutMs: FIRST_EVENT_MS + 5_000,
        });
        const body = cycle.body.toString();
        if (cycle.status === 200 && cycle.end === "stopped" && /^id: 0\ndata: /.test(body)) {
          firstEventMs.push(cycle.ms);
        } else {
          const what = `${cycle.status} ${cycle.end} ${cycle.error ?? ""} ${body.slice(0, 40)}`;
          failures.set(what, (failures.get(what) ?? 0) + 1);
        }
      });
      const churnMs = Date.now() - started;
      const zero = await timeUntil(() => streamsOpen(server.url), 0, BACK_TO_ZERO_MS);
      const events = () =>
        Promise.all([
          metric(server.url, `sse_events_total{path="${PATH}"}`),
          metric(server.url, `sse_events_dropped_total{path="${PATH}"}`),
        ]);
      const countersThen = await events();
      await sleep(QUIET_MS);
      const countersLater = await events();
      const opened = await metric(server.url, `sse_streams_total{path="${PATH}"}`);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const closedByReason = [
        ...text.matchAll(/^sse_disconnects_total\{path="\/stream\/fast",reason="(\w+)"\} (\d+)$/gm),
      ]
        .map((m) => [m[1], Number(m[2])] as const);
      const closed = closedByReason.reduce((sum, [, n]) => sum + n, 0);
      const log = server.log();
      const openLines = log.split('"stream open"').length - 1;
      const closeLines = log.split('"stream closed"').length - 1;
      const { median, max } = summary(firstEventMs);
      console.log(
        `${server.runtime}: ${CYCLES} cycles in ${churnMs} ms (first event after median ` +
          `${median} ms, max ${max} ms); failed ${CYCLES - firstEventMs.length} ` +
          `${
            JSON.stringify([...failures].slice(0, 3))
          }; streams opened ${opened}, closed ${closed} ` +
          `[${
            closedByReason.map(([reason, n]) => `${reason}=${n}`).join(" ")
          }]; log: ${openLines} ` +
          `open, ${closeLines} closed; sse_streams_open 0 after ${zero.ms} ms (${zero.value}); ` +
          `events ${countersThen.join("/")} -> ${countersLater.join("/")} (sent/dropped) over ` +
          `${QUIET_MS} ms; RSS ${mib(rssBefore)} -> ${mib(rssBytes(pid))} MiB`,
      );
      assert.equal(firstEventMs.length, CYCLES, "every cycle got its first event");
      assert.equal(zero.value, 0, `streams still open ${BACK_TO_ZERO_MS} ms after the churn`);
      assert.equal(opened, CYCLES);
      assert.equal(closed, opened, "every stream closed exactly once (metrics)");
      assert.equal(closeLines, openLines, "one close line per open line (log)");
      assert.deepEqual(countersLater, countersThen, "no timer of a closed stream still runs");

      if (server.runtime === "workerd") return; // No signals there: stop() ends it.
      const signalled = Date.now();
      process.kill(server.pid, "SIGTERM");
      const code = await Promise.race([
        server.exited,
        sleep(EXIT_MS * 2).then(() => "still running"),
      ]);
      const exitMs = Date.now() - signalled;
      console.log(`${server.runtime}: SIGTERM after the churn: exit ${code} in ${exitMs} ms`);
      assert.equal(code, 0);
      assert.ok(exitMs < EXIT_MS, `exit took ${exitMs} ms`);
      assert.match(server.log(), /"shutting down" signal=SIGTERM streams_closed=0/);
    });
  });
});
