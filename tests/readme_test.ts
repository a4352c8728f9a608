/** The README promises things the code must keep: the two lines, the parameter table. */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { STREAM_PARAMS } from "../lib/stream_params.ts";
import { STREAM_PRESETS } from "../handlers/stream.ts";
import { ROOT } from "./_server.ts";

const readme = readFileSync(`${ROOT}README.md`, "utf8");
const ciRun = readFileSync(`${ROOT}.ci/run`, "utf8");
const grouped = (n: number) => n.toLocaleString("en-US").replaceAll(",", " ");
// deno fmt pads table cells: match a row by its first cell.
const tableRow = (name: string) =>
  readme.split("\n").find((line) => new RegExp(`^\\| \`${name}\` +\\|`).test(line));

describe("README", () => {
  it("starts with the line that starts the server and the line that runs every test", () => {
    const firstBlock = readme.split("```")[1];
    assert.match(firstBlock, /^npm ci && npm start\b/m);
    assert.match(firstBlock, /^npm ci && npm test\b/m);
  });

  it("is what .ci/run runs", () => {
    assert.match(ciRun, /^npm ci && npm test$/m);
  });

  it("documents every stream parameter with its real bounds", () => {
    for (const [name, spec] of Object.entries(STREAM_PARAMS)) {
      const row = tableRow(name);
      assert.ok(row, `no table row for ${name}`);
      if (spec.kind === "integer") {
        assert.ok(
          row.includes(`${grouped(spec.min)} … ${grouped(spec.max)}`),
          `${name} bounds: ${row}`,
        );
      }
      assert.match(readme, new RegExp(`curl .*[?&]${name}=`), `no curl example for ${name}`);
    }
  });

  it("documents every preset's default interval", () => {
    const row = tableRow("interval")!;
    const cells = row.split("|").map((cell) => cell.trim());
    const defaults = STREAM_PRESETS.map((preset) => String(preset.interval));
    assert.deepEqual(cells.slice(4, 7), defaults);
    assert.deepEqual(STREAM_PRESETS.map((preset) => preset.path), [
      "/events",
      "/stream/fast",
      "/stream",
    ]);
  });
});
