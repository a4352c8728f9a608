/**
 * Test helper: HTTP/1.1 over a raw TCP socket, to see the exact bytes a
 * server sends — header names as sent, chunked framing undone by us — and to
 * disconnect at a precise moment.
 *
 * @module
 */

import { connect, type Socket } from "node:net";

/** A response read byte for byte. */
export interface RawResponse {
  status: number;
  /** Header lines as sent, e.g. `Content-Type: text/event-stream`. */
  headerLines: string[];
  /** Lower-cased header names to values. */
  headers: Map<string, string>;
  /** The body with chunked framing removed. */
  body: string;
  /** True when the body ended cleanly (last chunk, or Content-Length reached). */
  complete: boolean;
}

/** What to send and when to stop. */
export interface RawOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Stop reading (and disconnect) once the body contains this. */
  until?: string | ((body: string) => boolean);
  /** Stop after this many ms in any case. */
  timeoutMs?: number;
}

/**
 * Sends one request on a new connection and reads the response.
 *
 * @example Usage
 * ```ts ignore
 * const res = await rawRequest("http://127.0.0.1:8000/events", { until: "id: 2" });
 * ```
 */
export function rawRequest(url: string, options: RawOptions = {}): Promise<RawResponse> {
  const target = new URL(url);
  const socket: Socket = connect(Number(target.port), target.hostname);
  const headers = { host: target.host, connection: "close", ...options.headers };
  const head = `${options.method ?? "GET"} ${target.pathname}${target.search} HTTP/1.1\r\n` +
    Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("") + "\r\n";
  socket.write(head);
  const until = typeof options.until === "string"
    ? ((needle: string) => (body: string) => body.includes(needle))(options.until)
    : options.until;

  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    let parsed: RawResponse | undefined;
    let bodyBytes = Buffer.alloc(0);
    let settled = false;
    const timer = setTimeout(() => finish(), options.timeoutMs ?? 10_000);

    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (parsed) {
        parsed.body = bodyBytes.toString("utf8");
        resolve(parsed);
      } else reject(error ?? new Error(`no response head from ${url}`));
    };

    socket.on("data", (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      if (!parsed) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end === -1) return;
        const lines = buffer.subarray(0, end).toString("latin1").split("\r\n");
        const map = new Map<string, string>();
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(":");
          map.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
        }
        parsed = {
          status: Number(lines[0].split(" ")[1]),
          headerLines: lines.slice(1),
          headers: map,
          body: "",
          complete: false,
        };
        buffer = buffer.subarray(end + 4);
        if ((options.method ?? "GET") === "HEAD" || [204, 304].includes(parsed.status)) {
          parsed.complete = true;
          return finish();
        }
      }
      const response = parsed!;
      if (response.headers.get("transfer-encoding")?.includes("chunked")) {
        // Undo chunked framing as far as whole chunks have arrived.
        for (;;) {
          const lineEnd = buffer.indexOf("\r\n");
          if (lineEnd === -1) break;
          const size = parseInt(buffer.subarray(0, lineEnd).toString("latin1"), 16);
          if (size === 0) {
            response.complete = true;
            return finish();
          }
          if (buffer.length < lineEnd + 2 + size + 2) break;
          bodyBytes = Buffer.concat([bodyBytes, buffer.subarray(lineEnd + 2, lineEnd + 2 + size)]);
          buffer = buffer.subarray(lineEnd + 2 + size + 2);
        }
      } else {
        bodyBytes = Buffer.concat([bodyBytes, buffer]);
        buffer = Buffer.alloc(0);
        const length = response.headers.get("content-length");
        if (length !== undefined && bodyBytes.length >= Number(length)) {
          response.complete = true;
          return finish();
        }
      }
      if (until?.(bodyBytes.toString("utf8"))) finish();
    });
    socket.on("end", () => finish());
    socket.on("error", (error) => finish(error));
  });
}
