/**
 * The run's results as data (`results.json`) and as a page (`RESULTS.md`):
 * machine facts, a table per runtime with ours beside Hono and the ratio,
 * the targets with pass/fail, and the load client's own load.
 *
 * @module
 */

import type { Runtime } from "../tests/_server.ts";
import type { ChurnMeasure, LevelMeasure, RateMeasure, TtfeMeasure } from "./phases.ts";
import type { Plan } from "./plan.ts";
import type { MachineFacts } from "./proc.ts";
import type { App } from "./servers.ts";

/** What one app measured under one runtime. */
export interface AppResults {
  ttfe?: TtfeMeasure;
  churn?: ChurnMeasure;
  rate?: RateMeasure;
  levels: LevelMeasure[];
  /** Phases that could not be measured, and why. */
  errors: string[];
}

/** Everything a run produced: what `results.json` holds. */
export interface RunResults {
  command: string;
  mode: Plan["mode"];
  complete: boolean;
  started_at: string;
  finished_at: string;
  duration_s: number;
  estimate_s: number;
  machine: MachineFacts & { load_average_end: string };
  versions: Record<string, string>;
  client: { node: string; fd_limit: { soft: number; hard: number }; sources: string[] };
  plan: Plan;
  runs: Partial<Record<Runtime, Partial<Record<App, AppResults>>>>;
}

/** The targets of issue 4, per runtime. */
export const TARGETS: Record<Runtime, {
  rssPerStreamKib: number;
  latencyP99Ms: number;
  deliveredPct: number;
  eventsPerS: number;
}> = {
  bun: { rssPerStreamKib: 6, latencyP99Ms: 20, deliveredPct: 99.5, eventsPerS: 1_500_000 },
  deno: { rssPerStreamKib: 45, latencyP99Ms: 100, deliveredPct: 99.5, eventsPerS: 500_000 },
  workerd: { rssPerStreamKib: 60, latencyP99Ms: 200, deliveredPct: 99, eventsPerS: 100_000 },
};
/** Every comparable figure should be at least this much better than Hono's. */
export const RATIO_TARGET = 1.5;
/** RSS 5 s after churn may exceed RSS before it by at most this share. */
export const CHURN_RSS_GROWTH_MAX = 0.2;
// An ELU or CPU share above this means the client may have been the limit.
const CLIENT_BUSY = 0.9;
// Timestamps are whole ms: latency ratios treat anything below 1 ms as 1 ms.
const TIME_RESOLUTION_MS = 1;

type Better = "lower" | "higher" | "none";

/** One row of a runtime's table. */
interface Figure {
  label: string;
  ours: number | string | null | undefined;
  hono: number | string | null | undefined;
  better: Better;
  /** The smallest value a ratio treats as distinct from zero. */
  floor?: number;
  unit?: string;
}

/**
 * How many times better ours is than Hono's (≥ 1: better), or undefined
 * when the figure has no direction or a side was not measured.
 */
export function ratio(
  ours: unknown,
  hono: unknown,
  better: Better,
  floor = 0,
): number | undefined {
  if (better === "none" || typeof ours !== "number" || typeof hono !== "number") return undefined;
  if (Number.isNaN(ours) || Number.isNaN(hono)) return undefined;
  const a = Math.max(ours, floor);
  const b = Math.max(hono, floor);
  if (a <= 0 || b <= 0) return undefined;
  return better === "lower" ? b / a : a / b;
}

function show(value: number | string | null | undefined, unit = ""): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return unit === "" ? value : `${value} ${unit}`;
  if (Number.isNaN(value)) return "—";
  const text = Math.abs(value) >= 1000
    ? Math.round(value).toLocaleString("en-US")
    : String(Math.round(value * 100) / 100);
  return unit === "" ? text : `${text} ${unit}`;
}

function signed(value: number): string {
  return value > 0 ? `+${show(value)}` : show(value);
}

