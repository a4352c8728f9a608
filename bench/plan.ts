/**
 * What a benchmark run does: the mode's sizes, the command-line flags that
 * narrow it, and how long it should take.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Runtime, RUNTIMES } from "../tests/_server.ts";
import { type App, APPS } from "./servers.ts";

/** The measurements, in the order each server gets them. */
export type PhaseName = "ttfe" | "churn" | "rate" | "concurrency";
/** Every phase. */
export const PHASES: readonly PhaseName[] = ["ttfe", "churn", "rate", "concurrency"];

/** Everything a run needs to know. */
export interface Plan {
  mode: "quick" | "full";
  runtimes: Runtime[];
  apps: App[];
  phases: PhaseName[];
  /** The per-process hard limit on open files, read from /proc. */
  fdHard: number;
  /** The most streams the fd limit allows, with headroom for the server's own files. */
  nMax: number;
  /** Stream counts for the concurrency phase, ascending; the last is the top level. */
  levels: number[];
  /** Length of each measurement window. */
  windowMs: number;
  /** Windows measured at the top level; its figures are their medians. */
  topRepeats: number;
  /**
   * After the ramp, the least and the most time to wait for steady delivery
   * (a server that fell behind while accepting catches up first).
   */
  settleMs: number;
  settleMaxMs: number;
  rampPerSec: number;
  maxPending: number;
  firstEventTimeoutMs: number;
  churnMs: number;
  churnWorkers: number;
  /** How long after churn the leftovers are counted (the issue says 5 s). */
  afterChurnMs: number;
  rateCount: number;
  rateMaxMs: number;
  rateRepeats: number;
  ttfeSamples: number;
  /** Loopback source addresses the client's sockets bind to, in turn. */
  sources: string[];
  /** Where RESULTS.md and results.json go. */
  outDir: string;
  /** Whether flags left out runtimes, apps, phases or sizes of the mode. */
  narrowed: boolean;
  /** Whether this run covers everything the full benchmark covers. */
  complete: boolean;
  /** Only print the plan and the estimate. */
  estimateOnly: boolean;
  /** Only rewrite RESULTS.md from the results.json already in `outDir`. */
  renderOnly: boolean;
}

// Files a server needs besides its streams (stdio, epoll, the listener,
// V8's own): generous, as the issue asks for a few hundred.
const FD_HEADROOM = 300;
const FULL_LEVELS = [1_000, 5_000, 10_000];
const QUICK_LEVELS = [200, 1_000];
const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

/** The usage text of `deno task bench`. */
export const USAGE = `deno task bench              everything (about half an hour)
deno run -A bench/run.ts [flags]

  --quick              small sizes (N = 200, 1000; 5 s windows; short churn): ~3 min
  --runtimes=a,b       deno,bun,workerd (default: all)
  --apps=a,b           ours,hono (default: both)
  --phases=a,b         ttfe,churn,rate,concurrency (default: all)
  --levels=a,b         concurrency stream counts (default: 1000,5000,10000,<fd max>)
  --window-ms=N        measurement window (default: 30000; quick 5000)
  --repeats=N          windows at the top level, median reported (default: 3; quick 1)
  --out-dir=DIR        where RESULTS.md and results.json go (default: bench/ for a
                       complete full run, bench/out/ otherwise)
  --estimate           print the plan and its estimated length, run nothing
  --render             rewrite RESULTS.md from the results.json in --out-dir (default
                       bench/), run nothing: for a change to the report's layout
`;

/**
 * Reads the flags into a plan (unknown flags throw); `fdHard` is the
 * machine's hard open-file limit, `root` the repository's path.
 */
