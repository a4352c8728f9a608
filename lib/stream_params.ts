/**
 * The query parameters that shape a stream: their bounds, and strict parsing.
 *
 * A bad value never opens a stream: the caller turns a {@linkcode ParamError}
 * into a 400 with a JSON body naming the parameter and the value.
 *
 * @module
 */

import { LINE_ENDINGS, type LineEnding } from "./sse_encoder.ts";

/** A bounded integer parameter. */
export interface IntegerParam {
  kind: "integer";
  min: number;
  max: number;
  doc: string;
}
/** A parameter whose value is one of a fixed set of words. */
export interface ChoiceParam {
  kind: "choice";
  choices: readonly string[];
  doc: string;
}
/** A parameter whose value must match a pattern. */
export interface PatternParam {
  kind: "pattern";
  pattern: RegExp;
  rule: string;
  doc: string;
}
/** One row of the parameter table. */
export type ParamSpec = IntegerParam | ChoiceParam | PatternParam;

/**
 * Every parameter a stream endpoint accepts, with its bounds
 * (`tests/readme_test.ts` holds the README's reference table to it).
 *
 * @example Reading the bounds of a parameter
 * ```ts
 * import { STREAM_PARAMS } from "./stream_params.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(STREAM_PARAMS.interval.max, 3_600_000);
 * ```
 */
export const STREAM_PARAMS = {
  interval: { kind: "integer", min: 0, max: 3_600_000, doc: "ms between events" },
  count: { kind: "integer", min: 1, max: 10_000_000, doc: "events before `done`" },
  delay: { kind: "integer", min: 0, max: 60_000, doc: "ms before the first event" },
  event: {
    kind: "pattern",
    pattern: /^[A-Za-z0-9_.:-]{1,64}$/,
    rule: "1-64 characters of A-Z a-z 0-9 _ . : -",
    doc: "event name",
  },
  retry: { kind: "integer", min: 0, max: 3_600_000, doc: "send `retry: N` first" },
  heartbeat: {
    kind: "integer",
    min: 1_000,
    max: 300_000,
    doc: "`: heartbeat` after this many quiet ms",
  },
  size: {
    kind: "integer",
    min: 0,
    max: 1_048_576,
    doc: "pad each event's JSON to this many bytes",
  },
  lines: {
    kind: "integer",
    min: 1,
    max: 100,
    doc: "spread each event's data over N `data:` lines",
  },
  eol: { kind: "choice", choices: LINE_ENDINGS, doc: "line ending" },
  chunk: { kind: "integer", min: 1, max: 65_536, doc: "write in pieces of at most N bytes" },
  fail_after: {
    kind: "integer",
    min: 1,
    max: 10_000_000,
    doc: "break the connection after N events",
  },
  status: { kind: "integer", min: 200, max: 599, doc: "answer with this status instead" },
} as const satisfies Record<string, ParamSpec>;

/** The name of a stream parameter. */
export type ParamName = keyof typeof STREAM_PARAMS;

/** What a URL asked for; absent parameters are `undefined`. */
export interface StreamQuery {
  interval?: number;
  count?: number;
  delay?: number;
  event?: string;
  retry?: number;
  heartbeat?: number;
  size?: number;
  lines?: number;
  eol?: LineEnding;
  chunk?: number;
  failAfter?: number;
  status?: number;
  /** The raw `lastEventId` parameter, for clients that cannot set headers. */
  lastEventId?: string;
}

/** Why a query was refused; serialised as the 400 body. */
export interface ParamError {
  error: string;
  param: string;
  value: string;
}

/** The result of {@linkcode parseStreamQuery}. */
export type ParseResult =
  | { ok: true; query: StreamQuery }
  | { ok: false; error: ParamError };

const DIGITS = /^(?:0|[1-9][0-9]*)$/;
// Long values are echoed in error bodies only this far.
const ECHO_LIMIT = 200;
const LAST_EVENT_ID_PARAM = "lastEventId";

/**
 * Parses a plain decimal integer: `0`, or digits with no leading zero; no
 * sign, exponent, fraction or space. Returns `undefined` for anything else,
 * including values beyond `Number.MAX_SAFE_INTEGER`.
 *
 * @example Usage
 * ```ts
 * import { parseDecimal } from "./stream_params.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseDecimal("250"), 250);
 * assert.equal(parseDecimal("0250"), undefined);
 * assert.equal(parseDecimal("1e3"), undefined);
 * ```
 */
