/**
 * Test helper: HTTP/1.1 over raw loopback sockets, for attacks.
 *
 * - {@linkcode exchange} sends exact request bytes and reads one response —
 *   including none, a reset, or a response the runtime's HTTP parser wrote
 *   without ever calling our handler. Unlike `_raw_http.ts` the request is
 *   not built from a URL, so paths that `fetch` or `new URL` would normalise
 *   (`/static/../mod.ts`, backslashes, NUL, raw CR/LF in headers) reach the
 *   server as written.
 * - {@linkcode holdStream} opens a stream and keeps it: read it, pause it
 *   (a client that stops reading), close it, or wait for the server to end it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { connect, type Socket } from "node:net";

/** How a response ended. */
export type ExchangeEnd =
  /** The response body ended as framed (Content-Length, last chunk, or none). */
  | "complete"
  /** The server closed the connection: a close-delimited body, or a cut one. */
  | "closed"
  /** We disconnected on purpose (a stream read briefly). */
  | "stopped"
  /** Nothing decisive within the time limit. */
  | "timeout"
  /** A socket error (usually a reset). */
  | "error"
  /** The response's framing made no sense (e.g. a chunk size that is not hex). */
  | "malformed";

/** A response head. */
export interface ResponseHead {
  /** e.g. `HTTP/1.1 200 OK`. */
  statusLine: string;
  status: number;
  /** The head's lines after the status line, as sent. */
  headerLines: string[];
  /** Lower-cased header names to values (repeated headers joined by ", "). */
  headers: Map<string, string>;
}

/** What one exchange saw. */
export interface Exchange {
  /** e.g. `HTTP/1.1 200 OK`; empty when no response head arrived. */
  statusLine: string;
  /** The response status, or `undefined` when no response head arrived. */
  status: number | undefined;
  headerLines: string[];
  headers: Map<string, string>;
  /** The body, with chunked framing removed. */
  body: Buffer;
  end: ExchangeEnd;
  /** The socket error's code, or what was malformed. */
  error: string | undefined;
  /** Ms from connect to the end. */
  ms: number;
}

const HEAD_END = Buffer.from("\r\n\r\n");

class FramingError extends Error {}

/**
 * Incremental HTTP/1.1 response reader: feed it bytes, it reports the head,
 * body bytes (dechunked) and the end of the body.
 */
class ResponseReader {
  head: ResponseHead | undefined;
  #pending: Buffer = Buffer.alloc(0);
  #framing: "none" | "chunked" | "length" | "close" = "close";
  #remaining = 0;
  readonly #isHead: boolean;
  readonly #onBody: (bytes: Buffer) => void;

  constructor(isHead: boolean, onBody: (bytes: Buffer) => void) {
    this.#isHead = isHead;
    this.#onBody = onBody;
  }

  /** Takes bytes; true once the body is complete. Throws {@linkcode FramingError}. */
  feed(data: Buffer): boolean {
    this.#pending = this.#pending.length === 0 ? data : Buffer.concat([this.#pending, data]);
    if (this.head === undefined && !this.#readHead()) return false;
    return this.#readBody();
  }

  #readHead(): boolean {
    const end = this.#pending.indexOf(HEAD_END);
    if (end === -1) return false;
    const lines = this.#pending.subarray(0, end).toString("latin1").split("\r\n");
    this.#pending = this.#pending.subarray(end + 4);
    const status = Number(lines[0].split(" ")[1]);
    // A 1xx is not the response: skip it and read the next head.
    if (status >= 100 && status < 200) return this.#readHead();
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const earlier = headers.get(name);
      headers.set(name, earlier === undefined ? value : `${earlier}, ${value}`);
    }
    this.head = { statusLine: lines[0], status, headerLines: lines.slice(1), headers };
    const length = headers.get("content-length");
    if (this.#isHead || status === 204 || status === 304) this.#framing = "none";
    else if (headers.get("transfer-encoding")?.includes("chunked")) this.#framing = "chunked";
    else if (length !== undefined) {
      this.#framing = "length";
      this.#remaining = Number(length);
    }
    return true;
  }

  #readBody(): boolean {
    switch (this.#framing) {
      case "none":
        return true;
      case "length": {
        const take = this.#pending.subarray(0, this.#remaining);
        if (take.length > 0) this.#onBody(take);
        this.#remaining -= take.length;
        this.#pending = this.#pending.subarray(take.length);
        return this.#remaining === 0;
      }
      case "close":
        if (this.#pending.length > 0) this.#onBody(this.#pending);
        this.#pending = Buffer.alloc(0);
        return false;
      case "chunked":
        for (;;) {
          const pending = this.#pending;
          const lineEnd = pending.indexOf("\r\n");
          if (lineEnd === -1) return false;
          const sizeLine = pending.subarray(0, lineEnd).toString("latin1");
          if (!/^[0-9a-fA-F]+(;.*)?$/.test(sizeLine)) {
            throw new FramingError(`bad chunk size line ${JSON.stringify(sizeLine.slice(0, 40))}`);
          }
          const size = parseInt(sizeLine, 16);
          if (size === 0) return true;
          if (pending.length < lineEnd + 2 + size + 2) return false;
          this.#onBody(pending.subarray(lineEnd + 2, lineEnd + 2 + size));
          this.#pending = pending.subarray(lineEnd + 2 + size + 2);
        }
    }
  }
}

