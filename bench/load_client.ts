/**
 * The benchmark's load client: a Node process of its own, so that its event
 * loop shares nothing with the orchestrator that samples the server.
 * `run.ts` transpiles it with esbuild and runs it under Node.
 *
 * Raw TCP (`node:net`), one shared read buffer for every socket (`onread`),
 * the incremental parser of `sse_wire.ts`, latencies and jitter counted in
 * fixed histograms: per event it allocates nothing. Every phase reports the
 * client's own CPU and event-loop utilisation, so a reader can tell whether
 * the client, not the server, was the limit.
 *
 * Protocol (`client_protocol.ts`): one JSON command per line on stdin, one
 * JSON reply per line on stdout; the first line out is a hello with the
 * client's fd limits. Diagnostics go to stderr.
 *
 * Usage: `node load_client.mjs [--sources=127.0.0.2,127.0.0.3,…]`
 *
 * @module
 */

import net from "node:net";
import process from "node:process";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { HttpSseReader, type SseSink } from "./sse_wire.ts";
import type {
  ChurnArgs,
  ChurnResult,
  ClientUsage,
  Command,
  Distribution,
  Hello,
  HoldArgs,
  HoldResult,
  RateArgs,
  RateResult,
  Reasons,
  ReleaseResult,
  Reply,
  SettleArgs,
  SettleResult,
  TargetArgs,
  TtfeArgs,
  TtfeResult,
  WindowResult,
} from "./client_protocol.ts";

// Every socket reads into this one buffer: read callbacks run one at a time
// and the parser copies whatever it keeps.
const READ_BUFFER = Buffer.alloc(256 * 1024);
// How often streams awaiting their first event are checked against their deadline.
const SWEEP_MS = 250;
// How often the ramp opens its next batch.
const RAMP_STEP_MS = 10;
// A failed churn cycle waits this long before the next, so that a dead
// server is not hammered in a tight loop.
const FAILURE_BACKOFF_MS = 10;
// The most ms `release` waits for every socket to report closed.
const RELEASE_WAIT_MS = 15_000;

const SOURCES_FLAG = "--sources=";
const sources = (process.argv.find((arg) => arg.startsWith(SOURCES_FLAG)) ?? SOURCES_FLAG)
  .slice(SOURCES_FLAG.length).split(",").filter((address) => address !== "");
