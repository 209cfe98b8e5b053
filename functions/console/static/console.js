// The demo console. The page is the client: it sends every POST /customers itself and keeps what it
// was told; "acknowledged" is a 2xx with a request id. The backend (./api/) answers for the stack:
// roles, queue, per-instance counts, its events, and which acknowledged ids the ledger holds.
// This module wires the page: traffic, the status and reconcile polls, faults and the download.
// The state lives in run.js, the verdict in verdict.js, the fault being followed in fault.js.

import { api, sendCustomer } from "./api.js";
import { createCharts } from "./charts.js";
import { $, fmt } from "./dom.js";
import { followFault, noteFault } from "./fault.js";
import { renderFaults, showDatabase, showError, showFault, showOldest, showQueue, showReconciliation, showTraffic } from "./panels.js";
import { count, createRun, newRequest, newRunId, noteRoles, recordSecond } from "./run.js";
import { auth, finishSignIn, loadAuthConfig, signIn } from "./signin.js";
import { observe, showRelativeTimes } from "./timeline.js";
import { checkContext, createWatch, noteDatabase, noteQueueDepth, recordAnswer, selectBatch, totals } from "./verdict.js";

const TICK_MS = 50;
const POLL_MS = 1000;

const run = createRun();
const watch = createWatch();
// What the page has seen of the backend besides the verdict's facts: for the timeline's notes.
const seen = { since: null, events: new Set(), queueUp: null, backlog: false, oldestAgeS: null };
const traffic = { timer: null, due: 0, lastTick: 0 };
const charts = createCharts();

// ---- traffic ---------------------------------------------------------------------------------------

function startTraffic() {
  const rate = Number($("rate").value);
  const customers = Number($("customers").value);
  if (!Number.isInteger(rate) || rate < 1 || rate > 200) return showError("traffic-error", "rate: a whole number from 1 to 200");
  if (!Number.isInteger(customers) || customers < 1 || customers > 100000) return showError("traffic-error", "customers: 1 to 100,000");
  showError("traffic-error", "");
  run.rate = rate;
  run.customers = customers;
  if (!run.id) {
    run.id = newRunId();
    run.startedAt = Date.now();
    $("run-id").textContent = `run ${run.id}`;
    $("download").disabled = false;
    showRelativeTimes(run);
  }
  observe(run, "page", `Traffic started: ${rate}/s over ${customers} customers`);
  traffic.lastTick = performance.now();
  traffic.due = 1;
  traffic.timer = setInterval(trafficTick, TICK_MS);
  $("start-traffic").disabled = true;
  $("stop-traffic").disabled = false;
  $("rate").disabled = $("customers").disabled = true;
}

function stopTraffic() {
  clearInterval(traffic.timer);
  traffic.timer = null;
  observe(run, "page", "Traffic stopped");
  $("start-traffic").disabled = false;
  $("stop-traffic").disabled = true;
  $("rate").disabled = $("customers").disabled = false;
}

function trafficTick() {
  const now = performance.now();
  traffic.due += ((now - traffic.lastTick) / 1000) * run.rate;
  traffic.lastTick = now;
  while (traffic.due >= 1) {
    traffic.due -= 1;
    const request = newRequest(run, crypto.randomUUID(), Date.now());
    count(run, "offered", request.sentAt);
    sendCustomer(run, request);
  }
}

// A sign-in that lapsed while traffic runs stops the traffic and keeps the run, rather than leave the
// page for the sign-in.
auth.keepsRun = () => {
  if (!traffic.timer) return false;
  stopTraffic();
  observe(run, "page", "Sign-in expired: traffic stopped. Download the run, then reload the page to sign in again");
  return true;
};

// ---- the backend's status: roles, queue, counts, events, the fault ------------------------------

async function pollStatus() {
  const query = new URLSearchParams();
  if (run.id) query.set("run_id", run.id);
  if (seen.since) query.set("since", seen.since);
  const askedAt = Date.now(); // the queue depth in the answer was measured after this
  let status;
  try {
    status = await api(`status?${query}`);
  } catch (error) {
    $("database-state").textContent = `console API: ${error.message}`;
    return;
  }
  for (const event of status.events) {
    // The backend may answer an event again (RDS's are asked with an overlap): each is shown once.
    const key = `${event.source}@${event.at}@${event.message}`;
    if (seen.events.has(key)) continue;
    seen.events.add(key);
    observe(run, event.source, event.message, new Date(event.at));
    if (!seen.since || event.at > seen.since) seen.since = event.at;
  }
  noteRoles(run, status.instances);
  showDatabase(run, status);
  if (noteDatabase(watch, status.database_writable, Date.now())) {
    observe(run, "page", status.database_writable ? "Database available again (writable through the proxy)" : "Database unavailable to the consumer");
  }
  noteQueue(status.queue, askedAt);
  noteFault(run, status.fault, new Date(status.at), Date.now());
  showFault(run);
  if (recordSecond(run, status, Date.now())) charts.draw(run.series);
}

