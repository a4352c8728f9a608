/**
 * Test helper: starts `mod.ts` under Deno, Bun or workerd on an ephemeral
 * loopback port, collects its log, and stops it by its process group. Used
 * by every end-to-end test and by the benchmark.
 *
 * workerd runs directly, from a bundle and a generated config with the
 * compatibility settings of `wrangler.jsonc`: what the edge runs, without the
 * local proxy `wrangler dev` puts in front (whose Node process costs as much
 * CPU as the worker under load). The target `"wrangler dev"` starts that
 * user-facing path.
 *
 * @module
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
  /** What was started: the runtime's name, or `wrangler dev`. */
  name: Target;
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

/**
 * The flags `deno task start` gives `deno serve` (permissions, V8 memory mode,
 * abort semantics), read from deno.json so tests and the benchmark run the
 * server exactly as users do.
 */
export const DENO_SERVE_FLAGS: readonly string[] = denoServeFlags();

function denoServeFlags(): string[] {
  const tasks = JSON.parse(readFileSync(`${ROOT}deno.json`, "utf8")).tasks;
  const flags = /deno serve ((?:--\S+ )+)--host/.exec(tasks.start)?.[1];
  if (flags === undefined) {
    throw new Error("deno.json: tasks.start has no `deno serve <flags> --host`");
  }
  return flags.trim().split(" ");
}

/** The compatibility settings of wrangler.jsonc (JSON with `//` comment lines). */
function wranglerConfig(): { compatibility_date: string; compatibility_flags: string[] } {
  const text = readFileSync(`${ROOT}wrangler.jsonc`, "utf8");
  return JSON.parse(text.split("\n").filter((line) => !line.trim().startsWith("//")).join("\n"));
}

/**
 * Bundles `entry` for workerd into `dir` and writes a config serving it on
 * 127.0.0.1, any port, with `env` as text bindings (how Workers receive
 * variables); returns the config's path.
 *
 * @example Usage
 * ```ts ignore
 * const config = prepareWorkerd("mod.ts", { LOG_LEVEL: "warn" }, "/tmp/w/");
 * ```
 */
export function prepareWorkerd(entry: string, env: Record<string, string>, dir: string): string {
  execFileSync("node", [`${ROOT}tests/_bundle_worker.mjs`, entry, join(dir, "worker.js")], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  const { compatibility_date, compatibility_flags } = wranglerConfig();
  const bindings = Object.entries(env)
    .map(([name, value]) => `(name = ${JSON.stringify(name)}, text = ${JSON.stringify(value)})`)
    .join(", ");
  const config = join(dir, "config.capnp");
  writeFileSync(
    config,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "worker.js") ],
  compatibilityDate = ${JSON.stringify(compatibility_date)},
  compatibilityFlags = ${JSON.stringify(compatibility_flags)},
  bindings = [ ${bindings} ],
);
`,
  );
  return config;
}

/** What {@linkcode startServer} can start: a runtime, or workerd behind `wrangler dev`. */
export type Target = Runtime | "wrangler dev";

/**
 * `deno serve`'s arguments for `entry`: the start task's flags, loopback, any port.
 *
 * @example Usage
 * ```ts ignore
 * spawn(`${ROOT}node_modules/.bin/deno`, denoServeArgs("mod.ts"));
 * ```
 */
export function denoServeArgs(entry: string): string[] {
  return ["serve", ...DENO_SERVE_FLAGS, "--host", "127.0.0.1", "--port", "0", entry];
}

function command(
  launcher: Target,
  env: Record<string, string>,
  scratch: string,
): [string, string[]] {
  switch (launcher) {
    case "deno":
      return [`${BIN}deno`, denoServeArgs("mod.ts")];
    case "bun":
      return [`${BIN}bun`, ["run", "mod.ts"]];
    case "workerd":
      // It says where it listens on the control fd (3, piped below).
      return [`${BIN}workerd`, ["serve", prepareWorkerd("mod.ts", env, scratch), "--control-fd=3"]];
    case "wrangler dev":
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
  /(?:Listening on|development server:|Started server:|Ready on) (http:\/\/[^\s/]+)|"event":"listen","socket":"http","port":(\d+)/;

/**
 * Starts `mod.ts` under a runtime (or `npx wrangler dev`, as a user does:
 * workerd behind wrangler's local proxy; its `runtime` is then `workerd`) and
 * resolves once it accepts requests.
 *
 * @example Usage
 * ```ts ignore
 * const server = await startServer("bun", { env: { MAX_STREAMS: "10" } });
 * await fetch(`${server.url}/health`);
 * await server.stop();
 * ```
 */
export async function startServer(
  launcher: Target,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const runtime: Runtime = launcher === "wrangler dev" ? "workerd" : launcher;
  const env = options.env ?? {};
  const scratch = mkdtempSync(join(tmpdir(), "ssebin-server-"));
  const [bin, args] = command(launcher, env, scratch);
  const child: ChildProcess = spawn(bin, args, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe", "pipe"],
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
  (child.stdio[3] as NodeJS.ReadableStream).on("data", onData);
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
          reject(new Error(`${launcher} exited before printing ${pattern}:\n${output}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${launcher}: no ${pattern} within ${ms} ms:\n${output}`));
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
    (child.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy();
    rmSync(scratch, { recursive: true, force: true });
    return exited;
  };

  try {
    const log = await waitForLog(LISTENING, options.startupMs ?? 30_000);
    const [, address, workerdPort] = LISTENING.exec(log)!;
    const url = address?.replace("localhost", "127.0.0.1") ?? `http://127.0.0.1:${workerdPort}`;
    await waitUntilServing(url);
    return {
      runtime,
      name: launcher,
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
  runtimes: readonly Target[] = RUNTIMES,
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
