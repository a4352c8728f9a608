/**
 * Which streams are open, and the counters `/metrics` and `/health` report.
 *
 * @module
 */

/** Why a stream ended; the `reason` label of `sse_disconnects_total`. */
export type CloseReason =
  | "client"
  | "done"
  | "fail_after"
  | "stalled"
  | "lifetime"
  | "shutdown"
  | "orphaned"
  | "error";

/** Counters kept per stream path. */
export interface PathStats {
  open: number;
  total: number;
  events: number;
  dropped: number;
  disconnects: Partial<Record<CloseReason, number>>;
}

/** What the registry needs of an open stream. */
export interface Closable {
  /** Ends the stream from the server side (graceful shutdown). */
  shutdown(): void;
  /**
   * Ends the stream if its pending timer was due before `before` (ms since
   * the epoch) and has not run: the runtime silently stopped running it.
   */
  sweep(before: number, now: number): void;
}

// The registry looks for orphaned streams at most this often.
const SWEEP_INTERVAL_MS = 1_000;
// A stream whose timer was due this long before one that has run, and has
// not run itself, was dropped by its runtime (workerd), not delayed.
const ORPHAN_GRACE_MS = 2_000;
// With no timer run for this long, nothing is ticking and lateness alone is
// proof. Not much shorter: a saturated workerd accepting connections ran no
// timer at all for over 2 s (19 700 streams on 2 cores).
const ORPHAN_QUIET_MS = 4_000;

/**
 * The process-wide registry. One per isolate: Workers run one per isolate
 * too, so the figures there are per isolate.
 *
 * @example Counting a stream's life
 * ```ts
 * import { StreamRegistry } from "./stream_registry.ts";
 * import assert from "node:assert/strict";
 *
 * const registry = new StreamRegistry();
 * const stream = { shutdown() {}, sweep() {} };
 * const stats = registry.opened(stream, "/events");
 * stats.events += 3;
 * registry.closed(stream, "/events", "client");
 * assert.deepEqual(registry.stats("/events").disconnects, { client: 1 });
 * assert.equal(registry.openCount, 0);
 * ```
 */
export class StreamRegistry {
  readonly #open = new Set<Closable>();
  readonly #paths = new Map<string, PathStats>();
  /** Stream requests refused by the `MAX_STREAMS` cap or during shutdown. */
  rejected = 0;
  /** Set once shutdown begins: no new stream is opened after it. */
  draining = false;
  #lastSweep = 0;
  // The latest due time of a timer that has run; how many ran since the last
  // sweep; the last sweep that found some had; the most a timer ran late, in
  // this sweep window and the one before.
  #ranDue = 0;
  #ranSinceSweep = 0;
  #timersSeenAt = 0;
  #lag = 0;
  #lagBefore = 0;

  /** Streams open now, on every path. */
  get openCount(): number {
    return this.#open.size;
  }

  /** The counters of `path`, created on first use. */
  stats(path: string): PathStats {
    let stats = this.#paths.get(path);
    if (stats === undefined) {
      stats = { open: 0, total: 0, events: 0, dropped: 0, disconnects: {} };
      this.#paths.set(path, stats);
    }
    return stats;
  }

  /** Every path seen so far with its counters. */
  entries(): IterableIterator<[string, PathStats]> {
    return this.#paths.entries();
  }

  /** Records a new stream; returns its path's counters for cheap updates. */
  opened(stream: Closable, path: string): PathStats {
    this.#open.add(stream);
    const stats = this.stats(path);
    stats.open++;
    stats.total++;
    return stats;
  }

  /** Records that a stream ended. Call exactly once per stream. */
  closed(stream: Closable, path: string, reason: CloseReason): void {
    if (!this.#open.delete(stream)) return;
    const stats = this.stats(path);
    stats.open--;
    stats.disconnects[reason] = (stats.disconnects[reason] ?? 0) + 1;
  }

  /**
   * Lets every open stream check that it is still alive, at most once a
   * second. Any running code may call it: a stream whose runtime dropped it
   * cannot check itself.
   */
  sweepSoon(now: number): void {
    if (now - this.#lastSweep < SWEEP_INTERVAL_MS) return;
    this.#lastSweep = now;
    // Lateness is no proof on a busy runtime, where every timer runs late.
    // Order is: timers run in the order they are due, so a timer overdue
    // while one due well after it has run will never run. Both must agree:
    // overdue by more than live timers run late, and passed by a later one
    // (or by the clock, when no timer has run for a while).
    if (this.#ranSinceSweep > 0) this.#timersSeenAt = now;
    this.#ranSinceSweep = 0;
    const quiet = now - this.#timersSeenAt >= ORPHAN_QUIET_MS;
    const slack = Math.max(this.#lag, this.#lagBefore);
    this.#lagBefore = this.#lag;
    this.#lag = 0;
    const before = Math.min(quiet ? now : this.#ranDue, now - slack) - ORPHAN_GRACE_MS;
    for (const stream of this.#open) stream.sweep(before, now);
  }

  /** Records that a timer due at `due` has run `lateMs` late: what {@linkcode sweepSoon} judges by. */
  noteTimerRan(due: number, lateMs: number): void {
    if (due > this.#ranDue) this.#ranDue = due;
    if (lateMs > this.#lag) this.#lag = lateMs;
    this.#ranSinceSweep++;
  }

  /** Ends every open stream; returns how many there were. */
  shutdownAll(): number {
    this.draining = true;
    const streams = [...this.#open];
    for (const stream of streams) stream.shutdown();
    return streams.length;
  }
}

/** The registry every handler shares. */
export const registry: StreamRegistry = new StreamRegistry();
