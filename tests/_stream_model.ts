/**
 * Test helper: a reference model of the stream endpoints, written from the
 * specification (not from `handlers/stream.ts`), a seeded generator of random
 * valid parameter sets, and the check that compares what a WHATWG parser read
 * back with what the model expects. Shared by `stream_test.ts` (in process)
 * and `conformance_test.ts` (over HTTP).
 *
 * @module
 */

import assert from "node:assert/strict";

/** The stream endpoints. */
export type StreamPath = "/events" | "/stream/fast" | "/stream";

/** What the specification says about one endpoint. */
export interface PresetSpec {
  firstId: number;
  /** Events before `done`; `undefined`: unbounded. */
  count: number | undefined;
  interval: number;
  /** The `event:` name of data events. */
  event: string | undefined;
  /** The data member holding the ISO time the event was sent. */
  timeKey: string;
  /** The JSON text of event `id` sent at `time`, before any shaping. */
  json(id: number, time: string): string;
}

/** The three presets, as the issue and README specify them. */
export const PRESET_SPECS: Readonly<Record<StreamPath, PresetSpec>> = {
  "/events": {
    firstId: 1,
    count: undefined,
    interval: 1000,
    event: "tick",
    timeKey: "timestamp",
    json: (id, time) => `{"id":${id},"timestamp":"${time}","message":"Event #${id}"}`,
  },
  "/stream/fast": {
    firstId: 0,
    count: 100,
    interval: 50,
    event: undefined,
    timeKey: "ts",
    json: (id, time) => `{"seq":${id},"ts":"${time}"}`,
  },
  "/stream": {
    firstId: 1,
    count: undefined,
    interval: 1000,
    event: undefined,
    timeKey: "ts",
    json: (id, time) => `{"id":${id},"ts":"${time}"}`,
  },
};

/** Every stream endpoint. */
export const STREAM_PATHS: readonly StreamPath[] = ["/events", "/stream/fast", "/stream"];

/** One request for a stream: path, query in order, and how it resumes. */
export interface StreamCase {
  path: StreamPath;
  /** Query parameters in the order they are sent (a name may repeat). */
  query: [string, string][];
  /** A `Last-Event-ID` header to send, if any. */
  lastEventIdHeader?: string;
}

/** The path and query of `c`, e.g. `/events?count=3&eol=cr`. */
export function caseTarget(c: StreamCase): string {
  const search = new URLSearchParams(c.query).toString();
  return search === "" ? c.path : `${c.path}?${search}`;
}

/** The request headers of `c`. */
export function caseHeaders(c: StreamCase): Record<string, string> {
  return c.lastEventIdHeader === undefined ? {} : { "last-event-id": c.lastEventIdHeader };
}

/** How to replay `c` by hand. */
export function describeCase(c: StreamCase): string {
  const header = c.lastEventIdHeader === undefined
    ? ""
    : ` with Last-Event-ID: ${c.lastEventIdHeader}`;
  return caseTarget(c) + header;
}

/** What the model says a request must produce. */
export interface Expectation {
  /** 200 (a stream) or 204 (resumed at or past the end). */
  status: 200 | 204;
  /** Ids of the data events, in order, when none is skipped. */
  ids: number[];
  /** The first data event's id (never skipped). */
  firstId: number;
  /** The id `done` carries; data ids are below it. */
  endId: number;
  /** The `event:` name of data events (`undefined`: none, i.e. "message"). */
  eventName: string | undefined;
  /** The `done` event's id, or `undefined` when the stream breaks before it. */
  doneId: number | undefined;
  /** `end`: a clean end after done; `error`: broken by fail_after. */
  outcome: "end" | "error";
  /** The `retry:` value, sent first. */
  retry: number | undefined;
  /** Comments the parser must report, in order. */
  comments: string[];
  /** Every line of the body ends with this. */
  eol: "\n" | "\r\n" | "\r";
  /** `data:` lines per data event. */
  lines: number;
  /** The padded size asked for (0: none). */
  size: number;
  /** Ms before the first event, and between events. */
  delay: number;
  interval: number;
}

const EOLS = { lf: "\n", crlf: "\r\n", cr: "\r" } as const;

/**
 * The model: what a valid `c` must yield. Resuming follows the spec: after
 * the client's last id, never before the preset's first; past `done`: 204.
 */
