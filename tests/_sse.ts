/**
 * Test helper: reads an SSE response the way the WHATWG parser does
 * (`eventsource-parser`), keeping the raw text and arrival times too.
 *
 * @module
 */

import { createParser } from "eventsource-parser";

/**
 * Feed this to an `eventsource-parser` when the input ends. eventsource-parser
 * 3.1 holds a CR at the end of a chunk (it could be the first half of a CRLF)
 * until a later chunk has a line end, and never dispatches it at the end of
 * input, even with `reset({ consume: true })`: with `eol=cr` the last event
 * would be lost. A lone LF completes that CR as a CRLF and adds nothing else.
 */
export const END_OF_INPUT = "\n";

/** One parsed event and when it arrived (ms since the epoch). */
export interface ReceivedEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
  at: number;
}

/** What a read of one response saw. */
export interface StreamRead {
  status: number;
  headers: Headers;
  events: ReceivedEvent[];
  comments: string[];
  retry: number | undefined;
  /** The body as text, exactly as received. */
  raw: string;
  /** Ms from the request to the response headers. */
  headersMs: number;
  /** `end`: the server ended the body; `stopped`: we did; `error`: it broke. */
  outcome: "end" | "stopped" | "error";
  error: unknown;
}

/** When to stop reading. */
export interface ReadOptions {
  headers?: Record<string, string>;
  /** Stop (disconnect) after this many events. */
  limit?: number;
  /** Stop after this many ms in any case. */
  timeoutMs?: number;
  method?: string;
}

/**
 * Requests `url` and parses the body until it ends, `limit` events arrived or
 * `timeoutMs` passed; then disconnects.
 *
 * @example Usage
 * ```ts ignore
 * const read = await readStream(`${url}/stream/fast`);
 * ```
 */
export async function readStream(url: string, options: ReadOptions = {}): Promise<StreamRead> {
  const abort = new AbortController();
  const started = Date.now();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs ?? 10_000);
  const result: StreamRead = {
    status: 0,
    headers: new Headers(),
    events: [],
    comments: [],
    retry: undefined,
    raw: "",
    headersMs: 0,
    outcome: "stopped",
    error: undefined,
  };
  const parser = createParser({
    onEvent: (event) => {
      result.events.push({ id: event.id, event: event.event, data: event.data, at: Date.now() });
      if (options.limit !== undefined && result.events.length >= options.limit) abort.abort();
    },
    onComment: (comment) => void result.comments.push(comment),
    onRetry: (ms) => void (result.retry = ms),
  });
  try {
    const response = await fetch(url, {
      headers: options.headers,
      method: options.method,
      signal: abort.signal,
    });
    result.status = response.status;
    result.headers = response.headers;
    result.headersMs = Date.now() - started;
    if (response.body === null) {
      result.outcome = "end";
      return result;
    }
    const decoder = new TextDecoder();
    for await (const chunk of response.body) {
      const text = decoder.decode(chunk, { stream: true });
      result.raw += text;
      parser.feed(text);
    }
    parser.feed(END_OF_INPUT);
    result.outcome = "end";
  } catch (error) {
    // The bytes that did arrive still count: complete a trailing CR.
    parser.feed(END_OF_INPUT);
    if (abort.signal.aborted) result.outcome = "stopped";
    else {
      result.outcome = "error";
      result.error = error;
    }
  } finally {
    clearTimeout(timer);
  }
  return result;
}
