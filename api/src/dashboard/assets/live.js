// Roomer's dashboard: keeps the counts on a page current from the Server-Sent Events of the
// live routes, and says plainly whether it is connected. The page is complete without it.
//
// A page opts in with an element `#live-status`; every `[data-space-id]` element holds one
// space's `[data-live-count]` and, with a capacity, `[data-live-meter]` and
// `[data-live-percent]` (from the event's `utilization`). The stream sends every current count first, so a reconnect also
// repairs whatever was missed while it was down.
"use strict";

(() => {
  const status = document.getElementById("live-status");
  if (!status) return;
  const spaces = new Map();
  for (const element of document.querySelectorAll("[data-space-id]")) {
    const id = element.dataset.spaceId;
    if (!spaces.has(id)) spaces.set(id, []);
    spaces.get(id).push(element);
  }
  if (spaces.size === 0) return;
  // One space: its own stream; several: the building's.
  const url = spaces.size === 1 ? `/api/v1/spaces/${[...spaces.keys()][0]}/live` : "/api/v1/live";

  let source = null;
  let retry = 1000;
  let droppedAt = null;

  const clock = (date) => date.toLocaleTimeString();

  function show(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function update(change) {
    for (const element of spaces.get(String(change.space_id)) || []) {
      const count = element.querySelector("[data-live-count]");
      if (count && count.textContent !== String(change.count)) {
        count.textContent = String(change.count);
        count.classList.remove("changed");
        void count.offsetWidth; // restart the highlight
        count.classList.add("changed");
      }
      const meter = element.querySelector("[data-live-meter]");
      if (meter) meter.value = Math.max(0, change.count);
      const percent = element.querySelector("[data-live-percent]");
      if (percent && typeof change.utilization === "number") {
        percent.textContent = `${Math.floor(Math.max(0, change.utilization) * 100)}%`;
      }
    }
  }

  function connect() {
    // Same origin: the session cookie, if any, goes with the request.
    source = new EventSource(url);
    source.addEventListener("open", () => {
      retry = 1000;
      const back = droppedAt ? ` (back since ${clock(new Date())}, lost at ${clock(droppedAt)})` : "";
      droppedAt = null;
      show("live", `● Live${back}`);
    });
    source.addEventListener("count", (event) => update(JSON.parse(event.data)));
    // Too slow to keep up: start again, which sends every count anew.
    source.addEventListener("lagged", () => {
      source.close();
      connect();
    });
    source.addEventListener("error", () => {
      if (!droppedAt) droppedAt = new Date();
      show("down", `○ Not live since ${clock(droppedAt)}: counts may be out of date. Reconnecting…`);
      // The browser retries a dropped stream by itself, but not one refused outright (503,
      // 401): then try again here, waiting longer each time.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 30000);
      }
    });
  }

  connect();
})();