export function parseDecimal(text: string): number | undefined {
  if (text.length > 16 || !DIGITS.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * Validates every stream parameter of `params`. Unknown names are refused so
 * that a typo (`intervall=10`) is not silently ignored; names starting with
 * `_` are left alone, for cache-busting.
 *
 * @example Usage
 * ```ts
 * import { parseStreamQuery } from "./stream_params.ts";
 * import assert from "node:assert/strict";
 *
 * const good = parseStreamQuery(new URLSearchParams("interval=10&eol=crlf"));
 * assert.deepEqual(good, { ok: true, query: { interval: 10, eol: "crlf" } });
 *
 * const bad = parseStreamQuery(new URLSearchParams("interval=abc"));
 * assert.equal(bad.ok, false);
 * ```
 */
export function parseStreamQuery(params: URLSearchParams): ParseResult {
  const query: StreamQuery = {};
  const seen = new Map<string, string>();
  for (const [name, value] of params) {
    if (name.startsWith("_")) continue;
    const earlier = seen.get(name);
    if (earlier !== undefined) {
      if (earlier === value) continue;
      return refuse(
        name,
        value,
        `parameter '${echo(name)}' is repeated with conflicting values`,
      );
    }
    seen.set(name, value);
    if (name === LAST_EVENT_ID_PARAM) {
      query.lastEventId = value;
      continue;
    }
    if (!Object.hasOwn(STREAM_PARAMS, name)) {
      return refuse(
        name,
        value,
        `unknown parameter '${echo(name)}'; known: ${
          [...Object.keys(STREAM_PARAMS), LAST_EVENT_ID_PARAM].join(", ")
        }`,
      );
    }
    const spec: ParamSpec = STREAM_PARAMS[name as ParamName];
    const problem = checkValue(spec, value);
    if (problem !== undefined) return refuse(name, value, `${name} ${problem}`);
    assign(query, name as ParamName, value);
  }
  return { ok: true, query };
}

function checkValue(spec: ParamSpec, value: string): string | undefined {
  switch (spec.kind) {
    case "integer": {
      const n = parseDecimal(value);
      if (n === undefined) {
        return `must be a plain decimal integer from ${spec.min} to ${spec.max}`;
      }
      if (n < spec.min || n > spec.max) return `must be from ${spec.min} to ${spec.max}`;
      return undefined;
    }
    case "choice":
      return spec.choices.includes(value) ? undefined : `must be one of ${spec.choices.join(", ")}`;
    case "pattern":
      return spec.pattern.test(value) ? undefined : `must be ${spec.rule}`;
  }
}

function assign(query: StreamQuery, name: ParamName, value: string): void {
  switch (name) {
    case "event":
      query.event = value;
      return;
    case "eol":
      query.eol = value as LineEnding;
      return;
    case "fail_after":
      query.failAfter = Number(value);
      return;
    default:
      query[name] = Number(value);
  }
}

function refuse(param: string, value: string, error: string): ParseResult {
  return { ok: false, error: { error, param: echo(param), value: echo(value) } };
}

function echo(text: string): string {
  return text.length > ECHO_LIMIT ? text.slice(0, ECHO_LIMIT) + "…" : text;
}

/**
 * Reads where a client wants to resume: the `Last-Event-ID` header (what
 * EventSource sends on reconnect), else the `lastEventId` query parameter.
 * Returns the id, `undefined` when none was sent, or `"invalid"` for a value
 * that is not a plain integer below 2^53: the caller starts afresh and logs,
 * because a 4xx would make a browser give up for good.
 *
 * @example Usage
 * ```ts
 * import { resumeAfter } from "./stream_params.ts";
 * import assert from "node:assert/strict";
 *
 * const request = new Request("http://x/events", { headers: { "Last-Event-ID": "41" } });
 * assert.equal(resumeAfter(request, {}), 41);
 * assert.equal(resumeAfter(new Request("http://x/"), { lastEventId: "x" }), "invalid");
 * ```
 */
export function resumeAfter(
  request: Request,
  query: StreamQuery,
): number | "invalid" | undefined {
  // An empty header means "no id": the query may still say where to resume.
  const raw = request.headers.get("last-event-id") || query.lastEventId;
  if (raw === undefined || raw === "") return undefined;
  return parseDecimal(raw) ?? "invalid";
}
