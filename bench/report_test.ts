/**
 * The harness's arithmetic: plans from flags, ratios against Hono, target
 * checks. No server runs here.
 *
 * Run: `deno test -A bench/report_test.ts` (well under a second).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { planFrom } from "./plan.ts";
import { ratio, targetChecks } from "./report.ts";
import type { AppResults } from "./report.ts";
import type { LevelMeasure } from "./phases.ts";

describe("planFrom", () => {
  it("ends the full levels at the fd limit less headroom, and calls that run complete", () => {
    const plan = planFrom([], 20_000, "/r/");
    assert.deepEqual(plan.levels, [1_000, 5_000, 10_000, 19_700]);
    assert.equal(plan.windowMs, 30_000);
    assert.equal(plan.topRepeats, 3);
    assert.equal(plan.complete, true);
    assert.equal(plan.outDir, "/r/bench/");
  });

  it("keeps quick and narrowed runs out of bench/RESULTS.md", () => {
    const quick = planFrom(["--quick"], 20_000, "/r/");
    assert.deepEqual(quick.levels, [200, 1_000]);
    assert.equal(quick.outDir, "/r/bench/out/");
    const narrowed = planFrom(["--runtimes=bun", "--phases=rate"], 20_000, "/r/");
    assert.deepEqual(narrowed.runtimes, ["bun"]);
    assert.deepEqual(narrowed.phases, ["rate"]);
    assert.equal(narrowed.complete, false);
  });

  it("refuses levels above the fd limit, unknown names and unknown flags", () => {
    assert.throws(() => planFrom(["--levels=20000"], 20_000, "/r/"), /at most 19700/);
    assert.throws(() => planFrom(["--runtimes=node"], 20_000, "/r/"), /unknown "node"/);
    assert.throws(() => planFrom(["--qiuck"], 20_000, "/r/"));
  });
});

describe("ratio", () => {
  it("reads ≥ 1 as ours better, whichever direction is better", () => {
    assert.equal(ratio(10, 30, "lower"), 3);
    assert.equal(ratio(30, 10, "higher"), 3);
    assert.equal(ratio(30, 10, "lower"), 1 / 3);
  });

  it("floors values at the resolution, and gives none without both sides", () => {
    // 0 ms against 5 ms is "5× at 1 ms resolution", not infinitely better.
    assert.equal(ratio(0, 5, "lower", 1), 5);
    assert.equal(ratio(3, undefined, "lower"), undefined);
    assert.equal(ratio("1 / 0", "1 / 0", "none"), undefined);
    assert.equal(ratio(Number.NaN, 2, "higher"), undefined);
  });
});

function level(n: number, held: number, rssKib: number, p99: number): LevelMeasure {
  return {
    n,
    server_streams_open: held,
    summary: {
      held,
      failed: n - held,
      rss_per_stream_kib: rssKib,
      server_cpu_pct: 10,
      delivered_pct: 99.9,
      latency_p50_ms: 1,
      latency_p99_ms: p99,
      latency_max_ms: p99,
      jitter_p99_ms: 2,
      latency_p99_by_window: [p99],
      machine_busy_pct: 50,
      client_cpu_pct: 5,
      client_elu: 0.1,
    },
  } as LevelMeasure;
}

describe("targetChecks", () => {
  it("checks Bun's targets at the top level measured", () => {
    const ours: AppResults = {
      levels: [level(1_000, 1_000, 50, 5), level(19_700, 19_700, 5, 15)],
      errors: [],
    };
    const hono: AppResults = { levels: [level(19_700, 19_700, 12, 40)], errors: [] };
    const checks = targetChecks("bun", ours, hono);
    for (const check of checks) console.log(`${check.figure}: ${check.value} → ${check.pass}`);
    const byFigure = new Map(checks.map((c) => [c.figure.replace(/ \(N=\d+\)$/, ""), c]));
    assert.equal(byFigure.get("streams held at the top level")?.pass, true);
    assert.equal(byFigure.get("RSS per stream")?.pass, true);
    assert.equal(byFigure.get("delivery latency p99")?.pass, true);
    // Not measured: neither pass nor fail.
    assert.equal(byFigure.get("single-stream events/s")?.pass, undefined);
    // 12/5 KiB and 40/15 ms pass 1.5×; CPU 10 % vs 10 % and the equal p50s do not.
    assert.equal(byFigure.get("figures vs Hono (where Hono is measurable)")?.pass, false);
  });

  it("fails a level that lost streams and a per-stream cost over the target", () => {
    const ours: AppResults = { levels: [level(19_700, 19_650, 7, 15)], errors: [] };
    const checks = targetChecks("bun", ours, undefined);
    assert.equal(checks[0].pass, false);
    assert.equal(checks[1].pass, false);
  });
});
