/**
 * The Server-Sent Events wire format, and the only module that knows it.
 *
 * Everything that reaches a client as `text/event-stream` is built here:
 * field names, the space after the colon, how multi-line data is split,
 * comments, `retry:` and the line ending. Callers describe events as data.
 *
 * @module
 */

/** The three line endings the WHATWG event-stream grammar accepts. */
export type LineEnding = "lf" | "crlf" | "cr";

/** The line-ending names, for validation and documentation. */
export const LINE_ENDINGS: readonly LineEnding[] = ["lf", "crlf", "cr"];

const EOL: Record<LineEnding, string> = { lf: "\n", crlf: "\r\n", cr: "\r" };

/** One event as data; the encoder turns it into wire text. */
export interface ServerSentEvent {
  /** Sets the client's last event id; must not contain CR, LF or NUL. */
  id?: number | string;
  /** The event name (`event:` field); must not contain CR or LF. */
  event?: string;
  /** The payload; each line (split at CR, LF or CRLF) becomes a `data:` line. */
  data: string;
}

const NEWLINE = /\r\n|\r|\n/;
const FORBIDDEN_IN_FIELD = /[\r\n]/;
const FORBIDDEN_IN_ID = /[\r\n\0]/;

/**
 * Encodes events, comments and `retry:` hints with one line ending.
 *
 * Field values that could break out of their line throw a `TypeError`:
 * input must be validated before it gets here, so a throw is a bug, never
 * an injection.
 *
 * @example Usage
 * ```ts
 * import { SseEncoder } from "./sse_encoder.ts";
 * import assert from "node:assert/strict";
 *
 * const sse = new SseEncoder("lf");
 * assert.equal(
 *   sse.event({ id: 1, event: "tick", data: '{"id":1}' }),
 *   'id: 1\nevent: tick\ndata: {"id":1}\n\n',
 * );
 * assert.equal(sse.comment("heartbeat"), ": heartbeat\n\n");
 * assert.equal(sse.retry(3000), "retry: 3000\n");
 * ```
 */
export class SseEncoder {
  /** The line-ending characters this encoder writes. */
  readonly eol: string;
  // Event names repeat on every event of a stream: validate each name once.
  #checkedEvent = "";

  /** Creates an encoder that ends every line with `lineEnding`. */
  constructor(lineEnding: LineEnding = "lf") {
    this.eol = EOL[lineEnding];
  }

  /** The wire text of one event, ending with the blank line that dispatches it. */
  event({ id, event, data }: ServerSentEvent): string {
    const eol = this.eol;
    let out = "";
    if (id !== undefined) {
      if (typeof id === "string" && FORBIDDEN_IN_ID.test(id)) {
        throw new TypeError("SSE id must not contain CR, LF or NUL");
      }
      out = "id: " + id + eol;
    }
    if (event !== undefined) {
      if (event !== this.#checkedEvent) {
        if (FORBIDDEN_IN_FIELD.test(event)) {
          throw new TypeError("SSE event name must not contain CR or LF");
        }
        this.#checkedEvent = event;
      }
      out += "event: " + event + eol;
    }
    // Fast path: JSON from JSON.stringify or a template never holds a raw newline.
    if (data.indexOf("\n") === -1 && data.indexOf("\r") === -1) {
      return out + "data: " + data + eol + eol;
    }
    for (const line of data.split(NEWLINE)) out += "data: " + line + eol;
    return out + eol;
  }

  /**
   * A comment line followed by a blank line. Clients ignore it; proxies that
   * flush on a blank line pass it on at once, which is what keepalives need.
   */
  comment(text: string): string {
    if (FORBIDDEN_IN_FIELD.test(text)) {
      throw new TypeError("SSE comment must not contain CR or LF");
    }
    return ": " + text + this.eol + this.eol;
  }

  /** The `retry:` field, which sets EventSource's reconnection delay in ms. */
  retry(ms: number): string {
    if (!Number.isSafeInteger(ms) || ms < 0) {
      throw new TypeError("SSE retry must be a non-negative integer");
    }
    return "retry: " + ms + this.eol;
  }
}
