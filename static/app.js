// The live page: an SSE inspector. The form picks an endpoint and its
// parameters; the page's own URL keeps the choice (a shareable link), a curl
// line repeats it, and one EventSource at a time shows what arrives: state,
// figures, a timing chart and a bounded log. No framework, no build step, and
// nothing inline, so the page passes the static handler's CSP.
import { TimingChart } from "./chart.js";
import { EventLog } from "./event_log.js";

const LOG_ROWS = 200;
// Events per second is measured over this window, sampled this often.
const RATE_WINDOW_MS = 5_000;
const SAMPLE_EVERY_MS = 500;
// The stream parameters the form offers, in the order links and curl lines show them.
const PARAM_NAMES = [
  "interval",
  "count",
  "delay",
  "event",
  "retry",
  "heartbeat",
  "size",
  "lines",
  "eol",
  "chunk",
  "fail_after",
  "status",
];
// Both data shapes carry their send time: /events as `timestamp`, the others as `ts`.
// Matched, not parsed: data may be spread over lines or padded to a megabyte.
const SENT_AT = /"(?:ts|timestamp)"\s*:\s*"([^"]{1,40})"/;
const SENT_AT_SEARCH_CHARS = 400;

const byId = (id) => document.getElementById(id);
const form = byId("stream-form");
const ui = {
  state: byId("state"),
  stateDetail: byId("state-detail"),
  reconnects: byId("stat-reconnects"),
  lastId: byId("stat-last-id"),
  events: byId("stat-events"),
  rate: byId("stat-rate"),
  skipped: byId("stat-skipped"),
  curl: byId("curl"),
  copyStatus: byId("copy-status"),
  disconnect: byId("disconnect"),
  chartSummary: byId("chart-summary"),
  burstWarning: byId("burst-warning"),
  canvas: byId("chart"),
  moreParams: byId("more-params"),
};

const field = (name) => form.elements.namedItem(name);
const endpointInputs = () => [...form.querySelectorAll('input[name="endpoint"]')];
const checkedEndpoint = () => endpointInputs().find((input) => input.checked);

// ---- The choice: form ⇄ page URL ⇄ stream URL ----

/** The endpoint and the non-empty parameters, as [name, value] pairs. */
function readForm() {
  const params = [];
  for (const name of PARAM_NAMES) {
    const input = field(name);
    if (input.value === "") continue;
    // A number field accepts 1e3 or 0250; the server wants plain decimals.
    const value = input.type === "number" ? String(input.valueAsNumber) : input.value;
    params.push([name, value]);
  }
  return { endpoint: checkedEndpoint().value, params };
}

// Slashes and colons are legal in a query: keep links readable.
const encodeValue = (value) =>
  encodeURIComponent(value).replaceAll("%2F", "/").replaceAll("%3A", ":");
const queryOf = (pairs) => pairs.map(([name, value]) => `${name}=${encodeValue(value)}`).join("&");

function streamPath(choice) {
  return choice.params.length === 0
    ? choice.endpoint
    : `${choice.endpoint}?${queryOf(choice.params)}`;
}

function pageLink(choice) {
  return `/?${queryOf([["endpoint", choice.endpoint], ...choice.params])}`;
}

