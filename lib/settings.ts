/**
 * Operator settings, read once from the environment at startup.
 *
 * @module
 */

import { parseDecimal } from "./stream_params.ts";

/** The log levels, least severe first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Everything an operator can tune. */
export interface Settings {
  /** `LOG_LEVEL`: `debug` adds a line per event; `info` a line per stream. */
  logLevel: LogLevel;
  /** `MAX_STREAMS`: open streams per process; beyond it, 503. */
  maxStreams: number;
  /** `STALL_TIMEOUT_MS`: a stream whose client reads nothing this long is closed. */
  stallTimeoutMs: number;
  /** `MAX_LIFETIME_MS`: no stream lives longer, whatever its parameters (0: no limit). */
  maxLifetimeMs: number;
  /** `PORT`: where Bun listens (`deno serve` takes `--port`; Workers ignore it). */
  port: number;
  /** `HOST`: the address Bun binds. */
  hostname: string;
}

// A stream costs at most ~64 KiB of server memory on the runtimes we measure
// (bench/RESULTS.md); allow a quarter of memory for streams.
const STREAM_COST_BYTES = 64 * 1024;
const MEMORY_SHARE = 4;
// Workers give an isolate 128 MiB; without a memory reading, assume that.
const UNKNOWN_MEMORY_BYTES = 128 * 1024 * 1024;
const MAX_STREAMS_CEILING = 100_000;

/**
 * The default stream cap for a machine with `memoryBytes` of memory.
 *
 * @example Usage
 * ```ts
 * import { defaultMaxStreams } from "./settings.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(defaultMaxStreams(undefined), 512);
 * assert.equal(defaultMaxStreams(1024 ** 3), 4096);
 * ```
 */
export function defaultMaxStreams(memoryBytes: number | undefined): number {
  const memory = memoryBytes ?? UNKNOWN_MEMORY_BYTES;
  return Math.min(MAX_STREAMS_CEILING, Math.floor(memory / MEMORY_SHARE / STREAM_COST_BYTES));
}

/** Settings before any environment is read. */
export const DEFAULT_SETTINGS: Readonly<Settings> = {
  logLevel: "info",
  maxStreams: defaultMaxStreams(undefined),
  stallTimeoutMs: 30_000,
  maxLifetimeMs: 24 * 60 * 60 * 1000,
  port: 8000,
  hostname: "0.0.0.0",
};

/**
 * The live settings. {@linkcode applySettings} replaces them; modules read
 * fields at use, so a change takes effect for the next stream.
 */
export const settings: Settings = { ...DEFAULT_SETTINGS };

/**
 * Reads settings from an environment lookup. Throws an `Error` naming the
 * variable when a value is malformed: a typo must stop the server at startup,
 * not run it with a silent default.
 *
 * @example Usage
 * ```ts
 * import { loadSettings } from "./settings.ts";
 * import assert from "node:assert/strict";
 *
 * const env: Record<string, string> = { MAX_STREAMS: "100", LOG_LEVEL: "warn" };
 * const loaded = loadSettings((name) => env[name], undefined);
 * assert.equal(loaded.maxStreams, 100);
 * assert.throws(() => loadSettings(() => "lots", undefined));
 * ```
 */
export function loadSettings(
  lookup: (name: string) => string | undefined,
  memoryBytes: number | undefined,
): Settings {
  const integer = (name: string, fallback: number, min: number, max = Infinity): number => {
    const raw = lookup(name);
    if (raw === undefined || raw === "") return fallback;
    const value = parseDecimal(raw);
    if (value === undefined || value < min || value > max) {
      throw new Error(
        `${name} must be a plain decimal integer from ${min} to ${max}, got ${JSON.stringify(raw)}`,
      );
    }
    return value;
  };
  const level = lookup("LOG_LEVEL") || DEFAULT_SETTINGS.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(
      `LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`,
    );
  }
  return {
    logLevel: level as LogLevel,
    maxStreams: integer("MAX_STREAMS", defaultMaxStreams(memoryBytes), 1),
    stallTimeoutMs: integer("STALL_TIMEOUT_MS", DEFAULT_SETTINGS.stallTimeoutMs, 100),
    maxLifetimeMs: integer("MAX_LIFETIME_MS", DEFAULT_SETTINGS.maxLifetimeMs, 0),
    port: integer("PORT", DEFAULT_SETTINGS.port, 0, 65_535),
    hostname: lookup("HOST") || DEFAULT_SETTINGS.hostname,
  };
}

/**
 * Replaces the live settings.
 *
 * @example Usage
 * ```ts
 * import { applySettings, settings, DEFAULT_SETTINGS } from "./settings.ts";
 * import assert from "node:assert/strict";
 *
 * applySettings({ ...DEFAULT_SETTINGS, maxStreams: 3 });
 * assert.equal(settings.maxStreams, 3);
 * applySettings(DEFAULT_SETTINGS);
 * ```
 */
export function applySettings(next: Settings): void {
  Object.assign(settings, next);
}
