/**
 * Test helper: generates hostile HTTP/1.1 requests from a seeded PRNG —
 * odd methods, traversal and encoding tricks in paths, very long and unicode
 * targets, query strings with huge, negative, non-numeric, repeated and
 * 64 KiB values, and headers with CR/LF, NUL and garbage `Last-Event-ID`s.
 *
 * Every injection attempt carries {@linkcode INJECTION_MARKER}, so a test can
 * check that the marker never starts a line of a response head or an SSE
 * body.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { STREAM_PARAMS } from "../lib/stream_params.ts";
import type { Random } from "./_load.ts";

/** The text every injection attempt tries to smuggle onto a line of its own. */
export const INJECTION_MARKER = "INJECTED";

/** One generated request: its bytes and what a checker needs to know of it. */
export interface HostileRequest {
  /** The exact bytes to send. */
  bytes: Buffer;
  method: string;
  /** The request target as written on the request line. */
  target: string;
  /** True for HEAD: the response has no body. */
  head: boolean;
  /** The status the `status` query parameter asked for, when it names one. */
  requestedStatus: number | undefined;
  /** Every value of the `event` parameter, decoded: names the server may echo. */
  requestedEvents: string[];
}

const M = INJECTION_MARKER;

const METHODS = [
  ...Array(24).fill("GET"),
  "HEAD",
  "HEAD",
  "OPTIONS",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "TRACE",
  "get",
  "FOO",
  "G E T",
  "GET\0",
  "",
] as const;

const ROUTES = ["/events", "/stream", "/stream/fast", "/", "/health", "/metrics"] as const;
const STREAM_ROUTES = ["/events", "/stream", "/stream/fast"] as const;

const SPECIAL_PATHS = [
  "/static/app.js",
  "/static/style.css",
  "/static/favicon.svg",
  "/static/index.html",
  "/static/",
  "/static",
  "/mod.ts",
  "/package.json",
  "/.git/config",
  "/wrangler.jsonc",
  "/static/../mod.ts",
  "/static/../../../../etc/passwd",
  "/static/..%2fmod.ts",
  "/static/..%2F..%2Fmod.ts",
  "/static/%2e%2e/mod.ts",
  "/static/%2e%2e%2fmod.ts",
  "/static/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
  "/static/%252e%252e%252fmod.ts",
  "/static/..\\mod.ts",
  "/static\\..\\mod.ts",
  "\\static\\app.js",
  "/static/..%5cmod.ts",
  "/static/app.js%00.html",
  "/static/app.js\0.html",
  "/static/%00",
  "/static/./app.js",
  "//static/app.js",
  "/static//app.js",
  "/static/app.js/",
  "/STATIC/APP.JS",
  "/static/app.js;.html",
  "/static/app.js%20",
  "/static/app.js%0d%0aX-Injected:%20" + M,
  "/%2e%2e/%2e%2e/etc/passwd",
  "/..%c0%af..%c0%afetc/passwd",
  "/static/%c0%ae%c0%ae/mod.ts",
  "/events/../mod.ts",
  "/%65vents",
  "/events%2f",
  "/événements",
  "/stream/ｆａｓｔ",
  "/\u202e/stsil",
  "/💩",
  "/%F0%9F%92%A9",
  "/%ff%fe%fd",
  "/static/%E2%80%AE.js",
  "http://127.0.0.1/events",
  "http://evil.test/static/../mod.ts",
  "*",
  "events",
  "/events#frag",
  "/events?",
  "/events??",
  "/events?&&&",
];

// The names the server knows, then near misses and traps.
const KNOWN_NAMES = [...Object.keys(STREAM_PARAMS), "lastEventId"];
const PARAM_NAMES = [
  ...KNOWN_NAMES,
  "intervall",
  "INTERVAL",
  "_cache",
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "toString",
  "",
  "%00",
  "event%0d%0a" + M,
] as const;