let nextSource = 0;
/** The next source address, round robin: spreads ephemeral ports over several addresses. */
function sourceAddress(): string | undefined {
  if (sources.length === 0) return undefined;
  nextSource = (nextSource + 1) % sources.length;
  return sources[nextSource];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const round = (value: number, places: number) => Math.round(value * 10 ** places) / 10 ** places;
const countInto = (counts: Reasons, reason: string) => counts[reason] = (counts[reason] ?? 0) + 1;

// 0.1 ms buckets up to two minutes: 4.8 MB, allocated once per measurement.
const HISTOGRAM_SCALE = 10;
const HISTOGRAM_LIMIT = 120_000 * HISTOGRAM_SCALE;

/** A fixed histogram of non-negative ms values: adding a sample allocates nothing. */
class Histogram {
  readonly #buckets = new Uint32Array(HISTOGRAM_LIMIT + 1);
  #count = 0;
  #max = 0;
  #sum = 0;

  add(ms: number): void {
    // A clock step can make a difference negative (or NaN): count it as 0.
    if (!(ms >= 0)) ms = 0;
    this.#count++;
    this.#sum += ms;
    if (ms > this.#max) this.#max = ms;
    this.#buckets[Math.min(HISTOGRAM_LIMIT, Math.round(ms * HISTOGRAM_SCALE))]++;
  }

  #quantile(q: number): number {
    const rank = Math.ceil(q * this.#count);
    let seen = 0;
    for (let i = 0; i < this.#buckets.length; i++) {
      seen += this.#buckets[i];
      if (seen >= rank) return i / HISTOGRAM_SCALE;
    }
    return this.#max;
  }

  summary(): Distribution {
    if (this.#count === 0) return { samples: 0, p50: null, p99: null, max: null, mean: null };
    return {
      samples: this.#count,
      p50: this.#quantile(0.5),
      p99: this.#quantile(0.99),
      max: round(this.#max, 1),
      mean: round(this.#sum / this.#count, 2),
    };
  }
}

/** The client's own CPU and event-loop utilisation since construction. */
class Usage {
  readonly #cpu = process.cpuUsage();
  readonly #elu = performance.eventLoopUtilization();
  readonly #wall = performance.now();

  read(): ClientUsage {
    const cpu = process.cpuUsage(this.#cpu);
    const wallMs = performance.now() - this.#wall;
    return {
      cpu_pct: round((cpu.user + cpu.system) / 10 / wallMs, 1),
      elu: round(performance.eventLoopUtilization(this.#elu).utilization, 3),
    };
  }
}

/** What a phase does with its streams' events and closes. */
interface Phase {
  onEvent(stream: Stream, id: number, timestamp: number, isDone: boolean, arrivalMs: number): void;
  onClose(stream: Stream): void;
}

/** Where a stream connects and the bytes of its request. */
interface Target {
  host: string;
  port: number;
  bindSources: boolean;
  timestampKey: string | undefined;
  request: Buffer;
}

function targetOf({ host, port, path, timestampKey, bindSources }: TargetArgs): Target {
  return {
    host,
    port,
    bindSources: bindSources ?? false,
    timestampKey,
    request: Buffer.from(
      `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAccept: text/event-stream\r\n` +
        "Cache-Control: no-cache\r\nUser-Agent: ssebin-bench\r\n\r\n",
    ),
  };
}

/** One SSE request on its own TCP connection; its phase decides what its events mean. */
class Stream implements SseSink {
  readonly reader: HttpSseReader;
  socket: net.Socket | undefined;
  /** performance.now() at connect, and when the response head arrived (0: not yet). */
  openedAt = 0;
  headAt = 0;
  gotFirst = false;
  closed = false;
  /** Why this stream failed, if it did (the first reason wins). */
  failure = "";
  /** performance.now() by which the first event must arrive. */
  deadline = Infinity;
  prevTimestamp = NaN;
  windowEvents = 0;
  lastId = -1;
  readonly #target: Target;
  readonly #phase: Phase;

  constructor(target: Target, phase: Phase) {
    this.#target = target;
    this.#phase = phase;
    this.reader = new HttpSseReader(this, target.timestampKey);
  }

  open(): void {
    this.openedAt = performance.now();
    const socket = net.connect({
      host: this.#target.host,
      port: this.#target.port,
      localAddress: this.#target.bindSources ? sourceAddress() : undefined,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes: number) => {
          this.reader.feed(READ_BUFFER, 0, bytes, Date.now());
          if (this.reader.malformed !== "") this.fail(`malformed: ${this.reader.malformed}`);
          return true;
        },
      },
    });
    this.socket = socket;
    socket.once("connect", () => socket.write(this.#target.request));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (this.failure === "") this.failure = error.code ?? error.message;
    });
    socket.once("close", () => {
      this.closed = true;
      this.#phase.onClose(this);
    });
  }

  fail(reason: string): void {
    if (this.failure === "") this.failure = reason;
    this.socket?.destroy();
  }

  onHead(status: number): void {
    this.headAt = performance.now();
    if (status !== 200) this.fail(`http_${status}`);
  }

  onEvent(id: number, timestamp: number, isDone: boolean, arrivalMs: number): void {
    this.#phase.onEvent(this, id, timestamp, isDone, arrivalMs);
  }

  onBodyEnd(): void {
    this.socket?.end();
  }
}

/** The concurrency phase: `hold` ramps streams up, `window` measures them, `release` ends them. */
class HeldStreams implements Phase {
  #streams: Stream[] = [];
  #pending = 0;
  // Before the first event (refused, timed out, non-200), and after it.
  #failedToOpen: Reasons = {};
  #lost: Reasons = {};
  #releasing = false;
  #inWindow = false;
  #intervalMs = 1000;
  #latency = new Histogram();
  #jitter = new Histogram();
  #firstEvent = new Histogram();
  #windowEvents = 0;
  // Every event since the ramp began, for `settle`.
  #totalEvents = 0;

  onEvent(stream: Stream, _id: number, timestamp: number, _done: boolean, arrivalMs: number): void {
    if (!stream.gotFirst) {
      stream.gotFirst = true;
      stream.deadline = Infinity;
      this.#pending--;
      this.#firstEvent.add(performance.now() - stream.openedAt);
    }
    this.#totalEvents++;
    if (this.#inWindow) {
      this.#windowEvents++;
      stream.windowEvents++;
      this.#latency.add(arrivalMs - timestamp);
      if (!Number.isNaN(stream.prevTimestamp)) {
        this.#jitter.add(Math.abs(timestamp - stream.prevTimestamp - this.#intervalMs));
      }
    }
    stream.prevTimestamp = timestamp;
  }

  onClose(stream: Stream): void {
    if (this.#releasing) return;
    if (!stream.gotFirst) {
      this.#pending--;
      countInto(this.#failedToOpen, stream.failure || "closed_before_first_event");
    } else {
      const reason = stream.failure || (stream.reader.ended ? "ended_by_server" : "closed");
      countInto(this.#lost, reason);
    }
  }

  async hold(args: HoldArgs): Promise<HoldResult> {
    const usage = new Usage();
    const target = targetOf(args);
    this.#intervalMs = args.intervalMs;
    const started = performance.now();
    const sweep = setInterval(() => this.#sweep(), SWEEP_MS);
    try {
      // Bounded by the ramp's deadline.
      while (this.#streams.length < args.n) {
        const elapsed = performance.now() - started;
        if (elapsed > args.rampTimeoutMs) {
          this.#failedToOpen.ramp_timeout = args.n - this.#streams.length;
          break;
        }
        const due = Math.min(args.n, Math.floor(elapsed * args.rampPerSec / 1000) + 1);
        while (this.#streams.length < due && this.#pending < args.maxPending) {
          const stream = new Stream(target, this);
          stream.deadline = performance.now() + args.firstEventTimeoutMs;
          this.#streams.push(stream);
          this.#pending++;
          stream.open();
        }
        await sleep(RAMP_STEP_MS);
      }
      const rampMs = performance.now() - started;
      // Every pending stream has a deadline, so this ends.
      while (this.#pending > 0) await sleep(RAMP_STEP_MS);
      return {
        requested: args.n,
        held: this.#alive(),
        failed_to_open: this.#failedToOpen,
        lost: this.#lost,
        ramp_ms: Math.round(rampMs),
        settled_ms: Math.round(performance.now() - started),
        first_event_ms: this.#firstEvent.summary(),
        client: usage.read(),
      };
    } finally {
      clearInterval(sweep);
    }
  }

  #sweep(): void {
    const now = performance.now();
    for (const stream of this.#streams) {
      if (!stream.gotFirst && !stream.closed && now > stream.deadline) stream.fail("timeout");
    }
  }

  #alive(): number {
    let alive = 0;
    for (const stream of this.#streams) if (stream.gotFirst && !stream.closed) alive++;
    return alive;
  }

  async settle(args: SettleArgs): Promise<SettleResult> {
    const started = performance.now();
    const counts: number[] = [];
    let expected = 0;
    let steady = false;
    let last = this.#totalEvents;
    let lastAt = started;
    // Bounded by maxMs.
    while (performance.now() - started < args.maxMs) {
      await sleep(1_000);
      const now = performance.now();
      counts.push((this.#totalEvents - last) * 1_000 / (now - lastAt));
      last = this.#totalEvents;
      lastAt = now;
      expected = this.#alive() * 1_000 / this.#intervalMs;
      const recent = counts.slice(-3);
      const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
      const tolerance = args.tolerancePct / 100;
      // Silence is not steady: a stalled server delivers nothing, evenly.
      steady = recent.length === 3 && mean > 0 && mean <= expected * (1 + tolerance) &&
        recent.every((count) => Math.abs(count - mean) <= mean * tolerance);
      if (steady && now - started >= args.minMs) break;
      if (expected === 0) break; // every stream is gone: nothing to wait for
    }
    return {
      settle_ms: Math.round(performance.now() - started),
      steady,
      last_counts: counts.slice(-3).map((count) => Math.round(count)),
      expected_per_s: Math.round(expected),
    };
  }

  async window({ ms }: { ms: number }): Promise<WindowResult> {
    this.#latency = new Histogram();
    this.#jitter = new Histogram();
    this.#windowEvents = 0;
    for (const stream of this.#streams) stream.windowEvents = 0;
    const lostBefore = { ...this.#lost };
    const heldAtStart = this.#alive();
    const usage = new Usage();
    this.#inWindow = true;
    await sleep(ms);
    this.#inWindow = false;
    const client = usage.read();
    let silent = 0;
    for (const stream of this.#streams) {
      if (stream.gotFirst && !stream.closed && stream.windowEvents === 0) silent++;
    }
    const lostInWindow: Reasons = {};
    for (const [reason, count] of Object.entries(this.#lost)) {
      const added = count - (lostBefore[reason] ?? 0);
      if (added > 0) lostInWindow[reason] = added;
    }
    // Ticks are t0 + k·interval per stream, so a window of ms holds exactly
    // ms / interval of them for every stream, whatever its phase.
    const expected = heldAtStart * ms / this.#intervalMs;
    return {
      window_ms: ms,
      held_at_start: heldAtStart,
      held_at_end: this.#alive(),
      lost_in_window: lostInWindow,
      lost_total: { ...this.#lost },
      silent_streams: silent,
      events: this.#windowEvents,
      expected_events: Math.round(expected),
      delivered_pct: expected === 0 ? null : round(100 * this.#windowEvents / expected, 3),
      latency_ms: this.#latency.summary(),
      jitter_ms: this.#jitter.summary(),
      client,
    };
  }

  async release(): Promise<ReleaseResult> {
    this.#releasing = true;
    // A reset leaves no TIME_WAIT behind: the next level's bound ports stay free.
    for (const stream of this.#streams) if (!stream.closed) stream.socket?.resetAndDestroy();
    const deadline = performance.now() + RELEASE_WAIT_MS;
    while (this.#streams.some((s) => !s.closed) && performance.now() < deadline) {
      await sleep(50);
    }
    return {
      released: this.#streams.length,
      still_open: this.#streams.filter((s) => !s.closed).length,
    };
  }
}

/** connect → first event → close, by `workers` parallel loops, for `ms`. */
async function churn(args: ChurnArgs): Promise<ChurnResult> {
  const target = targetOf(args);
  const usage = new Usage();
  const failures: Reasons = {};
  const live = new Set<Stream>();
  const cycleMs = new Histogram();
  let cycles = 0;
  let running = true;
  let active = args.workers;
  const next = (): void => {
    if (!running) {
      active--;
      return;
    }
    const stream = new Stream(target, phase);
    stream.deadline = performance.now() + args.firstEventTimeoutMs;
    live.add(stream);
    stream.open();
  };
  const phase: Phase = {
    onEvent(stream) {
      if (stream.gotFirst) return;
      stream.gotFirst = true;
      cycles++;
      cycleMs.add(performance.now() - stream.openedAt);
      stream.socket?.destroy();
    },
    onClose(stream) {
      live.delete(stream);
      if (stream.gotFirst) return next();
      countInto(failures, stream.failure || "closed_before_first_event");
      setTimeout(next, FAILURE_BACKOFF_MS);
    },
  };
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const stream of live) if (now > stream.deadline) stream.fail("timeout");
  }, SWEEP_MS);
  const started = performance.now();
  for (let i = 0; i < args.workers; i++) next();
  await sleep(args.ms);
  running = false;
  const elapsed = performance.now() - started;
  const counted = cycles;
  // Every live stream has a deadline, so every worker stops.
  while (active > 0) await sleep(20);
  clearInterval(sweep);
  return {
    workers: args.workers,
    ms: Math.round(elapsed),
    cycles: counted,
    cycles_per_s: round(counted * 1000 / elapsed, 1),
    failures,
    cycle_ms: cycleMs.summary(),
    client: usage.read(),
  };
}

/** One stream read as fast as it comes: events/s and MB/s of SSE text. */
function rate(args: RateArgs): Promise<RateResult> {
  const target = targetOf({ ...args, timestampKey: undefined });
  const usage = new Usage();
  return new Promise((resolve) => {
    let endAt = 0;
    let events = 0;
    let gaps = 0;
    let completed = false;
    const stream = new Stream(target, {
      onEvent(stream, id, _timestamp, isDone) {
        if (isDone) {
          completed = true;
          endAt = performance.now();
          stream.socket?.destroy();
          return;
        }
        if (stream.lastId !== -1 && id !== stream.lastId + 1) gaps++;
        stream.lastId = id;
        events++;
      },
      onClose(stream) {
        clearTimeout(timer);
        if (endAt === 0) endAt = performance.now();
        const headAt = stream.headAt || endAt;
        const seconds = (endAt - headAt) / 1000;
        const bytes = stream.reader.sse.bytes;
        resolve({
          events,
          bytes,
          ms: Math.round(endAt - headAt),
          events_per_s: seconds > 0 ? Math.round(events / seconds) : null,
          mb_per_s: seconds > 0 ? round(bytes / seconds / 1e6, 2) : null,
          id_gaps: gaps,
          last_id: stream.lastId,
          completed,
          failure: completed ? "" : stream.failure,
          client: usage.read(),
        });
      },
    });
    const timer = setTimeout(() => {
      endAt = performance.now();
      stream.socket?.destroy();
    }, args.maxMs);
    stream.open();
  });
}

/** Time from connect to the first event, one connection at a time. */
async function ttfe(args: TtfeArgs): Promise<TtfeResult> {
  const target = targetOf(args);
  const usage = new Usage();
  const times = new Histogram();
  const failures: Reasons = {};
  for (let i = 0; i < args.samples; i++) {
    const took = await new Promise<number | string>((resolve) => {
      const stream = new Stream(target, {
        onEvent(stream) {
          if (stream.gotFirst) return;
          stream.gotFirst = true;
          resolve(performance.now() - stream.openedAt);
          stream.socket?.destroy();
        },
        onClose(stream) {
          clearTimeout(timer);
          if (!stream.gotFirst) resolve(stream.failure || "closed_before_first_event");
        },
      });
      const timer = setTimeout(() => stream.fail("timeout"), args.timeoutMs);
      stream.open();
    });
    if (typeof took === "number") times.add(took);
    else countInto(failures, took);
  }
  return { ...times.summary(), failures, client: usage.read() };
}

/** This process's limit on open files, from /proc. */
function fdLimits(): { soft: number; hard: number } {
  const line = readFileSync("/proc/self/limits", "utf8").split("\n")
    .find((l) => l.startsWith("Max open files")) ?? "";
  const [soft, hard] = line.trim().split(/\s{2,}/).slice(1, 3).map(Number);
  return { soft, hard };
}

let held = new HeldStreams();

function run(command: Command): Promise<unknown> | unknown {
  switch (command.cmd) {
    case "hold":
      return held.hold(command.args);
    case "settle":
      return held.settle(command.args);
    case "window":
      return held.window(command.args);
    case "release": {
      const releasing = held;
      held = new HeldStreams();
      return releasing.release();
    }
    case "churn":
      return churn(command.args);
    case "rate":
      return rate(command.args);
    case "ttfe":
      return ttfe(command.args);
    case "exit":
      setImmediate(() => process.exit(0));
      return {};
  }
}

function reply(message: Reply | Hello): void {
  process.stdout.write(JSON.stringify(message) + "\n");
}

reply({ hello: true, pid: process.pid, node: process.version, fd_limit: fdLimits(), sources });

// Commands run one at a time, in order.
let queue = Promise.resolve();
createInterface({ input: process.stdin }).on("line", (line) => {
  queue = queue.then(async () => {
    let id: number | undefined;
    try {
      const message = JSON.parse(line) as Command & { id: number };
      id = message.id;
      reply({ id: message.id, ok: true, result: await run(message) });
    } catch (error) {
      reply({ id, ok: false, error: String((error as Error)?.stack ?? error) });
    }
  });
}).on("close", () => process.exit(0));
