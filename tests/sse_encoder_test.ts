import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { type LineEnding, SseEncoder } from "../lib/sse_encoder.ts";
import { END_OF_INPUT } from "./_sse.ts";

function parse(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => void events.push(event) });
  parser.feed(text);
  parser.feed(END_OF_INPUT);
  return events;
}

describe("SseEncoder", () => {
  it("writes id, event, data in that order, then a blank line", () => {
    assert.equal(
      new SseEncoder().event({ id: 7, event: "tick", data: '{"id":7}' }),
      'id: 7\nevent: tick\ndata: {"id":7}\n\n',
    );
  });

  it("omits fields that are not given", () => {
    assert.equal(new SseEncoder().event({ data: "x" }), "data: x\n\n");
  });

  it("splits multi-line data at LF, CR and CRLF into data: lines", () => {
    const wire = new SseEncoder().event({ data: "a\nb\r\nc\rd\n" });
    assert.equal(wire, "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n");
    assert.equal(parse(wire)[0].data, "a\nb\nc\nd\n");
  });

  for (const [name, eol] of [["lf", "\n"], ["crlf", "\r\n"], ["cr", "\r"]] as const) {
    it(`ends every line with ${name}, and parsers read it back`, () => {
      const sse = new SseEncoder(name as LineEnding);
      const wire = sse.retry(10) + sse.comment("hi") +
        sse.event({ id: 1, event: "e", data: "x\ny" });
      assert.equal(
        wire,
        `retry: 10${eol}: hi${eol}${eol}id: 1${eol}event: e${eol}data: x${eol}data: y${eol}${eol}`,
      );
      assert.deepEqual(parse(wire), [{ id: "1", event: "e", data: "x\ny" }]);
    });
  }

  it("refuses CR, LF or NUL where they would start a new field", () => {
    const sse = new SseEncoder();
    assert.throws(() => sse.event({ event: "a\nid: 9", data: "x" }), TypeError);
    assert.throws(() => sse.event({ event: "a\r", data: "x" }), TypeError);
    assert.throws(() => sse.event({ id: "1\n", data: "x" }), TypeError);
    assert.throws(() => sse.event({ id: "1\0", data: "x" }), TypeError);
    assert.throws(() => sse.comment("a\ndata: injected"), TypeError);
    assert.throws(() => sse.retry(-1), TypeError);
    assert.throws(() => sse.retry(1.5), TypeError);
  });

  it("checks every event name, not only the first", () => {
    const sse = new SseEncoder();
    sse.event({ event: "ok", data: "x" });
    assert.throws(() => sse.event({ event: "bad\n", data: "x" }), TypeError);
    assert.equal(sse.event({ event: "ok", data: "x" }), "event: ok\ndata: x\n\n");
  });
});