/** Values a parameter accepts, so that a share of requests opens real streams. */
const VALID_VALUES: Record<string, readonly string[]> = {
  interval: ["0", "1", "50", "1000", "3600000"],
  count: ["1", "3", "100", "10000000"],
  delay: ["0", "10", "60000"],
  event: ["tick", "x", "a.b:c-d_e", "E".repeat(64)],
  retry: ["0", "1500", "3600000"],
  heartbeat: ["1000", "15000", "300000"],
  size: ["0", "100", "4096"],
  lines: ["1", "2", "100"],
  eol: ["lf", "crlf", "cr"],
  chunk: ["1", "7", "65536"],
  fail_after: ["1", "2", "10000000"],
  status: ["200", "204", "205", "304", "400", "404", "418", "429", "500", "503", "599"],
  lastEventId: ["0", "5", "99", "100", "9007199254740991"],
};

const HOSTILE_VALUES = [
  "",
  "-1",
  "-0",
  "NaN",
  "Infinity",
  "-Infinity",
  "1e3",
  "0x10",
  "010",
  "+5",
  "1.5",
  " 5",
  "5 ",
  "%205",
  "５",
  "99999999999999999999999999",
  "9007199254740992",
  "9007199254740993",
  "18446744073709551616",
  "1048577",
  "null",
  "undefined",
  "true",
  "[]",
  "{}",
  "%00",
  "%0d%0aevent:%20" + M,
  "%0aid:%20" + M,
  "%0ddata:%20" + M,
  "x%0d%0a%0d%0aevent:%20" + M,
  "tick%0Aevent:%20" + M,
  "é",
  "%E2%80%A8",
  "😀",
  "%ff",
  "a%2",
  "%%",
] as const;

const LAST_EVENT_IDS = [
  "1",
  "0",
  "-1",
  "99",
  "100",
  "1e3",
  "0x10",
  "abc",
  "",
  " ",
  "9007199254740991",
  "9007199254740992",
  "99999999999999999999999999999",
  "１２",
  "1, 2",
  "😀",
  "1\r\nevent: " + M,
  "1\r\nX-Injected: " + M,
  "1\nevent: " + M,
  "1\revent: " + M,
  "1\0",
  "1\r\n data: " + M,
  "1\tevent: " + M,
] as const;

const EXTRA_HEADERS: readonly (readonly [string, string])[] = [
  ["accept", "text/event-stream"],
  ["cache-control", "no-cache"],
  ["origin", "http://evil.test"],
  ["cf-connecting-ip", `1.2.3.4 ${M}`],
  ["cf-connecting-ip", `1.2.3.4\r\nX-Injected: ${M}`],
  ["x-forwarded-for", `1.2.3.4\r\n\r\nevent: ${M}`],
  ["x-forwarded-for", "1.2.3.4\0"],
  ["user-agent", "😀".repeat(50)],
  ["accept", "*/*\r\nevent: " + M],
  ["range", "bytes=0-10"],
  ["if-none-match", "*"],
  ["expect", "100-continue"],
  ["x-long", "a".repeat(20_000)],
  ["bad header", "space in name"],
  ["x-\u00e9", "non-ascii name"],
  [":authority", "evil.test"],
];

/** Returns a function that produces one hostile request per call. */
export function hostileRequests(random: Random): () => HostileRequest {
  return () => build(random);
}