function showRatio(figure: Figure): string {
  const r = ratio(figure.ours, figure.hono, figure.better, figure.floor);
  if (r === undefined) return "—";
  const mark = r >= RATIO_TARGET ? "✔" : "✘";
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}× ${mark}`;
}

const mib = (bytes: number | undefined) =>
  bytes === undefined || Number.isNaN(bytes) ? undefined : Math.round(bytes / 1024 / 1024 * 10) /
    10;

type Summary = LevelMeasure["summary"];

/** A level's figures, or none when it held no stream (nothing was measured per stream). */
function measuredSummary(level?: LevelMeasure): Summary | undefined {
  return level === undefined || level.summary.held === 0 ? undefined : level.summary;
}

type Cell = Figure["ours"];

/** A row whose two cells read the same figure, from ours and from Hono's. */
function figure<M>(
  pair: [M | undefined, M | undefined],
  label: string,
  read: (measure: M) => Cell,
  better: Better,
  shown: { floor?: number; unit?: string } = {},
): Figure {
  const cell = (m: M | undefined) => m === undefined ? undefined : read(m);
  return { label, ours: cell(pair[0]), hono: cell(pair[1]), better, ...shown };
}

function levelFigures(ours?: LevelMeasure, hono?: LevelMeasure): Figure[] {
  const apps: [LevelMeasure | undefined, LevelMeasure | undefined] = [ours, hono];
  const measured: [Summary | undefined, Summary | undefined] = [
    measuredSummary(ours),
    measuredSummary(hono),
  ];
  const n = ours?.n ?? hono?.n;
  const time = { floor: TIME_RESOLUTION_MS, unit: "ms" };
  const p99s = (m: LevelMeasure) =>
    m.summary.latency_p99_by_window.length < 2
      ? undefined
      : `${m.summary.latency_p99_by_window.map((v) => show(v)).join(", ")}`;
  const rows: Figure[] = [
    figure(
      apps,
      `N=${n}: streams held / failed`,
      (m) => `${m.summary.held} / ${m.summary.failed}`,
      "none",
    ),
    figure(
      apps,
      `N=${n}: streams open as the server counts them (after the ramp)`,
      (m) => m.server_streams_open,
      "none",
    ),
    figure(measured, `N=${n}: RSS per stream above idle`, (s) => s.rss_per_stream_kib, "lower", {
      unit: "KiB",
    }),
    figure(measured, `N=${n}: server CPU`, (s) => s.server_cpu_pct, "lower", {
      floor: 0.1,
      unit: "%",
    }),
    figure(measured, `N=${n}: ticks delivered / expected`, (s) => s.delivered_pct, "none", {
      unit: "%",
    }),
    figure(measured, `N=${n}: delivery latency p50`, (s) => s.latency_p50_ms, "lower", time),
    figure(measured, `N=${n}: delivery latency p99`, (s) => s.latency_p99_ms, "lower", time),
    figure(measured, `N=${n}: delivery latency max`, (s) => s.latency_max_ms, "lower", time),
    figure(measured, `N=${n}: tick jitter p99`, (s) => s.jitter_p99_ms, "lower", time),
  ];
  const byWindow = figure(apps, `N=${n}: latency p99 of each window`, p99s, "none", {
    unit: "ms",
  });
  if (byWindow.ours !== undefined || byWindow.hono !== undefined) rows.push(byWindow);
  return rows;
}

function figuresFor(ours?: AppResults, hono?: AppResults): Figure[] {
  const rows: Figure[] = [];
  const levels = [...new Set([...(ours?.levels ?? []), ...(hono?.levels ?? [])].map((l) => l.n))]
    .sort((a, b) => a - b);
  for (const n of levels) {
    rows.push(
      ...levelFigures(ours?.levels.find((l) => l.n === n), hono?.levels.find((l) => l.n === n)),
    );
  }
  const rates: [RateMeasure | undefined, RateMeasure | undefined] = [ours?.rate, hono?.rate];
  if (ours?.rate !== undefined || hono?.rate !== undefined) {
    rows.push(
      figure(rates, "single stream: events/s", (r) => r.events_per_s, "higher"),
      figure(rates, "single stream: MB/s", (r) => r.mb_per_s, "higher"),
    );
  }
  const churns: [ChurnMeasure | undefined, ChurnMeasure | undefined] = [ours?.churn, hono?.churn];
  if (ours?.churn !== undefined || hono?.churn !== undefined) {
    rows.push(
      figure(churns, "churn: cycles/s", (c) => c.result.cycles_per_s, "higher"),
      figure(
        churns,
        "churn: failed cycles",
        (c) => Object.values(c.result.failures).reduce((a, b) => a + b, 0),
        "none",
      ),
      figure(
        churns,
        "churn: server RSS before → end → 5 s later",
        (c) => `${mib(c.rss_before)} → ${mib(c.rss_end)} → ${mib(c.rss_after)}`,
        "none",
        { unit: "MiB" },
      ),
      figure(
        churns,
        "churn: RSS 5 s later vs before",
        (c) => signed(Math.round((c.rss_after / c.rss_before - 1) * 1000) / 10),
        "none",
        { unit: "%" },
      ),
      figure(churns, "churn: streams open 5 s later", (c) => c.streams_open_after, "none"),
    );
  }
  const ttfes: [TtfeMeasure | undefined, TtfeMeasure | undefined] = [ours?.ttfe, hono?.ttfe];
  if (ours?.ttfe !== undefined || hono?.ttfe !== undefined) {
    const ms = { floor: 0.1, unit: "ms" };
    rows.push(
      figure(ttfes, "time to first event p50 (idle)", (t) => t.result.p50, "lower", ms),
      figure(ttfes, "time to first event p99 (idle)", (t) => t.result.p99, "lower", ms),
      figure(ttfes, "idle RSS after warm-up", (t) => mib(t.idle.rss), "none", { unit: "MiB" }),
    );
  }
  return rows;
}

interface TargetCheck {
  figure: string;
  target: string;
  value: string;
  pass: boolean | undefined;
}

/** The issue's targets for one runtime, checked against ours at the top level measured. */
export function targetChecks(
  runtime: Runtime,
  ours?: AppResults,
  hono?: AppResults,
): TargetCheck[] {
  const t = TARGETS[runtime];
  const top = ours?.levels[ours.levels.length - 1];
  const s = top?.summary;
  // Per-stream figures only where streams were held.
  const m = measuredSummary(top);
  const at = top === undefined ? "" : ` (N=${top.n})`;
  const checks: TargetCheck[] = [
    {
      figure: `streams held at the top level${at}`,
      target: "all, 0 failed",
      value: s === undefined ? "—" : `${s.held} held, ${s.failed} failed`,
      pass: s === undefined ? undefined : s.failed === 0,
    },
    {
      figure: `RSS per stream${at}`,
      target: `≤ ${t.rssPerStreamKib} KiB`,
      value: show(m?.rss_per_stream_kib, "KiB"),
      pass: m === undefined || m.rss_per_stream_kib === null
        ? undefined
        : m.rss_per_stream_kib <= t.rssPerStreamKib,
    },
    {
      figure: `delivery latency p99${at}`,
      target: `≤ ${t.latencyP99Ms} ms`,
      value: show(m?.latency_p99_ms, "ms"),
      pass: m === undefined || m.latency_p99_ms === null
        ? undefined
        : m.latency_p99_ms <= t.latencyP99Ms,
    },
    {
      figure: `ticks delivered / expected${at}`,
      target: `≥ ${t.deliveredPct} %`,
      value: show(m?.delivered_pct, "%"),
      pass: m === undefined || m.delivered_pct === null
        ? undefined
        : m.delivered_pct >= t.deliveredPct,
    },
    {
      figure: "single-stream events/s",
      target: `≥ ${show(t.eventsPerS)}`,
      value: show(ours?.rate?.events_per_s),
      pass: ours?.rate === undefined ? undefined : ours.rate.events_per_s >= t.eventsPerS,
    },
    {
      figure: "streams open 5 s after churn",
      target: "0",
      value: show(ours?.churn?.streams_open_after),
      pass: ours?.churn === undefined ? undefined : ours.churn.streams_open_after === 0,
    },
    {
      figure: "RSS 5 s after churn vs before",
      target: `≤ +${CHURN_RSS_GROWTH_MAX * 100} %`,
      value: ours?.churn === undefined
        ? "—"
        : `${signed(Math.round((ours.churn.rss_after / ours.churn.rss_before - 1) * 1000) / 10)} %`,
      pass: ours?.churn === undefined
        ? undefined
        : ours.churn.rss_after <= ours.churn.rss_before * (1 + CHURN_RSS_GROWTH_MAX),
    },
  ];
  const compared = figuresFor(ours, hono)
    .map((f) => ratio(f.ours, f.hono, f.better, f.floor))
    .filter((r): r is number => r !== undefined);
  checks.push({
    figure: "figures vs Hono (where Hono is measurable)",
    target: `each ≥ ${RATIO_TARGET}× better`,
    value: compared.length === 0
      ? "—"
      : `${compared.filter((r) => r >= RATIO_TARGET).length} of ${compared.length} (worst ${
        Math.min(...compared).toFixed(2)
      }×)`,
    pass: compared.length === 0 ? undefined : compared.every((r) => r >= RATIO_TARGET),
  });
  return checks;
}

const mark = (pass: boolean | undefined) => pass === undefined ? "n/a" : pass ? "✔ pass" : "✘ fail";

type Usage = { cpu_pct: number; elu: number };

/** The client's load per kind of phase (the busiest of each kind), and a verdict. */
function clientLoad(results: RunResults): string[] {
  const lines: string[] = [];
  const busy: string[] = [];
  for (const [runtime, apps] of Object.entries(results.runs)) {
    for (const [app, r] of Object.entries(apps ?? {})) {
      if (r === undefined) continue;
      const kinds: [string, Usage[]][] = [
        ["ttfe", r.ttfe === undefined ? [] : [r.ttfe.result.client]],
        ["churn", r.churn === undefined ? [] : [r.churn.result.client]],
        ["rate", (r.rate?.runs ?? []).map((run) => run.result.client)],
        ["ramps", r.levels.map((l) => l.hold.client)],
        ["windows", r.levels.flatMap((l) => l.windows.map((w) => w.client.client))],
      ];
      const cells = kinds.map(([kind, usages]) => {
        if (usages.length === 0) return "—";
        const cpu = Math.max(...usages.map((u) => u.cpu_pct));
        const elu = Math.max(...usages.map((u) => u.elu));
        if (elu >= CLIENT_BUSY || cpu >= CLIENT_BUSY * 100) busy.push(`${runtime}/${app} ${kind}`);
        return `${cpu}% / ${elu}`;
      });
      lines.push(`| ${runtime} | ${app} | ${cells.join(" | ")} |`);
    }
  }
  return [
    "## The load client's own load",
    "",
    "CPU as % of one core / event-loop utilisation (0–1) of the Node load client, the busiest " +
    `phase of each kind. An ELU or CPU above ${CLIENT_BUSY * 100}% means the client, not the ` +
    "server, may have set the figure: read it as a lower bound of what the server can do. ELU " +
    "counts wall time outside the event loop's wait, so on a busy machine it also counts time " +
    "the client was runnable but not running. On two cores, churn and the single-stream read " +
    "keep client and server busy at once: their figures are the machine's, not the server's " +
    "alone.",
    "",
    busy.length === 0
      ? "**Verdict: the client was not the bottleneck in any phase.**"
      : `**Verdict: the client was busy (≥ ${CLIENT_BUSY * 100}%) in: ${busy.join(", ")}.** ` +
        "Those figures are lower bounds; the others were not limited by the client.",
    "",
    "| runtime | app | ttfe | churn | rate | ramps | windows |",
    "|---|---|---|---|---|---|---|",
    ...lines,
  ];
}

/** The distinct soft/hard open-file limits the servers ran with. */
function serverFdLimits(results: RunResults): string {
  const seen = new Set<string>();
  for (const apps of Object.values(results.runs)) {
    for (const r of Object.values(apps ?? {})) {
      for (const idle of [r?.ttfe?.idle, ...(r?.levels ?? []).map((l) => l.idle)]) {
        if (idle !== undefined) seen.add(`${idle.fd_limit.soft} / ${idle.fd_limit.hard}`);
      }
    }
  }
  return seen.size === 0 ? "—" : [...seen].join(", ");
}

const RUNTIME_TITLE: Record<Runtime, string> = { deno: "Deno", bun: "Bun", workerd: "workerd" };

/** Renders RESULTS.md. */
export function renderMarkdown(results: RunResults): string {
  const m = results.machine;
  const v = results.versions;
  const plan = results.plan;
  const out: string[] = [
    "# ssebin benchmark results",
    "",
    `Produced by \`${results.command}\` on ${results.started_at} (took ` +
    `${(results.duration_s / 60).toFixed(1)} min). Mode: **${results.mode}**` +
    (results.mode === "quick"
      ? " — small stream counts and short windows: indicative only, not the ceiling."
      : ".") +
    (results.plan.narrowed ? " Flags narrowed this run to part of the mode." : ""),
    "",
    'Every figure is ssebin (`mod.ts`, "ours") beside the same endpoints written with ' +
    "Hono's `streamSSE` (`bench/hono_app.ts`), on the same runtime and machine, one server " +
    "at a time, on loopback. The ratio column says how many times better ours is (≥ 1: " +
    `better; ✔ when ≥ ${RATIO_TARGET}×).`,
    "",
    "## Machine",
    "",
    "| | |",
    "|---|---|",
    `| CPU | ${m.cores} × ${m.cpu_model} |`,
    `| memory | ${m.memory_gib} GiB |`,
    `| kernel | Linux ${m.kernel} |`,
    `| open files per process (soft / hard) | ${m.fd_limit.soft} / ${m.fd_limit.hard} → ` +
    `top level N = ${plan.nMax} (hard − 300 for the server's own files) |`,
    `| open files per server process (from /proc/<pid>/limits) | ${serverFdLimits(results)} |`,
    `| load average at start / end | ${m.load_average} / ${m.load_average_end} |`,
    ...Object.entries(v).map(([name, version]) => `| ${name} | ${version} |`),
    `| load client | Node ${results.client.node}, fd limit ${results.client.fd_limit.soft}, ` +
    `held streams bound to ${results.client.sources[0]}…${
      results.client.sources[results.client.sources.length - 1]
    } (closed by reset), other phases from 127.0.0.1 (ports chosen at connect) |`,
    "",
    ...(Number(m.load_average.split(" ")[0]) > m.cores ||
        Number(m.load_average_end.split(" ")[0]) > m.cores
      ? [
        "**The machine was busy at the start or the end of this run (load average above the " +
        "core count): timings and CPU shares may be noisy, latencies pessimistic.**",
        "",
      ]
      : []),
    "## Method",
    "",
    `- **Concurrency**: N \`/events\` streams (1 s ticks) ramped at ${plan.rampPerSec}/s, ` +
    `over 1 s at least so their tick phases spread over the second (≤ ${plan.maxPending} ` +
    `awaiting their first event), then until delivery is steady (three one-second counts ` +
    `within 2 % and not above the tick rate: a server that fell behind catches up first; ` +
    `${plan.settleMs / 1000}–${plan.settleMaxMs / 1000} s), ` +
    `then ${plan.windowMs / 1000} s windows (` +
    (plan.topRepeats > 1
      ? `${plan.topRepeats} consecutive ones on the same streams at the top level, medians reported`
      : "one per level") +
    "). A fresh server per level. RSS per stream = (median RSS in the window − idle RSS " +
    "after warm-up) / streams held. CPU = the server's utime+stime over the window, % of one " +
    "core. Latency = arrival (client clock, at the read) − the event's own timestamp. Jitter = " +
    "|gap between consecutive timestamps − 1000 ms|. Expected ticks = streams held × window / " +
    "1 s.",
    `- **Single stream**: \`/stream?interval=0&count=${plan.rateCount}\` read as fast as ` +
    `possible, capped at ${plan.rateMaxMs / 1000} s, ${plan.rateRepeats} run(s), median; MB/s ` +
    "of SSE text (HTTP framing excluded).",
    `- **Churn**: ${plan.churnWorkers} parallel loops of connect → first event → close on ` +
    `\`/events\` for ${plan.churnMs / 1000} s; RSS before, at the end and ` +
    `${plan.afterChurnMs / 1000} s later; \`sse_streams_open\` ${plan.afterChurnMs / 1000} s ` +
    "later (Hono's app counts its open streams in the same format).",
    `- **Time to first event**: ${plan.ttfeSamples} sequential connections to \`/events\` on an ` +
    "idle server, connect to first parsed event.",
    "- Baseline: `bench/hono_app.ts`, as a Hono user writes it — `streamSSE`, `writeSSE`, " +
    "`stream.sleep(1000)` after each write (so its ticks drift by the time a write takes), " +
    "`onAbort` to stop; the same event fields and data (Hono orders the lines `event`, `data`, " +
    "`id`).",
    "- Servers: `deno serve` and `bun run` (`NODE_ENV=production`), workerd run directly from a " +
    "bundle (no wrangler proxy); `MAX_STREAMS=100000`, `LOG_LEVEL=warn`; open-file limit raised " +
    "to the hard limit for server and client.",
    "",
    "## Targets (ours)",
    "",
    `| figure | ${results.plan.runtimes.map((r) => RUNTIME_TITLE[r]).join(" | ")} |`,
    `|---|${results.plan.runtimes.map(() => "---").join("|")}|`,
  ];
  const checks = results.plan.runtimes.map((runtime) =>
    targetChecks(runtime, results.runs[runtime]?.ours, results.runs[runtime]?.hono)
  );
  for (let row = 0; row < (checks[0]?.length ?? 0); row++) {
    out.push(
      `| ${checks[0][row].figure} | ${
        checks.map((c) => `${c[row].value} (target ${c[row].target}) ${mark(c[row].pass)}`).join(
          " | ",
        )
      } |`,
    );
  }
  for (const runtime of results.plan.runtimes) {
    const apps = results.runs[runtime];
    if (apps === undefined) continue;
    out.push(
      "",
      `## ${RUNTIME_TITLE[runtime]} ${v[RUNTIME_TITLE[runtime]] ?? ""}`.trimEnd(),
      "",
      "| figure | ours | Hono | ours vs Hono |",
      "|---|---|---|---|",
    );
    for (const figure of figuresFor(apps.ours, apps.hono)) {
      out.push(
        `| ${figure.label} | ${show(figure.ours, figure.unit)} | ${
          show(figure.hono, figure.unit)
        } | ${showRatio(figure)} |`,
      );
    }
    for (const [app, r] of Object.entries(apps)) {
      for (const error of r?.errors ?? []) {
        out.push("", `- **${app} could not be measured**: ${error}`);
      }
    }
  }
  out.push("", ...clientLoad(results), "");
  out.push(
    "Raw figures (every window, every run, failure reasons): `results.json` beside this file.",
    "",
  );
  return out.join("\n");
}
