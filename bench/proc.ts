/**
 * What the benchmark reads from Linux's `/proc`: a process's resident memory,
 * CPU time and open-file limit, the machine's CPU busy time, and the facts
 * RESULTS.md starts with. Linux only, by design: the figures are the
 * kernel's, not a runtime's opinion of itself.
 *
 * @module
 */

import { readdirSync, readFileSync } from "node:fs";
import { rssBytes as residentBytes } from "../tests/_proc.ts";
import { execFileSync } from "node:child_process";

/** Ticks per second of `/proc/<pid>/stat`'s CPU times (`getconf CLK_TCK`). */
export const CLOCK_TICKS: number = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Resident memory of `pid` in bytes (`VmRSS`), or NaN once it is gone. */
export function rssBytes(pid: number): number {
  return residentBytes(pid) ?? NaN;
}

/** User + system CPU seconds `pid` has used, all threads, or NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: count from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** Busy and total CPU seconds of the whole machine, from `/proc/stat`. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal…: idle and iowait are not busy.
  const total = ticks.reduce((sum, n) => sum + n, 0);
  const idle = ticks[3] + (ticks[4] ?? 0);
  return { busy: (total - idle) / CLOCK_TICKS, total: total / CLOCK_TICKS };
}

/** The soft and hard open-file limits of `pid` (`self` for this process). */
export function fdLimit(pid: number | "self" = "self"): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, "utf8").split("\n")
    .find((l) => l.startsWith("Max open files")) ?? "";
  const [soft, hard] = line.trim().split(/\s{2,}/).slice(1, 3).map(Number);
  return { soft, hard };
}

/** How many files `pid` has open now, or NaN once it is gone. */
export function openFiles(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** One reading of a process and the machine. */
interface Reading {
  at: number;
  rss: number;
  cpu: number;
  machineBusy: number;
  machineTotal: number;
}

/** What a {@linkcode Sampler} saw between start and stop. */
export interface SampledUsage {
  /** Median and largest resident memory over the readings, bytes. */
  rss_median: number;
  rss_max: number;
  /** The process's CPU over the span, % of one core. */
  cpu_pct: number;
  /** The whole machine's busy CPU over the span, % of all cores (others' load included). */
  machine_busy_pct: number;
  readings: number;
  span_ms: number;
}

/**
 * Reads a process's memory and CPU every `everyMs` until stopped: the
 * orchestrator's side of a measurement window.
 *
 * @example Usage
 * ```ts ignore
 * const sampler = new Sampler(server.pid, 500);
 * await window();
 * const usage = sampler.stop();
 * ```
 */
export class Sampler {
  readonly #pid: number;
  readonly #readings: Reading[] = [];
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(pid: number, everyMs: number) {
    this.#pid = pid;
    this.#read();
    this.#timer = setInterval(() => this.#read(), everyMs);
  }

  #read(): void {
    const machine = machineCpuSeconds();
    this.#readings.push({
      at: performance.now(),
      rss: rssBytes(this.#pid),
      cpu: cpuSeconds(this.#pid),
      machineBusy: machine.busy,
      machineTotal: machine.total,
    });
  }

  /** Takes a last reading and summarises them all. */
  stop(): SampledUsage {
    clearInterval(this.#timer);
    this.#read();
    const readings = this.#readings;
    const first = readings[0];
    const last = readings[readings.length - 1];
    const spanMs = last.at - first.at;
    const rss = readings.map((r) => r.rss).filter((n) => !Number.isNaN(n));
    return {
      rss_median: median(rss),
      rss_max: Math.max(...rss),
      cpu_pct: round(100 * (last.cpu - first.cpu) / (spanMs / 1000), 1),
      machine_busy_pct: round(
        100 * (last.machineBusy - first.machineBusy) / (last.machineTotal - first.machineTotal),
        1,
      ),
      readings: readings.length,
      span_ms: Math.round(spanMs),
    };
  }
}

/** The median of `values` (NaN for none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Rounds to `places` decimals. */
export function round(value: number, places: number): number {
  return Math.round(value * 10 ** places) / 10 ** places;
}

/** What the machine is, for RESULTS.md. */
export interface MachineFacts {
  cpu_model: string;
  cores: number;
  memory_gib: number;
  kernel: string;
  fd_limit: { soft: number; hard: number };
  load_average: string;
}

/** Reads the machine's facts from `/proc`. */
export function machineFacts(): MachineFacts {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const memKb = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1]);
  return {
    cpu_model: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    cores: cpuinfo.split("\n").filter((line) => /^processor\s*:/.test(line)).length,
    memory_gib: round(memKb / 1024 / 1024, 1),
    kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(),
    fd_limit: fdLimit(),
    load_average: loadAverage(),
  };
}

/** The 1-, 5- and 15-minute load averages: the machine is shared, say how busy it was. */
export function loadAverage(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}
