/**
 * The four measurements of one app under one runtime. Each starts its own
 * server (fresh memory, fresh counters), drives the load client and samples
 * the server's `/proc` entry while the client works.
 *
 * @module
 */

import type { Runtime } from "../tests/_server.ts";
import type {
  ChurnResult,
  HoldResult,
  RateResult,
  Reasons,
  ReleaseResult,
  SettleResult,
  TtfeResult,
  WindowResult,
} from "./client_protocol.ts";
import { LoadClient } from "./client.ts";
import type { Plan } from "./plan.ts";
import {
  cpuSeconds,
  fdLimit,
  median,
  openFiles,
  round,
  rssBytes,
  type SampledUsage,
  Sampler,
} from "./proc.ts";
import { type App, type BenchServer, OUT_DIR, startBenchServer } from "./servers.ts";
import { mkdirSync, writeFileSync } from "node:fs";

const LOG_DIR = `${OUT_DIR}logs/`;
/** Settings every server gets: a stream cap above any level, and quiet logs. */
const SERVER_ENV = { MAX_STREAMS: "100000", LOG_LEVEL: "warn" };
const EVENTS_PATH = "/events";
// `/events` ticks every second; the data's ISO time is under "timestamp".
const TICK_MS = 1000;
const TIMESTAMP_KEY = "timestamp";
// How often the server's memory and CPU are read during a window.
const SAMPLE_EVERY_MS = 500;
// TTFE: one connection at a time; a stuck one gives up after this.
const TTFE_TIMEOUT_MS = 5_000;
// Churn: a cycle waiting longer than this for its first event counts as failed.
const CHURN_FIRST_EVENT_MS = 10_000;
// Connections opened to warm the server's code paths before idle readings.
const WARM_UP_STREAMS = 5;
// A server too busy to answer /metrics this fast gets NaN, not a hung run.
const METRICS_TIMEOUT_MS = 10_000;
// The ramp may take this many times its planned length (at least a minute)
// before the streams not yet opened count as failed.
const RAMP_SLACK = 5;
const MIN_RAMP_TIMEOUT_MS = 60_000;
// Delivery counts as steady when three one-second counts agree this closely.
const SETTLE_TOLERANCE_PCT = 2;

/** Everything the server looked like at idle, after warm-up. */
export interface Idle {
  rss: number;
  fd_limit: { soft: number; hard: number };
  open_files: number;
  startup_ms: number;
}

/** Time to first event on an idle server. */
export interface TtfeMeasure {
  idle: Idle;
  result: TtfeResult;
}

/** Churn and what it left behind. */
export interface ChurnMeasure {
  result: ChurnResult;
  server: SampledUsage;
  rss_before: number;
  rss_end: number;
  /** `afterMs` after churn stopped. */
  rss_after: number;
  streams_open_end: number;
  streams_open_after: number;
  /** ssebin's `sse_disconnects_total` by reason, `afterMs` after churn (null: not ssebin). */
  server_disconnects: Reasons | null;
  after_ms: number;
}

/** Single-stream rate, repeated. */
export interface RateMeasure {
  runs: { result: RateResult; server_cpu_pct: number }[];
  events_per_s: number;
  mb_per_s: number;
}

/** One window of held streams: the client's figures and the server's. */
export interface WindowMeasure {
  client: WindowResult;
  server: SampledUsage;
}

/** The concurrency phase at one level. */
export interface LevelMeasure {
  n: number;
  idle: Idle;
  hold: HoldResult;
  settle: SettleResult;
  /** `sse_streams_open` as the server counts, after the ramp. */
  server_streams_open: number;
  /** ssebin only: events the server skipped for slow readers during the windows. */
  server_events_dropped: number | null;
  server_open_files: number;
  /** ssebin's `sse_disconnects_total` by reason after the windows (null: not ssebin). */
  server_disconnects: Reasons | null;
  windows: WindowMeasure[];
  release: ReleaseResult;
  summary: LevelSummary;
}

/** A level's figures: medians over its windows where there are several. */
export interface LevelSummary {
  held: number;
  failed: number;
  /** Null when no stream was held: nothing was measured per stream. */
  rss_per_stream_kib: number | null;
  server_cpu_pct: number | null;
  delivered_pct: number | null;
  latency_p50_ms: number | null;
  latency_p99_ms: number | null;
  latency_max_ms: number | null;
  jitter_p99_ms: number | null;
  /** Each window's delivery p99, to show the spread behind the median. */
  latency_p99_by_window: (number | null)[];
  machine_busy_pct: number | null;
  client_cpu_pct: number;
  client_elu: number;
}

