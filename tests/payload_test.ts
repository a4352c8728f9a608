import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { payloadShaper, spreadJson } from "../lib/payload.ts";

const JSON_TEXT = '{"id":12,"ts":"2026-01-01T00:00:00.000Z"}';

describe("payloadShaper", () => {
  it("is the identity with default shape", () => {
    assert.equal(payloadShaper({ size: 0, lines: 1 })(JSON_TEXT), JSON_TEXT);
  });

  it("pads to exactly size bytes when there is room for a pad member", () => {
    for (const size of [JSON_TEXT.length + 9, 100, 1000, 65_536]) {
      const text = payloadShaper({ size, lines: 1 })(JSON_TEXT);
      assert.equal(new TextEncoder().encode(text).length, size);
      const value = JSON.parse(text);
      assert.equal(value.id, 12);
      assert.match(value.pad, /^x*$/);
    }
  });

  it("never shrinks, and pads at least to size when the pad member barely fits", () => {
    assert.equal(payloadShaper({ size: 10, lines: 1 })(JSON_TEXT), JSON_TEXT);
    const text = payloadShaper({ size: JSON_TEXT.length + 3, lines: 1 })(JSON_TEXT);
    assert.ok(text.length >= JSON_TEXT.length + 3);
    assert.equal(JSON.parse(text).pad, "");
  });
});

describe("spreadJson", () => {
  it("gives exactly N lines whose join is the same JSON value", () => {
    const tokens = 9; // { "id" : 12 , "ts" : "…" }
    for (let lines = 1; lines <= 20; lines++) {
      const text = spreadJson(JSON_TEXT, lines);
      assert.equal(text.split("\n").length, lines, `lines=${lines}`);
      assert.deepEqual(JSON.parse(text), JSON.parse(JSON_TEXT));
      if (lines > tokens) assert.ok(text.endsWith("\n".repeat(lines - tokens)));
    }
  });

  it("breaks only between tokens: strings with spaces, colons and escapes stay whole", () => {
    const json = '{"m":"a: b, c","e":"q\\"u{o}te","n":[1,2.5e3,true,null]}';
    for (let lines = 1; lines <= 30; lines++) {
      assert.deepEqual(JSON.parse(spreadJson(json, lines)), JSON.parse(json));
    }
  });
});
