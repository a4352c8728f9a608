/**
 * The load client's wire layer: an HTTP/1.1 response reader (status line,
 * headers, chunked or close-delimited body) feeding an incremental SSE
 * parser, both working on byte ranges of whatever buffer the socket filled.
 *
 * Built for the benchmark, not for browsers' whole grammar: it survives
 * events, lines and chunk-size lines split anywhere across reads, and lines
 * ending in LF or CRLF (ssebin and Hono both write LF). Lone-CR line endings
 * are not recognised. Per event it allocates nothing: the id and the
 * timestamp are parsed from the bytes in place; only a line that spans two
 * reads is copied.
 *
 * Runs under Node (the load client, transpiled by esbuild) and Deno (tests).
 *
 * @module
 */

import { Buffer } from "node:buffer";

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;

/** Receives what {@linkcode SseParser} and {@linkcode HttpSseReader} find. */
export interface SseSink {
  /**
   * One dispatched event with data: its numeric id (-1 if absent or not a
   * plain number), its payload timestamp in ms (NaN if not looked for or
   * absent), whether its `event:` was `done`, and the `arrivalMs` the caller
   * passed with the bytes.
   */
  onEvent(id: number, timestampMs: number, isDone: boolean, arrivalMs: number): void;
  /** The response's status, once its head has arrived. */
  onHead(status: number): void;
  /** The server ended a chunked body cleanly. */
  onBodyEnd(): void;
}

// Offsets of the digits in `YYYY-MM-DDTHH:MM:SS.mmmZ`.
const ISO_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
const ISO_LENGTH = 24;

/**
 * Parses a fixed-layout ISO 8601 UTC time (`2026-01-02T03:04:05.678Z`) at
 * `at` in `buf` without building a string. Returns NaN when a byte is not a
 * digit where one is expected.
 *
 * @example Usage
 * ```ts
 * import { parseIsoUtc } from "./sse_wire.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("2026-01-02T03:04:05.678Z");
 * assert.equal(parseIsoUtc(bytes, 0), Date.UTC(2026, 0, 2, 3, 4, 5, 678));
 * ```
 */
export function parseIsoUtc(buf: Uint8Array, at: number): number {
  for (let i = 0; i < ISO_DIGITS.length; i++) {
    const byte = buf[at + ISO_DIGITS[i]];
    if (!(byte >= 48 && byte <= 57)) return NaN;
  }
  return Date.UTC(
    digits(buf, at, 4),
    digits(buf, at + 5, 2) - 1,
    digits(buf, at + 8, 2),
    digits(buf, at + 11, 2),
    digits(buf, at + 14, 2),
    digits(buf, at + 17, 2),
    digits(buf, at + 20, 3),
  );
}

/** The value of `length` bytes at `at`, already known to be digits. */
function digits(buf: Uint8Array, at: number, length: number): number {
  let value = 0;
  for (let i = at; i < at + length; i++) value = value * 10 + buf[i] - 48;
  return value;
}

const DATA = Uint8Array.from([100, 97, 116, 97, COLON]);
const ID = Uint8Array.from([105, 100, COLON]);
const EVENT = Uint8Array.from([101, 118, 101, 110, 116, COLON]);
const DONE = Uint8Array.from([100, 111, 110, 101]);

/**
 * An incremental `text/event-stream` parser. Feed it byte ranges in order;
 * it calls `sink.onEvent` at every blank line that ends an event with data.
 *
 * @example Usage
 * ```ts
 * import { Buffer } from "node:buffer";
 * import { SseParser } from "./sse_wire.ts";
 * import assert from "node:assert/strict";
 *
 * const ids: number[] = [];
 * const parser = new SseParser({
 *   onEvent: (id) => void ids.push(id),
 *   onHead: () => {},
 *   onBodyEnd: () => {},
 * }, undefined);
 * const bytes = Buffer.from("id: 1\ndata: a\n\nid: 2\nda");
 * parser.feed(bytes, 0, bytes.length, 0);
 * const rest = Buffer.from("ta: b\n\n");
 * parser.feed(rest, 0, rest.length, 0);
 * assert.deepEqual(ids, [1, 2]);
 * ```
 */
export class SseParser {
  /** Events dispatched so far. */
  events = 0;
  /** Body bytes fed so far. */
  bytes = 0;
  /** Comment lines (`: heartbeat`) seen so far. */
  comments = 0;
  readonly #sink: SseSink;
  // `"key":"` as bytes; undefined: timestamps are not looked for.
  readonly #needle: Uint8Array | undefined;
  // The start of a line whose end has not arrived yet (a copy).
  #carry: Buffer | null = null;
  // The event being read.
  #id = -1;
  #timestamp = NaN;
  #hasData = false;
  #isDone = false;

