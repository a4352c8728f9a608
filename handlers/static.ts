/**
 * `/` and `/static/*`: the live page, served from a fixed table.
 *
 * Files are imported as text at build time, so the same bytes are served on
 * every runtime (Workers have no file system) and no request path ever
 * reaches a file system: traversal has nothing to traverse.
 *
 * @module
 */

import indexHtml from "../static/index.html" with { type: "text" };
import appJs from "../static/app.js" with { type: "text" };
import chartJs from "../static/chart.js" with { type: "text" };
import eventLogJs from "../static/event_log.js" with { type: "text" };
import styleCss from "../static/style.css" with { type: "text" };
import faviconSvg from "../static/favicon.svg" with { type: "text" };
import { CORS_HEADERS } from "../lib/http.ts";

/**
 * The page's policy: nothing inline, nothing from elsewhere. The page is
 * written to satisfy it (no inline script or style, no `innerHTML`).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const COMMON_HEADERS: Record<string, string> = {
  ...CORS_HEADERS,
  "x-content-type-options": "nosniff",
  "cache-control": "no-cache",
};

const HTML_HEADERS: Record<string, string> = {
  ...COMMON_HEADERS,
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

interface StaticFile {
  body: string;
  type: string;
  headers: Record<string, string>;
}

/**
 * Every static route, by exact path.
 *
 * @example Listing the routes
 * ```ts
 * import { STATIC_FILES } from "./static.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(STATIC_FILES.has("/"));
 * ```
 */
export const STATIC_FILES: ReadonlyMap<string, StaticFile> = new Map([
  ["/", { body: indexHtml, type: "text/html; charset=utf-8", headers: HTML_HEADERS }],
  ["/static/app.js", {
    body: appJs,
    type: "text/javascript; charset=utf-8",
    headers: COMMON_HEADERS,
  }],
  ["/static/chart.js", {
    body: chartJs,
    type: "text/javascript; charset=utf-8",
    headers: COMMON_HEADERS,
  }],
  ["/static/event_log.js", {
    body: eventLogJs,
    type: "text/javascript; charset=utf-8",
    headers: COMMON_HEADERS,
  }],
  ["/static/style.css", {
    body: styleCss,
    type: "text/css; charset=utf-8",
    headers: COMMON_HEADERS,
  }],
  ["/static/favicon.svg", { body: faviconSvg, type: "image/svg+xml", headers: COMMON_HEADERS }],
]);

/**
 * Serves the static file at `path`.
 *
 * @example Usage
 * ```ts
 * import { handleStatic } from "./static.ts";
 * import assert from "node:assert/strict";
 *
 * const response = handleStatic("/");
 * assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
 * ```
 */
export function handleStatic(path: string): Response {
  const file = STATIC_FILES.get(path);
  if (file === undefined) throw new RangeError(`no static file at ${path}`);
  return new Response(file.body, { headers: { ...file.headers, "content-type": file.type } });
}
