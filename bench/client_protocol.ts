/**
 * What the orchestrator (`run.ts`, Deno) and the load client
 * (`load_client.ts`, Node) say to each other: one JSON object per line, the
 * commands on the client's stdin and the replies on its stdout.
 *
 * @module
 */

/** Where a phase connects, and how its events are read. */
export interface TargetArgs {
  host: string;
  port: number;
  /** Path and query, e.g. `/events` or `/stream?interval=0&count=10000000`. */
  path: string;
  /** JSON key of the ISO time in each event's data (`timestamp`, `ts`), if latency is wanted. */
  timestampKey?: string;
  /**
   * Bind each socket to the client's source addresses in turn (127.0.0.2…):
   * spreads many long-lived connections over several port ranges. Without
   * it the kernel picks the port at connect, which recycles TIME_WAIT ports
   * on loopback (`tcp_tw_reuse`); a bound port search does not, and slows
   * to milliseconds per connection once tens of thousands are in TIME_WAIT.
   */
  bindSources?: boolean;
}

/** Ramps up `n` streams and keeps them open. */
export interface HoldArgs extends TargetArgs {
  n: number;
  rampPerSec: number;
  /** Most streams awaiting their first event at once: keeps the accept queue short. */
  maxPending: number;
  firstEventTimeoutMs: number;
  /** The ramp stops opening streams after this long; the rest count as `ramp_timeout`. */
  rampTimeoutMs: number;
  /** The server's tick interval, for jitter and expected counts. */
  intervalMs: number;
}

/**
 * Waits until the held streams' delivery is steady: three consecutive
 * one-second event counts within `tolerancePct` of their mean and not above
 * the held streams' tick rate by more than that (a server that fell behind
 * in the ramp catches up first). At least `minMs`, at most `maxMs`.
 */
export interface SettleArgs {
  minMs: number;
  maxMs: number;
  tolerancePct: number;
}

/** The reply to `settle`. */
export interface SettleResult {
  settle_ms: number;
  /** False when `maxMs` passed first. */
  steady: boolean;
  /** The last three one-second counts, and what the held streams should deliver per second. */
  last_counts: number[];
  expected_per_s: number;
}

/** connect → first event → close, by `workers` parallel loops, for `ms`. */
export interface ChurnArgs extends TargetArgs {
  workers: number;
  ms: number;
  firstEventTimeoutMs: number;
}

/** One stream read as fast as it comes, for at most `maxMs`. */
export interface RateArgs extends TargetArgs {
  maxMs: number;
}

/** Sequential connections, each timed from connect to first event. */
export interface TtfeArgs extends TargetArgs {
  samples: number;
  timeoutMs: number;
}

/** A command and its arguments. */
export type Command =
  | { cmd: "hold"; args: HoldArgs }
  | { cmd: "settle"; args: SettleArgs }
  | { cmd: "window"; args: { ms: number } }
  | { cmd: "release"; args?: undefined }
  | { cmd: "churn"; args: ChurnArgs }
  | { cmd: "rate"; args: RateArgs }
  | { cmd: "ttfe"; args: TtfeArgs }
  | { cmd: "exit"; args?: undefined };

/** The client's own load over a phase: the proof it was not the bottleneck. */
export interface ClientUsage {
  /** CPU time over wall time, % of one core. */
  cpu_pct: number;
  /** Event-loop utilisation, 0–1: near 1 means the client could not keep up. */
  elu: number;
}

/** Percentiles of a set of ms values; nulls when there were none. */
export interface Distribution {
  samples: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/** Counts by reason, e.g. `{ "http_503": 12, "ECONNRESET": 1 }`. */
export type Reasons = Record<string, number>;

/** The reply to `hold`. */
export interface HoldResult {
  requested: number;
  held: number;
  failed_to_open: Reasons;
  lost: Reasons;
  ramp_ms: number;
  settled_ms: number;
  /** Connect to first event, under the ramp's load. */
  first_event_ms: Distribution;
  client: ClientUsage;
}

/** The reply to `window`. */
export interface WindowResult {
  window_ms: number;
  held_at_start: number;
  held_at_end: number;
  lost_in_window: Reasons;
  /** Streams lost since the ramp began (ramp, settle and windows), by reason. */
  lost_total: Reasons;
  /** Streams open at the end that delivered nothing in the window. */
  silent_streams: number;
  events: number;
  expected_events: number;
  delivered_pct: number | null;
  /** Arrival minus the event's own timestamp. */
  latency_ms: Distribution;
  /** |consecutive timestamps' gap − interval|. */
  jitter_ms: Distribution;
  client: ClientUsage;
}

/** The reply to `release`. */
export interface ReleaseResult {
  released: number;
  still_open: number;
}

/** The reply to `churn`. */
export interface ChurnResult {
  workers: number;
  ms: number;
  cycles: number;
  cycles_per_s: number;
  failures: Reasons;
  cycle_ms: Distribution;
  client: ClientUsage;
}

/** The reply to `rate`. */
export interface RateResult {
  events: number;
  bytes: number;
  ms: number;
  events_per_s: number | null;
  mb_per_s: number | null;
  /** Ids that did not follow the previous one: must be 0. */
  id_gaps: number;
  last_id: number;
  /** Whether the `done` event arrived before the time cap. */
  completed: boolean;
  failure: string;
  client: ClientUsage;
}

/** The reply to `ttfe`. */
export interface TtfeResult extends Distribution {
  failures: Reasons;
  client: ClientUsage;
}

/** The client's first line. */
export interface Hello {
  hello: true;
  pid: number;
  node: string;
  fd_limit: { soft: number; hard: number };
  sources: string[];
}

/** A reply line. */
export type Reply =
  | { id: number; ok: true; result: unknown }
  | { id: number | undefined; ok: false; error: string };
