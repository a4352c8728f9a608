import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  parseDecimal,
  parseStreamQuery,
  resumeAfter,
  STREAM_PARAMS,
} from "../lib/stream_params.ts";

const query = (text: string) => parseStreamQuery(new URLSearchParams(text));

describe("parseDecimal", () => {
  it("accepts 0 and digits without a leading zero", () => {
    assert.equal(parseDecimal("0"), 0);
    assert.equal(parseDecimal("42"), 42);
    assert.equal(parseDecimal("9007199254740991"), Number.MAX_SAFE_INTEGER);
  });
  it("refuses signs, exponents, fractions, spaces, leading zeros and the unsafe", () => {
    for (
      const text of [
        "",
        "-1",
        "+1",
        "1e3",
        "1.0",
        " 1",
        "1 ",
        "01",
        "0x10",
        "Infinity",
        "NaN",
        "9007199254740992",
        "1".repeat(400),
      ]
    ) {
      assert.equal(parseDecimal(text), undefined, text);
    }
  });
});

describe("parseStreamQuery", () => {
  it("reads every parameter at its bounds", () => {
    for (const [name, spec] of Object.entries(STREAM_PARAMS)) {
      if (spec.kind !== "integer") continue;
      for (const value of [spec.min, spec.max]) {
        const result = query(`${name}=${value}`);
        assert.equal(result.ok, true, `${name}=${value}`);
      }
      for (const value of [spec.min - 1, spec.max + 1]) {
        if (value < 0) continue;
        const result = query(`${name}=${value}`);
        assert.deepEqual(result.ok ? undefined : [result.error.param, result.error.value], [
          name,
          String(value),
        ]);
        assert.ok(!result.ok && result.error.error.includes(String(spec.min)));
      }
    }
  });

  it("maps names to options", () => {
    assert.deepEqual(
      query(
        "interval=0&count=5&delay=10&event=a.b:c-d_1&retry=0&heartbeat=1000&size=9&lines=3&eol=cr&chunk=1&fail_after=2&status=503&lastEventId=x",
      ),
      {
        ok: true,
        query: {
          interval: 0,
          count: 5,
          delay: 10,
          event: "a.b:c-d_1",
          retry: 0,
          heartbeat: 1000,
          size: 9,
          lines: 3,
          eol: "cr",
          chunk: 1,
          failAfter: 2,
          status: 503,
          lastEventId: "x",
        },
      },
    );
  });

  it("refuses bad values with the parameter and the value", () => {
    const cases: [string, string, string][] = [
      ["interval=abc", "interval", "abc"],
      ["interval=-5", "interval", "-5"],
      ["interval=1e3", "interval", "1e3"],
      ["count=0", "count", "0"],
      ["event=a%0Ab", "event", "a\nb"],
      ["event=a%0Db", "event", "a\rb"],
      ["event=", "event", ""],
      ["event=" + "a".repeat(65), "event", "a".repeat(65)],
      ["event=sp%20ace", "event", "sp ace"],
      ["eol=CRLF", "eol", "CRLF"],
      ["nope=1", "nope", "1"],
    ];
    for (const [text, param, value] of cases) {
      const result = query(text);
      assert.equal(result.ok, false, text);
      if (!result.ok) {
        assert.equal(result.error.param, param, text);
        assert.equal(result.error.value, value, text);
        assert.ok(result.error.error.length > 0);
      }
    }
  });

  it("takes a repeated parameter with one value, refuses conflicting ones", () => {
    assert.deepEqual(query("interval=5&interval=5"), { ok: true, query: { interval: 5 } });
    const result = query("interval=5&interval=6");
    assert.ok(
      !result.ok && result.error.param === "interval" && /conflicting/.test(result.error.error),
    );
  });

  it("ignores names starting with _ (cache busters)", () => {
    assert.deepEqual(query("_=123&_=456&interval=1"), { ok: true, query: { interval: 1 } });
  });

  it("shortens very long values in the error", () => {
    const result = query("interval=" + "9".repeat(65_536));
    assert.ok(!result.ok && result.error.value.length < 300);
  });
});

describe("resumeAfter", () => {
  const at = (headers: Record<string, string>, lastEventId?: string) =>
    resumeAfter(new Request("http://x/", { headers }), { lastEventId });

  it("prefers the header, which EventSource updates, over the query", () => {
    assert.equal(at({ "last-event-id": "41" }, "3"), 41);
    assert.equal(at({}, "3"), 3);
    assert.equal(at({}), undefined);
    assert.equal(at({ "last-event-id": "" }), undefined);
  });

  it("calls anything but a plain integer below 2^53 invalid", () => {
    // (Headers trim surrounding spaces, as HTTP does: " 1" arrives as "1".)
    for (const value of ["-1", "1.5", "abc", "9007199254740992", "1 2", "01"]) {
      assert.equal(at({ "last-event-id": value }), "invalid", value);
    }
    assert.equal(at({ "last-event-id": "9007199254740991" }), Number.MAX_SAFE_INTEGER);
  });
});