/** What to send and how long to listen. */
export interface ExchangeOptions {
  port: number;
  /** The request, byte for byte. */
  request: Buffer | string;
  /** The request was HEAD: the response has no body whatever it says. */
  head?: boolean;
  /**
   * For a `text/event-stream` response: disconnect once `streamDone(body)`
   * says so, or `streamMs` after the head, whichever first.
   */
  streamMs?: number;
  streamDone?: (body: string) => boolean;
  /** Give up after this many ms in all. */
  timeoutMs?: number;
}

/** The {@linkcode Exchange} an ended read makes, `started` being its connect time. */
function exchangeResult(
  reader: ResponseReader,
  parts: Buffer[],
  end: ExchangeEnd,
  error: string | undefined,
  started: number,
): Exchange {
  return {
    statusLine: reader.head?.statusLine ?? "",
    status: reader.head?.status,
    headerLines: reader.head?.headerLines ?? [],
    headers: reader.head?.headers ?? new Map(),
    body: Buffer.concat(parts),
    end,
    error,
    ms: Date.now() - started,
  };
}

/**
 * Sends `options.request` to 127.0.0.1:`options.port` and reads the response.
 * Never rejects: every way the exchange can go is an {@linkcode Exchange}.
 */
export function exchange(options: ExchangeOptions): Promise<Exchange> {
  const started = Date.now();
  const socket = connect(options.port, "127.0.0.1");
  socket.setNoDelay(true);
  const parts: Buffer[] = [];
  const reader = new ResponseReader(options.head ?? false, (bytes) => parts.push(bytes));
  return new Promise((resolve) => {
    let streamTimer: ReturnType<typeof setTimeout> | undefined;
    let settled = false;
    const finish = (end: ExchangeEnd, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(streamTimer);
      socket.destroy();
      resolve(exchangeResult(reader, parts, end, error, started));
    };
    const timer = setTimeout(() => finish("timeout"), options.timeoutMs ?? 15_000);

    socket.on("data", (data: Buffer) => {
      if (settled) return;
      const hadHead = reader.head !== undefined;
      let complete: boolean;
      try {
        complete = reader.feed(data);
      } catch (error) {
        if (!(error instanceof FramingError)) throw error;
        return finish("malformed", error.message);
      }
      if (complete) return finish("complete");
      const head = reader.head;
      if (head === undefined) return;
      const isStream = head.status === 200 &&
        (head.headers.get("content-type") ?? "").startsWith("text/event-stream");
      if (!isStream) return;
      if (!hadHead) streamTimer = setTimeout(() => finish("stopped"), options.streamMs ?? 200);
      if (parts.length === 0) return;
      const done = options.streamDone;
      if (done === undefined || done(Buffer.concat(parts).toString("utf8"))) finish("stopped");
    });
    socket.on("end", () => finish("closed"));
    socket.on("close", () => finish("closed"));
    socket.on(
      "error",
      (error: NodeJS.ErrnoException) => finish("error", error.code ?? error.message),
    );
    socket.write(options.request);
  });
}

/** A stream held open by {@linkcode holdStream}. */
export interface HeldStream extends ResponseHead {
  /** The body received so far, dechunked, as text. */
  text(): string;
  /** Bytes of body received so far. */
  bytes(): number;
  /** Resolves when the response ends, however it ends. */
  readonly ended: Promise<ExchangeEnd>;
  /** Stops reading: the client that reads nothing. Bytes then wait in the kernel. */
  pause(): void;
  /** Reads again. */
  resume(): void;
  /** Disconnects at once. */
  close(): void;
  /** Resolves true once `predicate(text())` holds, false after `ms`. */
  waitFor(predicate: (text: string) => boolean, ms: number): Promise<boolean>;
}

/** Options for {@linkcode holdStream}. */
export interface HoldOptions {
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Stop reading as soon as the head has arrived. */
  pauseAfterHead?: boolean;
  /** Reject when no response head arrives within this long. */
  headMs?: number;
  /** Keep no body text (for many long-lived streams): `text()` stays empty. */
  discardBody?: boolean;
}

/**
 * Opens `GET target` on 127.0.0.1:`port` and resolves once the response head
 * has arrived (for any status), keeping the connection.
 *
 * @example Usage
 * ```ts ignore
 * const stream = await holdStream(port, "/events?interval=100");
 * await stream.waitFor((text) => text.includes("id: 2"), 5_000);
 * stream.close();
 * ```
 */
