import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_SETTINGS, defaultMaxStreams, loadSettings } from "../lib/settings.ts";

describe("loadSettings", () => {
  it("uses defaults when nothing is set", () => {
    assert.deepEqual(loadSettings(() => undefined, undefined), DEFAULT_SETTINGS);
  });

  it("reads every variable", () => {
    const env: Record<string, string> = {
      LOG_LEVEL: "debug",
      MAX_STREAMS: "5",
      STALL_TIMEOUT_MS: "1000",
      MAX_LIFETIME_MS: "0",
      PORT: "0",
      HOST: "127.0.0.1",
    };
    assert.deepEqual(loadSettings((name) => env[name], undefined), {
      logLevel: "debug",
      maxStreams: 5,
      stallTimeoutMs: 1000,
      maxLifetimeMs: 0,
      port: 0,
      hostname: "127.0.0.1",
    });
  });

  it("names the variable when a value is malformed", () => {
    for (
      const [name, value] of [["MAX_STREAMS", "0"], ["MAX_STREAMS", "1k"], ["PORT", "70000"], [
        "LOG_LEVEL",
        "loud",
      ], ["STALL_TIMEOUT_MS", "-1"]]
    ) {
      assert.throws(
        () => loadSettings((n) => n === name ? value : undefined, undefined),
        new RegExp(name),
      );
    }
  });

  it("sizes the default stream cap to memory", () => {
    assert.ok(defaultMaxStreams(8 * 1024 ** 3) > defaultMaxStreams(1024 ** 3));
    assert.equal(defaultMaxStreams(1024 ** 5), 100_000);
  });
});
