/**
 * Test helper: starts `mod.ts` under Deno, Bun or workerd (via `wrangler dev`)
 * on an ephemeral loopback port, collects its log, and stops it by its
 * process group. Used by every end-to-end test and by the benchmark.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The runtimes ssebin must run on. */
export type Runtime = "deno" | "bun" | "workerd";

/** Every runtime, in the order tests visit them. */
export const RUNTIMES: readonly Runtime[] = ["deno", "bun", "workerd"];

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));
const BIN = `${ROOT}node_modules/.bin/`;

/** A server process started by {@linkcode startServer}. */
export interface RunningServer {
  runtime: Runtime;
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  url: string;
  pid: number;
  /** Everything the server has printed so far (stdout and stderr). */
  log(): string;
  /** Resolves with the log once `pattern` matches it, or rejects after `ms`. */
  waitForLog(pattern: RegExp, ms?: number): Promise<string>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** Sends `signal` to the process group and waits (killing after 5 s). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Options for {@linkcode startServer}. */
export interface ServerOptions {
  /** Settings for the server (`MAX_STREAMS`, `STALL_TIMEOUT_MS`, …). */
  env?: Record<string, string>;
  /** Most ms to wait for the server to say where it listens. */
  startupMs?: number;
}

function command(runtime: Runtime, env: Record<string, string>): [string, string[]] {
  switch (runtime) {
    case "deno":
      return [`${BIN}deno`, [
        "serve",
        "--unstable-no-legacy-abort",
        "--allow-env",
        "--allow-sys=systemMemoryInfo",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "mod.ts",
      ]];
    case "bun":
      return [`${BIN}bun`, ["run", "mod.ts"]];
    case "workerd":
      return [`${BIN}wrangler`, [
        "dev",
        "--ip",
        "127.0.0.1",
        "--port",
        "0",
        "--inspector-port",
        "0",
        ...Object.entries(env).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
      ]];
  }
}

// deno-lint-ignore no-control-regex
const ANSI_ESCAPE = /\x1b\[[0-9;]*m/g;
// What each runtime prints once it listens.
const LISTENING =
  /(?:Listening on|development server:|Started server:|Ready on) (http:\/\/[^\s/]+)/;

/**
 * Starts `mod.ts` under `runtime` and resolves once it accepts requests.
 *
 * @example Usage
 * ```ts ignore
 * const server = await startServer("bun", { env: { MAX_STREAMS: "10" } });
 * await fetch(`${server.url}/health`);
 * await server.stop();
 * ```
 */
export async function startServer(
  runtime: Runtime,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const env = options.env ?? {};
  const [bin, args] = command(runtime, env);
  const child: ChildProcess = spawn(bin, args, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      ...env,
      PORT: "0",
      HOST: "127.0.0.1",
      WRANGLER_SEND_METRICS: "false",
      NO_COLOR: "1",
      FORCE_COLOR: "0",
    },
  });
  let output = "";
  const waiters = new Set<() => void>();
  const onData = (data: Buffer) => {
    // deno serve colours its banner even with NO_COLOR set.
    output += data.toString().replace(ANSI_ESCAPE, "");
    for (const wake of waiters) wake();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => {
      for (const wake of waiters) wake();
      resolve(code);
    });
  });
  let hasExited = false;
  exited.then(() => hasExited = true);

  const waitForLog = (pattern: RegExp, ms = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (pattern.test(output)) {
          finish();
          resolve(output);
        } else if (hasExited) {
          finish();
          reject(new Error(`${runtime} exited before printing ${pattern}:\n${output}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${runtime}: no ${pattern} within ${ms} ms:\n${output}`));
      }, ms);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const stop = async (signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> => {
    if (!hasExited) {
      killGroup(child.pid!, signal);
      const timer = setTimeout(() => killGroup(child.pid!, "SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    // wrangler's workerd child may outlive wrangler: clear the whole group.
    killGroup(child.pid!, "SIGKILL");
    child.stdout!.destroy();
    child.stderr!.destroy();
    return exited;
  };

  try {
    const log = await waitForLog(LISTENING, options.startupMs ?? 30_000);
    const url = LISTENING.exec(log)![1].replace("localhost", "127.0.0.1");
    await waitUntilServing(url);
    return {
      runtime,
      url,
      pid: child.pid!,
      log: () => output,
      waitForLog,
      exited,
      stop,
    };
  } catch (error) {
    await stop("SIGKILL");
    throw error;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

async function waitUntilServing(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/health`);
      await response.body?.cancel();
      if (response.ok) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts one server per runtime, in parallel.
 *
 * @example Usage
 * ```ts ignore
 * const servers = await startServers(RUNTIMES);
 * await stopAll(servers);
 * ```
 */
export async function startServers(
  runtimes: readonly Runtime[] = RUNTIMES,
  options: ServerOptions = {},
): Promise<RunningServer[]> {
  const results = await Promise.allSettled(
    runtimes.map((runtime) => startServer(runtime, options)),
  );
  const started = results.flatMap((result) => result.status === "fulfilled" ? [result.value] : []);
  const failed = results.find((result) => result.status === "rejected");
  if (failed !== undefined) {
    // Leave nothing running behind a failed start.
    await stopAll(started);
    throw (failed as PromiseRejectedResult).reason;
  }
  return started;
}

/** Stops every server. */
export async function stopAll(servers: readonly RunningServer[]): Promise<void> {
  await Promise.all(servers.map((server) => server.stop()));
}

/**
 * Reads `/metrics` and returns the value of one series, or 0 when absent.
 *
 * @example Usage
 * ```ts ignore
 * await metric(server.url, 'sse_streams_open{path="/events"}');
 * ```
 */
export async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  for (const line of text.split("\n")) {
    if (line.startsWith(series + " ")) return Number(line.slice(series.length + 1));
  }
  return 0;
}

/** Sum of `sse_streams_open` over every path. */
export async function streamsOpen(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let open = 0;
  for (const match of text.matchAll(/^sse_streams_open\{[^}]*\} (\d+)$/gm)) {
    open += Number(match[1]);
  }
  return open;
}

/** Polls `read` until it returns `want` or `ms` pass; returns the last value. */
export async function eventually<T>(read: () => Promise<T>, want: T, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (value !== want && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await read();
  }
  return value;
}