function build(r: Random): HostileRequest {
  const method = r.pick(METHODS);
  const target = buildTarget(r);
  const version = r.chance(0.97)
    ? "HTTP/1.1"
    : r.pick(["HTTP/1.0", "HTTP/2.0", "HTTP/9.9", "HTTP/1.1 extra", "http/1.1"]);
  const headers: [string, string][] = [];
  if (r.chance(0.97)) headers.push(["host", r.chance(0.9) ? "127.0.0.1" : r.pick(HOSTS)]);
  if (r.chance(0.25)) headers.push(["last-event-id", r.pick(LAST_EVENT_IDS)]);
  if (r.chance(0.02)) headers.push(["last-event-id", r.chance(0.5) ? "9".repeat(65_536) : "7"]);
  if (r.chance(0.25)) headers.push([...r.pick(EXTRA_HEADERS)]);
  headers.push(["connection", "close"]);
  let body = "";
  if (["POST", "PUT", "PATCH"].includes(method) && r.chance(0.7)) {
    body = r.chance(0.5) ? "hello" : `{"event":"${M}"}`;
    headers.push(["content-length", String(Buffer.byteLength(body))]);
  }
  const head = `${method} ${target} ${version}\r\n` +
    headers.map(([name, value]) => `${name}: ${value}\r\n`).join("") + "\r\n";
  const { status, events } = readQuery(target);
  return {
    bytes: Buffer.from(head + body, "utf8"),
    method,
    target,
    head: method === "HEAD",
    requestedStatus: status,
    requestedEvents: events,
  };
}

const HOSTS = [
  "evil.test",
  "[::1]",
  "127.0.0.1:1",
  "a".repeat(1_000),
  "",
  "x y",
  "é.test",
  "a/b",
  "127.0.0.1/static/..",
];

function buildTarget(r: Random): string {
  const roll = r.next();
  let path: string;
  if (roll < 0.55) path = r.pick(r.chance(0.8) ? STREAM_ROUTES : ROUTES);
  else if (roll < 0.85) path = r.pick(SPECIAL_PATHS);
  else if (roll < 0.9) path = "/" + "a".repeat(r.pick([1_000, 8_000, 20_000, 70_000]));
  else path = mutate(r, r.pick(ROUTES));
  if (path.includes("?") || path === "*" || r.chance(0.2)) return path;
  return path + "?" + buildQuery(r);
}

/** Replaces or inserts a few random characters, some of them bytes a path must not hold. */
function mutate(r: Random, path: string): string {
  const alphabet = [
    "%",
    "/",
    "\\",
    ".",
    "%2e",
    "%2f",
    "%00",
    "~",
    "é",
    "\u0000",
    "\t",
    "?",
    "#",
    ";",
  ];
  let out = path;
  for (let n = r.between(1, 3); n > 0; n--) {
    const at = r.int(out.length + 1);
    out = out.slice(0, at) + r.pick(alphabet) + out.slice(at);
  }
  return out;
}

function buildQuery(r: Random): string {
  const pairs: string[] = [];
  for (let n = r.int(5); n > 0; n--) {
    const name = r.chance(0.85) ? r.pick(KNOWN_NAMES) : r.pick(PARAM_NAMES);
    let value: string;
    const roll = r.next();
    if (roll < 0.6 && VALID_VALUES[name] !== undefined) value = r.pick(VALID_VALUES[name]);
    else if (roll < 0.97) value = r.pick(HOSTILE_VALUES);
    else value = (r.chance(0.5) ? "9" : "a").repeat(65_536);
    pairs.push(`${name}=${value}`);
    // Repeated keys: the same value (allowed) or another one (refused).
    if (r.chance(0.05)) pairs.push(`${name}=${r.chance(0.5) ? value : r.pick(HOSTILE_VALUES)}`);
  }
  return pairs.join("&");
}

/**
 * What the server may read from the target's query, the way `URLSearchParams`
 * reads it. A lenient parser (workerd's) ends a target holding a space at
 * that space, so both readings count.
 */
function readQuery(target: string): { status: number | undefined; events: string[] } {
  const readings = [target, target.split(" ")[0]].flatMap((text) => {
    try {
      return [new URL(text, "http://127.0.0.1").searchParams];
    } catch {
      return [];
    }
  });
  const status = readings[0]?.get("status") ?? null;
  return {
    status: status !== null && /^[1-9][0-9]{2}$/.test(status) ? Number(status) : undefined,
    events: readings.flatMap((params) => params.getAll("event")),
  };
}
