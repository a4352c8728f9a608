/**
 * Bundles a worker entry into one ES module for workerd, with the esbuild
 * that wrangler ships, the way `wrangler dev` would but with no proxy in
 * front: the benchmark then runs `workerd` itself and samples its own
 * `/proc` entry.
 *
 * Files under `static/` are loaded as text: esbuild refuses
 * `with { type: "text" }` imports, which Deno and Bun understand.
 *
 * Usage: `node tests/_bundle_worker.mjs <entry.ts> <out.js>`
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { build } = await import(`${ROOT}/node_modules/esbuild/lib/main.js`);

const [entry, outfile] = process.argv.slice(2);
if (entry === undefined || outfile === undefined) {
  console.error("usage: node tests/_bundle_worker.mjs <entry.ts> <out.js>");
  process.exit(2);
}

/** Resolves `static/*` imports to their text, whatever the import attributes say. */
const staticAsText = {
  name: "static-as-text",
  /** @param {any} pluginBuild */
  setup(pluginBuild) {
    pluginBuild.onResolve(
      { filter: /(^|\/)static\/[^/]+\.(html|js|css|svg)$/ },
      (/** @type {{path: string, resolveDir: string}} */ args) => ({
        path: resolve(args.resolveDir, args.path),
        namespace: "static-text",
      }),
    );
    pluginBuild.onLoad(
      { filter: /.*/, namespace: "static-text" },
      async (/** @type {{path: string}} */ args) => ({
        contents: await readFile(args.path, "utf8"),
        loader: "text",
      }),
    );
  },
};

await build({
  entryPoints: [resolve(ROOT, entry)],
  outfile: resolve(ROOT, outfile),
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "esnext",
  // Bare specifiers (`hono`) are resolved from node_modules like wrangler does.
  mainFields: ["module", "main"],
  conditions: ["workerd", "worker", "browser"],
  logLevel: "warning",
  plugins: [staticAsText],
});
