/**
 * Wire correctness and resumption over real HTTP, under Deno, Bun and workerd
 * at once (issue 3): random valid parameter sets read back by the WHATWG
 * parser (`eventsource-parser`) and compared with a reference model;
 * reconnection, `retry:` and `Last-Event-ID` with a spec-compliant
 * EventSource (`eventsource`); refusals of bad values; the `status`
 * parameter; headers that arrive before a delayed first event.
 *
 * The three servers start once. Each test runs its check on the three
 * runtimes concurrently and reports every runtime that failed, by name.
 *
 * Replay the random cases with `SEED=<printed seed> deno test -A tests/conformance_test.ts`;
 * `CASES=<n>` changes how many run per runtime (default 25).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { EventSource, type FetchLike } from "eventsource";
import { createParser } from "eventsource-parser";
import {
  eventually,
  metric,
  type RunningServer,
  type Runtime,
  RUNTIMES,
  startServers,
  stopAll,
  streamsOpen,
} from "./_server.ts";
import { END_OF_INPUT, readStream, type StreamRead } from "./_sse.ts";
import { rawRequest } from "./_raw_http.ts";
import {
  assertLineEndings,
  assertMatchesModel,
  caseHeaders,
  caseTarget,
  describeCase,
  expectationOf,
  randomCase,
  seededRandom,
  STREAM_PATHS,
  type StreamCase,
} from "./_stream_model.ts";

const SEED = process.env.SEED === undefined
  ? Math.floor(Math.random() * 2 ** 32)
  : Number(process.env.SEED);
const CASES_PER_RUNTIME = Number(process.env.CASES ?? 25);
// Random cases in flight per runtime: enough to overlap the short sleeps of
// paced streams, few enough for a 2-core machine shared with other tests.
const CASE_CONCURRENCY = 4;
// Generous: the slowest random case takes about 1 s unloaded.
const CASE_TIMEOUT_MS = 20_000;

// workerd finishes an errored body with a clean chunked end
// (cloudflare/workerd#6818, open), so fail_after cannot break the connection
// there: no JavaScript can make it reset. The fail_after test asserts the
// break on the other runtimes and, on these, the known upstream behaviour (so
// it fails, and says so, the day upstream changes); the random cases count it.
const ENDS_ERRORED_BODIES_CLEANLY: ReadonlySet<Runtime> = new Set(["workerd"]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `check` against every server concurrently; fails naming each runtime
 * whose check threw, after all have finished.
 */
async function onEveryRuntime(
  servers: readonly RunningServer[],
  check: (server: RunningServer) => Promise<void>,
): Promise<void> {
  const results = await Promise.allSettled(servers.map(check));
  const failures = results.flatMap((result, i) =>
    result.status === "rejected"
      ? [`--- ${servers[i].runtime} ---\n${describeError(result.reason)}`]
      : []
  );
  console.log(
    "  " +
      servers.map((s, i) => `${s.runtime}: ${results[i].status === "fulfilled" ? "ok" : "FAIL"}`)
        .join(", "),
  );
  if (failures.length > 0) assert.fail(failures.join("\n"));
}

function describeError(error: unknown): string {
  if (error instanceof AggregateError) return error.errors.map(describeError).join("\n");
  return error instanceof Error ? error.message : String(error);
}

/** A counter such as `sse_streams_total`, summed over every stream path. */
async function pathsTotal(url: string, name: string): Promise<number> {
  const values = await Promise.all(
    STREAM_PATHS.map((path) => metric(url, `${name}{path="${path}"}`)),
  );
  return values.reduce((sum, value) => sum + value, 0);
}

/** Log lines of `server` that contain every one of `parts`. */
function logLines(server: RunningServer, ...parts: string[]): string[] {
  return server.log().split("\n").filter((line) => parts.every((part) => line.includes(part)));
}

/** Reads one case over HTTP into what the model checks. */
async function readCase(server: RunningServer, c: StreamCase): Promise<StreamRead> {
  return await readStream(server.url + caseTarget(c), {
    headers: caseHeaders(c),
    timeoutMs: CASE_TIMEOUT_MS,
  });
}

