/**
 * Starts the server under test — ssebin (`mod.ts`) or the Hono baseline
 * (`bench/hono_app.ts`) — under Deno, Bun or workerd, on loopback, with its
 * open-file limit raised to the hard limit, and stops it by its process
 * group.
 *
 * workerd runs directly (no `wrangler dev`): the entry is bundled with the
 * esbuild wrangler ships and served from a generated config, so no proxy
 * sits in front and the measured process is workerd itself.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import process from "node:process";
import { denoServeArgs, prepareWorkerd, ROOT, type Runtime } from "../tests/_server.ts";

/** The two servers compared. */
export type App = "ours" | "hono";

/** Both apps, ours first. */
export const APPS: readonly App[] = ["ours", "hono"];

const BIN = `${ROOT}node_modules/.bin/`;
/** Scratch space: bundles, workerd configs, transpiled client. Git-ignored. */
export const OUT_DIR = `${ROOT}bench/out/`;
const ENTRY: Record<App, string> = { ours: "mod.ts", hono: "bench/hono_app.ts" };

// Every server started and not yet stopped, by process group: what an
// interrupted run must not leave behind.
const running = new Set<number>();

/**
 * Kills every server this process started and has not stopped yet (their
 * whole process groups), at once: for an interrupted run.
 */
export function killRunningServers(): void {
  for (const pid of running) signalGroup(pid, "SIGKILL");
  running.clear();
}

/** A running server. */
export interface BenchServer {
  runtime: Runtime;
  app: App;
  host: string;
  port: number;
  /** The server process itself (not a wrapper): what /proc is read for. */
  pid: number;
  url: string;
  /** Everything it printed. */
  log(): string;
  /** Stops the process group: SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
}

// deno serve and Bun print where they listen.
const LISTENING = /(?:Listening on|Started server:|development server:) http:\/\/[^\s:]+:(\d+)/;
// workerd reports on --control-fd (redirected to stdout) once it listens.
const WORKERD_LISTENING = /\{"event":"listen","socket":"http","port":(\d+)\}/;
// deno serve colours its banner even with NO_COLOR set.
// deno-lint-ignore no-control-regex
const ANSI_ESCAPE = /\x1b\[[0-9;]*m/g;

/** Bundles `app` for workerd with its config, in its own scratch folder. */
function prepareWorkerdFor(app: App, env: Record<string, string>): string {
  const dir = `${OUT_DIR}workerd-${app}/`;
  mkdirSync(dir, { recursive: true });
  return prepareWorkerd(ENTRY[app], env, dir);
}

function commandFor(runtime: Runtime, app: App, env: Record<string, string>): string[] {
  switch (runtime) {
    case "deno":
      return [`${BIN}deno`, ...denoServeArgs(ENTRY[app])];
    case "bun":
      return [`${BIN}bun`, "run", ENTRY[app]];
    case "workerd":
      return [`${BIN}workerd`, "serve", prepareWorkerdFor(app, env), "--control-fd=3"];
  }
}

/**
 * Starts `app` under `runtime` with `env` (process environment for Deno and
 * Bun, text bindings for workerd) and the open-file limit `fdLimit`; resolves
 * once `/health` answers.
 */
export async function startBenchServer(
  runtime: Runtime,
  app: App,
  env: Record<string, string>,
  fdLimit: number,
): Promise<BenchServer> {
  const command = commandFor(runtime, app, env);
  // `exec` keeps the pid: the process measured is the server, not the shell.
  // workerd's control messages (fd 3) join stdout.
  const child: ChildProcess = spawn(
    "sh",
    ["-c", 'ulimit -n "$0" && exec "$@" 3>&1', String(fdLimit), ...command],
    {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        ...env,
        PORT: "0",
        HOST: "127.0.0.1",
        NO_COLOR: "1",
        // How a deployment runs Bun; Deno and workerd ignore it.
        NODE_ENV: "production",
      },
    },
  );
  running.add(child.pid!);
  let output = "";
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.on("exit", () => {
      exited = true;
      resolve();
    })
  );
  const onData = (data: Uint8Array) => {
    output += new TextDecoder().decode(data).replace(ANSI_ESCAPE, "");
    // Only the start matters after the port is known; keep the log bounded.
    if (output.length > 1_000_000) output = output.slice(-500_000);
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);

  const stop = async () => {
    if (!exited) {
      signalGroup(child.pid!, "SIGTERM");
      const kill = setTimeout(() => signalGroup(child.pid!, "SIGKILL"), 5_000);
      await exit;
      clearTimeout(kill);
    }
    signalGroup(child.pid!, "SIGKILL");
    running.delete(child.pid!);
    child.stdout!.destroy();
    child.stderr!.destroy();
  };

  try {
    const pattern = runtime === "workerd" ? WORKERD_LISTENING : LISTENING;
    const port = await waitFor(
      () => {
        if (exited) throw new Error(`${runtime}/${app} exited at startup:\n${output}`);
        const match = pattern.exec(output);
        return match === null ? undefined : Number(match[1]);
      },
      30_000,
      `${runtime}/${app} to say where it listens`,
    );
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        try {
          const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
          await response.body?.cancel();
          return response.ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      10_000,
      `${url}/health`,
    );
    return {
      runtime,
      app,
      host: "127.0.0.1",
      port,
      pid: child.pid!,
      url,
      log: () => output,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Polls `check` every 50 ms until it returns a value; throws after `ms`. */
async function waitFor<T>(
  check: () => T | undefined | Promise<T | undefined>,
  ms: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting ${ms} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