  /**
   * `timestampKey` names the JSON key whose ISO value is the event's time
   * (`timestamp`, `ts`); `undefined` skips that work.
   */
  constructor(sink: SseSink, timestampKey: string | undefined) {
    this.#sink = sink;
    this.#needle = timestampKey === undefined
      ? undefined
      : new TextEncoder().encode(`"${timestampKey}":"`);
  }

  /** Parses `buf[start, end)`. The caller may reuse `buf` afterwards. */
  feed(buf: Buffer, start: number, end: number, arrivalMs: number): void {
    this.bytes += end - start;
    let pos = start;
    if (this.#carry !== null) {
      const lf = buf.indexOf(LF, pos);
      if (lf === -1 || lf >= end) {
        this.#carry = Buffer.concat([this.#carry, buf.subarray(pos, end)]);
        return;
      }
      const line = Buffer.concat([this.#carry, buf.subarray(pos, lf)]);
      this.#carry = null;
      this.#line(line, 0, line.length, arrivalMs);
      pos = lf + 1;
    }
    while (pos < end) {
      // indexOf may look past `end` into stale bytes: a hit there is a miss.
      const lf = buf.indexOf(LF, pos);
      if (lf === -1 || lf >= end) {
        this.#carry = Buffer.from(buf.subarray(pos, end));
        return;
      }
      this.#line(buf, pos, lf, arrivalMs);
      pos = lf + 1;
    }
  }

  #line(buf: Buffer, start: number, end: number, arrivalMs: number): void {
    if (end > start && buf[end - 1] === CR) end--;
    if (end === start) return this.#dispatch(arrivalMs);
    const first = buf[start];
    if (first === COLON) {
      this.comments++;
    } else if (first === DATA[0] && fieldIs(buf, start, end, DATA)) {
      this.#hasData = true;
      if (this.#needle !== undefined && Number.isNaN(this.#timestamp)) {
        this.#timestamp = this.#findTimestamp(buf, start + DATA.length, end, this.#needle);
      }
    } else if (first === ID[0] && fieldIs(buf, start, end, ID)) {
      this.#id = parseDecimal(buf, valueStart(buf, start + ID.length, end), end);
    } else if (first === EVENT[0] && fieldIs(buf, start, end, EVENT)) {
      const at = valueStart(buf, start + EVENT.length, end);
      this.#isDone = end - at === DONE.length && startsWith(buf, at, DONE);
    }
    // retry: and unknown fields change nothing the benchmark measures.
  }

  #dispatch(arrivalMs: number): void {
    if (this.#hasData) {
      this.events++;
      this.#sink.onEvent(this.#id, this.#timestamp, this.#isDone, arrivalMs);
    }
    this.#id = -1;
    this.#timestamp = NaN;
    this.#hasData = false;
    this.#isDone = false;
  }

  #findTimestamp(buf: Buffer, start: number, end: number, needle: Uint8Array): number {
    const at = buf.indexOf(needle, start);
    if (at === -1 || at + needle.length + ISO_LENGTH > end) return NaN;
    return parseIsoUtc(buf, at + needle.length);
  }
}

/** Whether the line `buf[start, end)` is field `name` (its colon included). */
function fieldIs(buf: Uint8Array, start: number, end: number, name: Uint8Array): boolean {
  return end - start >= name.length && startsWith(buf, start, name);
}

/** Whether `buf` holds `word` at `at` (the caller checked there is room). */
function startsWith(buf: Uint8Array, at: number, word: Uint8Array): boolean {
  for (let i = 0; i < word.length; i++) if (buf[at + i] !== word[i]) return false;
  return true;
}

/** Skips the one optional space after a field's colon. */
function valueStart(buf: Uint8Array, at: number, end: number): number {
  return at < end && buf[at] === SPACE ? at + 1 : at;
}