export function expectationOf(c: StreamCase): Expectation {
  const preset = PRESET_SPECS[c.path];
  const q = new Map(c.query.filter(([name]) => !name.startsWith("_")));
  const int = (name: string) => (q.has(name) ? Number(q.get(name)) : undefined);
  const count = int("count") ?? preset.count;
  const doneId = count === undefined ? undefined : preset.firstId + count;
  const resumeText = c.lastEventIdHeader ?? q.get("lastEventId");
  const resumeAfter = resumeText === undefined || resumeText === ""
    ? undefined
    : Number(resumeText);
  const firstId = resumeAfter === undefined
    ? preset.firstId
    : Math.max(preset.firstId, resumeAfter + 1);
  const retry = int("retry");
  const delay = int("delay") ?? 0;
  const base = {
    eventName: q.get("event") ?? preset.event,
    retry,
    comments: retry === undefined && delay > 0 ? [`first event in ${delay} ms`] : [],
    eol: EOLS[(q.get("eol") ?? "lf") as keyof typeof EOLS],
    lines: int("lines") ?? 1,
    size: int("size") ?? 0,
    delay,
    interval: int("interval") ?? preset.interval,
  };
  assert.ok(doneId !== undefined, "the model only covers bounded streams");
  if (firstId > doneId) {
    return {
      ...base,
      status: 204,
      ids: [],
      firstId,
      endId: doneId,
      doneId: undefined,
      outcome: "end",
      comments: [],
    };
  }
  const remaining = doneId - firstId;
  const failAfter = int("fail_after");
  const breaks = failAfter !== undefined && failAfter <= remaining;
  const sent = breaks ? failAfter : remaining;
  return {
    ...base,
    status: 200,
    ids: Array.from({ length: sent }, (_, i) => firstId + i),
    firstId,
    endId: doneId,
    doneId: breaks ? undefined : doneId,
    outcome: breaks ? "error" : "end",
  };
}

/** A small, fast, seedable PRNG (mulberry32) returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EVENT_NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-";

/**
 * A random valid parameter set that finishes fast: interval 0..20, count
 * 1..50 (or /stream/fast's 100 at interval ≤ 5), small delays. Sometimes it
 * also resumes (header or query), breaks (fail_after), repeats a parameter
 * with the same value, adds a `_` cache-buster or `status=200`.
 */
export function randomCase(random: () => number): StreamCase {
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const chance = (p: number) => random() < p;
  const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)];
  const path = pick(STREAM_PATHS);
  const preset = PRESET_SPECS[path];
  const query: [string, string][] = [];
  const add = (name: string, value: number | string) => query.push([name, String(value)]);

  const useDefaultCount = path === "/stream/fast" && chance(0.2);
  const count = useDefaultCount ? preset.count! : int(1, 50);
  if (!useDefaultCount) add("count", count);
  add("interval", useDefaultCount ? int(0, 5) : chance(0.25) ? 0 : int(1, 20));
  if (chance(0.5)) add("delay", int(0, 50));
  if (chance(0.5)) {
    add("event", Array.from({ length: int(1, 64) }, () => pick([...EVENT_NAME_CHARS])).join(""));
  }
  if (chance(0.3)) add("retry", int(0, 10_000));
  if (chance(0.2)) add("heartbeat", int(1_000, 300_000));
  if (chance(0.6)) add("size", int(0, 3_000));
  if (chance(0.6)) add("lines", int(1, 12));
  if (chance(0.7)) add("eol", pick(["lf", "crlf", "cr"]));
  if (chance(0.6)) add("chunk", int(1, 300));
  if (chance(0.25)) add("fail_after", int(1, count + 2));
  if (chance(0.1)) add("status", 200);
  if (chance(0.1)) add("_", int(0, 1_000_000));
  // Shuffle: order must not matter.
  for (let i = query.length - 1; i > 0; i--) {
    const j = int(0, i);
    [query[i], query[j]] = [query[j], query[i]];
  }
  if (query.length > 0 && chance(0.1)) query.push(pick(query)); // same value twice: accepted
  const c: StreamCase = { path, query };
  if (chance(0.25)) {
    // From "nothing seen" to one past done, which must give 204.
    const last = String(int(Math.max(0, preset.firstId - 1), preset.firstId + count + 1));
    if (chance(0.5)) c.lastEventIdHeader = last;
    else query.push(["lastEventId", last]);
  }
  return c;
}

/** What a reader saw of one response, whoever read it. */
export interface ObservedStream {
  status: number;
  contentType: string | null;
  events: { id: string | undefined; event: string | undefined; data: string }[];
  comments: string[];
  retry: number | undefined;
  /** The body text exactly as received. */
  raw: string;
  outcome: "end" | "stopped" | "error";
  /** `Date.now()` just before the request was made. */
  startedAt: number;
}

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
// What a pad member costs before its first filler byte.
const PAD_MEMBER = ',"pad":""';
// Event times are whole ms on both sides of one clock; allow a timer that
// fires a millisecond early or a clock read that rounds down.
const CLOCK_SLACK_MS = 2;

