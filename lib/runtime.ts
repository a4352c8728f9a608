/**
 * The seam between the web-standard core and the runtime underneath.
 *
 * Deno, Bun and Workers differ in what they pass to `fetch` after the request,
 * in how they expose the environment and in signals. Everything that depends
 * on that is here, feature-detected and read defensively; the rest of the code
 * never names a runtime.
 *
 * @module
 */

interface ProcessLike {
  env?: Record<string, string | undefined>;
  on?(signal: string, listener: () => void): void;
  exit?(code: number): void;
  getBuiltinModule?(name: string): unknown;
}

interface BunServerLike {
  requestIP(request: Request): { address: string; port: number } | null;
  timeout?(request: Request, seconds: number): void;
  stop?(closeActiveConnections?: boolean): unknown;
}

interface DenoServeInfoLike {
  remoteAddr: { hostname: string; port: number };
}

const proc: ProcessLike | undefined = (globalThis as { process?: ProcessLike }).process;
let bunServer: BunServerLike | undefined;

/** What the runtime says it is, e.g. `Deno/2.9.6`, `Bun/1.4.5`, `Cloudflare-Workers`. */
export const runtimeName: string = globalThis.navigator?.userAgent ?? "unknown";

/**
 * Whether timers belong to the request that set them (Workers): they are
 * cancelled with it, and may not write to another request's stream. Elsewhere
 * one timer can serve every stream.
 */
export const timersBelongToRequests: boolean = runtimeName.startsWith("Cloudflare-Workers");

/** What a handler may know about the connection behind a request. */
export interface Peer {
  /** `host:port` or an address, where the runtime tells; for logs only. */
  address: string | undefined;
  /**
   * Lifts the runtime's idle timeout for this request, where there is one
   * (Bun closes a connection after 10 s with nothing written).
   */
  keepAlive(): void;
}

/**
 * Describes the client of `request` from the arguments `fetch` received.
 *
 * @example Usage
 * ```ts
 * import { peerOf } from "./runtime.ts";
 * import assert from "node:assert/strict";
 *
 * const denoInfo = { remoteAddr: { hostname: "127.0.0.1", port: 5000 } };
 * assert.equal(peerOf(new Request("http://x/"), denoInfo, undefined).address, "127.0.0.1:5000");
 * ```
 */
export function peerOf(request: Request, info: unknown, ctx: unknown): Peer {
  if (isBunServer(info)) {
    bunServer = info;
    const ip = safely(() => info.requestIP(request));
    return {
      address: ip ? `${ip.address}:${ip.port}` : undefined,
      keepAlive: () => safely(() => info.timeout?.(request, 0)),
    };
  }
  if (isDenoInfo(info)) {
    const { hostname, port } = info.remoteAddr;
    return { address: `${hostname}:${port}`, keepAlive: noop };
  }
  // Workers pass (request, env, ctx); only there is the header the edge's own.
  const isWorker = typeof (ctx as { waitUntil?: unknown } | undefined)?.waitUntil === "function";
  const address = isWorker ? request.headers.get("cf-connecting-ip") ?? undefined : undefined;
  return { address, keepAlive: noop };
}

/**
 * Reads an environment variable of the process (Deno, Bun); `undefined` on
 * Workers, whose variables arrive as `fetch`'s second argument instead.
 */
export function processEnv(name: string): string | undefined {
  return safely(() => proc?.env?.[name]);
}

/** Whether `fetch`'s arguments are those of a Worker, whose second one is `env`. */
export function workerEnvOf(info: unknown, ctx: unknown): Record<string, unknown> | undefined {
  const isWorker = typeof (ctx as { waitUntil?: unknown } | undefined)?.waitUntil === "function";
  return isWorker && typeof info === "object" && info !== null
    ? info as Record<string, unknown>
    : undefined;
}

/** The machine's memory in bytes, where the runtime tells (Deno needs `--allow-sys`). */
export function totalMemoryBytes(): number | undefined {
  return safely(() => {
    const os = proc?.getBuiltinModule?.("node:os") as { totalmem?(): number } | undefined;
    return os?.totalmem?.();
  });
}

/**
 * Calls `listener` on SIGINT or SIGTERM, where the runtime has signals.
 * Returns false on Workers, which have none.
 */
export function onShutdownSignal(listener: (signal: string) => void): boolean {
  if (typeof proc?.on !== "function") return false;
  for (const signal of ["SIGINT", "SIGTERM"]) proc.on(signal, () => listener(signal));
  return true;
}

/** Stops accepting connections, where the runtime gave us its server (Bun). */
export function stopListening(): void {
  safely(() => bunServer?.stop?.(false));
}

/** Ends the process (Deno, Bun). */
export function exitProcess(code: number): void {
  proc?.exit?.(code);
}

function isBunServer(info: unknown): info is BunServerLike {
  return typeof (info as BunServerLike | undefined)?.requestIP === "function";
}

function isDenoInfo(info: unknown): info is DenoServeInfoLike {
  const addr = (info as DenoServeInfoLike | undefined)?.remoteAddr;
  return typeof addr?.hostname === "string" && typeof addr.port === "number";
}

function safely<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

function noop(): void {}
