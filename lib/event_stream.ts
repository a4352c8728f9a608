/**
 * The one stream engine: every SSE response body is an {@linkcode EventStream}
 * driven by a {@linkcode StreamPlan}. Presets and query parameters only change
 * the plan.
 *
 * Life and death of a stream, the heart of the design:
 * - One timer per stream, always re-armed for the earliest of: the next
 *   event's absolute deadline (`t0 + n·interval`, so ticks never drift), the
 *   next heartbeat, the stall deadline and the lifetime limit.
 * - With `interval=0` the reader drives: each `pull()` coalesces as many
 *   events as the queue has room for into one chunk.
 * - Every way a stream can end — `cancel()` (Deno, Bun), `request.signal`
 *   (workerd), a failed enqueue, a client that stops reading, the lifetime
 *   limit, `done`, `fail_after`, shutdown — goes through one idempotent
 *   `#close()`: one log line, one decrement, the timer cleared.
 *
 * @module
 */

import { type LineEnding, SseEncoder } from "./sse_encoder.ts";
import { type CloseReason, type PathStats, registry } from "./stream_registry.ts";
import { settings } from "./settings.ts";
import { log, logEnabled } from "./log.ts";
import { type Clock, RequestClock, SharedClock, type Sleeper } from "./clock.ts";
import { timersBelongToRequests } from "./runtime.ts";

/** Everything that decides the bytes and the timing of one stream. */
export interface StreamPlan {
  /** The endpoint, used as the metrics label. */
  path: string;
  /** The id of the first data event this connection sends. */
  firstId: number;
  /** The id of the `done` event; `undefined` for a stream that never ends. */
  doneId: number | undefined;
  /** Ms between events; 0 sends as fast as the client reads. */
  intervalMs: number;
  /** Ms before the first event. */
  delayMs: number;
  /** A `: heartbeat` comment after this many ms with nothing written. */
  heartbeatMs: number;
  /** Sends `retry: N` first when set. */
  retryMs: number | undefined;
  /** The `event:` name of data events. */
  eventName: string | undefined;
  /** Writes each piece of output in slices of at most this many bytes. */
  chunkBytes: number | undefined;
  /** Breaks the connection after this many data events. */
  failAfter: number | undefined;
  /** The line ending of every line. */
  lineEnding: LineEnding;
  /** The data of event `id`, stamped with `isoTime`. */
  payload(id: number, isoTime: string): string;
  /** The client's address, for logs. */
  client: string | undefined;
}

/** The response headers of every stream. No hop-by-hop headers: HTTP/2 forbids them. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
  "access-control-allow-origin": "*",
};

/**
 * The most text one `interval=0` pull coalesces into a single chunk. The
 * queue itself holds one chunk (the default strategy, which is also Bun's
 * cheapest): while a chunk waits, paced events are dropped, not buffered.
 */
export const BURST_BYTES = 64 * 1024;
// `fail_after` waits this long for the last events to leave the process:
// Bun drops bytes enqueued just before a stream errors.
const FAIL_FLUSH_MS = 100;
const FAIL_POLL_MS = 10;
const SHUTDOWN_RETRY_MS = 3_000;

const utf8 = new TextEncoder();
// One timer for every stream, except where timers belong to a request.
const CLOCK: Clock = timersBelongToRequests ? new RequestClock() : new SharedClock();
// Encoders hold no per-stream state worth a copy per stream.
const ENCODERS: Record<LineEnding, SseEncoder> = {
  lf: new SseEncoder("lf"),
  crlf: new SseEncoder("crlf"),
  cr: new SseEncoder("cr"),
};
let lastStreamId = 0;