/** A line of progress on stdout. */
export type Say = (line: string) => void;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One app under one runtime: its server, its load client, the plan. */
export class AppBench {
  readonly runtime: Runtime;
  readonly app: App;
  readonly #plan: Plan;
  readonly #say: Say;

  constructor(runtime: Runtime, app: App, plan: Plan, say: Say) {
    this.runtime = runtime;
    this.app = app;
    this.#plan = plan;
    this.#say = (line) => say(`[${runtime}/${app}] ${line}`);
  }

  /**
   * Starts a server and a client, runs `body`, stops both whatever happens,
   * and keeps the server's log in `bench/out/logs/` for a post-mortem.
   */
  async #withServer<T>(
    label: string,
    body: (server: BenchServer, client: LoadClient, idle: Idle) => Promise<T>,
  ) {
    const plan = this.#plan;
    const started = performance.now();
    const server = await startBenchServer(this.runtime, this.app, SERVER_ENV, plan.fdHard);
    const startupMs = Math.round(performance.now() - started);
    let client: LoadClient | undefined;
    try {
      client = await LoadClient.start(plan.sources, plan.fdHard);
      const idle = await this.#warmUp(server, client, startupMs);
      return await body(server, client, idle);
    } finally {
      await client?.close();
      await server.stop();
      mkdirSync(LOG_DIR, { recursive: true });
      writeFileSync(`${LOG_DIR}${this.runtime}-${this.app}-${label}.log`, server.log());
    }
  }

  /** Opens and closes a few streams, then reads the idle server. */
  async #warmUp(server: BenchServer, client: LoadClient, startupMs: number): Promise<Idle> {
    await client.ttfe({
      ...this.#where(server),
      samples: WARM_UP_STREAMS,
      timeoutMs: TTFE_TIMEOUT_MS,
    });
    // Let the warm-up's closes finish before the idle readings.
    await sleep(500);
    return {
      rss: await steadyRss(server.pid),
      fd_limit: fdLimit(server.pid),
      open_files: openFiles(server.pid),
      startup_ms: startupMs,
    };
  }

  #where(server: BenchServer, path = EVENTS_PATH) {
    return { host: server.host, port: server.port, path, timestampKey: TIMESTAMP_KEY };
  }

  /**
   * TTFE, churn and rate on one server, in that order: TTFE first, on an
   * idle server; churn before rate so that its memory baseline is not the
   * rate phase's burst.
   */
  singles(): Promise<{ ttfe?: TtfeMeasure; churn?: ChurnMeasure; rate?: RateMeasure }> {
    const plan = this.#plan;
    return this.#withServer("singles", async (server, client, idle) => {
      const out: { ttfe?: TtfeMeasure; churn?: ChurnMeasure; rate?: RateMeasure } = {};
      if (plan.phases.includes("ttfe")) {
        const result = await client.ttfe({
          ...this.#where(server),
          samples: plan.ttfeSamples,
          timeoutMs: TTFE_TIMEOUT_MS,
        });
        out.ttfe = { idle, result };
        this.#say(
          `ttfe: p50 ${result.p50} ms, p99 ${result.p99} ms over ${result.samples}` +
            ` (failures ${JSON.stringify(result.failures)}; client ELU ${result.client.elu})`,
        );
      }
      if (plan.phases.includes("churn")) out.churn = await this.#churn(server, client);
      if (plan.phases.includes("rate")) out.rate = await this.#rate(server, client);
      return out;
    });
  }

  async #churn(server: BenchServer, client: LoadClient): Promise<ChurnMeasure> {
    const plan = this.#plan;
    const rssBefore = await steadyRss(server.pid);
    const sampler = new Sampler(server.pid, SAMPLE_EVERY_MS);
    const result = await client.churn({
      ...this.#where(server),
      workers: plan.churnWorkers,
      ms: plan.churnMs,
      firstEventTimeoutMs: CHURN_FIRST_EVENT_MS,
    });
    const stoppedAt = performance.now();
    const usage = sampler.stop();
    const rssEnd = rssBytes(server.pid);
    const openEnd = await streamsOpen(server);
    await sleep(plan.afterChurnMs - (performance.now() - stoppedAt));
    const measure: ChurnMeasure = {
      result,
      server: usage,
      rss_before: rssBefore,
      rss_end: rssEnd,
      rss_after: rssBytes(server.pid),
      streams_open_end: openEnd,
      streams_open_after: await streamsOpen(server),
      server_disconnects: await this.#disconnects(server),
      after_ms: Math.round(performance.now() - stoppedAt),
    };
    this.#say(
      `churn: ${result.cycles_per_s} cycles/s (${result.cycles} in ${result.ms} ms, ` +
        `failures ${JSON.stringify(result.failures)}); RSS ${mib(rssBefore)} → ` +
        `${mib(rssEnd)} → ${mib(measure.rss_after)} MiB; open ${openEnd} → ` +
        `${measure.streams_open_after} after ${measure.after_ms} ms; client ELU ${result.client.elu}`,
    );
    return measure;
  }

  async #rate(server: BenchServer, client: LoadClient): Promise<RateMeasure> {
    const plan = this.#plan;
    const runs: RateMeasure["runs"] = [];
    for (let i = 0; i < plan.rateRepeats; i++) {
      const cpuBefore = cpuSeconds(server.pid);
      const started = performance.now();
      const result = await client.rate({
        ...this.#where(server, `/stream?interval=0&count=${plan.rateCount}`),
        timestampKey: undefined,
        maxMs: plan.rateMaxMs,
      });
      const seconds = (performance.now() - started) / 1000;
      const serverCpu = round(100 * (cpuSeconds(server.pid) - cpuBefore) / seconds, 1);
      runs.push({ result, server_cpu_pct: serverCpu });
      this.#say(
        `rate: ${result.events_per_s} events/s, ${result.mb_per_s} MB/s (${result.events} ` +
          `events, ${result.completed ? "complete" : "capped"}, id gaps ${result.id_gaps}); ` +
          `server CPU ${serverCpu}%, client CPU ${result.client.cpu_pct}% ELU ${result.client.elu}`,
      );
      // Let the server notice the close and settle before the next run.
      await sleep(500);
    }
    return {
      runs,
      events_per_s: median(runs.map((run) => run.result.events_per_s ?? 0)),
      mb_per_s: median(runs.map((run) => run.result.mb_per_s ?? 0)),
    };
  }

  /** The concurrency phase at `n` streams; `windows` windows (medians reported). */
  level(n: number, windows: number): Promise<LevelMeasure> {
    const plan = this.#plan;
    return this.#withServer(`n${n}`, async (server, client, idle) => {
      if (idle.fd_limit.soft < n + 50) {
        this.#say(`warning: server fd limit ${idle.fd_limit.soft} is below ${n} streams`);
      }
      // Over one tick interval at least: the streams' tick phases then cover
      // the whole second, and a window's edges cut as many ticks in as out.
      const rampPerSec = Math.min(plan.rampPerSec, n * 1000 / TICK_MS);
      const hold = await client.hold({
        ...this.#where(server),
        bindSources: true,
        n,
        rampPerSec,
        rampTimeoutMs: Math.max(MIN_RAMP_TIMEOUT_MS, RAMP_SLACK * n / rampPerSec * 1000),
        maxPending: plan.maxPending,
        firstEventTimeoutMs: plan.firstEventTimeoutMs,
        intervalMs: TICK_MS,
      });
      this.#say(
        `N=${n}: ${hold.held} held after ${hold.settled_ms} ms; failed to open ` +
          `${JSON.stringify(hold.failed_to_open)}; client ELU ${hold.client.elu}`,
      );
      const settle = await client.settle({
        minMs: plan.settleMs,
        maxMs: plan.settleMaxMs,
        tolerancePct: SETTLE_TOLERANCE_PCT,
      });
      this.#say(
        `N=${n}: ${settle.steady ? "steady" : "not steady"} after ${settle.settle_ms} ms ` +
          `(events/s ${
            settle.last_counts.join(", ")
          }; held streams tick ${settle.expected_per_s}/s)`,
      );
      const serverOpen = await streamsOpen(server);
      if (serverOpen !== hold.held) {
        this.#say(
          `N=${n}: the server counts ${serverOpen} open streams, the client holds ${hold.held}`,
        );
      }
      const droppedBefore = await this.#dropped(server);
      const measured: WindowMeasure[] = [];
      for (let i = 0; i < windows; i++) {
        const sampler = new Sampler(server.pid, SAMPLE_EVERY_MS);
        const window = await client.window(plan.windowMs);
        measured.push({ client: window, server: sampler.stop() });
        this.#say(
          `N=${n} window ${i + 1}/${windows}: held ${window.held_at_end}, delivered ` +
            `${window.delivered_pct}%, latency p50/p99/max ${window.latency_ms.p50}/` +
            `${window.latency_ms.p99}/${window.latency_ms.max} ms, jitter p99 ` +
            `${window.jitter_ms.p99} ms; server RSS ${mib(measured[i].server.rss_median)} MiB ` +
            `CPU ${measured[i].server.cpu_pct}%; client CPU ${window.client.cpu_pct}% ` +
            `ELU ${window.client.elu}`,
        );
      }
      const droppedAfter = await this.#dropped(server);
      const disconnects = await this.#disconnects(server);
      const files = openFiles(server.pid);
      const release = await client.release();
      return {
        n,
        idle,
        hold,
        settle,
        server_streams_open: serverOpen,
        server_events_dropped: droppedBefore === null || droppedAfter === null
          ? null
          : droppedAfter - droppedBefore,
        server_open_files: files,
        server_disconnects: disconnects,
        windows: measured,
        release,
        summary: summarise(n, idle, measured),
      };
    });
  }

  /** Why ssebin says its streams ended, from `sse_disconnects_total`. */
  async #disconnects(server: BenchServer): Promise<Reasons | null> {
    if (this.app !== "ours") return null;
    const text = await readMetrics(server);
    if (text === undefined) return null;
    const reasons: Reasons = {};
    for (const match of text.matchAll(/^sse_disconnects_total\{[^}]*reason="([^"]+)"\} (\d+)$/gm)) {
      reasons[match[1]] = (reasons[match[1]] ?? 0) + Number(match[2]);
    }
    return reasons;
  }

  async #dropped(server: BenchServer): Promise<number | null> {
    if (this.app !== "ours") return null;
    const text = await readMetrics(server);
    if (text === undefined) return NaN;
    return sumSeries(text, `sse_events_dropped_total{path="${EVENTS_PATH}"}`);
  }
}

