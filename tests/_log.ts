/**
 * Test helper: captures what the server logs while a test runs.
 *
 * @module
 */

/** The lines logged so far; `restore()` puts the console back. */
export interface CapturedLog {
  lines: string[];
  restore(): void;
}

/**
 * Redirects `console.log` and `console.error` into `lines` until `restore()`.
 *
 * @example Usage
 * ```ts ignore
 * const captured = captureLog();
 * try { … } finally { captured.restore(); }
 * ```
 */
export function captureLog(): CapturedLog {
  const { log, error } = console;
  const lines: string[] = [];
  console.log = (...args: unknown[]) => void lines.push(args.join(" "));
  console.error = (...args: unknown[]) => void lines.push(args.join(" "));
  return {
    lines,
    restore() {
      console.log = log;
      console.error = error;
    },
  };
}