/**
 * The events, comments and retry of a body that broke off. eventsource-parser
 * 3.1 holds a CR that ends the input (it could start a CRLF) and readStream
 * only completes it when the body ends cleanly: after a break with eol=cr the
 * last event would be lost in the parser, not on the wire. Parse the text as
 * received, completed with END_OF_INPUT.
 */
function parseBrokenBody(raw: string): Pick<StreamRead, "events" | "comments" | "retry"> {
  const parsed: Pick<StreamRead, "events" | "comments" | "retry"> = {
    events: [],
    comments: [],
    retry: undefined,
  };
  const parser = createParser({
    onEvent: ({ id, event, data }) => void parsed.events.push({ id, event, data, at: 0 }),
    onComment: (comment) => void parsed.comments.push(comment),
    onRetry: (ms) => void (parsed.retry = ms),
  });
  parser.feed(raw);
  parser.feed(END_OF_INPUT);
  return parsed;
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(lanes);
}

/** One connection EventSource made, as our fetch saw it. */
interface Connection {
  at: number;
  lastEventId: string | null;
  status: number;
}

/** What an EventSource saw until it closed for good (or we gave up). */
interface Followed {
  events: { type: string; lastEventId: string; data: string }[];
  connections: Connection[];
  /** Times of `error` events, i.e. breaks and the final 204. */
  errors: number[];
  closed: boolean;
}

/**
 * Follows `url` with the `eventsource` package until EventSource reaches
 * CLOSED (a 204) or `timeoutMs` passes, recording each (re)connection.
 */
function follow(url: string, eventTypes: string[], timeoutMs: number): Promise<Followed> {
  const seen: Followed = { events: [], connections: [], errors: [], closed: false };
  const recordingFetch: FetchLike = async (input, init) => {
    const connection: Connection = {
      at: Date.now(),
      lastEventId: init.headers["Last-Event-ID"] ?? null,
      status: 0,
    };
    seen.connections.push(connection);
    const response = await fetch(input, init);
    connection.status = response.status;
    return response;
  };
  const source = new EventSource(url, { fetch: recordingFetch });
  for (const type of ["message", ...eventTypes]) {
    source.addEventListener(type, (event) => {
      const message = event as MessageEvent<string>;
      seen.events.push({ type, lastEventId: message.lastEventId, data: message.data });
    });
  }
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      source.close();
      resolve(seen);
    };
    const timer = setTimeout(finish, timeoutMs);
    source.addEventListener("error", () => {
      seen.errors.push(Date.now());
      if (source.readyState === EventSource.CLOSED) {
        seen.closed = true;
        finish();
      }
    });
  });
}

