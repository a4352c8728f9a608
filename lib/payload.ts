/**
 * Shapes an event's JSON payload: padding to a size, spreading over lines.
 *
 * Both keep the text valid JSON that parses to the same value (plus a `pad`
 * member for padding), so a client can always check what it received.
 *
 * @module
 */

/** How to reshape a JSON payload; the defaults leave it as it is. */
export interface PayloadShape {
  /** Pad the JSON text to at least this many bytes (0: no padding). */
  size: number;
  /** Spread the JSON text over this many lines (1: one line). */
  lines: number;
}

// `,"pad":""` is what a pad member costs before its first filler byte.
const PAD_OVERHEAD = 9;
// Strings, punctuation, and bare literals (numbers, true, false, null).
const JSON_TOKEN = /"(?:[^"\\]|\\.)*"|[{}[\]:,]|[^\s{}[\]:,"]+/g;

/**
 * Returns a function that applies `shape` to the JSON text of an object.
 * The filler for padding is built once per shape, not once per event.
 *
 * @example Usage
 * ```ts
 * import { payloadShaper } from "./payload.ts";
 * import assert from "node:assert/strict";
 *
 * const shape = payloadShaper({ size: 24, lines: 3 });
 * const text = shape('{"id":1}');
 * assert.equal(text.split("\n").length, 3);
 * assert.deepEqual(JSON.parse(text), { id: 1, pad: "xxxxxxx" });
 * ```
 */
export function payloadShaper(shape: PayloadShape): (json: string) => string {
  const { size, lines } = shape;
  if (size === 0 && lines === 1) return (json) => json;
  const filler = "x".repeat(Math.max(0, size - PAD_OVERHEAD));
  return (json) => {
    const padded = json.length < size ? padJson(json, size, filler) : json;
    return lines === 1 ? padded : spreadJson(padded, lines);
  };
}

/**
 * Adds a `"pad":"xxx…"` member to a JSON object's text so that it is at least
 * `size` bytes long (ASCII text: one byte per character).
 */
function padJson(json: string, size: number, filler: string): string {
  const fill = Math.max(0, size - json.length - PAD_OVERHEAD);
  return json.slice(0, -1) + ',"pad":"' + filler.slice(0, fill) + '"}';
}

/**
 * Breaks JSON text between tokens into exactly `lines` lines; when there are
 * fewer tokens than lines, empty lines follow (JSON allows trailing space).
 */
export function spreadJson(json: string, lines: number): string {
  const tokens = json.match(JSON_TOKEN) ?? [];
  const groups: string[] = [];
  if (lines >= tokens.length) {
    groups.push(...tokens);
    while (groups.length < lines) groups.push("");
    return groups.join("\n");
  }
  for (let i = 0; i < lines; i++) {
    const from = Math.floor((i * tokens.length) / lines);
    const to = Math.floor(((i + 1) * tokens.length) / lines);
    groups.push(tokens.slice(from, to).join(""));
  }
  return groups.join("\n");
}
