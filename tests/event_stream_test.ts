import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { BURST_BYTES, openEventStream, type StreamPlan } from "../lib/event_stream.ts";
import { applySettings, DEFAULT_SETTINGS } from "../lib/settings.ts";
import { registry } from "../lib/stream_registry.ts";
import { type CapturedLog, captureLog } from "./_log.ts";

const PATH = "/unit";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function plan(overrides: Partial<StreamPlan> = {}): StreamPlan {
  return {
    path: PATH,
    firstId: 1,
    doneId: undefined,
    intervalMs: 20,
    delayMs: 0,
    heartbeatMs: 15_000,
    retryMs: undefined,
    eventName: undefined,
    chunkBytes: undefined,
    failAfter: undefined,
    lineEnding: "lf",
    payload: (id) => `{"id":${id}}`,
    client: "test",
    ...overrides,
  };
}

function open(overrides: Partial<StreamPlan> = {}, abort = new AbortController()) {
  const request = new Request("http://localhost/unit", { signal: abort.signal });
  const response = openEventStream(plan(overrides), request);
  return { response, reader: response.body!.getReader(), abort };
}

async function readText(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  until: (text: string) => boolean,
) {
  const decoder = new TextDecoder();
  let text = "";
  while (!until(text)) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

function parse(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  createParser({ onEvent: (event) => void events.push(event) }).feed(text);
  return events;
}

const closeLines = (log: CapturedLog) =>
  log.lines.filter((line) => line.includes('"stream closed"'));

describe("openEventStream", () => {
  let log: CapturedLog;
  beforeEach(() => {
    log = captureLog();
  });
  afterEach(() => {
    log.restore();
    applySettings(DEFAULT_SETTINGS);
  });

  it("sends the first event at once, then on the interval, with the stream headers", async () => {
    const { response, reader } = open({ eventName: "tick" });
    assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assert.equal(response.headers.get("cache-control"), "no-cache, no-transform");
    assert.equal(response.headers.get("x-accel-buffering"), "no");
    assert.equal(response.headers.get("connection"), null);
    assert.equal(response.headers.get("transfer-encoding"), null);
    const text = await readText(reader, (t) => parse(t).length >= 3);
    assert.ok(text.startsWith('id: 1\nevent: tick\ndata: {"id":1}\n\nid: 2\n'), text);
    assert.deepEqual(parse(text).map((e) => e.id), ["1", "2", "3"]);
    await reader.cancel();
  });

  it("cancel() stops the timer, counts the stream closed once and logs one line", async () => {
    const before = registry.stats(PATH).events;
    const { reader } = open();
    assert.equal(registry.stats(PATH).open, 1);
    await readText(reader, (t) => parse(t).length >= 2);
    await reader.cancel();
    assert.equal(registry.stats(PATH).open, 0);
    const sent = registry.stats(PATH).events;
    await sleep(100); // five intervals: a live timer would have written more
    assert.equal(registry.stats(PATH).events, sent);
    assert.ok(sent - before >= 2);
    assert.equal(closeLines(log).length, 1);
    assert.match(closeLines(log)[0], /reason=client detail=cancel/);
  });

  it("an aborted request signal (workerd) ends the stream the same way", async () => {
    const { reader, abort } = open();
    await readText(reader, (t) => parse(t).length >= 1);
    abort.abort();
    assert.equal(registry.stats(PATH).open, 0);
    const sent = registry.stats(PATH).events;
    await sleep(100);
    assert.equal(registry.stats(PATH).events, sent);
    assert.equal(closeLines(log).length, 1);
    assert.match(closeLines(log)[0], /detail=abort/);
    reader.releaseLock();
  });

  it("abort and cancel together count once", async () => {
    const disconnects = registry.stats(PATH).disconnects.client ?? 0;
    const { reader, abort } = open();
    await readText(reader, (t) => parse(t).length >= 1);
    abort.abort();
    await reader.cancel();
    abort.abort();
    assert.equal(registry.stats(PATH).open, 0);
    assert.equal(registry.stats(PATH).disconnects.client, disconnects + 1);
    assert.equal(closeLines(log).length, 1);
  });

  it("a request aborted before the stream starts never ticks", () => {
    const abort = new AbortController();
    abort.abort();
    const { reader } = open({}, abort);
    assert.equal(registry.stats(PATH).open, 0);
    assert.equal(closeLines(log).length, 1);
    reader.releaseLock();
  });

  it("ends with done after count events, and closes the body", async () => {
    const { reader } = open({ intervalMs: 0, firstId: 0, doneId: 100 });
    const text = await readText(reader, () => false);
    const events = parse(text);
    assert.equal(events.length, 101);
    assert.deepEqual(events.at(-1), { id: "100", event: "done", data: "complete" });
    assert.deepEqual(
      events.slice(0, -1).map((e) => e.id),
      Array.from({ length: 100 }, (_, i) => String(i)),
    );
    assert.equal(registry.stats(PATH).open, 0);
    assert.match(closeLines(log)[0], /reason=done events=100/);
  });

  it("coalesces interval=0 events into few chunks and respects the queue size", async () => {
    const { reader } = open({ intervalMs: 0, doneId: 20_001 });
    let chunks = 0;
    let text = "";
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks++;
      assert.ok(value.length <= BURST_BYTES + 100);
      text += decoder.decode(value, { stream: true });
    }
    assert.equal(parse(text).length, 20_001);
    assert.ok(chunks < 100, `${chunks} chunks for 20 000 events`);
  });

  it("sends retry first, then a comment before a delayed first event", async () => {
    const { reader } = open({ retryMs: 1234, delayMs: 30, eventName: "e" });
    const text = await readText(reader, (t) => t.includes("id: 1"));
    assert.match(text, /^retry: 1234\nid: 1\n/);
    await reader.cancel();
    const delayed = open({ delayMs: 30 });
    const first = await delayed.reader.read();
    assert.equal(new TextDecoder().decode(first.value), ": first event in 30 ms\n\n");
    await delayed.reader.cancel();
  });

  it("writes heartbeats when nothing else is due", async () => {
    const { reader } = open({ intervalMs: 3_600_000, delayMs: 3_600_000, heartbeatMs: 30 });
    const text = await readText(reader, (t) => (t.match(/: heartbeat/g) ?? []).length >= 2);
    assert.match(text, /^: first event in 3600000 ms\n\n: heartbeat\n\n: heartbeat\n\n/);
    await reader.cancel();
  });

  it("splits every write into chunk-sized enqueues", async () => {
    const { reader } = open({ chunkBytes: 3, doneId: 3, intervalMs: 0 });
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      assert.ok(value.length <= 3);
      text += decoder.decode(value, { stream: true });
    }
    assert.equal(
      text,
      'id: 1\ndata: {"id":1}\n\nid: 2\ndata: {"id":2}\n\nid: 3\nevent: done\ndata: complete\n\n',
    );
  });

  it("fail_after delivers N events, then errors the body without done", async () => {
    const { reader } = open({ failAfter: 3, intervalMs: 5, doneId: 10 });
    const decoder = new TextDecoder();
    let text = "";
    await assert.rejects(async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    });
    assert.deepEqual(parse(text).map((e) => e.id), ["1", "2", "3"]);
    assert.equal(registry.stats(PATH).open, 0);
    assert.match(closeLines(log)[0], /reason=fail_after events=3/);
  });

  it("drops paced events while the reader does not read, then closes it as stalled", async () => {
    applySettings({ ...DEFAULT_SETTINGS, stallTimeoutMs: 200 });
    const dropped = registry.stats(PATH).dropped;
    // Nobody reads: the first event waits in the queue, the rest are dropped.
    const big = "x".repeat(40 * 1024);
    const { reader } = open({ intervalMs: 10, payload: (id) => `{"id":${id},"p":"${big}"}` });
    await sleep(150);
    assert.ok(registry.stats(PATH).dropped > dropped, "events were dropped, not queued");
    assert.equal(registry.stats(PATH).open, 1);
    await sleep(400);
    assert.equal(registry.stats(PATH).open, 0);
    assert.match(closeLines(log)[0], /reason=stalled/);
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    });
  });

  it("a slow but steady reader is not stalled", async () => {
    applySettings({ ...DEFAULT_SETTINGS, stallTimeoutMs: 150 });
    const { reader } = open({ intervalMs: 0, doneId: 1_000_000 });
    const until = Date.now() + 600;
    while (Date.now() < until) {
      await reader.read();
      await sleep(20);
    }
    assert.equal(registry.stats(PATH).open, 1);
    await reader.cancel();
  });

  it("graceful shutdown sends retry and a comment, then ends cleanly", async () => {
    const { reader } = open({ intervalMs: 1000 });
    const first = await readText(reader, (t) => t.includes("\n\n"));
    try {
      assert.equal(registry.shutdownAll(), 1);
    } finally {
      registry.draining = false;
    }
    const rest = await readText(reader, () => false);
    assert.equal(first + rest, 'id: 1\ndata: {"id":1}\n\nretry: 3000\n: server shutting down\n\n');
    assert.match(closeLines(log)[0], /reason=shutdown/);
  });

  it("a stream whose timer the runtime dropped is swept as orphaned (workerd)", async () => {
    applySettings({ ...DEFAULT_SETTINGS, stallTimeoutMs: 1_000 });
    const { reader } = open({ intervalMs: 60_000 });
    await readText(reader, (t) => t.includes("\n\n"));
    // Nothing is overdue yet: the sweep leaves a live stream alone.
    registry.sweepSoon(Date.now() + 500);
    assert.equal(registry.stats(PATH).open, 1);
    // As seen from other requests 63 s later, with no timer run for as long,
    // its timer (due at 60 s) never ran.
    registry.sweepSoon(Date.now() + 63_000);
    assert.equal(registry.stats(PATH).open, 0);
    assert.match(closeLines(log)[0], /reason=orphaned detail="timer overdue by \d+ ms"/);
    await assert.rejects(readText(reader, () => false));
  });

  it("is not called orphaned for lateness that live timers share (a busy workerd)", async () => {
    applySettings({ ...DEFAULT_SETTINGS, stallTimeoutMs: 1_000 });
    const { reader } = open({ intervalMs: 60_000, heartbeatMs: 300_000 });
    await readText(reader, (t) => t.includes("\n\n"));
    // Its timer is due within the next 60 s (a tick, or a stall check).
    const now = Date.now();
    // Later than any sweep the test before simulated (sweeps are 1 s apart).
    const start = now + 10_000;
    // 80 s on, timers still run, all late: the latest that ran was due now,
    // before this stream's own. Lateness they all share is no proof of death.
    registry.noteTimerRan(now, 80_000);
    registry.sweepSoon(start + 70_000);
    assert.equal(registry.stats(PATH).open, 1);
    // A timer due 2.5 s after the latest its own can be due has run, and its
    // own has not; but timers ran 80 s late just now: not yet.
    registry.noteTimerRan(now + 62_500, 0);
    registry.sweepSoon(start + 72_000);
    assert.equal(registry.stats(PATH).open, 1);
    // Two sweep windows on, no timer runs late any more: its own is gone.
    registry.noteTimerRan(now + 62_500, 0);
    registry.sweepSoon(start + 73_500);
    assert.equal(registry.stats(PATH).open, 0);
    assert.match(closeLines(log)[0], /reason=orphaned/);
    await assert.rejects(readText(reader, () => false));
  });

  it("a timer callback that throws ends that stream and keeps the process", async () => {
    let calls = 0;
    const { reader } = open({
      intervalMs: 5,
      payload: (id) => {
        if (++calls === 2) throw new Error("boom");
        return `{"id":${id}}`;
      },
    });
    await readText(reader, () => false).catch(() => {});
    assert.equal(registry.stats(PATH).open, 0);
    assert.match(closeLines(log)[0], /reason=error detail="Error: boom"/);
  });
});
