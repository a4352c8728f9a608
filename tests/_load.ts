/**
 * Test helper: the small tools every attack test needs — a seeded PRNG (so a
 * failing run can be replayed with `SEED=…`), a bounded worker pool, a free
 * loopback port and a sleep.
 *
 * @module
 */

import { createServer } from "node:net";
import process from "node:process";
import { type Runtime, RUNTIMES } from "./_server.ts";

/** A deterministic source of random choices. */
export interface Random {
  /** The seed this generator started from. */
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** An integer in [min, max]. */
  between(min: number, max: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** One element of `items`. */
  pick<T>(items: readonly T[]): T;
}

/**
 * A mulberry32 generator: tiny, fast and good enough to pick test inputs;
 * the same seed gives the same sequence on every machine.
 *
 * @example Usage
 * ```ts
 * import { seededRandom } from "./_load.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(seededRandom(7).int(1000), seededRandom(7).int(1000));
 * ```
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    seed,
    next,
    int,
    between: (min, max) => min + int(max - min + 1),
    chance: (p) => next() < p,
    pick: (items) => items[int(items.length)],
  };
}

/**
 * The seed of this run: `SEED` from the environment when set (to replay a
 * failure), else a fresh one. Callers print it.
 */
export function seedFromEnv(): number {
  const fromEnv = process.env.SEED;
  if (fromEnv !== undefined && fromEnv !== "") {
    const seed = Number(fromEnv);
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new Error(`SEED must be an integer: ${fromEnv}`);
    }
    return seed >>> 0;
  }
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}

/**
 * Runs `task(0)` … `task(count - 1)` with at most `concurrency` in flight.
 * Every task runs exactly once; a task that throws is the caller's bug, so
 * the first error rejects the whole run once the tasks in flight settle.
 */
export async function runPool(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let nextIndex = 0;
  let failure: unknown;
  const worker = async () => {
    while (nextIndex < count && failure === undefined) {
      const index = nextIndex++;
      try {
        await task(index);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (failure !== undefined) throw failure;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A loopback port that was free a moment ago: bind port 0, read the port the
 * kernel chose, release it. Another process may take it before the caller
 * binds, so callers retry on EADDRINUSE.
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Median and max of `values` (0 for none): summaries, and trends robust to one step. */
export function summary(values: readonly number[]): { median: number; max: number } {
  if (values.length === 0) return { median: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1] };
}

/**
 * The runtimes to attack: all of them, or those named in `RUNTIMES`
 * (e.g. `RUNTIMES=bun,workerd`) to replay one runtime's failure faster.
 */
export function runtimesFromEnv(): readonly Runtime[] {
  const named = process.env.RUNTIMES;
  if (named === undefined || named === "") return RUNTIMES;
  const wanted = named.split(",").map((name) => name.trim());
  const unknown = wanted.filter((name) => !(RUNTIMES as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`RUNTIMES: unknown runtime ${unknown.join(", ")}`);
  return RUNTIMES.filter((runtime) => wanted.includes(runtime));
}

/**
 * Polls `read` until it returns `want` or `ms` pass, like `eventually`, and
 * also says how long that took (for printed figures).
 */
export async function timeUntil<T>(
  read: () => Promise<T>,
  want: T,
  ms: number,
  pollMs = 100,
): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  let value = await read();
  while (value !== want && Date.now() - started < ms) {
    await sleep(pollMs);
    value = await read();
  }
  return { value, ms: Date.now() - started };
}

/**
 * Runs `check` for every item (a server, usually) at once, waits for all,
 * then fails naming each one whose check threw. Runtimes run concurrently to
 * fit the time budget; a failure of one never hides another's.
 */
export async function onEach<T extends { runtime: string }>(
  items: readonly T[],
  check: (item: T) => Promise<void>,
): Promise<void> {
  const results = await Promise.allSettled(items.map(check));
  for (const [i, result] of results.entries()) {
    const log = (items[i] as { log?: () => string }).log;
    if (result.status === "rejected" && typeof log === "function") {
      // The server's own last words: what it logged, minus per-request lines.
      const tail = log().split("\n")
        .filter((line) => line.trim() !== "" && !/^\[wrangler:info\] \w+ \//.test(line))
        .slice(-15).join("\n    ");
      console.log(`${items[i].runtime}: FAILED; the server's log ends with:\n    ${tail}`);
    }
  }
  const failures = results.flatMap((result, i) =>
    result.status === "rejected"
      ? [`--- ${items[i].runtime} ---\n${describeError(result.reason)}`]
      : []
  );
  console.log(
    "  " +
      items.map((item, i) =>
        `${item.runtime}: ${results[i].status === "fulfilled" ? "ok" : "FAIL"}`
      )
        .join(", "),
  );
  if (failures.length > 0) throw new Error(failures.join("\n"));
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