function noteQueue(queue, askedAt) {
  const up = queue.visible !== null;
  if (seen.queueUp !== null && seen.queueUp !== up) observe(run, "page", up ? "Queue answering again" : "Queue not answering");
  seen.queueUp = up;
  seen.oldestAgeS = queue.oldest_age_s;
  showQueue(queue);
  showOldest(run, seen.oldestAgeS);
  if (!up) return;
  const depth = queue.visible + queue.in_flight;
  if (!seen.backlog && depth > Math.max(50, run.rate * 3)) {
    seen.backlog = true;
    observe(run, "queue", `Backlog building: ${fmt(depth)} messages queued`);
  } else if (seen.backlog && depth <= Math.max(10, run.rate)) {
    seen.backlog = false;
    observe(run, "queue", `Backlog drained: ${fmt(depth)} messages queued`);
  }
  noteQueueDepth(watch, depth, askedAt);
}

// ---- faults ----------------------------------------------------------------------------------------

async function startFault(fault, input) {
  showError("fault-error", "");
  const body = { name: fault.name };
  if (input) body.seconds = Number(input.value);
  try {
    followFault(run, await api("faults", body), Date.now());
    showFault(run);
  } catch (error) {
    showError("fault-error", error.message);
  }
}

// ---- reconciliation --------------------------------------------------------------------------------

async function reconcile(maxIds) {
  if (!run.id) return;
  const { batch, cursors } = selectBatch(run.requests, maxIds, run.cursors);
  run.cursors = cursors;
  const context = checkContext(watch, Date.now());
  let answer;
  try {
    answer = await api("reconcile", { run_id: run.id, request_ids: batch.map((r) => r.requestId) });
  } catch (error) {
    $("verdict-detail").textContent = `reconciliation: ${error.message}`;
    return;
  }
  recordAnswer(batch, answer, context);
  run.reconciled = answer.run;
  showReconciliation(run);
  showOldest(run, seen.oldestAgeS);
}

// ---- download --------------------------------------------------------------------------------------

function download() {
  const t = totals(run);
  const report = {
    run_id: run.id,
    backend: $("backend").dataset.backend,
    started_at: run.startedAt && new Date(run.startedAt).toISOString(),
    downloaded_at: new Date().toISOString(),
    rate_rps: run.rate,
    customers: run.customers,
    // the same keys as reports/drill.json where they mean the same
    offered: t.offered,
    acknowledged: t.acknowledged,
    committed: t.committed,
    lost: t.lost,
    duplicates: t.duplicates,
    stale_profiles: t.stale_profiles,
    dead_lettered: t.dead_lettered,
    lag_p50_ms: t.lag_p50_ms,
    lag_p99_ms: t.lag_p99_ms,
    pending: t.pending,
    rows: t.rows,
    roles_before: run.rolesBefore,
    roles_after: run.rolesAfter,
    faults: run.faults,
    timeline: run.timeline,
    series: run.series,
  };
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([JSON.stringify(report, null, 2)], { type: "application/json" }));
  link.download = `console-run-${run.id}.json`;
  link.click();
  URL.revokeObjectURL(link.href);
}

// ---- start -----------------------------------------------------------------------------------------

async function main() {
  await loadAuthConfig();
  if (auth.config) {
    try {
      await finishSignIn();
    } catch (error) {
      showError("traffic-error", error.message);
    }
    if (!auth.token) return signIn();
    $("user").hidden = false;
    $("user").textContent = "signed in";
  }
  const config = await api("config");
  $("backend").textContent = `${config.backend} stack`;
  $("backend").dataset.backend = config.backend;
  $("rate").min = config.rate_limits[0];
  $("rate").max = config.rate_limits[1];
  renderFaults(config.faults, startFault);
  $("start-traffic").addEventListener("click", startTraffic);
  $("stop-traffic").addEventListener("click", stopTraffic);
  $("download").addEventListener("click", download);
  observe(run, "page", `Console opened on the ${config.backend} stack`);
  document.body.dataset.ready = "true"; // the controls work from here on
  let busy = false;
  const poll = async () => {
    if (busy) return; // a slow answer (a database that is down) must not pile up calls
    busy = true;
    try {
      await Promise.all([pollStatus(), reconcile(config.reconcile_max_ids)]);
    } finally {
      busy = false;
    }
  };
  setInterval(poll, POLL_MS);
  setInterval(() => showTraffic(run), 250);
  poll();
}

main().catch((error) => showError("traffic-error", `console failed to start: ${error.message}`));
