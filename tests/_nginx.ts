/**
 * Test helper: runs a real nginx (Debian's `nginx-light`) as a reverse proxy
 * in front of test servers, from a temporary prefix directory, on a free
 * loopback port, as one foreground process stopped by its pid.
 *
 * @module
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freeLoopbackPort, sleep } from "./_load.ts";

/** Where nginx is installed on Debian. */
export const NGINX_BIN = "/usr/sbin/nginx";

/** One `location` block: requests under `prefix` go to the upstream port. */
export interface ProxyRoute {
  /** e.g. `/deno/h11/`; stripped before the request goes upstream. */
  prefix: string;
  upstreamPort: number;
  /** Extra directives for this location, e.g. `proxy_http_version 1.1;`. */
  directives?: string[];
}

/** A running nginx. */
export interface RunningNginx {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  url: string;
  pid: number;
  /** nginx's error log so far. */
  errorLog(): string;
  /** Stops nginx (SIGTERM, then SIGKILL after 5 s) and removes its directory. */
  stop(): Promise<void>;
}

/** The nginx version line, or `undefined` when nginx is not installed. */
export function nginxVersion(): string | undefined {
  const result = spawnSync(NGINX_BIN, ["-v"], { encoding: "utf8" });
  return result.status === 0 ? (result.stderr || result.stdout).trim() : undefined;
}

function config(dir: string, port: number, routes: readonly ProxyRoute[]): string {
  const locations = routes.map((route) =>
    [
      `    location ${route.prefix} {`,
      `      proxy_pass http://127.0.0.1:${route.upstreamPort}/;`,
      ...(route.directives ?? []).map((directive) => `      ${directive}`),
      "    }",
    ].join("\n")
  );
  return [
    "daemon off;",
    "master_process off;",
    "worker_processes 1;",
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log info;`,
    "events { worker_connections 4096; }",
    "http {",
    "  access_log off;",
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((name) =>
      `  ${name}_temp_path ${dir}/${name};`
    ),
    "  server {",
    `    listen 127.0.0.1:${port};`,
    ...locations,
    "  }",
    "}",
    "",
  ].join("\n");
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Starts nginx with `routes`; retries on another port if the one probed free
 * was taken in the meantime.
 */
export async function startNginx(routes: readonly ProxyRoute[]): Promise<RunningNginx> {
  let lastError = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), "ssebin-nginx-"));
    for (const name of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) {
      mkdirSync(join(dir, name));
    }
    const port = await freeLoopbackPort();
    writeFileSync(join(dir, "nginx.conf"), config(dir, port, routes));
    const child: ChildProcess = spawn(
      NGINX_BIN,
      ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")],
      { detached: true, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr!.on("data", (data: Buffer) => stderr += data.toString());
    let exited = false;
    const exit = new Promise<void>((resolve) =>
      child.on("exit", () => {
        exited = true;
        resolve();
      })
    );
    const errorLog = () => {
      try {
        return readFileSync(join(dir, "error.log"), "utf8");
      } catch {
        return "";
      }
    };
    const stop = async () => {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exit;
        clearTimeout(timer);
      }
      child.stderr!.destroy();
      rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 5_000;
    while (!exited && Date.now() < deadline && !(await accepts(port))) await sleep(50);
    if (!exited && await accepts(port)) {
      return { url: `http://127.0.0.1:${port}`, pid: child.pid!, errorLog, stop };
    }
    lastError = `${stderr}\n${errorLog()}`;
    await stop();
  }
  throw new Error(`nginx did not start:\n${lastError}`);
}