/** A plain decimal at `buf[start, end)`, or -1. */
function parseDecimal(buf: Uint8Array, start: number, end: number): number {
  if (start === end || end - start > 15) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = buf[i] - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

// Where an HttpSseReader is in the response.
const At = {
  Head: 0,
  ChunkSize: 1,
  ChunkData: 2,
  ChunkDataEnd: 3,
  UntilClose: 4,
  Ended: 5,
} as const;
type At = typeof At[keyof typeof At];

const HEAD_END = Buffer.from("\r\n\r\n");
// Guards against a server that never ends its head.
const MAX_HEAD_BYTES = 16 * 1024;

/**
 * Reads one HTTP/1.1 response from a socket's bytes and feeds its body to an
 * {@linkcode SseParser}.
 *
 * @example Usage
 * ```ts
 * import { Buffer } from "node:buffer";
 * import { HttpSseReader } from "./sse_wire.ts";
 * import assert from "node:assert/strict";
 *
 * const ids: number[] = [];
 * const reader = new HttpSseReader({
 *   onEvent: (id) => void ids.push(id),
 *   onHead: (status) => assert.equal(status, 200),
 *   onBodyEnd: () => {},
 * }, undefined);
 * const bytes = Buffer.from(
 *   "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" +
 *     "f\r\nid: 7\ndata: x\n\n\r\n0\r\n\r\n",
 * );
 * reader.feed(bytes, 0, bytes.length, 0);
 * assert.deepEqual(ids, [7]);
 * assert.equal(reader.ended, true);
 * ```
 */
export class HttpSseReader {
  /** The body's parser (its `bytes`, `events` and `comments` counts). */
  readonly sse: SseParser;
  /** The status code, once the head has arrived (0 before). */
  status = 0;
  /** Set when the bytes broke HTTP framing: drop the connection. */
  malformed = "";
  readonly #sink: SseSink;
  #at: At = At.Head;
  #head: Buffer | null = null;
  #chunkLeft = 0;
  // Past the hex digits of a size line (in an extension or its CR).
  #sizeRead = false;

  /** `timestampKey`: see {@linkcode SseParser}. */
  constructor(sink: SseSink, timestampKey: string | undefined) {
    this.#sink = sink;
    this.sse = new SseParser(sink, timestampKey);
  }

  /** Whether the server ended the body cleanly. */
  get ended(): boolean {
    return this.#at === At.Ended;
  }

  /** Consumes `buf[start, end)`. The caller may reuse `buf` afterwards. */
  feed(buf: Buffer, start: number, end: number, arrivalMs: number): void {
    let pos = start;
    while (pos < end && this.malformed === "") {
      switch (this.#at) {
        case At.Head:
          pos = this.#readHead(buf, pos, end);
          break;
        case At.ChunkSize:
          pos = this.#readChunkSize(buf, pos, end);
          break;
        case At.ChunkData: {
          const take = Math.min(this.#chunkLeft, end - pos);
          this.sse.feed(buf, pos, pos + take, arrivalMs);
          pos += take;
          this.#chunkLeft -= take;
          if (this.#chunkLeft === 0) this.#at = At.ChunkDataEnd;
          break;
        }
        case At.ChunkDataEnd: {
          // The CRLF after a chunk's data.
          const lf = buf.indexOf(LF, pos);
          if (lf === -1 || lf >= end) return;
          pos = lf + 1;
          this.#at = At.ChunkSize;
          break;
        }
        case At.UntilClose:
          this.sse.feed(buf, pos, end, arrivalMs);
          return;
        case At.Ended:
          return;
      }
    }
  }

  /** Collects the head (it may straddle reads); returns where its bytes stop. */
  #readHead(buf: Buffer, pos: number, end: number): number {
    const before = this.#head === null ? 0 : this.#head.length;
    const head = this.#head === null
      ? Buffer.from(buf.subarray(pos, end))
      : Buffer.concat([this.#head, buf.subarray(pos, end)]);
    this.#head = head;
    // The terminator may straddle reads: look from just before the new bytes.
    const at = head.indexOf(HEAD_END, Math.max(0, before - 3));
    if (at === -1) {
      if (head.length > MAX_HEAD_BYTES) this.malformed = "head too long";
      return end;
    }
    const text = head.toString("latin1", 0, at);
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
    if (status === null) {
      this.malformed = "bad status line";
      return end;
    }
    this.status = Number(status[1]);
    this.#at = /\r\ntransfer-encoding:[^\r]*chunked/i.test(text) ? At.ChunkSize : At.UntilClose;
    this.#head = null;
    this.#sink.onHead(this.status);
    return pos + (at + HEAD_END.length - before);
  }

  /** Reads a chunk-size line (it may straddle reads); returns where it stops. */
  #readChunkSize(buf: Buffer, pos: number, end: number): number {
    for (; pos < end; pos++) {
      const byte = buf[pos];
      if (byte === LF) {
        this.#sizeRead = false;
        if (this.#chunkLeft === 0) {
          this.#at = At.Ended;
          this.#sink.onBodyEnd();
        } else {
          this.#at = At.ChunkData;
        }
        return pos + 1;
      }
      if (this.#sizeRead) continue;
      const digit = hexValue(byte);
      if (digit === -1) this.#sizeRead = true;
      else this.#chunkLeft = this.#chunkLeft * 16 + digit;
    }
    return pos;
  }
}

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  if (byte >= 97 && byte <= 102) return byte - 87;
  if (byte >= 65 && byte <= 70) return byte - 55;
  return -1;
}