// Many events share a millisecond; format each millisecond once.
let isoMs = Number.NaN;
let isoText = "";
function isoTime(ms: number): string {
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

/**
 * Opens a stream for `plan`, tied to `request`'s lifetime, and returns the
 * response that carries it.
 *
 * @example Usage
 * ```ts
 * import { openEventStream } from "./event_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const request = new Request("http://localhost/stream");
 * const response = openEventStream({
 *   path: "/stream", firstId: 1, doneId: 2, intervalMs: 0, delayMs: 0,
 *   heartbeatMs: 15_000, retryMs: undefined, eventName: undefined,
 *   chunkBytes: undefined, failAfter: undefined, lineEnding: "lf",
 *   payload: (id) => `{"id":${id}}`, client: undefined,
 * }, request);
 * assert.equal(
 *   await response.text(),
 *   'id: 1\ndata: {"id":1}\n\nid: 2\nevent: done\ndata: complete\n\n',
 * );
 * ```
 */
export function openEventStream(plan: StreamPlan, request: Request): Response {
  // Only interval=0 streams get a pull(): the runtime calls it after every
  // read, a trip into JavaScript that a paced stream has no use for (on
  // workerd a large share of an event's cost).
  const source = plan.intervalMs === 0
    ? new PulledEventStream(plan, request.signal)
    : new EventStream(plan, request.signal);
  return new Response(new ReadableStream<Uint8Array>(source), { headers: SSE_HEADERS });
}

/** The underlying source of one SSE body. Not exported: use {@linkcode openEventStream}. */
class EventStream implements UnderlyingDefaultSource<Uint8Array>, Sleeper, EventListenerObject {
  /** The clock's: when this stream wakes next. */
  wakeAt = Infinity;
  /** The clock's bookkeeping. */
  clockSlot: Sleeper["clockSlot"] = undefined;
  readonly #plan: StreamPlan;
  readonly #signal: AbortSignal;
  readonly #sse: SseEncoder;
  readonly #stats: PathStats;
  readonly #streamId = ++lastStreamId;
  readonly #openedAt = Date.now();
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #nextId: number;
  #dueAt: number;
  #lastWriteAt: number;
  // Stall detection: chunks consumed by the reader = enqueued - still queued.
  #enqueued = 0;
  #consumed = 0;
  // Since when data has waited in the queue with no reading (0: none waiting).
  #waitingSince = 0;
  // fail_after: when the drained stream may be broken (0: not yet drained).
  #failAt = 0;
  #sent = 0;
  // True while #write enqueues: an enqueue that feeds a waiting reader calls
  // pull() synchronously, which must not emit in the middle of a write.
  #writing = false;
  #state: "open" | "failing" | "closed" = "open";

  constructor(plan: StreamPlan, signal: AbortSignal) {
    this.#plan = plan;
    this.#signal = signal;
    this.#sse = ENCODERS[plan.lineEnding];
    this.#nextId = plan.firstId;
    this.#dueAt = this.#openedAt + plan.delayMs;
    this.#lastWriteAt = this.#openedAt;
    this.#stats = registry.opened(this, plan.path);
  }

  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = controller;
    const plan = this.#plan;
    log("info", "stream open", {
      stream: this.#streamId,
      path: plan.path,
      client: plan.client,
      first_id: plan.firstId,
    });
    if (this.#signal.aborted) return this.#close("client", "abort");
    this.#signal.addEventListener("abort", this);
    const now = this.#openedAt;
    this.#guarded(() => {
      // Bun sends no headers before the first body bytes: with a delay, say
      // something at once so the client sees the response start.
      if (plan.retryMs !== undefined) this.#write(this.#sse.retry(plan.retryMs), now);
      else if (plan.delayMs > 0) {
        this.#write(this.#sse.comment(`first event in ${plan.delayMs} ms`), now);
      }
      this.#run(now);
    });
  }

  /** interval=0: the reader's pulls drive events (see {@linkcode PulledEventStream}). */
  pulled(): void {
    // The spec pulls whenever the queue has room, so a pull is no proof of
    // reading.
    if (this.#state !== "open" || this.#writing) return;
    this.#guarded(() => {
      const now = Date.now();
      if (now >= this.#dueAt) this.#emit(now);
    });
  }

  cancel(): void {
    this.#close("client", "cancel");
  }

  /** Graceful shutdown: a reconnection hint, a last comment, a clean end. */
  shutdown(): void {
    if (this.#state === "closed") return;
    const now = Date.now();
    this.#write(
      this.#sse.retry(SHUTDOWN_RETRY_MS) + this.#sse.comment("server shutting down"),
      now,
    );
    this.#end("shutdown");
  }

  /**
   * The request's abort signal (workerd's only disconnect signal). The stream
   * is its own listener: a closure per stream costs memory at 20 000 streams.
   */
  handleEvent(): void {
    this.#close("client", "abort");
  }

  /** The clock calls this when the wake time `at` has come. */
  wake(at: number): void {
    if (this.#state === "closed") return;
    registry.noteTimerRan(at, Date.now() - at);
    this.#guarded(() => {
      if (this.#state === "failing") this.#failWhenFlushed();
      else this.#run(Date.now());
    });
  }

  /** Nothing may throw out of a timer or a stream callback: end this stream, keep the process. */
  #guarded(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.#end("error", String(error));
    }
  }

  /** Does whatever is due at `now`, then sleeps until the next thing is. */
  #run(now: number): void {
    registry.sweepSoon(now);
    if (this.#stalled(now)) return this.#end("stalled");
    if (settings.maxLifetimeMs > 0 && now - this.#openedAt >= settings.maxLifetimeMs) {
      return this.#end("lifetime");
    }
    if (now >= this.#dueAt) this.#emit(now);
    else if (now - this.#lastWriteAt >= this.#plan.heartbeatMs) {
      this.#write(this.#sse.comment("heartbeat"), now);
    }
    if (this.#state === "open") this.#arm(now);
  }

  /**
   * True when data has waited in the queue for the stall timeout with the
   * reader taking none of it: the client stopped reading, or (workerd) the
   * runtime lost the connection without telling us.
   */
  #stalled(now: number): boolean {
    const queued = 1 - this.#controller.desiredSize!;
    if (queued <= 0) {
      this.#waitingSince = 0;
      return false;
    }
    const consumed = this.#enqueued - queued;
    if (consumed !== this.#consumed || this.#waitingSince === 0) {
      this.#consumed = consumed;
      this.#waitingSince = now;
    }
    return now - this.#waitingSince >= settings.stallTimeoutMs;
  }

  /** The events due now: `done` at the end, else one (paced) or a burst. */
  #emit(now: number): void {
    if (this.#nextId === this.#plan.doneId) this.#sendDone(now);
    else if (this.#plan.intervalMs === 0) this.#burst(now);
    else this.#emitDue(now);
  }

  #arm(now: number): void {
    const plan = this.#plan;
    let wake = this.#lastWriteAt + plan.heartbeatMs;
    // With interval=0 the reader's pulls drive events after the first.
    if (plan.intervalMs !== 0 || now < this.#dueAt) wake = Math.min(wake, this.#dueAt);
    if (this.#waitingSince !== 0) {
      wake = Math.min(wake, this.#waitingSince + settings.stallTimeoutMs);
    }
    if (settings.maxLifetimeMs > 0) wake = Math.min(wake, this.#openedAt + settings.maxLifetimeMs);
    if (this.clockSlot !== undefined && wake >= this.wakeAt) return;
    CLOCK.set(this, wake, now);
  }

  /**
   * Called by the registry's sweep from whatever code is running: workerd
   * drops the timers of a request whose client left without firing cancel()
   * or the abort signal (seen after events written in pieces), so a stream
   * whose timer is overdue will never run again. The registry decides what
   * overdue means (`before`): a busy runtime runs live timers late too.
   */
  sweep(before: number, now: number): void {
    if (this.clockSlot !== undefined && this.wakeAt < before) {
      this.#end("orphaned", `timer overdue by ${now - this.wakeAt} ms`);
    }
  }

  /** Paced streams: the event whose deadline has come, or a drop if the reader lags. */
  #emitDue(now: number): void {
    const id = this.#nextId++;
    this.#dueAt += this.#plan.intervalMs;
    // A chunk still queued a whole interval later means the reader lags:
    // skip this event rather than buffer it. The first event of a connection
    // always goes (it may follow the `retry:` line in the same turn).
    if (this.#sent > 0 && this.#controller.desiredSize! <= 0) {
      this.#stats.dropped++;
      if (logEnabled("debug")) log("debug", "event dropped", { stream: this.#streamId, id });
    } else {
      const text = this.#eventText(id, now);
      if (!this.#write(text, now)) return;
      this.#countSent(1, id);
    }
    this.#afterEvents(now);
  }

  /** `interval=0`: when the queue is empty, up to {@linkcode BURST_BYTES} of events in one chunk. */
  #burst(now: number): void {
    if (this.#controller.desiredSize! <= 0) return;
    const failAfter = this.#plan.failAfter;
    let text = "";
    let count = 0;
    do {
      text += this.#eventText(this.#nextId++, now);
      count++;
    } while (
      text.length < BURST_BYTES && this.#nextId !== this.#plan.doneId &&
      this.#nextId <= Number.MAX_SAFE_INTEGER &&
      (failAfter === undefined || this.#sent + count < failAfter)
    );
    if (!this.#write(text, now)) return;
    this.#countSent(count, this.#nextId - 1);
    this.#afterEvents(now);
  }

  #eventText(id: number, now: number): string {
    const plan = this.#plan;
    return this.#sse.event({ id, event: plan.eventName, data: plan.payload(id, isoTime(now)) });
  }

  #countSent(count: number, lastId: number): void {
    this.#sent += count;
    this.#stats.events += count;
    if (logEnabled("debug")) {
      log("debug", "events sent", { stream: this.#streamId, count, last_id: lastId });
    }
  }

  /** After data events: a break at `fail_after`, `done` after the last id. */
  #afterEvents(now: number): void {
    const plan = this.#plan;
    if (plan.failAfter !== undefined && this.#sent >= plan.failAfter) {
      this.#state = "failing";
      this.#failWhenFlushed();
    } else if (this.#nextId === plan.doneId) {
      this.#sendDone(now);
    } else if (this.#nextId > Number.MAX_SAFE_INTEGER) {
      // Ids past 2^53 would no longer be exact: the id space ends here.
      this.#end("done");
    }
  }

  #sendDone(now: number): void {
    const done = this.#sse.event({ id: this.#plan.doneId, event: "done", data: "complete" });
    if (this.#write(done, now)) this.#end("done");
  }

  /** Enqueues `text`; false when the stream can no longer take data. */
  #write(text: string, now: number): boolean {
    const controller = this.#controller;
    const wasEmpty = controller.desiredSize! >= 1;
    const bytes = utf8.encode(text);
    this.#writing = true;
    try {
      const chunk = this.#plan.chunkBytes;
      if (chunk === undefined || bytes.length <= chunk) {
        controller.enqueue(bytes);
        this.#enqueued++;
      } else {
        // Copies, not views: a runtime may detach a chunk's buffer on read.
        for (let at = 0; at < bytes.length; at += chunk) {
          controller.enqueue(bytes.slice(at, at + chunk));
          this.#enqueued++;
        }
      }
    } catch (error) {
      this.#close("client", `write failed: ${error}`);
      return false;
    } finally {
      this.#writing = false;
    }
    this.#lastWriteAt = now;
    if (wasEmpty && controller.desiredSize! < 1) {
      // The reader is not waiting for data: the stall clock starts now.
      this.#consumed = this.#enqueued - (1 - controller.desiredSize!);
      this.#waitingSince = now;
      if (this.#state === "open") this.#arm(now);
    }
    return true;
  }

  /**
   * `fail_after`: once the queue is empty and a moment has passed for the
   * runtime to write it out, error the body so the connection breaks without
   * a clean end.
   */
  #failWhenFlushed(): void {
    const now = Date.now();
    if (this.#stalled(now)) return this.#end("stalled");
    if (this.#waitingSince !== 0) {
      CLOCK.set(this, now + FAIL_POLL_MS, now);
    } else if (this.#failAt === 0) {
      // Drained: give the runtime a moment to write the last bytes out.
      this.#failAt = now + FAIL_FLUSH_MS;
      CLOCK.set(this, this.#failAt, now);
    } else if (now < this.#failAt) {
      CLOCK.set(this, this.#failAt, now);
    } else {
      this.#end("fail_after");
    }
  }

  /** Ends the stream from the server side. */
  #end(reason: Exclude<CloseReason, "client">, detail?: string): void {
    const controller = this.#controller;
    this.#close(reason, detail);
    try {
      if (reason === "done" || reason === "shutdown" || reason === "lifetime") controller.close();
      else controller.error(new Error(`stream ended: ${reason}`));
    } catch {
      // Already closed by the client: nothing left to end.
    }
  }

  /** The one way out: idempotent, whichever signal comes first. */
  #close(reason: CloseReason, detail?: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    CLOCK.clear(this);
    this.#signal.removeEventListener("abort", this);
    registry.closed(this, this.#plan.path, reason);
    log(reason === "error" ? "error" : "info", "stream closed", {
      stream: this.#streamId,
      path: this.#plan.path,
      client: this.#plan.client,
      reason,
      detail,
      events: this.#sent,
      duration_ms: Date.now() - this.#openedAt,
    });
  }
}

/** A stream whose reader drives it: `interval=0`. */
class PulledEventStream extends EventStream {
  pull(): void {
    this.pulled();
  }
}
