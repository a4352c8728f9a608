/**
 * One-line logs in logfmt (`key=value`), filtered by `LOG_LEVEL`.
 *
 * @module
 */

import { LOG_LEVELS, type LogLevel, settings } from "./settings.ts";

/** Values a log line can carry. */
export type LogFields = Record<string, string | number | boolean | undefined>;

const SAFE_VALUE = /^[A-Za-z0-9_.:/@+\-[\]]+$/;

function rank(level: LogLevel): number {
  return LOG_LEVELS.indexOf(level);
}

/**
 * Whether a line at `level` would be written; check before building costly
 * fields.
 *
 * @example Usage
 * ```ts
 * import { logEnabled } from "./log.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(logEnabled("error"), true);
 * ```
 */
export function logEnabled(level: LogLevel): boolean {
  return rank(level) >= rank(settings.logLevel);
}

/**
 * Writes `time level msg key=value …`. Values that are not plain words are
 * JSON-quoted, so a hostile value can never start a new log line.
 *
 * @example Usage
 * ```ts
 * import { log } from "./log.ts";
 *
 * log("info", "stream open", { stream: 1, path: "/events" });
 * ```
 */
export function log(level: LogLevel, msg: string, fields: LogFields = {}): void {
  if (!logEnabled(level)) return;
  let line = `${new Date().toISOString()} ${level} ${JSON.stringify(msg)}`;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = String(value);
    line += ` ${key}=${SAFE_VALUE.test(text) ? text : JSON.stringify(text)}`;
  }
  if (rank(level) >= rank("warn")) console.error(line);
  else console.log(line);
}