const shellQuote = (text) => `'${text.replaceAll("'", `'\\''`)}'`;

/**
 * Fills the form from the page URL. Returns the values the form could not
 * take (an unknown endpoint, a number that is not a number), to report them.
 */
function restoreForm(search) {
  const query = new URLSearchParams(search);
  const rejected = [];
  const endpoint = query.get("endpoint");
  if (endpoint !== null) {
    const input = endpointInputs().find((candidate) => candidate.value === endpoint);
    if (input === undefined) rejected.push(`endpoint=${endpoint}`);
    else input.checked = true;
  }
  let advanced = false;
  for (const name of PARAM_NAMES) {
    const value = query.get(name);
    if (value === null || value === "") continue;
    const input = field(name);
    input.value = value;
    if (input.value !== value) {
      rejected.push(`${name}=${value}`);
    }
    if (ui.moreParams.contains(input)) advanced = true;
  }
  if (advanced) ui.moreParams.open = true;
  return rejected;
}

/** Placeholders show the chosen endpoint's defaults; the curl line follows the form. */
function onFormChange() {
  const preset = checkedEndpoint().dataset;
  field("interval").placeholder = preset.interval;
  field("count").placeholder = preset.count === "" ? "unbounded" : preset.count;
  field("event").placeholder = preset.event === "" ? "message" : preset.event;
  ui.curl.textContent = `curl -N ${shellQuote(location.origin + streamPath(readForm()))}`;
}

// ---- Figures and rendering ----

const stats = {
  events: 0,
  reconnects: 0,
  lastId: "",
  skipped: 0,
  lastArrival: NaN,
  samples: [],
};

function resetStats() {
  Object.assign(stats, {
    events: 0,
    reconnects: 0,
    lastId: "",
    skipped: 0,
    lastArrival: NaN,
    samples: [],
  });
}

let frameRequested = false;
/** Everything on screen is redrawn at most once per frame, whatever the event rate. */
function scheduleRender() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    log.flush();
    chart.draw();
    ui.events.textContent = String(stats.events);
    ui.reconnects.textContent = String(stats.reconnects);
    ui.lastId.textContent = stats.lastId === "" ? "–" : stats.lastId;
    ui.skipped.textContent = String(stats.skipped);
    ui.canvas.dataset.points = String(chart.points);
  });
}

const log = new EventLog(byId("log"), LOG_ROWS);
const chart = new TimingChart(ui.canvas, scheduleRender);

const round = (ms) => Math.round(ms);
function describeSummary() {
  const { gap, delay } = chart.summary();
  if (gap === undefined && delay === undefined) return "No events yet.";
  const part = (label, figures) =>
    figures === undefined
      ? `${label}: none`
      : `${label}: median ${round(figures.median)} ms, p95 ${round(figures.p95)} ms, max ${
        round(figures.max)
      } ms`;
  return `${chart.points} events on the chart. ${part("Gap", gap)}. ${part("Delay", delay)}.`;
}

/** Events per second and the chart's summary, refreshed a few times a second. */
function sample() {
  const now = performance.now();
  stats.samples.push({ at: now, events: stats.events });
  while (stats.samples.length > 1 && now - stats.samples[0].at > RATE_WINDOW_MS) {
    stats.samples.shift();
  }
  const oldest = stats.samples[0];
  const seconds = (now - oldest.at) / 1000;
  const rate = seconds > 0 ? (stats.events - oldest.events) / seconds : 0;
  ui.rate.textContent = rate >= 10 ? String(Math.round(rate)) : rate.toFixed(1);
  const summary = describeSummary();
  if (ui.chartSummary.textContent !== summary) {
    ui.chartSummary.textContent = summary;
    ui.canvas.setAttribute("aria-label", `Timing chart. ${summary}`);
  }
  const bursty = chart.looksBursty();
  ui.burstWarning.textContent = bursty
    ? "Bursty: events arrive in clumps. A proxy buffers the stream, or a client or server is too busy."
    : "";
  ui.burstWarning.hidden = !bursty;
}

function setState(state, detail = "", reason = "") {
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  ui.state.dataset.reason = reason;
  ui.stateDetail.textContent = detail;
  const active = state === "connecting" || state === "open" || state === "reconnecting";
  ui.disconnect.disabled = !active;
}

// ---- The connection ----

/** The live EventSource and what the page knows about it; undefined when none. */
let current;

function connect() {
  if (!form.reportValidity()) return;
  const choice = readForm();
  close("replaced");
  history.replaceState(null, "", pageLink(choice));
  resetStats();
  log.clear();
  chart.clear();
  const preset = checkedEndpoint().dataset;
  const interval = choice.params.find(([name]) => name === "interval");
  chart.expectedGapMs = Number(interval === undefined ? preset.interval : interval[1]);

  const path = streamPath(choice);
  const source = new EventSource(path);
  current = { source, path, lostAt: NaN, retry: choice.params.find(([name]) => name === "retry") };
  // EventSource only delivers named events to listeners of that name: listen
  // to every name this stream can send.
  const customEvent = choice.params.find(([name]) => name === "event");
  const names = new Set(["message", "done", preset.event || "message"]);
  if (customEvent !== undefined) names.add(customEvent[1]);
  for (const name of names) source.addEventListener(name, (event) => onEvent(source, event));
  source.addEventListener("open", () => onOpen(source));
  source.addEventListener("error", () => onError(source));
  setState("connecting", path);
  log.addNotice(`connecting to ${path}`);
  scheduleRender();
}

/** Closes the current EventSource, if any. `why` says who closed it. */
function close(why) {
  if (current === undefined) return;
  current.source.close();
  current = undefined;
  if (why === "user") {
    setState("closed", "closed by you", "user");
    log.addNotice("closed by you");
  }
  scheduleRender();
}

function onOpen(source) {
  if (current?.source !== source) return;
  if (Number.isFinite(current.lostAt)) {
    const waited = round(performance.now() - current.lostAt);
    log.addNotice(
      `reconnected after ${waited} ms, sending Last-Event-ID: ${stats.lastId || "(none)"}`,
    );
  } else {
    log.addNotice("open");
  }
  current.lostAt = NaN;
  setState("open", current.path);
  scheduleRender();
}

function onError(source) {
  if (current?.source !== source) return;
  if (source.readyState === EventSource.CLOSED) {
    // A status other than 200 or a wrong content type: the browser gives up for good.
    const { path } = current;
    current = undefined;
    setState("closed", "refused by the server", "refused");
    log.addNotice("the server refused the stream; the browser will not retry", "bad");
    explainRefusal(path, stats.lastId).then((why) => {
      if (current !== undefined) return;
      ui.stateDetail.textContent = `refused: ${why}`;
      log.addNotice(`refused: ${why}`, "bad");
      scheduleRender();
    });
  } else {
    // Lost: the browser reconnects after its retry delay, by itself.
    stats.reconnects++;
    current.lostAt = performance.now();
    const wait = current.retry === undefined
      ? "the browser's delay"
      : `retry: ${current.retry[1]} ms`;
    setState("reconnecting", `after ${wait}, with Last-Event-ID: ${stats.lastId || "(none)"}`);
    log.addNotice(
      `connection lost; reconnecting after ${wait} with Last-Event-ID: ${stats.lastId || "(none)"}`,
      "warn",
    );
  }
  scheduleRender();
}

/** Ids are integers counting up by one: a jump means events were skipped. */
function idJump(id) {
  if (stats.lastId === "" || !/^\d+$/.test(id) || !/^\d+$/.test(stats.lastId)) return undefined;
  const expected = Number(stats.lastId) + 1;
  const got = Number(id);
  if (got === expected) return undefined;
  if (got > expected) {
    stats.skipped += got - expected;
    return got - expected === 1 ? `id ${expected} skipped` : `ids ${expected}–${got - 1} skipped`;
  }
  return `id ${got} repeats or goes back (expected ${expected})`;
}

function onEvent(source, event) {
  if (current?.source !== source) return;
  const arrived = performance.now();
  const arrivedAt = Date.now();
  const gapMs = arrived - stats.lastArrival;
  stats.lastArrival = arrived;
  const sentAt = SENT_AT.exec(event.data.slice(0, SENT_AT_SEARCH_CHARS));
  const delayMs = sentAt === null ? NaN : arrivedAt - Date.parse(sentAt[1]);
  const jump = idJump(event.lastEventId);
  if (jump !== undefined) log.addNotice(jump, "warn");
  stats.events++;
  stats.lastId = event.lastEventId;
  chart.add(gapMs, delayMs);
  log.addEvent({
    id: event.lastEventId,
    type: event.type,
    data: event.data,
    arrivedAt,
    gapMs,
    delayMs,
    jump,
  });
  if (event.type === "done") {
    // The stream is complete: close before the browser replays it.
    current = undefined;
    source.close();
    setState("closed", "done: the stream is complete", "done");
    log.addNotice("done: closed the EventSource");
  }
  scheduleRender();
}

/**
 * EventSource never says why it gave up. Ask with HEAD (which opens no
 * stream), from where the browser would have resumed.
 */
async function explainRefusal(path, lastId) {
  const probe = new URL(path, location.href);
  if (lastId !== "" && !probe.searchParams.has("lastEventId")) {
    probe.searchParams.set("lastEventId", lastId);
  }
  try {
    const head = await fetch(probe, { method: "HEAD", cache: "no-store" });
    if (head.status === 400) {
      // A 400 never opens a stream: GET it for the reason.
      const body = await (await fetch(probe, { cache: "no-store" })).json();
      return `HTTP 400: ${body.error}`;
    }
    if (head.status === 204) {
      return "HTTP 204, which tells EventSource to stop (the answer to resuming a finished stream)";
    }
    if (head.status !== 200) return `HTTP ${head.status}`;
    return "not a 200 event stream (at its stream limit the server answers 503)";
  } catch {
    return "the server could not be reached";
  }
}

// ---- Copying the curl line ----

async function copyCurl() {
  const text = ui.curl.textContent;
  try {
    await navigator.clipboard.writeText(text);
    ui.copyStatus.textContent = "Copied.";
  } catch {
    // No clipboard access (an insecure origin, a denied permission): select it instead.
    const range = document.createRange();
    range.selectNodeContents(ui.curl);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    ui.copyStatus.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
}

// ---- Wiring ----

form.addEventListener("submit", (event) => {
  event.preventDefault();
  connect();
});
form.addEventListener("input", onFormChange);
form.addEventListener("change", onFormChange);
byId("disconnect").addEventListener("click", () => close("user"));
byId("clear").addEventListener("click", () => {
  log.clear();
  chart.clear();
  scheduleRender();
});
byId("copy-curl").addEventListener("click", copyCurl);
setInterval(sample, SAMPLE_EVERY_MS);

const rejected = restoreForm(location.search);
onFormChange();
setState("idle");
// Open the stream at once: /events by default, else what the link asked for.
if (form.checkValidity()) connect();
else form.reportValidity();
if (rejected.length > 0) {
  log.addNotice(`the link asked for what the form cannot take: ${rejected.join(", ")}`, "warn");
}
scheduleRender();
