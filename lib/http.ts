/**
 * Small response helpers shared by every handler: JSON bodies and CORS.
 *
 * @module
 */

/** Every response may be read from any origin: ssebin is a public test endpoint. */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  "access-control-allow-origin": "*",
};

/** The methods every route answers. */
export const ALLOWED_METHODS = "GET, HEAD, OPTIONS";

/**
 * A JSON response with CORS and no caching.
 *
 * @example Usage
 * ```ts
 * import { jsonResponse } from "./http.ts";
 * import assert from "node:assert/strict";
 *
 * const response = jsonResponse({ error: "not found", path: "/x" }, 404);
 * assert.equal(response.status, 404);
 * assert.equal(response.headers.get("content-type"), "application/json");
 * assert.deepEqual(await response.json(), { error: "not found", path: "/x" });
 * ```
 */
export function jsonResponse(
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      ...CORS_HEADERS,
      "content-type": "application/json",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

/**
 * The answer to a CORS preflight: any origin may GET a stream and send the
 * headers a resuming fetch-based SSE client needs.
 *
 * @example Usage
 * ```ts
 * import { preflightResponse } from "./http.ts";
 * import assert from "node:assert/strict";
 *
 * const response = preflightResponse();
 * assert.equal(response.status, 204);
 * assert.match(response.headers.get("access-control-allow-headers")!, /Last-Event-ID/);
 * ```
 */
export function preflightResponse(): Response {
  return new Response(null, {
    status: 204,
    headers: {
      ...CORS_HEADERS,
      "access-control-allow-methods": ALLOWED_METHODS,
      "access-control-allow-headers": "Last-Event-ID, Cache-Control, Accept",
      "access-control-max-age": "86400",
    },
  });
}
