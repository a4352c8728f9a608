// The timing chart: for each of the last CHART_POINTS events, the gap since the
// previous arrival (top panel) and the delivery delay (bottom panel), drawn as
// dots on a canvas. Dots, not lines: a proxy that buffers shows as a run of
// dots on the floor of the gap panel followed by one tall spike, and as a
// sawtooth in the delay panel.

/** How many events the chart keeps. */
export const CHART_POINTS = 300;

// The fewest slots the x axis is divided into.
const MIN_SLOTS = 30;
// Most recent gaps the burst check looks at, and how many it needs.
const BURST_WINDOW = 60;
const BURST_MIN_GAPS = 10;
// A gap under a quarter of the expected interval counts as "arrived with the
// previous one"; a burst also needs a gap over twice the interval (the wait
// while the buffer filled). Under 20 ms timer jitter alone looks like bursts.
const BURST_SHORT_FRACTION = 0.25;
const BURST_LONG_FACTOR = 2;
const BURST_SHARE = 0.3;
const BURST_MIN_INTERVAL_MS = 20;

/** A fixed-size ring of numbers, oldest first; NaN marks "no value". */
class Ring {
  #values = new Float64Array(CHART_POINTS);
  #start = 0;
  length = 0;

  push(value) {
    if (this.length < CHART_POINTS) {
      this.#values[(this.#start + this.length) % CHART_POINTS] = value;
      this.length++;
    } else {
      this.#values[this.#start] = value;
      this.#start = (this.#start + 1) % CHART_POINTS;
    }
  }

  at(index) {
    return this.#values[(this.#start + index) % CHART_POINTS];
  }

  clear() {
    this.#start = 0;
    this.length = 0;
  }

  /** The finite values, oldest first, at most the `last` ones. */
  finite(last = CHART_POINTS) {
    const values = [];
    for (let i = Math.max(0, this.length - last); i < this.length; i++) {
      const value = this.at(i);
      if (Number.isFinite(value)) values.push(value);
    }
    return values;
  }
}

/** Summary figures of a list of numbers: median, 95th percentile, max. */
export function summarise(values) {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const pick = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { median: pick(0.5), p95: pick(0.95), max: sorted[sorted.length - 1] };
}