describe("conformance over HTTP, every runtime at once", () => {
  let servers: RunningServer[] = [];
  before(async () => {
    servers = await startServers(RUNTIMES);
    console.log(`servers: ${servers.map((s) => `${s.runtime} ${s.url}`).join(", ")}`);
  });
  after(() => stopAll(servers));

  it("random valid parameter sets parse back to exactly the model's events", async () => {
    console.log(`  SEED=${SEED} CASES=${CASES_PER_RUNTIME} (replay with these env variables)`);
    const random = seededRandom(SEED);
    const cases = Array.from({ length: CASES_PER_RUNTIME }, () => randomCase(random));
    const kinds = cases.map((c) => expectationOf(c));
    console.log(
      `  cases per runtime: ${cases.length}; ending in fail_after: ${
        kinds.filter((k) => k.outcome === "error").length
      }; 204 (resumed past done): ${kinds.filter((k) => k.status === 204).length}; resumed: ${
        cases.filter((c) =>
          c.lastEventIdHeader !== undefined || c.query.some(([n]) => n === "lastEventId")
        )
          .length
      }`,
    );
    await onEveryRuntime(servers, async (server) => {
      const opened = logLines(server, '"stream open"').length;
      const closed = logLines(server, '"stream closed"').length;
      const droppedBefore = await pathsTotal(server.url, "sse_events_dropped_total");
      const failures: string[] = [];
      let events = 0;
      let bytes = 0;
      let cleanBreaks = 0;
      let skipped = 0;
      const started = Date.now();
      await pool(cases, CASE_CONCURRENCY, async (c) => {
        const startedAt = Date.now();
        const read = await readCase(server, c);
        const parsed = read.outcome === "error" ? parseBrokenBody(read.raw) : read;
        let outcome = read.outcome;
        // There a break shows as a clean end without done.
        if (
          outcome === "end" && parsed.events.at(-1)?.event !== "done" &&
          expectationOf(c).outcome === "error" && ENDS_ERRORED_BODIES_CLEANLY.has(server.runtime)
        ) {
          cleanBreaks++;
          outcome = "error";
        }
        events += parsed.events.length;
        bytes += read.raw.length;
        try {
          skipped += assertMatchesModel(c, {
            status: read.status,
            contentType: read.headers.get("content-type"),
            events: parsed.events,
            comments: parsed.comments,
            retry: parsed.retry,
            raw: read.raw,
            outcome,
            startedAt,
          });
        } catch (error) {
          failures.push(
            `${describeError(error)}\n  replay: ${server.url}${describeCase(c)}` +
              ` (outcome ${read.outcome}${read.error ? `: ${read.error}` : ""})`,
          );
        }
      });
      console.log(
        `  ${server.runtime}: ${cases.length} cases, ${events} events, ${bytes} bytes in ${
          Date.now() - started
        } ms; ${failures.length} failed; ${skipped} ids skipped (reader lagged)${
          cleanBreaks > 0
            ? `; ${cleanBreaks} fail_after streams ended cleanly instead of breaking (known, see above)`
            : ""
        }`,
      );
      if (failures.length > 0) {
        throw new Error(
          `${failures.length} of ${cases.length} cases failed:\n` +
            failures.slice(0, 5).join("\n"),
        );
      }
      assert.equal(
        await pathsTotal(server.url, "sse_events_dropped_total") - droppedBefore,
        skipped,
        "the server counted every skipped id as dropped, and dropped no other",
      );
      // Every stream that opened has ended, and said so exactly once. Log
      // lines reach us through a pipe (and wrangler) after the responses:
      // poll for them.
      assert.equal(await eventually(() => streamsOpen(server.url), 0, 5_000), 0, "streams open");
      const wantOpened = cases.filter((c) => expectationOf(c).status === 200).length;
      const linesSince = (message: string, before: number) => () =>
        Promise.resolve(logLines(server, message).length - before);
      const newlyOpened = await eventually(linesSince('"stream open"', opened), wantOpened, 5_000);
      assert.equal(newlyOpened, wantOpened, "'stream open' lines");
      const newlyClosed = await eventually(
        linesSince('"stream closed"', closed),
        wantOpened,
        5_000,
      );
      // Checked again after a pause: a second line for one stream would come late.
      await sleep(200);
      assert.equal(await linesSince('"stream closed"', closed)(), newlyClosed);
      assert.equal(newlyClosed, wantOpened, "one 'stream closed' line per stream");
    });
  });

  it("eol: every line of the raw body ends with the chosen ending, whatever the chunking", async () => {
    await onEveryRuntime(servers, async (server) => {
      for (const eol of ["lf", "crlf", "cr"] as const) {
        for (const chunk of ["", "&chunk=1", "&chunk=7"]) {
          const target = `/events?count=3&interval=0&eol=${eol}&lines=3&retry=10&event=e${chunk}`;
          const raw = await rawRequest(server.url + target, { timeoutMs: 10_000 });
          assert.equal(raw.complete, true, `${target}: clean end`);
          const ending = ({ lf: "\n", crlf: "\r\n", cr: "\r" } as const)[eol];
          assertLineEndings(raw.body, ending, target);
          // The whole body, line by line: retry first, then three events of
          // exactly three data lines each, then done. (Where the JSON is
          // broken into lines is the payload module's business.)
          const e = JSON.stringify(ending).slice(1, -1);
          const event = (id: number) => `id: ${id}${e}event: e${e}(?:data: [^\\r\\n]*${e}){3}${e}`;
          const shape = new RegExp(
            `^retry: 10${e}${event(1)}${event(2)}${
              event(3)
            }id: 4${e}event: done${e}data: complete${e}${e}$`,
          );
          assert.match(raw.body, shape, target);
        }
      }
    });
  });

  it("delay with interval=0: each event once, in order, whole, then one done", async () => {
    // After the delay a timer, not a pull, sends the first burst, while the
    // runtime's reader is already waiting for data.
    await onEveryRuntime(servers, async (server) => {
      for (
        // [target, data ids, done id (none: broken by fail_after)]
        const [target, ids, doneId] of [
          ["/stream/fast?delay=20&interval=0&count=5", range(0, 4), 5],
          ["/stream/fast?delay=20&interval=0&count=5&chunk=7", range(0, 4), 5],
          ["/stream/fast?delay=20&interval=0&count=10&fail_after=3", range(0, 2), undefined],
          ["/stream/fast?delay=20&interval=0&count=1&lastEventId=0", [], 1],
        ] as const
      ) {
        const read = await readStream(server.url + target, { timeoutMs: 10_000 });
        const got = read.events.map((e) => `${e.id}:${e.event ?? ""}`);
        const want = [
          ...ids.map((id) => `${id}:`),
          ...(doneId === undefined ? [] : [`${doneId}:done`]),
        ];
        assert.deepEqual(got, want, `${target}\n${JSON.stringify(read.raw)}`);
      }
    });
  });

  it("sends the headers at once when the first event is delayed (delay=3000)", async () => {
    // 1.5 s is half the delay: a runtime that held the headers back until the
    // first event would miss it by far, a loaded machine would not.
    const HEADERS_WITHIN_MS = 1_500;
    await onEveryRuntime(servers, async (server) => {
      for (const target of ["/events?delay=3000", "/stream?delay=3000&retry=100"]) {
        const read = await readStream(server.url + target, { timeoutMs: HEADERS_WITHIN_MS });
        console.log(`  ${server.runtime} ${target}: headers after ${read.headersMs} ms`);
        assert.equal(read.status, 200, `${target}: headers within ${HEADERS_WITHIN_MS} ms`);
        assert.ok(read.headersMs < HEADERS_WITHIN_MS, `${target}: ${read.headersMs} ms`);
        assert.equal(read.events.length, 0, `${target}: no event before the delay`);
        if (target.includes("retry")) assert.equal(read.retry, 100);
        else assert.deepEqual(read.comments, ["first event in 3000 ms"]);
      }
      assert.equal(await eventually(() => streamsOpen(server.url), 0, 5_000), 0);
    });
  });

  it("fail_after: the N events arrive, then the connection breaks without done", async () => {
    await onEveryRuntime(servers, async (server) => {
      for (
        const target of ["/stream?fail_after=3&interval=20", "/stream/fast?fail_after=7&interval=0"]
      ) {
        const read = await readStream(server.url + target, { timeoutMs: 10_000 });
        if (ENDS_ERRORED_BODIES_CLEANLY.has(server.runtime)) {
          const raw = await rawRequest(server.url + target, { timeoutMs: 10_000 });
          assert.equal(
            raw.complete,
            true,
            `${target}: ${server.runtime} now breaks errored bodies: cloudflare/workerd#6818 ` +
              "fixed? Remove it from ENDS_ERRORED_BODIES_CLEANLY.",
          );
          console.log(`${server.runtime}: ${target} ended with a clean chunked end (workerd#6818)`);
        } else assert.equal(read.outcome, "error", `${target}: outcome (${read.error})`);
        const n = Number(/fail_after=(\d+)/.exec(target)![1]);
        assert.equal(read.events.length, n, `${target}: events before the break`);
        assert.ok(read.events.every((e) => e.event !== "done"), `${target}: no done`);
      }
      await server.waitForLog(/"stream closed" .*path=\/stream\/fast .*reason=fail_after/, 5_000);
    });
  });

  it("the status parameter answers with that status instead of a stream", async () => {
    const statuses = [200, 201, 204, 205, 301, 304, 400, 404, 418, 429, 500, 503, 599];
    await onEveryRuntime(servers, async (server) => {
      const before = await pathsTotal(server.url, "sse_streams_total");
      for (const status of statuses) {
        for (const path of STREAM_PATHS) {
          const target = `${path}?status=${status}&count=1&interval=0`;
          const response = await rawRequest(server.url + target, { timeoutMs: 10_000 });
          assert.equal(response.status, status, target);
          if (status === 200) {
            assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
            assert.match(response.body, /event: done/, target);
          } else if ([204, 205, 304].includes(status)) {
            assert.equal(response.body, "", `${target}: no body`);
          } else {
            assert.equal(response.headers.get("content-type"), "application/json", target);
            assert.deepEqual(JSON.parse(response.body), {
              status,
              reason: "requested by the status parameter",
            }, target);
            assert.equal(
              response.headers.get("retry-after"),
              status === 429 || status === 503 ? "1" : undefined,
              `${target}: retry-after`,
            );
          }
        }
      }
      // Only the status=200 requests opened streams.
      assert.equal(await pathsTotal(server.url, "sse_streams_total") - before, STREAM_PATHS.length);
    });
  });

  it("refuses bad values with 400 JSON naming the parameter, and opens no stream", async () => {
    // [query, param, value as echoed]
    const bad: [string, string, string][] = [
      ["interval=abc", "interval", "abc"],
      ["interval=", "interval", ""],
      ["interval=-1", "interval", "-1"],
      ["interval=1.5", "interval", "1.5"],
      ["interval=1e3", "interval", "1e3"],
      ["interval=010", "interval", "010"],
      ["interval=3600001", "interval", "3600001"],
      ["count=0", "count", "0"],
      ["count=10000001", "count", "10000001"],
      ["delay=60001", "delay", "60001"],
      ["retry=-5", "retry", "-5"],
      ["heartbeat=999", "heartbeat", "999"],
      ["size=1048577", "size", "1048577"],
      ["lines=0", "lines", "0"],
      ["lines=101", "lines", "101"],
      ["chunk=0", "chunk", "0"],
      ["chunk=65537", "chunk", "65537"],
      ["fail_after=0", "fail_after", "0"],
      ["status=199", "status", "199"],
      ["status=600", "status", "600"],
      ["eol=LF", "eol", "LF"],
      ["eol=crlf%20", "eol", "crlf "],
      ["event=a%0Db", "event", "a\rb"],
      ["event=a%0Ab", "event", "a\nb"],
      ["event=a%0D%0Adata:%20x", "event", "a\r\ndata: x"],
      ["event=with%20space", "event", "with space"],
      ["event=%C3%A9", "event", "é"],
      ["event=", "event", ""],
      [`event=${"x".repeat(65)}`, "event", "x".repeat(65)],
      ["count=1&count=2", "count", "2"],
      ["eol=lf&eol=cr", "eol", "cr"],
      ["intervall=10", "intervall", "10"],
      ["Interval=10", "Interval", "10"],
      ["size=1048576&chunk=15", "chunk", "15"],
    ];
    await onEveryRuntime(servers, async (server) => {
      const before = await pathsTotal(server.url, "sse_streams_total");
      for (const [query, param, value] of bad) {
        for (const path of STREAM_PATHS) {
          const response = await fetch(`${server.url}${path}?${query}`);
          const target = `${path}?${query}`;
          assert.equal(response.status, 400, target);
          assert.equal(response.headers.get("content-type"), "application/json", target);
          const body = await response.json();
          assert.deepEqual(Object.keys(body).sort(), ["error", "param", "value"], target);
          assert.equal(typeof body.error, "string", target);
          assert.equal(body.param, param, target);
          assert.equal(body.value, value, target);
        }
      }
      assert.equal(await pathsTotal(server.url, "sse_streams_total"), before, "no stream opened");
      console.log(`  ${server.runtime}: ${bad.length * STREAM_PATHS.length} requests refused`);
    });
  });

  it("EventSource resumes /stream across fail_after breaks: ids 1..N once each, then 204", async () => {
    // interval=0: a paced stream skips an event its reader has not taken
    // within an interval, which a loaded machine causes now and then, and a
    // skipped id would move every reconnect. Pulled streams never skip.
    await onEveryRuntime(servers, async (server) => {
      const url = `${server.url}/stream?count=12&interval=0&fail_after=5&retry=50`;
      const seen = await follow(url, ["done"], 20_000);
      assert.ok(seen.closed, "EventSource reached CLOSED");
      const data = seen.events.filter((e) => e.type === "message");
      assert.deepEqual(data.map((e) => e.lastEventId), range(1, 12).map(String), "ids");
      assert.deepEqual(data.map((e) => JSON.parse(e.data).id), range(1, 12), "data ids");
      assert.deepEqual(
        seen.events.filter((e) => e.type === "done"),
        [{ type: "done", lastEventId: "13", data: "complete" }],
      );
      assert.deepEqual(seen.connections.map((c) => c.lastEventId), [null, "5", "10", "13"]);
      assert.deepEqual(seen.connections.map((c) => c.status), [200, 200, 200, 204]);
      // No replay once closed: wait several retry periods for a stray reconnect.
      await sleep(300);
      assert.equal(seen.connections.length, 4, "no reconnection after 204");
      console.log(
        `  ${server.runtime}: reconnects at ${gaps(seen).join(", ")} ms after each break`,
      );
    });
  });

  it("EventSource resumes /stream/fast across fail_after breaks: seq 0..99, done 100, then 204", async () => {
    await onEveryRuntime(servers, async (server) => {
      const url = `${server.url}/stream/fast?interval=0&fail_after=30&retry=50`;
      const seen = await follow(url, ["done"], 30_000);
      assert.ok(seen.closed, "EventSource reached CLOSED");
      const data = seen.events.filter((e) => e.type === "message");
      assert.deepEqual(data.map((e) => e.lastEventId), range(0, 99).map(String), "ids");
      assert.deepEqual(data.map((e) => JSON.parse(e.data).seq), range(0, 99), "data seq");
      assert.deepEqual(
        seen.events.filter((e) => e.type === "done"),
        [{ type: "done", lastEventId: "100", data: "complete" }],
      );
      assert.deepEqual(
        seen.connections.map((c) => c.lastEventId),
        [null, "29", "59", "89", "100"],
      );
      assert.deepEqual(seen.connections.map((c) => c.status), [200, 200, 200, 200, 204]);
      await sleep(300);
      assert.equal(seen.connections.length, 5, "no reconnection after 204");
    });
  });

  it("EventSource waits the retry: delay before reconnecting", async () => {
    // The default is 3000 ms: under 2500 ms shows `retry: 400` was honoured,
    // with 2 s to spare for a loaded machine. A timer is never early.
    const RETRY_MS = 400;
    await onEveryRuntime(servers, async (server) => {
      const url = `${server.url}/stream?count=3&interval=0&fail_after=2&retry=${RETRY_MS}`;
      const seen = await follow(url, ["done"], 20_000);
      assert.ok(seen.closed, "EventSource reached CLOSED");
      const waits = gaps(seen);
      console.log(
        `  ${server.runtime}: retry=${RETRY_MS}, reconnected after ${waits.join(", ")} ms`,
      );
      assert.equal(waits.length, 2, "one reconnect after the break, one after done");
      for (const wait of waits) {
        assert.ok(wait >= RETRY_MS - 5 && wait < 2_500, `reconnected after ${wait} ms`);
      }
    });
  });

  it("resumes from a Last-Event-ID header on /stream/fast: 41 → 42, 99 → done, ≥100 → 204", async () => {
    await onEveryRuntime(servers, async (server) => {
      const fast = `${server.url}/stream/fast`;
      const first = await readStream(fast, { headers: { "last-event-id": "41" }, limit: 1 });
      assert.equal(first.events[0]?.id, "42", "the preset as is, resumed");
      assert.equal(JSON.parse(first.events[0].data).seq, 42);

      const rest = await readStream(`${fast}?interval=0`, { headers: { "last-event-id": "41" } });
      assert.equal(rest.outcome, "end");
      assert.deepEqual(rest.events.map((e) => e.id), [...range(42, 99), 100].map(String));

      const last = await readStream(fast, { headers: { "last-event-id": "99" } });
      assert.equal(last.outcome, "end");
      assert.deepEqual(
        last.events.map(({ id, event, data }) => ({ id, event, data })),
        [{ id: "100", event: "done", data: "complete" }],
      );

      for (const id of ["100", "101", "5000", String(Number.MAX_SAFE_INTEGER)]) {
        const response = await rawRequest(fast, { headers: { "last-event-id": id } });
        assert.equal(response.status, 204, `Last-Event-ID: ${id}`);
        assert.equal(response.body, "", `Last-Event-ID: ${id}`);
      }
    });
  });

  it("resumes /events from the header or the lastEventId parameter; the header wins", async () => {
    await onEveryRuntime(servers, async (server) => {
      const events = `${server.url}/events?interval=10`;
      const firstIds = async (url: string, headers: Record<string, string> = {}) =>
        (await readStream(url, { headers, limit: 2 })).events.map((e) => e.id);
      assert.deepEqual(await firstIds(events, { "last-event-id": "41" }), ["42", "43"]);
      assert.deepEqual(await firstIds(`${events}&lastEventId=41`), ["42", "43"]);
      assert.deepEqual(
        await firstIds(`${events}&lastEventId=7`, { "last-event-id": "41" }),
        ["42", "43"],
      );
      assert.deepEqual(
        await firstIds(`${events}&lastEventId=41`, { "last-event-id": "7" }),
        ["8", "9"],
      );
      // A malformed parameter does not matter when a good header is there.
      const warnings = logLines(server, "ignoring malformed Last-Event-ID").length;
      assert.deepEqual(
        await firstIds(`${events}&lastEventId=abc`, { "last-event-id": "41" }),
        ["42", "43"],
      );
      assert.equal(logLines(server, "ignoring malformed Last-Event-ID").length, warnings);
    });
  });

  it("ignores a malformed Last-Event-ID: starts afresh, one warn line, never a 4xx", async () => {
    const malformed = ["abc", "-1", "1.5", "9007199254740992", "1e3"];
    await onEveryRuntime(servers, async (server) => {
      for (const value of malformed) {
        for (const via of ["header", "query"] as const) {
          const url = `${server.url}/events?interval=10${
            via === "query" ? `&lastEventId=${encodeURIComponent(value)}` : ""
          }`;
          const headers: Record<string, string> = via === "header"
            ? { "last-event-id": value }
            : {};
          const read = await readStream(url, { headers, limit: 1 });
          assert.equal(read.status, 200, `${via} ${value}`);
          assert.equal(read.events[0]?.id, "1", `${via} ${value}: starts afresh`);
        }
        // One line per request (header, then query). The server writes it
        // before answering, but the pipe may bring it to us a little later.
        const warnings = () =>
          logLines(server, "ignoring malformed Last-Event-ID").filter((line) =>
            line.split(" ").includes(`value=${value}`)
          );
        await eventually(() => Promise.resolve(warnings().length), 2, 3_000);
        const lines = warnings();
        assert.equal(lines.length, 2, `warn lines for ${value}:\n${lines.join("\n")}`);
        for (const line of lines) assert.match(line, / warn "ignoring malformed Last-Event-ID/);
      }
    });
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Ms from each break (an `error` event) to the reconnection that followed it. */
function gaps(seen: Followed): number[] {
  return seen.connections.slice(1).map((connection, i) => connection.at - seen.errors[i]);
}