function summarise(n: number, idle: Idle, windows: WindowMeasure[]): LevelSummary {
  // A window with no stream held measures nothing per stream: leave it out.
  const measured = windows.filter((w) => w.client.held_at_start > 0);
  const of = (read: (w: WindowMeasure) => number | null) => {
    const values = measured.map(read).filter((v): v is number => v !== null && !Number.isNaN(v));
    return values.length === 0 ? null : median(values);
  };
  const last = windows[windows.length - 1];
  const held = last?.client.held_at_end ?? 0;
  const rssPerStream = of((w) => (w.server.rss_median - idle.rss) / w.client.held_at_start / 1024);
  return {
    held,
    failed: n - held,
    rss_per_stream_kib: rssPerStream === null ? null : round(rssPerStream, 2),
    server_cpu_pct: of((w) => w.server.cpu_pct),
    delivered_pct: of((w) => w.client.delivered_pct),
    latency_p50_ms: of((w) => w.client.latency_ms.p50),
    latency_p99_ms: of((w) => w.client.latency_ms.p99),
    latency_max_ms: of((w) => w.client.latency_ms.max),
    jitter_p99_ms: of((w) => w.client.jitter_ms.p99),
    latency_p99_by_window: windows.map((w) => w.client.latency_ms.p99),
    machine_busy_pct: of((w) => w.server.machine_busy_pct),
    client_cpu_pct: Math.max(...windows.map((w) => w.client.client.cpu_pct)),
    client_elu: Math.max(...windows.map((w) => w.client.client.elu)),
  };
}

/** The server's `/metrics` text, or undefined when it does not answer in time. */
async function readMetrics(server: BenchServer): Promise<string | undefined> {
  try {
    const response = await fetch(`${server.url}/metrics`, {
      signal: AbortSignal.timeout(METRICS_TIMEOUT_MS),
    });
    return await response.text();
  } catch {
    return undefined;
  }
}

/** The sum of every sample whose series starts with `prefix` (`name{` sums all labels). */
function sumSeries(text: string, prefix: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(prefix)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** `sse_streams_open` over every path (ssebin; Hono's app writes the same series), or NaN. */
async function streamsOpen(server: BenchServer): Promise<number> {
  const text = await readMetrics(server);
  return text === undefined ? NaN : sumSeries(text, "sse_streams_open{");
}

/** The median of five RSS readings 150 ms apart: one reading can catch a GC mid-way. */
async function steadyRss(pid: number): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(rssBytes(pid));
    await sleep(150);
  }
  return median(readings);
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
