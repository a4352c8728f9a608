/**
 * The benchmark (issue 4): ssebin against a Hono baseline under Deno, Bun
 * and workerd — concurrency up to the fd ceiling, single-stream rate, churn,
 * time to first event — written to RESULTS.md and results.json.
 *
 * `deno task bench` runs everything (about half an hour; the estimate is
 * printed first); `deno run -A bench/run.ts --quick` a 3 minute version;
 * `--help` lists the flags (the task does not pass flags on: run the script). Servers and load stay on loopback; every
 * process started here is stopped by its pid or process group.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { ROOT } from "../tests/_server.ts";
import { buildClient, killRunningClients, LoadClient } from "./client.ts";
import { AppBench } from "./phases.ts";
import { estimateSeconds, type Plan, planFrom, USAGE } from "./plan.ts";
import { fdLimit, loadAverage, machineFacts } from "./proc.ts";
import { type AppResults, renderMarkdown, type RunResults } from "./report.ts";
import { killRunningServers } from "./servers.ts";

const BIN = `${ROOT}node_modules/.bin/`;

function say(line: string): void {
  console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

/** The first line a command prints, or "unknown". */
function versionOf(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: "utf8" }).split("\n")[0].trim();
  } catch {
    return "unknown";
  }
}

/** The version of an installed npm package. */
function packageVersion(name: string): string {
  const path = `${ROOT}node_modules/${name}/package.json`;
  return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version;
}

function versions(): Record<string, string> {
  return {
    Deno: versionOf(`${BIN}deno`, ["--version"]).split(" ")[1] ?? "unknown",
    Bun: versionOf(`${BIN}bun`, ["--version"]),
    workerd: `${packageVersion("workerd")} (${versionOf(`${BIN}workerd`, ["--version"])})`,
    Hono: packageVersion("hono"),
    esbuild: packageVersion("esbuild"),
  };
}

/** Runs the plan's phases for one app under one runtime; a failed phase is recorded, not fatal. */
async function benchApp(bench: AppBench, plan: Plan): Promise<AppResults> {
  const results: AppResults = { levels: [], errors: [] };
  if (plan.phases.some((phase) => phase !== "concurrency")) {
    try {
      Object.assign(results, await bench.singles());
    } catch (error) {
      results.errors.push(`ttfe/churn/rate: ${errorText(error)}`);
      say(`[${bench.runtime}/${bench.app}] FAILED ttfe/churn/rate: ${errorText(error)}`);
    }
  }
  if (plan.phases.includes("concurrency")) {
    for (const [i, n] of plan.levels.entries()) {
      const windows = i === plan.levels.length - 1 ? plan.topRepeats : 1;
      try {
        results.levels.push(await bench.level(n, windows));
      } catch (error) {
        results.errors.push(`concurrency N=${n}: ${errorText(error)}`);
        say(`[${bench.runtime}/${bench.app}] FAILED N=${n}: ${errorText(error)}`);
      }
    }
  }
  return results;
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 2_000);
}

async function main(args: string[]): Promise<void> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return;
  }
  const fd = fdLimit();
  const plan = planFrom(args, fd.hard, ROOT);
  if (plan.renderOnly) {
    const results = JSON.parse(readFileSync(`${plan.outDir}results.json`, "utf8")) as RunResults;
    say(`rewrote ${writeReport(plan.outDir, results)[0]}`);
    return;
  }
  const estimate = Math.round(estimateSeconds(plan));
  const started = new Date();
  const machine = machineFacts();
  say(
    `ssebin bench, ${plan.mode}${plan.narrowed ? " (narrowed)" : ""}: ` +
      `${plan.runtimes.join(", ")} × ${plan.apps.join(", ")}; phases ${plan.phases.join(", ")}; ` +
      `levels ${plan.levels.join(", ")} (fd hard limit ${fd.hard}); ` +
      `estimated ${(estimate / 60).toFixed(1)} min (more if a server cannot take the load: ` +
      "a stalled ramp gives up after a minute or more)",
  );
  say(`machine: ${machine.cores} cores, load average ${machine.load_average}`);
  if (plan.estimateOnly) {
    console.log(JSON.stringify(plan, null, 2));
    return;
  }

  buildClient();
  // The client's fd limit and Node version, for the report.
  const probe = await LoadClient.start(plan.sources, plan.fdHard);
  const client = { node: probe.hello.node, fd_limit: probe.hello.fd_limit, sources: plan.sources };
  await probe.close();

  const results: RunResults = {
    // `deno task bench` drops arguments (its `sh -c` takes them): flags mean `deno run`.
    command: args.length === 0 ? "deno task bench" : `deno run -A bench/run.ts ${args.join(" ")}`,
    mode: plan.mode,
    complete: plan.complete,
    started_at: started.toISOString(),
    finished_at: "",
    duration_s: 0,
    estimate_s: estimate,
    machine: { ...machine, load_average_end: "" },
    versions: versions(),
    client,
    plan,
    runs: {},
  };
  for (const runtime of plan.runtimes) {
    const byApp: Partial<Record<(typeof plan.apps)[number], AppResults>> = {};
    results.runs[runtime] = byApp;
    for (const app of plan.apps) {
      byApp[app] = await benchApp(new AppBench(runtime, app, plan, say), plan);
    }
  }
  const finished = new Date();
  results.finished_at = finished.toISOString();
  results.duration_s = Math.round((finished.getTime() - started.getTime()) / 1000);
  results.machine.load_average_end = loadAverage();

  mkdirSync(plan.outDir, { recursive: true });
  writeFileSync(`${plan.outDir}results.json`, JSON.stringify(results, null, 2) + "\n");
  const written = writeReport(plan.outDir, results);
  say(`done in ${(results.duration_s / 60).toFixed(1)} min: ${written.join(", ")}`);
}

/** Writes RESULTS.md beside results.json in `dir`; returns both paths. */
function writeReport(dir: string, results: RunResults): string[] {
  const json = `${dir}results.json`;
  const markdown = `${dir}RESULTS.md`;
  writeFileSync(markdown, renderMarkdown(results));
  // In the repository (bench/), these files must pass `deno fmt --check`:
  // tables aligned and all. Paths fmt excludes (bench/out/) need nothing.
  try {
    execFileSync(`${BIN}deno`, ["fmt", "--quiet", markdown, json], { cwd: ROOT, stdio: "ignore" });
  } catch {
    // "No target files found": an excluded or outside path.
  }
  return [markdown, json];
}

if (import.meta.main) {
  // Servers run in their own process groups: an interrupted run ends them
  // here, or they would outlive it.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      console.error(`${signal}: stopping the servers and the load client`);
      killRunningServers();
      killRunningClients();
      process.exit(130);
    });
  }
  try {
    await main(Deno.args);
  } catch (error) {
    console.error(errorText(error));
    process.exit(1);
  }
}
