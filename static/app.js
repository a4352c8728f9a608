// The live page: one EventSource on /events, each event shown as it arrives.
// Event data is only ever set as textContent: the page never parses it as HTML.
"use strict";

const MAX_ROWS = 200;
const url = "/events";
const stateEl = document.getElementById("state");
const logEl = document.getElementById("log");

function setState(state) {
  stateEl.textContent = state;
  stateEl.dataset.state = state;
}

function addRow(event) {
  const row = document.createElement("tr");
  for (const text of [event.lastEventId, event.type, event.data, new Date().toISOString()]) {
    const cell = document.createElement("td");
    cell.textContent = text;
    row.append(cell);
  }
  logEl.prepend(row);
  while (logEl.rows.length > MAX_ROWS) logEl.lastElementChild.remove();
}

const source = new EventSource(url);
source.addEventListener("open", () => setState("open"));
source.addEventListener("error", () => {
  setState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
});
source.addEventListener("message", addRow);
source.addEventListener("tick", addRow);
