/**
 * Unit tests of `handlers/stream.ts`: `handleStream` called directly with a
 * fake peer, no network. The presets against the specification, random valid
 * parameter sets against the reference model, refusals, the `status`
 * parameter, resumption, the stream cap, and what reaches the stream plan.
 *
 * Replay the random cases with `SEED=<printed seed> deno test -A tests/stream_test.ts`.
 */

import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { createParser } from "eventsource-parser";
import { DEFAULT_HEARTBEAT_MS, handleStream, STREAM_PRESETS } from "../handlers/stream.ts";
import { applySettings, DEFAULT_SETTINGS } from "../lib/settings.ts";
import { registry } from "../lib/stream_registry.ts";
import { type CapturedLog, captureLog } from "./_log.ts";
import { END_OF_INPUT } from "./_sse.ts";
import {
  assertMatchesModel,
  caseHeaders,
  caseTarget,
  describeCase,
  expectationOf,
  type ObservedStream,
  PRESET_SPECS,
  randomCase,
  seededRandom,
  STREAM_PATHS,
  type StreamPath,
} from "./_stream_model.ts";

const SEED = process.env.SEED === undefined
  ? Math.floor(Math.random() * 2 ** 32)
  : Number(process.env.SEED);
// In process, cases are cheap: more of them than over HTTP.
const CASES = Number(process.env.CASES ?? 60);
const CLIENT = "192.0.2.7:5000";
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

// captureLog takes console.log and console.error; figures go to console.info.
const report = (text: string) => console.info(`  ${text}`);

/** A peer that counts how often the handler lifted the idle timeout. */
function fakePeer() {
  const peer = {
    address: CLIENT as string | undefined,
    keepAlives: 0,
    keepAlive() {
      peer.keepAlives++;
    },
  };
  return peer;
}

/** Calls `handleStream` for `target` (path and query) as the router would. */
function call(
  target: string,
  init: { headers?: Record<string, string>; method?: string } = {},
) {
  const url = new URL(`http://localhost${target}`);
  const preset = STREAM_PRESETS.find((p) => p.path === url.pathname);
  assert.ok(preset, `no preset for ${url.pathname}`);
  const peer = fakePeer();
  const request = new Request(url, { headers: init.headers, method: init.method ?? "GET" });
  const response = handleStream(request, url, preset, peer);
  return { response, peer };
}

/** Streams opened so far on every stream path. */
function streamsTotal(): number {
  return STREAM_PATHS.reduce((sum, path) => sum + registry.stats(path).total, 0);
}

/**
 * Reads a stream body the way the WHATWG parser does, until it ends, breaks,
 * `limit` events arrived or `timeoutMs` passed (then cancels it).
 */
async function readBody(
  response: Response,
  startedAt: number,
  { limit = Infinity, timeoutMs = 10_000 } = {},
): Promise<ObservedStream> {
  const seen: ObservedStream = {
    status: response.status,
    contentType: response.headers.get("content-type"),
    events: [],
    comments: [],
    retry: undefined,
    raw: "",
    outcome: "end",
    startedAt,
  };
  if (response.body === null) return seen;
  const parser = createParser({
    onEvent: ({ id, event, data }) => void seen.events.push({ id, event, data }),
    onComment: (comment) => void seen.comments.push(comment),
    onRetry: (ms) => void (seen.retry = ms),
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reader.cancel();
  }, timeoutMs);
  try {
    while (seen.events.length < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      seen.raw += text;
      parser.feed(text);
    }
    if (seen.events.length >= limit || timedOut) {
      seen.outcome = "stopped";
      await reader.cancel();
    }
  } catch {
    seen.outcome = "error";
  } finally {
    clearTimeout(timer);
  }
  // A body that ended or broke has delivered every line it had: complete a
  // trailing CR (see END_OF_INPUT) in both cases.
  if (seen.outcome !== "stopped") parser.feed(END_OF_INPUT);
  return seen;
}

/** Opens `target` and reads it whole. */
async function readAll(target: string, headers: Record<string, string> = {}) {
  const startedAt = Date.now();
  const { response, peer } = call(target, { headers });
  return { seen: await readBody(response, startedAt), peer };
}

