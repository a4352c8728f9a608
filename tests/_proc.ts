/**
 * Test helper: finds the process that actually runs `mod.ts` for a server
 * started by `_server.ts`, and reads its resident memory (Linux `/proc`).
 *
 * Under Deno, Bun and workerd that is the spawned process itself. Under
 * `wrangler dev` the spawned process is wrangler (Node), which starts two
 * workerd processes: a proxy that owns the public port, and the one that runs
 * the Worker — the one started with an inspector address. That one is sampled.
 *
 * @module
 */

import { readdirSync, readFileSync } from "node:fs";
import type { RunningServer } from "./_server.ts";

interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  cmdline: string[];
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    return { pid, ppid: Number(fields[1]), pgid: Number(fields[2]), cmdline };
  } catch {
    return undefined; // Gone, or not ours to read.
  }
}

/** Every live process of the process group led by `leader`. */
function processGroup(leader: number): ProcInfo[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProc(Number(name)))
    .filter((info): info is ProcInfo => info !== undefined && info.pgid === leader);
}

/**
 * The pid of the process running the handler of `server`.
 *
 * @example Usage
 * ```ts ignore
 * const pid = serverProcessId(server);
 * console.log(rssBytes(pid));
 * ```
 */
export function serverProcessId(server: RunningServer): number {
  if (server.name !== "wrangler dev") return server.pid;
  const workerds = processGroup(server.pid).filter((info) =>
    info.cmdline.some((arg) => arg.endsWith("/workerd")) && info.cmdline.includes("serve")
  );
  const worker = workerds.find((info) =>
    info.cmdline.some((arg) => arg.startsWith("--inspector-addr"))
  );
  if (worker === undefined) {
    throw new Error(
      `no workerd with an inspector under wrangler ${server.pid}: ` +
        JSON.stringify(workerds.map((info) => info.cmdline.slice(0, 3))),
    );
  }
  return worker.pid;
}

/** The resident set size of `pid` in bytes, or `undefined` when it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Whether `pid` still exists (and is not a zombie). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Bytes as MiB with one decimal, for printed series. */
export function mib(bytes: number | undefined): string {
  return bytes === undefined ? "-" : (bytes / 1024 / 1024).toFixed(1);
}
