// What the page shows: each panel drawn from the run and the backend's last status. DOM only; the
// figures come from run.js and verdict.js.

import { $, element, fmt } from "./dom.js";
import { trafficCounts } from "./run.js";
import { oldestUncommittedAt, totals } from "./verdict.js";
import { runClockOrigin } from "./timeline.js";

export function showError(id, message) {
  $(id).textContent = message;
}

function rolesText(instances) {
  return instances.map((instance) => `${instance.name} ${instance.role}`).join(", ");
}

export function showDatabase(run, status) {
  const instances = status.instances;
  const box = $("instances");
  const counts = $("counts");
  for (const instance of instances) {
    let card = $(`instance-${instance.name}`);
    if (!card) {
      card = element("div", { id: `instance-${instance.name}`, className: "instance" });
      // Built from elements, not markup: the names come from the backend.
      const meta = element("div", { className: "meta" });
      meta.append(element("span", { id: `az-${instance.name}` }), " · ", element("span", { id: `state-${instance.name}` }));
      card.append(
        element("div", { className: "name", textContent: instance.name }),
        element("span", { className: "role", id: `role-${instance.name}` }),
        meta,
      );
      box.appendChild(card);
      const tile = document.createElement("div");
      tile.append(
        element("span", { className: "num", id: `count-${instance.name}`, textContent: "–" }),
        element("span", { className: "cap", textContent: instance.name }),
      );
      counts.appendChild(tile);
    }
    const role = $(`role-${instance.name}`);
    role.textContent = instance.role;
    role.className = `role ${instance.role}`;
    $(`az-${instance.name}`).textContent = instance.availability_zone || "AZ unknown";
    const state = $(`state-${instance.name}`);
    state.textContent = instance.status;
    state.className = instance.status === "available" ? "" : "status-down";
    card.classList.toggle("down", instance.status !== "available");
    $(`count-${instance.name}`).textContent = fmt(instance.committed_rows);
  }
  const countsKnown = instances.map((instance) => instance.committed_rows);
  $("counts-equal").textContent = !run.id
    ? "Counts appear once a run starts."
    : countsKnown.some((value) => value === null)
      ? "An instance does not answer."
      : new Set(countsKnown).size === 1
        ? `Equal on every instance: ${fmt(countsKnown[0])} rows`
        : `Converging: ${fmt(Math.max(...countsKnown) - Math.min(...countsKnown))} rows apart`;
  if (run.rolesBefore) $("roles-before").textContent = rolesText(run.rolesBefore);
  $("roles-now").textContent = rolesText(instances);
  const writerBefore = run.rolesBefore && run.rolesBefore.find((i) => i.role === "writer");
  const writerNow = instances.find((i) => i.role === "writer");
  $("roles-swapped").hidden = !(writerBefore && writerNow && writerBefore.name !== writerNow.name);

  const state = $("database-state");
  state.textContent = status.database_writable ? "database: writable" : "database: unavailable";
  state.className = `state ${status.database_writable ? "up" : "down"}`;
}

export function showQueue(queue) {
  $("queue-visible").textContent = fmt(queue.visible);
  $("queue-in-flight").textContent = fmt(queue.in_flight);
  $("queue-dlq").textContent = fmt(queue.dead_letter);
}

// The age of the oldest message where the backend tells it (`oldestAgeS`); where it cannot (SQS does
// not answer it), the age of the oldest 2xx of this page not yet seen committed.
export function showOldest(run, oldestAgeS) {
  if (oldestAgeS !== null && oldestAgeS !== undefined) {
    $("queue-oldest").textContent = `${oldestAgeS.toFixed(0)} s`;
    $("queue-oldest-label").textContent = "oldest message";
    return;
  }
  const oldest = oldestUncommittedAt(run.requests);
  $("queue-oldest").textContent = oldest === null ? "0 s" : `${((Date.now() - oldest) / 1000).toFixed(1)} s`;
  $("queue-oldest-label").textContent = "oldest acknowledged, not yet committed";
}

