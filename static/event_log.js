// The live log: a table body holding at most `maxRows` rows, newest first.
// Rows are queued and built once per animation frame, so a burst of thousands
// of events costs one DOM update, and rows that would be trimmed at once are
// never built. Event data is only ever set as textContent, never parsed as HTML.

// Longer data is cut in the log (size= can make events a megabyte each).
const MAX_DATA_CHARS = 400;

/** Local wall-clock time with milliseconds: 14:03:07.250. */
export function clockTime(ms) {
  const date = new Date(ms);
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${
    pad(date.getMilliseconds(), 3)
  }`;
}

const formatMs = (ms) => (Number.isFinite(ms) ? String(Math.round(ms)) : "");

/** The bounded, newest-first table of events and connection notices. */
export class EventLog {
  #body;
  #maxRows;
  #pending = [];

  constructor(tbody, maxRows) {
    this.#body = tbody;
    this.#maxRows = maxRows;
  }

  /**
   * Queues one event: `{ id, type, data, arrivedAt, gapMs, delayMs, jump }`,
   * `arrivedAt` in ms since the epoch, `jump` a note when ids did not follow.
   */
  addEvent(entry) {
    this.#queue({ kind: "event", ...entry });
  }

  /** Queues a connection notice; `tone` is "info", "warn" or "bad". */
  addNotice(text, tone = "info") {
    this.#queue({ kind: "notice", text, tone, arrivedAt: Date.now() });
  }

  clear() {
    this.#pending = [];
    this.#body.replaceChildren();
  }

  /** Rows in the table now. */
  get rowCount() {
    return this.#body.rows.length;
  }

  /** True when rows wait for `flush()`. */
  get hasPending() {
    return this.#pending.length > 0;
  }

  #queue(entry) {
    this.#pending.push(entry);
    // In a hidden tab frames stop: keep only what could ever be shown.
    if (this.#pending.length > this.#maxRows * 2) {
      this.#pending.splice(0, this.#pending.length - this.#maxRows);
    }
  }

  /** Builds the queued rows (at most `maxRows`) and trims the oldest. */
  flush() {
    if (this.#pending.length === 0) return;
    const entries = this.#pending.slice(-this.#maxRows);
    this.#pending = [];
    const fragment = document.createDocumentFragment();
    for (let i = entries.length - 1; i >= 0; i--) fragment.append(this.#row(entries[i]));
    this.#body.prepend(fragment);
    while (this.#body.rows.length > this.#maxRows) this.#body.lastElementChild.remove();
  }

  #row(entry) {
    const row = document.createElement("tr");
    if (entry.kind === "notice") {
      row.className = `notice notice-${entry.tone}`;
      const cell = row.insertCell();
      cell.colSpan = 6;
      cell.textContent = `${clockTime(entry.arrivedAt)} ${entry.text}`;
      return row;
    }
    row.className = "event";
    if (entry.type === "done") row.classList.add("done");
    const id = row.insertCell();
    id.textContent = entry.id;
    if (entry.jump !== undefined) {
      row.classList.add("jump");
      id.title = entry.jump;
    }
    row.insertCell().textContent = entry.type;
    const data = entry.data;
    row.insertCell().textContent = data.length > MAX_DATA_CHARS
      ? `${data.slice(0, MAX_DATA_CHARS)}… (${data.length} characters)`
      : data;
    const time = document.createElement("time");
    time.dateTime = new Date(entry.arrivedAt).toISOString();
    time.textContent = clockTime(entry.arrivedAt);
    row.insertCell().append(time);
    for (const ms of [entry.gapMs, entry.delayMs]) {
      const cell = row.insertCell();
      cell.className = "num";
      cell.textContent = formatMs(ms);
    }
    return row;
  }
}
