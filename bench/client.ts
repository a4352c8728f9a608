/**
 * The orchestrator's handle on the load client: transpiles `load_client.ts`
 * for Node (with the esbuild wrangler ships), starts it in its own process
 * with the open-file limit raised, and sends it commands.
 *
 * @module
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { ROOT } from "../tests/_server.ts";
import { OUT_DIR } from "./servers.ts";
import type {
  ChurnArgs,
  ChurnResult,
  Command,
  Hello,
  HoldArgs,
  HoldResult,
  RateArgs,
  RateResult,
  ReleaseResult,
  Reply,
  SettleArgs,
  SettleResult,
  TtfeArgs,
  TtfeResult,
  WindowResult,
} from "./client_protocol.ts";

const CLIENT_JS = `${OUT_DIR}load_client.mjs`;
// Time a command may take beyond what it asks for (ramp, teardown) before
// the client counts as hung.
const COMMAND_GRACE_MS = 120_000;

/** Transpiles the load client to plain JavaScript for Node. */
export function buildClient(): void {
  execFileSync(`${ROOT}node_modules/.bin/esbuild`, [
    `${ROOT}bench/load_client.ts`,
    "--bundle",
    "--platform=node",
    "--format=esm",
    "--target=node20",
    `--outfile=${CLIENT_JS}`,
    "--log-level=warning",
  ], { stdio: ["ignore", "inherit", "inherit"] });
}

// Every client started and not yet closed: what an interrupted run must end.
const running = new Set<LoadClient>();

/** Kills every load client this process started and has not closed: for an interrupted run. */
export function killRunningClients(): void {
  for (const client of running) client.kill();
  running.clear();
}

/** A running load client. */
export class LoadClient {
  /** The client's hello: its pid, Node version and fd limits. */
  readonly hello: Hello;
  readonly #child: ChildProcess;
  readonly #waiting = new Map<number, (reply: Reply) => void>();
  #nextId = 1;
  #stderr = "";

  private constructor(child: ChildProcess, hello: Hello, lines: AsyncIterator<string>) {
    this.#child = child;
    this.hello = hello;
    running.add(this);
    child.stderr!.on("data", (data: Uint8Array) => {
      this.#stderr = (this.#stderr + new TextDecoder().decode(data)).slice(-10_000);
    });
    (async () => {
      for (;;) {
        const next = await lines.next();
        if (next.done) break;
        const reply = JSON.parse(next.value) as Reply;
        if (reply.id !== undefined) this.#waiting.get(reply.id)?.(reply);
      }
    })();
  }

  /**
   * Starts a client whose sockets bind to `sources` in turn, with its
   * open-file limit raised to `fdLimit`.
   */
  static async start(sources: readonly string[], fdLimit: number): Promise<LoadClient> {
    const child = spawn(
      "sh",
      [
        "-c",
        'ulimit -n "$0" && exec "$@"',
        String(fdLimit),
        "node",
        CLIENT_JS,
        `--sources=${sources.join(",")}`,
      ],
      { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] },
    );
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const first = await Promise.race([
      lines.next(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("load client did not start")), 10_000)
      ),
    ]);
    if (first.done) throw new Error("load client exited at startup");
    return new LoadClient(child, JSON.parse(first.value) as Hello, lines);
  }

  #send<T>(command: Command, expectedMs: number): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`load client: no answer to ${command.cmd}\n${this.#stderr}`));
      }, expectedMs + COMMAND_GRACE_MS);
      this.#waiting.set(id, (reply) => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        if (reply.ok) resolve(reply.result as T);
        else reject(new Error(`load client: ${command.cmd} failed: ${reply.error}`));
      });
      this.#child.stdin!.write(JSON.stringify({ ...command, id }) + "\n");
    });
  }

  /** Ramps up streams and keeps them open. */
  hold(args: HoldArgs): Promise<HoldResult> {
    return this.#send({ cmd: "hold", args }, args.rampTimeoutMs + args.firstEventTimeoutMs);
  }

  /** Waits until the held streams' delivery is steady. */
  settle(args: SettleArgs): Promise<SettleResult> {
    return this.#send({ cmd: "settle", args }, args.maxMs);
  }

  /** Measures the held streams for `ms`. */
  window(ms: number): Promise<WindowResult> {
    return this.#send({ cmd: "window", args: { ms } }, ms);
  }

  /** Closes the held streams. */
  release(): Promise<ReleaseResult> {
    return this.#send({ cmd: "release" }, 0);
  }

  /** Connect → first event → close, in parallel loops. */
  churn(args: ChurnArgs): Promise<ChurnResult> {
    return this.#send({ cmd: "churn", args }, args.ms);
  }

  /** One stream as fast as it comes. */
  rate(args: RateArgs): Promise<RateResult> {
    return this.#send({ cmd: "rate", args }, args.maxMs);
  }

  /** Time to first event, sequentially. */
  ttfe(args: TtfeArgs): Promise<TtfeResult> {
    return this.#send({ cmd: "ttfe", args }, args.samples * args.timeoutMs);
  }

  /** Kills the client at once: for an interrupted run. */
  kill(): void {
    this.#child.kill("SIGKILL");
  }

  /** Asks the client to exit; kills it if it does not within 5 s. */
  async close(): Promise<void> {
    running.delete(this);
    const exited = new Promise<void>((resolve) => {
      if (this.#child.exitCode !== null) resolve();
      else this.#child.on("exit", () => resolve());
    });
    this.#child.stdin!.end(JSON.stringify({ cmd: "exit", id: 0 }) + "\n");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
