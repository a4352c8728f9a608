/**
 * When streams wake up. Every stream has one pending wake time; a clock turns
 * those into timer callbacks.
 *
 * - {@linkcode SharedClock}: one runtime timer for every stream, over a binary
 *   min-heap of wake times. A stream then costs one heap slot instead of a
 *   timer object re-created on every tick, and streams due in the same
 *   millisecond are served by one callback.
 * - {@linkcode RequestClock}: a timer per stream, for runtimes whose timers
 *   belong to a request (workerd cancels a request's timers with it, and a
 *   timer of one request may not write to another request's stream).
 *
 * @module
 */

/** What a clock can wake: the stream keeps these fields for the clock. */
export interface Sleeper {
  /** When the clock will wake it (ms since the epoch); `Infinity` when it won't. */
  wakeAt: number;
  /** The clock's bookkeeping: a heap index or a timer handle. */
  clockSlot: number | ReturnType<typeof setTimeout> | undefined;
  /** Called once the wake time `at` has come. Must not throw. */
  wake(at: number): void;
}

/** Turns wake times into callbacks. */
export interface Clock {
  /** Wakes `sleeper` at `at`, replacing any pending wake. */
  set(sleeper: Sleeper, at: number, now: number): void;
  /** Forgets `sleeper`'s pending wake. */
  clear(sleeper: Sleeper): void;
}

// One callback serves at most this many sleepers before yielding the loop.
const MAX_WAKES_PER_TURN = 4096;

/**
 * One timer and a min-heap of sleepers ordered by `wakeAt`.
 *
 * @example Usage
 * ```ts
 * import { SharedClock, type Sleeper } from "./clock.ts";
 * import assert from "node:assert/strict";
 *
 * const clock = new SharedClock();
 * const woken: string[] = [];
 * const sleeper = (name: string): Sleeper => ({
 *   wakeAt: Infinity, clockSlot: undefined, wake: () => void woken.push(name),
 * });
 * const now = Date.now();
 * clock.set(sleeper("b"), now + 20, now);
 * clock.set(sleeper("a"), now + 10, now);
 * await new Promise((resolve) => setTimeout(resolve, 50));
 * assert.deepEqual(woken, ["a", "b"]);
 * ```
 */
export class SharedClock implements Clock {
  readonly #heap: Sleeper[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  /** Sleepers waiting. */
  get size(): number {
    return this.#heap.length;
  }

  set(sleeper: Sleeper, at: number, now: number): void {
    const heap = this.#heap;
    let index = sleeper.clockSlot as number | undefined;
    if (index === undefined) {
      index = heap.length;
      heap.push(sleeper);
    }
    const earlier = at < sleeper.wakeAt;
    sleeper.wakeAt = at;
    if (earlier) this.#up(index);
    else this.#down(index);
    this.#arm(now);
  }

  clear(sleeper: Sleeper): void {
    const index = sleeper.clockSlot as number | undefined;
    if (index === undefined) return;
    this.#removeAt(index);
    sleeper.wakeAt = Infinity;
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const heap = this.#heap;
    const now = Date.now();
    // Take the due sleepers first, then wake them: one that is behind and
    // due again at once waits for the next turn, so its reader (and I/O) runs
    // in between. Past the cap the rest are due at once: the timer re-arms at
    // 0 ms.
    const due: Sleeper[] = [];
    const dueAt: number[] = [];
    while (due.length < MAX_WAKES_PER_TURN && heap.length > 0 && heap[0].wakeAt <= now) {
      const sleeper = heap[0];
      this.#removeAt(0);
      dueAt.push(sleeper.wakeAt);
      sleeper.wakeAt = Infinity;
      due.push(sleeper);
    }
    for (let i = 0; i < due.length; i++) {
      // A sleeper re-set by an earlier one's wake (shutdown, sweep) waits for its new time.
      if (due[i].clockSlot === undefined) due[i].wake(dueAt[i]);
    }
    this.#arm(now);
  };

  /** Points the one timer at the earliest wake. */
  #arm(now: number): void {
    const next = this.#heap.length > 0 ? this.#heap[0].wakeAt : Infinity;
    if (next === this.#timerAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = next;
    if (next !== Infinity) this.#timer = setTimeout(this.#fire, Math.max(0, next - now));
  }

  #removeAt(index: number): void {
    const heap = this.#heap;
    const removed = heap[index];
    const last = heap.pop()!;
    removed.clockSlot = undefined;
    if (last === removed) return;
    heap[index] = last;
    last.clockSlot = index;
    this.#up(index);
    this.#down(last.clockSlot);
  }

  #up(index: number): void {
    const heap = this.#heap;
    const item = heap[index];
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent].wakeAt <= item.wakeAt) break;
      heap[index] = heap[parent];
      heap[index].clockSlot = index;
      index = parent;
    }
    heap[index] = item;
    item.clockSlot = index;
  }

  #down(index: number): void {
    const heap = this.#heap;
    const item = heap[index];
    const length = heap.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      if (child + 1 < length && heap[child + 1].wakeAt < heap[child].wakeAt) child++;
      if (heap[child].wakeAt >= item.wakeAt) break;
      heap[index] = heap[child];
      heap[index].clockSlot = index;
      index = child;
    }
    heap[index] = item;
    item.clockSlot = index;
  }
}

/**
 * A timer per sleeper, created in the caller's context: for runtimes whose
 * timers belong to the request that set them.
 *
 * @example Usage
 * ```ts
 * import { RequestClock, type Sleeper } from "./clock.ts";
 * import assert from "node:assert/strict";
 *
 * let woken = false;
 * const sleeper: Sleeper = { wakeAt: Infinity, clockSlot: undefined, wake: () => woken = true };
 * new RequestClock().set(sleeper, Date.now() + 5, Date.now());
 * await new Promise((resolve) => setTimeout(resolve, 30));
 * assert.equal(woken, true);
 * ```
 */
export class RequestClock implements Clock {
  set(sleeper: Sleeper, at: number, now: number): void {
    this.clear(sleeper);
    sleeper.wakeAt = at;
    sleeper.clockSlot = setTimeout(() => {
      sleeper.clockSlot = undefined;
      sleeper.wakeAt = Infinity;
      sleeper.wake(at);
    }, Math.max(0, at - now));
  }

  clear(sleeper: Sleeper): void {
    if (sleeper.clockSlot !== undefined) clearTimeout(sleeper.clockSlot);
    sleeper.clockSlot = undefined;
    sleeper.wakeAt = Infinity;
  }
}