export function planFrom(args: string[], fdHard: number, root: string): Plan {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      runtimes: { type: "string" },
      apps: { type: "string" },
      phases: { type: "string" },
      levels: { type: "string" },
      "window-ms": { type: "string" },
      repeats: { type: "string" },
      "out-dir": { type: "string" },
      estimate: { type: "boolean", default: false },
      render: { type: "boolean", default: false },
    },
  });
  const quick = values.quick;
  const nMax = fdHard - FD_HEADROOM;
  const runtimes = listFlag(values.runtimes, RUNTIMES, "runtimes");
  const apps = listFlag(values.apps, APPS, "apps");
  const phases = listFlag(values.phases, PHASES, "phases");
  const levels = values.levels === undefined
    ? quick ? QUICK_LEVELS : [...FULL_LEVELS.filter((n) => n < nMax), nMax]
    : values.levels.split(",").map((text) => positive(text, "levels"));
  if (levels.some((n) => n > nMax)) {
    throw new Error(`--levels: the fd limit (${fdHard}) allows at most ${nMax} streams`);
  }
  const windowMs = values["window-ms"] === undefined
    ? quick ? 5_000 : 30_000
    : positive(values["window-ms"], "window-ms");
  const narrowed = [values.runtimes, values.apps, values.phases, values.levels, values["window-ms"]]
    .some((value) => value !== undefined);
  const complete = !quick && !narrowed;
  return {
    mode: quick ? "quick" : "full",
    runtimes,
    apps,
    phases,
    fdHard,
    nMax,
    levels: [...new Set(levels)].sort((a, b) => a - b),
    windowMs,
    topRepeats: values.repeats === undefined ? quick ? 1 : 3 : positive(values.repeats, "repeats"),
    settleMs: quick ? 1_000 : 3_000,
    settleMaxMs: quick ? 10_000 : 30_000,
    rampPerSec: quick ? 1_000 : 2_000,
    maxPending: 256,
    // Generous: a loaded 2-core machine can be slow to accept at the ceiling.
    firstEventTimeoutMs: 20_000,
    churnMs: quick ? 2_000 : 10_000,
    churnWorkers: quick ? 50 : 100,
    afterChurnMs: 5_000,
    rateCount: quick ? 1_000_000 : 10_000_000,
    rateMaxMs: quick ? 2_000 : 10_000,
    rateRepeats: quick ? 1 : 3,
    ttfeSamples: quick ? 30 : 200,
    sources: SOURCES,
    outDir: values["out-dir"] ??
      (complete || values.render ? `${root}bench/` : `${root}bench/out/`),
    narrowed,
    complete,
    estimateOnly: values.estimate,
    renderOnly: values.render,
  };
}

function listFlag<T extends string>(
  value: string | undefined,
  all: readonly T[],
  name: string,
): T[] {
  if (value === undefined) return [...all];
  const picked = value.split(",").map((item) => item.trim());
  for (const item of picked) {
    if (!(all as readonly string[]).includes(item)) {
      throw new Error(`--${name}: unknown "${item}"; known: ${all.join(", ")}`);
    }
  }
  return all.filter((item) => picked.includes(item));
}

function positive(text: string, name: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new Error(`--${name}: not a positive integer: ${text}`);
  }
  return n;
}

/**
 * An estimate of the run's length in seconds: servers' start and
 * warm-up, ramps, windows, churn and its 5 s wait, rate reads at their cap.
 */
export function estimateSeconds(plan: Plan): number {
  let perApp = 0;
  const singles = plan.phases.filter((phase) => phase !== "concurrency");
  const start = 3.5; // start, warm-up, idle readings, stop
  if (singles.length > 0) perApp += start;
  if (plan.phases.includes("ttfe")) perApp += plan.ttfeSamples * 0.01 + 1;
  if (plan.phases.includes("churn")) perApp += (plan.churnMs + plan.afterChurnMs) / 1000 + 2;
  if (plan.phases.includes("rate")) perApp += plan.rateRepeats * (plan.rateMaxMs / 1000 + 1);
  if (plan.phases.includes("concurrency")) {
    for (const [i, n] of plan.levels.entries()) {
      const windows = i === plan.levels.length - 1 ? plan.topRepeats : 1;
      perApp += start + n / plan.rampPerSec + (plan.settleMs + 2_000) / 1000 +
        windows * plan.windowMs / 1000 + 1.5;
    }
  }
  return perApp * plan.apps.length * plan.runtimes.length;
}