export function showReconciliation(run) {
  const t = totals(run);
  for (const [id, value] of [["acknowledged", t.acknowledged], ["committed", t.committed], ["pending", t.pending], ["lost", t.lost]]) {
    $(`rec-${id}`).textContent = fmt(value);
    $(`rec-${id}-2`).textContent = fmt(value);
  }
  $("rec-dead-lettered").textContent = fmt(t.dead_lettered);
  $("rec-duplicates").textContent = fmt(t.duplicates);
  $("rec-stale").textContent = fmt(t.stale_profiles);
  $("rec-rows").textContent = fmt(t.rows);
  $("rec-lag").textContent = t.lag_p50_ms === null ? "–" : `${fmt(Math.round(t.lag_p50_ms))} ms / ${fmt(Math.round(t.lag_p99_ms))} ms`;
  $("verdict").textContent = `${fmt(t.lost)} lost of ${fmt(t.acknowledged)} acknowledged`;
  const notes = [];
  if (t.acknowledged > 0 && t.committed === t.acknowledged) notes.push("acknowledged = committed");
  if (t.pending > 0) notes.push(`${fmt(t.pending)} pending`);
  if (t.dead_lettered > 0) notes.push(`${fmt(t.dead_lettered)} in the dead-letter queue`);
  if (t.duplicates > 0) notes.push(`${fmt(t.duplicates)} duplicated`);
  if (t.stale_profiles > 0) notes.push(`${fmt(t.stale_profiles)} stale profiles`);
  $("verdict-detail").textContent = notes.join(" · ");
  $("verdict-bar").className = `verdict-bar ${t.lost > 0 || t.duplicates > 0 ? "bad" : t.pending > 0 ? "pending" : "ok"}`;
}

export function showTraffic(run) {
  const counts = trafficCounts(run);
  $("offered").textContent = fmt(counts.offered);
  $("answered-2xx").textContent = fmt(counts.ok);
  $("answered-4xx").textContent = fmt(counts.client);
  $("in-flight").textContent = fmt(counts.inFlight);
  $("gave-up").textContent = fmt(counts.gaveUp);
  $("failed-attempts").textContent = fmt(counts.failedAttempts);
  $("retries").textContent = fmt(counts.retries);
  const rel = (Date.now() - runClockOrigin(run)) / 1000;
  $("clock").textContent = `T+${rel.toFixed(1)} s · ${new Date().toLocaleTimeString("en-GB", { hour12: false })}`;
}

// One button per fault the backend offers (with its length in seconds when it takes one).
export function renderFaults(faults, onStart) {
  const box = $("faults");
  box.textContent = "";
  for (const fault of faults) {
    const row = element("div", { className: "fault" });
    const button = element("button", { id: `fault-${fault.name}`, className: "danger", textContent: fault.label, title: fault.description });
    row.appendChild(button);
    let input = null;
    if (fault.seconds) {
      const [low, standard, high] = fault.seconds;
      input = element("input", { type: "number", id: `seconds-${fault.name}`, min: low, max: high, value: standard, title: `${low} to ${high} s` });
      row.append(input, element("span", { className: "unit", textContent: "s" }));
    }
    button.addEventListener("click", () => onStart(fault, input));
    box.appendChild(row);
  }
}

// The fault being followed (fault.js), or the last one; the buttons wait while one runs.
export function showFault(run) {
  for (const button of document.querySelectorAll("#faults button")) button.disabled = Boolean(run.openFault);
  const fault = run.openFault ? run.openFault.entry : run.faults[run.faults.length - 1];
  if (!fault) return;
  const box = $("fault-status");
  const length = fault.seconds ? ` (${fault.seconds} s)` : "";
  box.className = `fault-status ${run.openFault ? "running" : fault.error ? "failed" : ""}`;
  box.textContent = run.openFault
    ? `${fault.name}${length} running since ${new Date(fault.started_at).toLocaleTimeString("en-GB")}`
    : fault.error
      ? `${fault.name} failed: ${fault.error}`
      : `${fault.name}${length} ended at ${new Date(fault.ended_at).toLocaleTimeString("en-GB")}`;
}