const ids = (seen: ObservedStream) => seen.events.map((e) => e.id);
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

describe("handleStream", () => {
  let log: CapturedLog;
  beforeEach(() => void (log = captureLog()));
  afterEach(() => {
    log.restore();
    applySettings(DEFAULT_SETTINGS);
  });

  it("has the three presets the specification describes", () => {
    assert.deepEqual(STREAM_PRESETS.map((p) => p.path), STREAM_PATHS);
    const ts = "2026-01-02T03:04:05.678Z";
    for (const preset of STREAM_PRESETS) {
      const spec = PRESET_SPECS[preset.path as StreamPath];
      assert.equal(preset.firstId, spec.firstId, preset.path);
      assert.equal(preset.count, spec.count, preset.path);
      assert.equal(preset.interval, spec.interval, preset.path);
      assert.equal(preset.event, spec.event, preset.path);
      for (const id of [0, 1, 42, MAX_SAFE]) {
        assert.equal(preset.payload(id, ts), spec.json(id, ts), `${preset.path} ${id}`);
      }
    }
    assert.equal(DEFAULT_HEARTBEAT_MS, 15_000);
  });

  it("random valid parameter sets give exactly the model's events", async () => {
    report(`SEED=${SEED} CASES=${CASES} (replay with these env variables)`);
    const random = seededRandom(SEED);
    const cases = Array.from({ length: CASES }, () => randomCase(random));
    const openBefore = registry.openCount;
    const dropped = () => STREAM_PATHS.reduce((sum, path) => sum + registry.stats(path).dropped, 0);
    const droppedBefore = dropped();
    const failures: string[] = [];
    let events = 0;
    let skipped = 0;
    const started = Date.now();
    // All at once: in process they only share timers.
    await Promise.all(cases.map(async (c) => {
      const { seen, peer } = await readAll(caseTarget(c), caseHeaders(c));
      events += seen.events.length;
      try {
        skipped += assertMatchesModel(c, seen);
        const opens = expectationOf(c).status === 200 ? 1 : 0;
        assert.equal(peer.keepAlives, opens, `${describeCase(c)}: keepAlive calls`);
      } catch (error) {
        failures.push(`${(error as Error).message}\n  replay: ${describeCase(c)}`);
      }
    }));
    report(
      `${cases.length} cases, ${events} events in ${Date.now() - started} ms; ` +
        `${skipped} ids skipped (reader lagged)`,
    );
    assert.equal(failures.length, 0, `${failures.length} cases failed:\n${failures.join("\n")}`);
    assert.equal(registry.openCount, openBefore, "every stream closed");
    assert.equal(dropped() - droppedBefore, skipped, "every skipped id was counted as dropped");
  });

  it("delay with interval=0: each event once, whole, then one done", async () => {
    // After the delay a timer, not a pull, sends the first burst, while the
    // reader already waits for data.
    for (
      // [target, data ids, done id (none: broken by fail_after)]
      const [target, want, doneId] of [
        ["/stream/fast?delay=5&interval=0&count=5", range(0, 4), 5],
        ["/stream/fast?delay=5&interval=0&count=5&chunk=7", range(0, 4), 5],
        ["/stream/fast?delay=5&interval=0&count=10&fail_after=3", range(0, 2), undefined],
        ["/stream/fast?delay=5&interval=0&count=1&lastEventId=0", [], 1],
      ] as const
    ) {
      const { seen } = await readAll(target);
      const expected = [...want, ...(doneId === undefined ? [] : [String(doneId)])];
      assert.deepEqual(ids(seen), expected, `${target}\n${JSON.stringify(seen.raw)}`);
      const closed = log.lines.filter((line) => line.includes('"stream closed"')).at(-1);
      assert.match(closed ?? "", new RegExp(` events=${want.length} `), `${target}: logged count`);
    }
  });

  it("refuses every bad value with a 400 naming it, before anything else", async () => {
    const bad: [string, string, string][] = [
      ["/events?interval=abc", "interval", "abc"],
      ["/events?interval=-1", "interval", "-1"],
      ["/events?count=0", "count", "0"],
      ["/events?count=1.0", "count", "1.0"],
      ["/events?delay=60001", "delay", "60001"],
      ["/events?heartbeat=300001", "heartbeat", "300001"],
      ["/events?size=01", "size", "01"],
      ["/events?lines=101", "lines", "101"],
      ["/events?chunk=65537", "chunk", "65537"],
      ["/events?fail_after=%2B1", "fail_after", "+1"],
      ["/events?eol=CRLF", "eol", "CRLF"],
      ["/events?event=a%0Ab", "event", "a\nb"],
      ["/events?event=a%00b", "event", "a\0b"],
      ["/events?count=1&count=01", "count", "01"],
      ["/events?lastEventId=1&lastEventId=2", "lastEventId", "2"],
      ["/events?nope=1", "nope", "1"],
      // A bad value wins over every other answer.
      ["/events?status=503&interval=x", "interval", "x"],
      ["/stream/fast?count=1&interval=x&lastEventId=500", "interval", "x"],
      ["/stream?size=1048576&chunk=15", "chunk", "15"],
    ];
    const totalBefore = streamsTotal();
    for (const [target, param, value] of bad) {
      for (const method of ["GET", "HEAD"]) {
        const { response, peer } = call(target, { method });
        assert.equal(response.status, 400, `${method} ${target}`);
        assert.equal(response.headers.get("content-type"), "application/json", target);
        assert.equal(response.headers.get("access-control-allow-origin"), "*", target);
        const body = await response.json();
        assert.deepEqual(Object.keys(body).sort(), ["error", "param", "value"], target);
        assert.deepEqual({ param: body.param, value: body.value }, { param, value }, target);
        assert.equal(peer.keepAlives, 0, target);
      }
    }
    assert.equal(streamsTotal(), totalBefore, "no stream opened");
    report(`${bad.length * 2} refusals checked`);
  });

  it("bounds chunk by size: no event may be cut into more than 65536 pieces", () => {
    // HEAD answers after every check but opens nothing.
    for (
      const [query, status] of [
        ["size=1048576&chunk=16", 200],
        ["size=1048576&chunk=15", 400],
        ["size=0&chunk=1", 200], // 256 bytes count as the floor of an event
        ["chunk=1", 200],
        ["size=65536&chunk=1", 200],
        ["size=65537&chunk=1", 400],
      ] as const
    ) {
      const { response } = call(`/stream?${query}`, { method: "HEAD" });
      assert.equal(response.status, status, query);
    }
  });

  it("answers the status parameter instead of a stream, for every status it allows", async () => {
    const totalBefore = streamsTotal();
    for (let status = 201; status <= 599; status++) {
      const { response, peer } = call(`/events?status=${status}`);
      assert.equal(response.status, status);
      assert.equal(peer.keepAlives, 0, `${status}: no stream`);
      assert.equal(response.headers.get("access-control-allow-origin"), "*", `${status}`);
      if ([204, 205, 304].includes(status)) {
        assert.equal(response.body, null, `${status}: no body`);
        continue;
      }
      assert.equal(response.headers.get("content-type"), "application/json", `${status}`);
      assert.deepEqual(await response.json(), {
        status,
        reason: "requested by the status parameter",
      });
      const retryAfter = status === 429 || status === 503 ? "1" : null;
      assert.equal(response.headers.get("retry-after"), retryAfter, `${status}: retry-after`);
    }
    assert.equal(streamsTotal(), totalBefore, "no stream opened");
    // status=200 is a stream; a status wins over a resume past the end.
    const { seen } = await readAll("/stream/fast?status=200&count=2&interval=0");
    assert.deepEqual(ids(seen), ["0", "1", "2"]);
    const { response } = call("/stream/fast?status=503", { headers: { "last-event-id": "100" } });
    assert.equal(response.status, 503);
  });

  it("resumes after Last-Event-ID, from the header or else the lastEventId parameter", async () => {
    const cases: [string, Record<string, string>, string[]][] = [
      ["/stream/fast?interval=0", { "last-event-id": "41" }, [...range(42, 99), "100"]],
      ["/stream/fast?interval=0&lastEventId=41", {}, [...range(42, 99), "100"]],
      ["/stream/fast?interval=0", { "last-event-id": "99" }, ["100"]],
      ["/stream/fast?interval=0&count=3", { "last-event-id": "0" }, ["1", "2", "3"]],
      ["/events?interval=0&count=3", { "last-event-id": "0" }, ["1", "2", "3", "4"]],
      ["/events?interval=0&count=5", { "last-event-id": "4" }, ["5", "6"]],
      ["/stream?interval=0&count=2&lastEventId=7", { "last-event-id": "1" }, ["2", "3"]],
      // The id space ends at 2^53 - 1: the stream ends cleanly there.
      ["/stream?interval=0", { "last-event-id": String(MAX_SAFE - 1) }, [String(MAX_SAFE)]],
    ];
    for (const [target, headers, want] of cases) {
      const { seen, peer } = await readAll(target, headers);
      const where = `${target} ${JSON.stringify(headers)}`;
      assert.equal(seen.outcome, "end", where);
      assert.deepEqual(ids(seen), want, where);
      assert.equal(peer.keepAlives, 1, where);
    }
    assert.ok(!log.lines.some((line) => line.includes("malformed")), "no warning");
  });

  it("answers 204 with the stream headers to a resume at or past the end", () => {
    const totalBefore = streamsTotal();
    for (
      const [target, last] of [
        ["/stream/fast", "100"],
        ["/stream/fast", "101"],
        ["/stream/fast?count=5", "5"],
        ["/events?count=5", "6"],
        ["/stream?count=1&lastEventId=2", undefined],
        ["/stream", String(MAX_SAFE)],
      ] as const
    ) {
      for (const method of ["GET", "HEAD"]) {
        const headers: Record<string, string> = last === undefined ? {} : { "last-event-id": last };
        const { response, peer } = call(target, { headers, method });
        assert.equal(response.status, 204, `${method} ${target} after ${last}`);
        assert.equal(response.body, null);
        assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
        assert.equal(peer.keepAlives, 0);
      }
    }
    assert.equal(streamsTotal(), totalBefore, "no stream opened");
  });

  it("ignores a malformed Last-Event-ID: starts afresh and warns once", async () => {
    const malformed = [
      "abc",
      "-1",
      "1.5",
      "9007199254740992",
      "1e3",
      "0x10",
      "01",
      "x".repeat(300),
    ];
    for (const value of malformed) {
      for (const via of ["header", "query"] as const) {
        const before = log.lines.length;
        const target = `/events?interval=0&count=2${
          via === "query" ? `&lastEventId=${encodeURIComponent(value)}` : ""
        }`;
        const { seen } = await readAll(target, via === "header" ? { "last-event-id": value } : {});
        const where = `${via} ${value.slice(0, 20)}`;
        assert.equal(seen.status, 200, where);
        assert.deepEqual(ids(seen), ["1", "2", "3"], where);
        const warnings = log.lines.slice(before).filter((line) => line.includes("malformed"));
        assert.equal(warnings.length, 1, where);
        assert.match(warnings[0], / warn "ignoring malformed Last-Event-ID; starting afresh" /);
        assert.match(warnings[0], / path=\/events /);
        // Echoed, but no more than 100 characters of it.
        assert.ok(warnings[0].includes(`value=${value.slice(0, 100)}`), warnings[0]);
        assert.ok(!warnings[0].includes(value.slice(0, 101)) || value.length <= 100, where);
      }
    }
  });

  it("refuses streams beyond MAX_STREAMS with 503, yet answers what opens nothing", async () => {
    applySettings({ ...DEFAULT_SETTINGS, maxStreams: 1 });
    const first = call("/events?interval=60000");
    assert.equal(first.response.status, 200);
    const reader = first.response.body!.getReader();
    try {
      const rejected = registry.rejected;
      const refused = call("/stream?interval=60000");
      assert.equal(refused.response.status, 503);
      assert.equal(refused.response.headers.get("retry-after"), "5");
      assert.deepEqual(await refused.response.json(), { error: "too many open streams", limit: 1 });
      assert.equal(refused.peer.keepAlives, 0);
      assert.equal(registry.rejected, rejected + 1);
      // Refusals, status answers and finished resumes open nothing; HEAD
      // answers what GET would (503 here) without counting a refusal.
      assert.equal(call("/stream?count=x").response.status, 400);
      assert.equal(call("/stream?status=418").response.status, 418);
      assert.equal(
        call("/stream/fast", { headers: { "last-event-id": "100" } }).response.status,
        204,
      );
      assert.equal(call("/stream", { method: "HEAD" }).response.status, 503);
      assert.equal(registry.rejected, rejected + 1);
    } finally {
      await reader.cancel();
    }
    const again = call("/stream?interval=0&count=1");
    assert.equal(again.response.status, 200, "room again once the first stream closed");
    await again.response.body!.cancel();
  });

  it("refuses new streams with 503 while the server drains", async () => {
    registry.draining = true;
    try {
      const { response } = call("/events");
      assert.equal(response.status, 503);
      assert.equal((await response.json()).error, "server is shutting down");
    } finally {
      registry.draining = false;
    }
  });

  it("answers HEAD with the stream headers, opening nothing", () => {
    const totalBefore = streamsTotal();
    for (const path of STREAM_PATHS) {
      const { response, peer } = call(`${path}?count=3`, { method: "HEAD" });
      assert.equal(response.status, 200);
      assert.equal(response.body, null);
      assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
      assert.equal(response.headers.get("cache-control"), "no-cache, no-transform");
      assert.equal(peer.keepAlives, 0);
    }
    assert.equal(streamsTotal(), totalBefore);
  });

  it("ignores names starting with _ and accepts a parameter repeated with one value", async () => {
    const { seen } = await readAll("/stream?_=1&_cache=x&count=2&count=2&interval=0&_=2");
    assert.deepEqual(ids(seen), ["1", "2", "3"]);
  });

  it("logs the client and first id when a stream opens", async () => {
    const before = log.lines.length;
    await readAll("/stream?count=10&interval=0", { "last-event-id": "4" });
    const open = log.lines.slice(before).find((line) => line.includes('"stream open"'));
    assert.match(open ?? "", / path=\/stream client=192\.0\.2\.7:5000 first_id=5/);
  });

  it("paces by the preset's interval and heartbeats after quiet periods", async () => {
    // Lower bounds only: a timer never fires early, a loaded machine may be late.
    const started = Date.now();
    const [ticks, fast, quiet] = await Promise.all([
      readAll("/events?count=2"),
      readAll("/stream/fast?count=3"),
      (async () => {
        const startedAt = Date.now();
        const { response } = call("/stream?interval=60000&heartbeat=1000");
        return await readBody(response, startedAt, { timeoutMs: 2_500 });
      })(),
    ]);
    const times = (seen: ObservedStream, key: string) =>
      seen.events.slice(0, -1).map((e) => Date.parse(JSON.parse(e.data)[key]));
    const [t1, t2] = times(ticks.seen, "timestamp");
    const fastTimes = times(fast.seen, "ts");
    report(
      `/events ticks ${t2 - t1} ms apart; /stream/fast ${fastTimes[1] - fastTimes[0]}, ${
        fastTimes[2] - fastTimes[1]
      } ms; heartbeats in 2.5 s: ${quiet.comments.length}; all in ${Date.now() - started} ms`,
    );
    assert.ok(t2 - t1 >= 1_000 - 1, `/events: ${t2 - t1} ms`);
    assert.ok(fastTimes[2] - fastTimes[0] >= 100 - 1, "/stream/fast: 50 ms apart");
    // One event at once, then nothing for 60 s but a heartbeat every second.
    assert.deepEqual(ids(quiet), ["1"]);
    assert.ok(quiet.comments.length >= 1 && quiet.comments.length <= 2, `${quiet.comments}`);
    assert.ok(quiet.comments.every((c) => c === "heartbeat"));
  });
});
