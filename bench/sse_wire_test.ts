/**
 * The load client's wire layer must count exactly what a conforming parser
 * counts, however the bytes are cut: these tests split real-looking
 * responses at every position and compare with `eventsource-parser`.
 *
 * Run: `deno test -A bench/sse_wire_test.ts` (about a second).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createParser } from "eventsource-parser";
import { HttpSseReader, parseIsoUtc, SseParser } from "./sse_wire.ts";

interface Seen {
  id: number;
  timestamp: number;
  isDone: boolean;
}

function collector() {
  const events: Seen[] = [];
  const heads: number[] = [];
  let ends = 0;
  return {
    events,
    heads,
    ends: () => ends,
    sink: {
      onEvent: (id: number, timestamp: number, isDone: boolean) =>
        void events.push({ id, timestamp, isDone }),
      onHead: (status: number) => void heads.push(status),
      onBodyEnd: () => void ends++,
    },
  };
}

/** ssebin's `/events` bytes for ids `from`…`to`. */
function ticks(from: number, to: number, eol = "\n"): string {
  let text = "";
  for (let id = from; id <= to; id++) {
    const ts = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, id)).toISOString();
    text += `id: ${id}${eol}event: tick${eol}` +
      `data: {"id":${id},"timestamp":"${ts}","message":"Event #${id}"}${eol}${eol}`;
  }
  return text;
}

/** Frames `body` as HTTP/1.1 chunked, in chunks of the given sizes (cycled). */
function chunked(body: string, sizes: number[]): string {
  let out = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n" +
    "transfer-encoding: chunked\r\n\r\n";
  for (let at = 0, i = 0; at < body.length; i++) {
    const piece = body.slice(at, at + sizes[i % sizes.length]);
    out += `${piece.length.toString(16)}\r\n${piece}\r\n`;
    at += piece.length;
  }
  return out + "0\r\n\r\n";
}

/** Feeds `bytes` cut at `cuts`, each piece copied into one reused buffer as a socket would. */
function feedCut(reader: HttpSseReader | SseParser, bytes: Buffer, cuts: number[]): void {
  const shared = Buffer.alloc(bytes.length + 64, 0x0a); // stale LFs past each piece
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    const n = bytes.copy(shared, 0, start, cut);
    reader.feed(shared, 0, n, 0);
    shared.fill(0x0a, 0, n);
    start = cut;
  }
}

describe("SseParser", () => {
  it("finds every id and timestamp however one event is cut in two", () => {
    const text = Buffer.from(ticks(1, 3));
    for (let cut = 0; cut <= text.length; cut++) {
      const seen = collector();
      feedCut(new SseParser(seen.sink, "timestamp"), text, [cut]);
      assert.deepEqual(seen.events.map((e) => e.id), [1, 2, 3], `cut at ${cut}`);
      assert.deepEqual(
        seen.events.map((e) => e.timestamp),
        [1, 2, 3].map((ms) => Date.UTC(2026, 0, 2, 3, 4, 5, ms)),
      );
    }
  });

  it("agrees with eventsource-parser when fed one byte at a time, LF and CRLF", () => {
    for (const eol of ["\n", "\r\n"]) {
      const text = ": hello" + eol + eol + "retry: 10" + eol + ticks(7, 12, eol) +
        `data: complete${eol}event: done${eol}id: 13${eol}${eol}`;
      const reference: string[] = [];
      const parser = createParser({ onEvent: (event) => void reference.push(event.id ?? "") });
      parser.feed(text);
      const seen = collector();
      const bytes = Buffer.from(text);
      const ours = new SseParser(seen.sink, "timestamp");
      feedCut(ours, bytes, [...Array(bytes.length).keys()].slice(1));
      assert.deepEqual(seen.events.map((e) => String(e.id)), reference);
      assert.deepEqual(seen.events.map((e) => e.isDone), [...Array(6).fill(false), true]);
      assert.equal(ours.comments, 1);
      console.log(`eol=${JSON.stringify(eol)}: ${seen.events.length} events, byte by byte`);
    }
  });

  it("reads Hono's order (event, data, id) as the same events", () => {
    const text = 'event: tick\ndata: {"id":1,"timestamp":"2026-01-02T03:04:05.006Z"}\nid: 1\n\n';
    const seen = collector();
    new SseParser(seen.sink, "timestamp").feed(Buffer.from(text), 0, text.length, 0);
    assert.deepEqual(seen.events, [
      { id: 1, timestamp: Date.UTC(2026, 0, 2, 3, 4, 5, 6), isDone: false },
    ]);
  });

  it("leaves timestamps alone when not asked, and marks odd ids -1", () => {
    const text = 'id: x1\ndata: {"ts":"2026-01-02T03:04:05.006Z"}\n\ndata: no id\n\n';
    const seen = collector();
    new SseParser(seen.sink, undefined).feed(Buffer.from(text), 0, text.length, 0);
    assert.equal(seen.events.length, 2);
    assert.deepEqual(seen.events.map((e) => e.id), [-1, -1]);
    assert.ok(seen.events.every((e) => Number.isNaN(e.timestamp)));
  });
});

describe("HttpSseReader", () => {
  it("dechunks and parses whatever the cut, with a head split anywhere too", () => {
    const body = ticks(1, 20);
    const bytes = Buffer.from(chunked(body, [1, 7, 64, 300, 2]));
    let cuts = 0;
    for (let first = 1; first < bytes.length; first += 3) {
      const second = Math.min(bytes.length, first + 97);
      const seen = collector();
      const reader = new HttpSseReader(seen.sink, "timestamp");
      feedCut(reader, bytes, [first, second]);
      assert.deepEqual(seen.heads, [200]);
      assert.equal(seen.events.length, 20, `cuts at ${first}, ${second}`);
      assert.deepEqual(seen.events.map((e) => e.id), [...Array(20).keys()].map((i) => i + 1));
      assert.equal(seen.ends(), 1);
      assert.equal(reader.ended, true);
      assert.equal(reader.sse.bytes, Buffer.byteLength(body));
      cuts++;
    }
    console.log(`${cuts} cut pairs over ${bytes.length} bytes`);
  });

  it("reads a close-delimited body and reports a non-200 status", () => {
    const ok = collector();
    const plain = Buffer.from(
      "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n" + ticks(1, 2),
    );
    new HttpSseReader(ok.sink, "timestamp").feed(plain, 0, plain.length, 0);
    assert.deepEqual(ok.events.map((e) => e.id), [1, 2]);
    assert.equal(ok.ends(), 0);

    const busy = collector();
    const refused = Buffer.from("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}");
    new HttpSseReader(busy.sink, "timestamp").feed(refused, 0, refused.length, 0);
    assert.deepEqual(busy.heads, [503]);
  });

  it("flags a response that is not HTTP", () => {
    const seen = collector();
    const reader = new HttpSseReader(seen.sink, undefined);
    const junk = Buffer.from("SSH-2.0-OpenSSH\r\n\r\n");
    reader.feed(junk, 0, junk.length, 0);
    assert.equal(reader.malformed, "bad status line");
  });
});

describe("parseIsoUtc", () => {
  it("matches Date.parse, and refuses non-digits", () => {
    for (const iso of ["2026-11-25T22:48:51.123Z", "1999-12-31T23:59:59.999Z"]) {
      assert.equal(parseIsoUtc(Buffer.from(iso), 0), Date.parse(iso));
    }
    assert.ok(Number.isNaN(parseIsoUtc(Buffer.from("2026-11-25T22:48:5x.123Z"), 0)));
  });
});
