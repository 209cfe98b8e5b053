// The event timeline: the backend's events and what the page sees, newest first, each with its time
// relative to the run's start (to the page's opening until a run starts) and its clock time.

import { element } from "./dom.js";

const pageLoadedAt = Date.now();

export function runClockOrigin(run) {
  return run.startedAt || pageLoadedAt;
}

export function observe(run, source, message, at = new Date()) {
  run.timeline.push({ at: at.toISOString(), source, message });
  const li = document.createElement("li");
  li.dataset.at = String(at.getTime());
  li.append(
    element("span", { className: "rel" }),
    element("span", { className: "abs", textContent: at.toLocaleTimeString("en-GB", { hour12: false }) }),
    element("span", { className: `src ${source}`, textContent: source }),
    element("span", { className: "msg", textContent: message }),
  );
  showRelativeTime(run, li);
  const list = document.getElementById("timeline");
  list.insertBefore(li, list.firstChild);
}

// Every line again: the run has just started, and T+ counts from its start now.
export function showRelativeTimes(run) {
  document.querySelectorAll("#timeline li").forEach((li) => showRelativeTime(run, li));
}

function showRelativeTime(run, li) {
  const rel = (Number(li.dataset.at) - runClockOrigin(run)) / 1000;
  li.querySelector(".rel").textContent = `T${rel < 0 ? "−" : "+"}${Math.abs(rel).toFixed(1)} s`;
}