/** Rounds up to 1, 2 or 5 times a power of ten, for a readable axis. */
function niceCeil(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** Draws the chart on `canvas`; call `add` per event and `draw` once per frame. */
export class TimingChart {
  #canvas;
  #context;
  #gaps = new Ring();
  #delays = new Ring();
  #expectedGapMs = NaN;
  #dirty = true;
  #onInvalidate;

  /** `onInvalidate` is called whenever the chart needs a `draw()`. */
  constructor(canvas, onInvalidate) {
    this.#canvas = canvas;
    this.#context = canvas.getContext("2d");
    this.#onInvalidate = onInvalidate;
    // A new size or colour scheme needs a redraw even with no new events.
    new ResizeObserver(() => this.#invalidate()).observe(canvas);
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => this.#invalidate());
  }

  /** Records one event; NaN for a value that is not known. */
  add(gapMs, delayMs) {
    this.#gaps.push(gapMs);
    this.#delays.push(delayMs);
    this.#invalidate();
  }

  clear() {
    this.#gaps.clear();
    this.#delays.clear();
    this.#invalidate();
  }

  /** The interval the stream was asked for: drawn as a dashed line. */
  set expectedGapMs(ms) {
    this.#expectedGapMs = ms;
    this.#invalidate();
  }

  /** How many events the chart holds. */
  get points() {
    return this.#gaps.length;
  }

  /** Median, p95 and max of the gaps and the delays now on the chart. */
  summary() {
    return { gap: summarise(this.#gaps.finite()), delay: summarise(this.#delays.finite()) };
  }

  /**
   * True when recent arrivals come in clumps: many gaps far below the
   * expected interval, and some far above it.
   */
  looksBursty() {
    const expected = this.#expectedGapMs;
    if (!(expected >= BURST_MIN_INTERVAL_MS)) return false;
    const gaps = this.#gaps.finite(BURST_WINDOW);
    if (gaps.length < BURST_MIN_GAPS) return false;
    const short = gaps.filter((gap) => gap < expected * BURST_SHORT_FRACTION).length;
    const long = gaps.some((gap) => gap > expected * BURST_LONG_FACTOR);
    return long && short / gaps.length >= BURST_SHARE;
  }

  #invalidate() {
    this.#dirty = true;
    this.#onInvalidate();
  }

  /** Redraws if anything changed since the last draw. */
  draw() {
    if (!this.#dirty) return;
    this.#dirty = false;
    const canvas = this.#canvas;
    const ratio = globalThis.devicePixelRatio || 1;
    const width = Math.round(canvas.clientWidth * ratio);
    const height = Math.round(canvas.clientHeight * ratio);
    if (width === 0 || height === 0) return;
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;

    const style = getComputedStyle(canvas);
    const colour = (name) => style.getPropertyValue(name).trim();
    const ctx = this.#context;
    ctx.clearRect(0, 0, width, height);
    ctx.font = `${Math.round(11 * ratio)}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";

    const left = Math.round(48 * ratio);
    const right = Math.round(6 * ratio);
    // Room above each panel for its title, between the panels, and below the last.
    const titleSpace = Math.round(16 * ratio);
    const between = Math.round(10 * ratio);
    const bottom = Math.round(8 * ratio);
    const panelHeight = Math.floor((height - 2 * titleSpace - between - bottom) / 2);
    const theme = { text: colour("--muted"), grid: colour("--grid"), ratio, left, right };
    const gapPanel = { y: titleSpace, height: panelHeight };
    const delayPanel = { y: 2 * titleSpace + panelHeight + between, height: panelHeight };

    const gaps = this.#gaps;
    const expected = this.#expectedGapMs > 0 ? this.#expectedGapMs : undefined;
    this.#panel(theme, {
      ...gapPanel,
      title: "gap since previous, ms",
      min: 0,
      max: niceCeil(Math.max(...gaps.finite(), (expected ?? 0) * 1.25)),
      values: gaps,
      colour: colour("--gap"),
      reference: expected,
    });
    const delays = this.#delays.finite();
    const delayMin = Math.min(0, ...delays);
    this.#panel(theme, {
      ...delayPanel,
      title: "delivery delay, ms",
      // Negative delays happen: the server's clock may run ahead of this one.
      min: delayMin < 0 ? -niceCeil(-delayMin) : 0,
      max: niceCeil(Math.max(...delays, 1)),
      values: this.#delays,
      colour: colour("--delay"),
      reference: undefined,
    });
  }

  #scaleY(panel, min, max, value) {
    const fraction = (value - min) / (max - min || 1);
    return Math.round(panel.y + panel.height - fraction * panel.height);
  }

  /**
   * One panel: its title, axis labels, baselines, a dashed line at
   * `reference` (the interval asked for), then one dot per value on top.
   */
  #panel(theme, panel) {
    const ctx = this.#context;
    const { ratio, left, right } = theme;
    const { min, max, values } = panel;
    const plotWidth = this.#canvas.width - left - right;
    ctx.fillStyle = theme.text;
    ctx.textAlign = "left";
    ctx.fillText(panel.title, left, panel.y - 8 * ratio);
    ctx.textAlign = "right";
    ctx.fillText(String(max), left - 6 * ratio, panel.y);
    ctx.fillText(String(min), left - 6 * ratio, panel.y + panel.height);
    const line = Math.max(1, Math.round(ratio));
    ctx.fillStyle = theme.grid;
    ctx.fillRect(left, panel.y, plotWidth, line);
    ctx.fillRect(left, this.#scaleY(panel, min, max, 0), plotWidth, line);
    if (panel.reference !== undefined) {
      const y = this.#scaleY(panel, min, max, panel.reference) + 0.5;
      ctx.strokeStyle = theme.text;
      ctx.lineWidth = line;
      ctx.setLineDash([4 * ratio, 4 * ratio]);
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + plotWidth, y);
      ctx.stroke();
      ctx.setLineDash([]);
    }

    // One slot per event, at least MIN_SLOTS wide so a few dots spread out;
    // once the chart is full, new events enter on the right.
    const slot = plotWidth / Math.max(MIN_SLOTS, values.length);
    const size = Math.max(3, Math.round(3 * ratio));
    const offset = Math.floor(size / 2);
    ctx.fillStyle = panel.colour;
    for (let i = 0; i < values.length; i++) {
      const value = values.at(i);
      if (!Number.isFinite(value)) continue;
      const x = Math.round(left + (i + 0.5) * slot);
      const y = this.#scaleY(panel, min, max, Math.max(min, Math.min(max, value)));
      ctx.fillRect(x - offset, y - offset, size, size);
    }
  }
}