export function holdStream(
  port: number,
  target: string,
  options: HoldOptions = {},
): Promise<HeldStream> {
  const socket: Socket = connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  const decoder = new TextDecoder();
  let text = "";
  let byteCount = 0;
  const waiters = new Set<() => void>();
  const reader = new ResponseReader(false, (bytes) => {
    byteCount += bytes.length;
    if (!options.discardBody) text += decoder.decode(bytes, { stream: true });
    for (const wake of waiters) wake();
  });
  let endedAs: ExchangeEnd | undefined;
  let onEnd: (end: ExchangeEnd) => void = () => {};
  // Rejects the caller's promise when the connection ends before a head.
  let noHead: (how: ExchangeEnd) => void = () => {};
  const ended = new Promise<ExchangeEnd>((resolve) => onEnd = resolve);
  const end = (how: ExchangeEnd) => {
    if (endedAs !== undefined) return;
    endedAs = how;
    socket.destroy();
    onEnd(how);
    noHead(how);
    for (const wake of waiters) wake();
  };
  const head = Object.entries({ host: `127.0.0.1:${port}`, ...options.headers })
    .map(([name, value]) => `${name}: ${value}\r\n`).join("");
  socket.write(`GET ${target} HTTP/1.1\r\n${head}\r\n`);

  return new Promise((resolve, reject) => {
    let announced = false;
    noHead = (how) => {
      if (announced) return;
      clearTimeout(headTimer);
      reject(new Error(`no response head for ${target}: ${how}`));
    };
    const headTimer = setTimeout(() => end("timeout"), options.headMs ?? 10_000);
    const announce = () => {
      if (announced || reader.head === undefined) return;
      announced = true;
      clearTimeout(headTimer);
      if (options.pauseAfterHead) socket.pause();
      resolve({
        ...reader.head,
        text: () => text,
        bytes: () => byteCount,
        ended,
        pause: () => void socket.pause(),
        resume: () => void socket.resume(),
        close: () => end("stopped"),
        waitFor: (predicate, ms) =>
          new Promise((done) => {
            const check = () => {
              if (predicate(text) || endedAs !== undefined) {
                clearTimeout(timer);
                waiters.delete(check);
                done(predicate(text));
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              done(predicate(text));
            }, ms);
            waiters.add(check);
            check();
          }),
      });
    };
    socket.on("data", (data: Buffer) => {
      if (endedAs !== undefined) return;
      let how: ExchangeEnd | undefined;
      try {
        if (reader.feed(data)) how = "complete";
      } catch (error) {
        if (!(error instanceof FramingError)) throw error;
        how = "malformed";
      }
      announce();
      if (how !== undefined) end(how);
    });
    socket.on("end", () => end("closed"));
    socket.on("close", () => end("closed"));
    socket.on("error", () => end("error"));
  });
}

/** A kept-alive connection that sends requests one after another. */
export interface Connection {
  /**
   * Sends `request` (exact bytes) and resolves with the response; the end is
   * `"closed"` or `"error"` when the server dropped the connection instead.
   */
  send(request: string, options?: { head?: boolean; timeoutMs?: number }): Promise<Exchange>;
  close(): void;
}

/**
 * Opens a connection to 127.0.0.1:`port` for several requests in turn (keep
 * it alive by not sending `connection: close`). Lets a test send a request
 * on a connection accepted before the server stopped listening.
 */
export function openConnection(port: number): Promise<Connection> {
  const socket = connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  let onData: ((data: Buffer) => void) | undefined;
  let onGone: ((how: ExchangeEnd, error?: string) => void) | undefined;
  let gone: { how: ExchangeEnd; error?: string } | undefined;
  socket.on("data", (data: Buffer) => onData?.(data));
  socket.on("close", () => {
    gone ??= { how: "closed" };
    onGone?.(gone.how, gone.error);
  });
  socket.on("error", (error: NodeJS.ErrnoException) => {
    gone ??= { how: "error", error: error.code ?? error.message };
  });
  const send: Connection["send"] = (request, options = {}) => {
    const started = Date.now();
    const parts: Buffer[] = [];
    const reader = new ResponseReader(options.head ?? false, (bytes) => parts.push(bytes));
    return new Promise((resolve) => {
      const finish = (end: ExchangeEnd, error?: string) => {
        clearTimeout(timer);
        onData = undefined;
        onGone = undefined;
        resolve(exchangeResult(reader, parts, end, error, started));
      };
      const timer = setTimeout(() => finish("timeout"), options.timeoutMs ?? 10_000);
      if (gone !== undefined) return finish(gone.how, gone.error);
      onGone = finish;
      onData = (data) => {
        try {
          if (reader.feed(data)) finish("complete");
        } catch (error) {
          if (!(error instanceof FramingError)) throw error;
          finish("malformed", error.message);
        }
      };
      socket.write(request);
    });
  };
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve({ send, close: () => void socket.destroy() }));
    socket.once("error", reject);
  });
}