/**
 * Asserts that `seen` is exactly what the model expects for `c`: status,
 * ids, names, data values, padding, line counts, retry, comments, done,
 * how the body ended, every line ending in the raw bytes, and that no event
 * came before its time (a bound that load cannot break).
 *
 * A paced event is skipped when the reader has not taken the one before it
 * within an interval (slow readers cost bounded memory), and a loaded machine
 * makes any reader slow now and then. So ids may have gaps, never in the
 * first event: `fail_after` counts the events delivered, `done` follows the
 * last id, delivered or not. Returns how many ids were skipped, for the
 * caller to match against the server's `sse_events_dropped_total`: a gap the
 * server did not count is a lost event.
 */
export function assertMatchesModel(c: StreamCase, seen: ObservedStream): number {
  const want = expectationOf(c);
  const preset = PRESET_SPECS[c.path];
  const label = describeCase(c);
  assert.equal(seen.status, want.status, `${label}: status`);
  assert.equal(seen.contentType, "text/event-stream; charset=utf-8", `${label}: content-type`);
  if (want.status === 204) {
    assert.equal(seen.raw, "", `${label}: a 204 has no body`);
    return 0;
  }
  assert.equal(seen.retry, want.retry, `${label}: retry`);
  if (want.retry !== undefined) {
    assert.ok(seen.raw.startsWith(`retry: ${want.retry}${want.eol}`), `${label}: retry first`);
  }
  assert.deepEqual(seen.comments, want.comments, `${label}: comments`);

  const last = seen.events.at(-1);
  const sawDone = last?.event === "done" && last.data === "complete";
  const data = sawDone ? seen.events.slice(0, -1) : seen.events;
  const { firstId, endId } = want;
  const failAfter = c.query.find(([name]) => name === "fail_after")?.[1];
  const breaks = failAfter !== undefined && data.length === Number(failAfter);
  assert.equal(seen.outcome, breaks ? "error" : "end", `${label}: how the body ended`);
  let previous = firstId - 1;
  data.forEach((event, index) => {
    const id = Number(event.id);
    const where = `${label}: event ${index} (id ${event.id})`;
    assert.ok(
      index === 0 ? id === firstId : id > previous && id < endId,
      `${where}: id (after ${previous}, ids ${firstId}..${endId - 1})`,
    );
    previous = id;
    assert.equal(event.event, want.eventName, `${where}: event name`);
    const dataLines = event.data.split("\n");
    assert.equal(dataLines.length, want.lines, `${where}: data lines`);
    const value = JSON.parse(event.data);
    const time = String(value[preset.timeKey]);
    assert.match(time, ISO_UTC, `${where}: time`);
    // Spreading only puts line breaks between tokens, so without them the
    // text is the (padded) JSON on one line, and it parses to the same value.
    const text = dataLines.join("");
    assert.deepEqual(JSON.parse(text), value, `${where}: the lines join to the same JSON`);
    const plain = preset.json(id, time);
    if (want.size > plain.length) {
      // Exactly `size` bytes when a pad member fits; else just the member.
      const length = Math.max(want.size, plain.length + PAD_MEMBER.length);
      const pad = "x".repeat(length - plain.length - PAD_MEMBER.length);
      assert.equal(text, `${plain.slice(0, -1)},"pad":"${pad}"}`, `${where}: padded data`);
    } else {
      assert.equal(text, plain, `${where}: data`);
    }
    const at = Date.parse(time);
    const notBefore = seen.startedAt + want.delay + (id - firstId) * want.interval -
      CLOCK_SLACK_MS;
    assert.ok(at >= notBefore, `${where}: sent at ${at}, before its time ${notBefore}`);
  });
  if (breaks) {
    assert.equal(sawDone, false, `${label}: no done after fail_after`);
  } else {
    assert.ok(
      sawDone,
      `${label}: ${data.length} events, then done (want ${want.ids.length}` +
        `${failAfter === undefined ? "" : `, or a break after ${failAfter}`})`,
    );
    const { id, event, data: text } = last!;
    assert.deepEqual(
      { id, event, data: text },
      { id: String(endId), event: "done", data: "complete" },
      `${label}: done`,
    );
  }
  assertLineEndings(seen.raw, want.eol, label);
  return (breaks ? previous - firstId + 1 : endId - firstId) - data.length;
}

/** Asserts that every line of `raw` ends with `eol`, and that it ends with a blank line. */
export function assertLineEndings(raw: string, eol: "\n" | "\r\n" | "\r", label = ""): void {
  const others = eol === "\r\n" ? raw.replaceAll("\r\n", "") : raw;
  const stray = eol === "\n" ? /\r/ : eol === "\r" ? /\n/ : /[\r\n]/;
  const found = stray.exec(others);
  assert.equal(
    found,
    null,
    `${label}: a line ending other than ${JSON.stringify(eol)} at ${found?.index}`,
  );
  if (raw !== "") {
    assert.ok(raw.endsWith(eol + eol), `${label}: the body ends with a blank line`);
  }
}
