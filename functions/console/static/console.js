// The demo console. The page is the client: it sends every POST /customers itself and keeps what it
// was told; "acknowledged" is a 2xx with a request id. The backend (./api/) answers for the stack:
// roles, queue, per-instance counts, its events, and which acknowledged ids the ledger holds.
// Every URL is relative to the page (/console/ locally, /{stage}/console/ on AWS).
"use strict";

const API = "api/";
const CUSTOMERS_URL = "../customers";
const TICK_MS = 50;
const POLL_MS = 1000;
const MAX_RETRY_WAIT_MS = 2000;
const GIVE_UP_AFTER_MS = 5 * 60 * 1000;
const LOST_AFTER_MS = 60 * 1000; // an id not committed this long after its 2xx ...
const WRITABLE_FOR_MS = 30 * 1000; // ... while the database has been writable this long, is lost
const SERIES_SECONDS = 300; // what the charts keep
const RECHECK_SHARE = 0.2; // of each reconcile batch: ids already seen committed, checked again

const $ = (id) => document.getElementById(id);
// A new element with its properties set (className, id, textContent): no markup parsed.
const element = (tag, properties = {}) => Object.assign(document.createElement(tag), properties);
const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

// ---- sign-in (AWS only: config.json is served there; locally it is absent and auth is off) ----------

const auth = {
  config: null,
  token: sessionStorage.getItem("console.token"),
  refreshToken: sessionStorage.getItem("console.refresh"),
  refreshing: null, // the refresh under way, shared by every request that needs it
  refreshTimer: null,
};
// The access token lasts an hour: it is renewed this long before it expires.
const REFRESH_BEFORE_EXPIRY_MS = 5 * 60 * 1000;

async function loadAuthConfig() {
  let response;
  try {
    response = await fetch("config.json", { cache: "no-store" });
  } catch {
    return;
  }
  if (!response.ok) return;
  const config = await response.json().catch(() => null);
  if (config && config.cognito_domain && config.client_id) auth.config = config;
}

function redirectUri() {
  return (auth.config && auth.config.redirect_uri) || location.origin + location.pathname;
}

function base64Url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function signIn() {
  const verifier = base64Url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64Url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = base64Url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem("console.pkce", JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: auth.config.client_id,
    redirect_uri: redirectUri(),
    scope: auth.config.scopes || "openid customers/write customers/read",
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
  });
  location.assign(`https://${auth.config.cognito_domain}/oauth2/authorize?${query}`);
}

async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  if (!code) return false;
  const pkce = JSON.parse(sessionStorage.getItem("console.pkce") || "null");
  history.replaceState(null, "", location.pathname); // the code is single-use: off the address bar
  if (!pkce || pkce.state !== params.get("state")) throw new Error("sign-in answer does not match this page's request");
  const response = await fetch(`https://${auth.config.cognito_domain}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: auth.config.client_id,
      code,
      redirect_uri: redirectUri(),
      code_verifier: pkce.verifier,
    }),
  });
  if (!response.ok) throw new Error(`sign-in failed: ${response.status}`);
  keepTokens(await response.json());
  sessionStorage.removeItem("console.pkce");
  return true;
}

function keepTokens(tokens) {
  auth.token = tokens.access_token;
  sessionStorage.setItem("console.token", auth.token);
  if (tokens.refresh_token) {
    auth.refreshToken = tokens.refresh_token; // a refresh answers without one: the first stays valid
    sessionStorage.setItem("console.refresh", auth.refreshToken);
  }
  clearTimeout(auth.refreshTimer);
  const renewInMs = Math.max(0, Number(tokens.expires_in || 3600) * 1000 - REFRESH_BEFORE_EXPIRY_MS);
  auth.refreshTimer = setTimeout(renewToken, renewInMs);
}

// A new access token from the refresh token (public client: no secret); false if Cognito refuses.
function renewToken() {
  if (!auth.config || !auth.refreshToken) return Promise.resolve(false);
  auth.refreshing ??= fetch(`https://${auth.config.cognito_domain}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "refresh_token", client_id: auth.config.client_id, refresh_token: auth.refreshToken }),
  })
    .then(async (response) => {
      if (!response.ok) return false;
      keepTokens(await response.json());
      return true;
    })
    .catch(() => false)
    .finally(() => {
      auth.refreshing = null;
    });
  return auth.refreshing;
}

// The sign-in has lapsed and cannot be renewed: while traffic runs the run is kept, not left for sign-in.
function signInLapsed() {
  if (traffic.timer) {
    stopTraffic();
    observe("page", "Sign-in expired: traffic stopped. Download the run, then reload the page to sign in again");
    return false;
  }
  sessionStorage.removeItem("console.token");
  signIn();
  return true;
}

function authHeaders() {
  return auth.token ? { Authorization: auth.token } : {};
}

async function api(path, body, renewed = false) {
  const init = body === undefined
    ? { headers: authHeaders(), cache: "no-store" }
    : { method: "POST", headers: { "Content-Type": "application/json", ...authHeaders() }, body: JSON.stringify(body) };
  const response = await fetch(API + path, init);
  if (response.status === 401 && auth.config) {
    if (!renewed && (await renewToken())) return api(path, body, true);
    signInLapsed();
  }
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((payload.error && payload.error.message) || payload.message || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return payload;
}

// ---- the run: what the page sent and what it was told --------------------------------------------

const run = {
  id: null,
  startedAt: null, // ms since the epoch, first Start
  requests: [], // one per Idempotency-Key
  byRequestId: new Map(),
  sequence: 0,
  rate: 20,
  customers: 50,
  rolesBefore: null,
  rolesAfter: null,
  reconciled: null, // the last Reconciliation's run summary
  timeline: [],
  series: { t: [], offered: [], ok: [], client: [], server: [], retries: [], visible: [], inFlight: [], deadLetter: [], counts: {} },
  faults: [],
};
const traffic = { timer: null, due: 0, lastTick: 0 };
const perSecond = new Map(); // second -> {offered, ok, client, server, retries}
const pageLoadedAt = Date.now();
let recheckCursor = 0;
let pendingCursor = 0;

function newRunId() {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => alphabet[b % alphabet.length]).join("");
}

function runPrefix(id) {
  return `console-${id}-`;
}

function count(field) {
  const second = Math.floor(Date.now() / 1000);
  let bucket = perSecond.get(second);
  if (!bucket) perSecond.set(second, (bucket = { offered: 0, ok: 0, client: 0, server: 0, retries: 0 }));
  bucket[field] += 1;
}

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
    run.rolesBefore = null; // taken from the next status
    document.querySelectorAll("#timeline li").forEach(showRelativeTime);
  }
  observe("page", `Traffic started: ${rate}/s over ${customers} customers`);
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
  observe("page", "Traffic stopped");
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
    offer();
  }
}

function offer() {
  run.sequence += 1;
  const key = crypto.randomUUID();
  const customer = String(Math.floor(Math.random() * run.customers)).padStart(5, "0");
  const customerId = runPrefix(run.id) + customer;
  const request = {
    key,
    body: JSON.stringify({
      customer_id: customerId,
      name: `Customer ${customer}`,
      email: `customer${customer}@example.com`,
      attributes: { console_key: key, sequence: run.sequence },
    }),
    sentAt: Date.now(),
    attempts: 0,
    status: null, // final HTTP status; null while unanswered, "gave up" after 5 minutes
    requestId: null,
    acknowledgedAt: null,
    committed: false,
    deadLettered: false,
    checkedAt: null, // when the last reconcile that asked about it was sent
    queueEmptyBeforeCheck: null, // the last time the queue was seen empty before that check
    writableForAtCheck: null, // how long the database had been writable when that check was sent
  };
  run.requests.push(request);
  count("offered");
  send(request);
}

async function send(request) {
  const deadline = request.sentAt + GIVE_UP_AFTER_MS;
  for (;;) {
    request.attempts += 1;
    if (request.attempts > 1) count("retries");
    let waitMs = 500;
    try {
      const response = await fetch(CUSTOMERS_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": request.key, ...authHeaders() },
        body: request.body,
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok && answer.request_id) {
        count("ok");
        request.status = response.status;
        request.requestId = answer.request_id;
        request.acknowledgedAt = Date.now();
        run.byRequestId.set(answer.request_id, request);
        return;
      }
      if (response.status === 401 && auth.config && !request.renewed) {
        request.renewed = true; // the token expired on the way: once more with a renewed one
        if (await renewToken()) continue;
        signInLapsed();
      }
      if (!response.ok && response.status < 500) {
        count("client");
        request.status = response.status; // final: the request itself is wrong (or not allowed)
        return;
      }
      // A 5xx, or a 2xx whose answer could not be read (the connection cut mid-body): not told, so
      // asked again with the same key, which the API answers with the same request id.
      count("server");
      waitMs = 1000 * Number(response.headers.get("Retry-After") || 0.5);
    } catch {
      count("server"); // a network error: no answer at all
    }
    if (Date.now() > deadline) {
      request.status = "gave up";
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, MAX_RETRY_WAIT_MS)));
  }
}

// ---- the timeline --------------------------------------------------------------------------------

function observe(source, message, at = new Date()) {
  run.timeline.push({ at: at.toISOString(), source, message });
  const li = document.createElement("li");
  li.dataset.at = String(at.getTime());
  li.append(
    element("span", { className: "rel" }),
    element("span", { className: "abs", textContent: at.toLocaleTimeString("en-GB", { hour12: false }) }),
    element("span", { className: `src ${source}`, textContent: source }),
    element("span", { className: "msg", textContent: message }),
  );
  showRelativeTime(li);
  const list = $("timeline");
  list.insertBefore(li, list.firstChild);
}

// T+ from the run's start (from the page's opening until a run starts).
function showRelativeTime(li) {
  const rel = (Number(li.dataset.at) - (run.startedAt || pageLoadedAt)) / 1000;
  li.querySelector(".rel").textContent = `T${rel < 0 ? "−" : "+"}${Math.abs(rel).toFixed(1)} s`;
}

// ---- the backend's status: roles, queue, counts, events -----------------------------------------

const seen = { since: null, events: new Set(), writable: null, queueUp: null, backlog: false, queueEmptyAt: null, writableSince: Date.now() };

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
    observe(event.source, event.message, new Date(event.at));
    if (!seen.since || event.at > seen.since) seen.since = event.at;
  }
  showDatabase(status);
  showQueue(status.queue, askedAt);
  showFault(status.fault, new Date(status.at));
  recordSeries(status);
}

function rolesText(instances) {
  return instances.map((instance) => `${instance.name} ${instance.role}`).join(", ");
}

function showDatabase(status) {
  const instances = status.instances;
  if (run.id && !run.rolesBefore && instances.length) run.rolesBefore = instances.map(({ name, role, availability_zone }) => ({ name, role, availability_zone }));
  run.rolesAfter = instances.map(({ name, role, availability_zone }) => ({ name, role, availability_zone }));
  const box = $("instances");
  const counts = $("counts");
  for (const instance of instances) {
    let card = $(`instance-${instance.name}`);
    if (!card) {
      card = document.createElement("div");
      card.id = `instance-${instance.name}`;
      card.className = "instance";
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
  if (seen.writable !== null && seen.writable !== status.database_writable) {
    observe("page", status.database_writable ? "Database available again (writable through the proxy)" : "Database unavailable to the consumer");
  }
  if (status.database_writable && seen.writable !== true) seen.writableSince = Date.now();
  seen.writable = status.database_writable;
}

function showQueue(queue, askedAt) {
  const up = queue.visible !== null;
  if (seen.queueUp !== null && seen.queueUp !== up) observe("page", up ? "Queue answering again" : "Queue not answering");
  seen.queueUp = up;
  $("queue-visible").textContent = fmt(queue.visible);
  $("queue-in-flight").textContent = fmt(queue.in_flight);
  $("queue-dlq").textContent = fmt(queue.dead_letter);
  seen.oldestAgeS = queue.oldest_age_s;
  showOldest();
  if (!up) return;
  const depth = queue.visible + queue.in_flight;
  const threshold = Math.max(50, run.rate * 3);
  if (!seen.backlog && depth > threshold) {
    seen.backlog = true;
    observe("queue", `Backlog building: ${fmt(depth)} messages queued`);
  } else if (seen.backlog && depth <= Math.max(10, run.rate)) {
    seen.backlog = false;
    observe("queue", `Backlog drained: ${fmt(depth)} messages queued`);
  }
  if (depth === 0) seen.queueEmptyAt = askedAt;
}

function showOldest() {
  if (seen.oldestAgeS !== null && seen.oldestAgeS !== undefined) {
    $("queue-oldest").textContent = `${seen.oldestAgeS.toFixed(0)} s`;
    $("queue-oldest-label").textContent = "oldest message";
    return;
  }
  // Where the backend cannot tell (SQS does not answer it): the oldest 2xx of this page not yet seen committed.
  let oldest = null;
  for (const r of run.requests) {
    if (r.acknowledgedAt && !r.committed && !r.deadLettered && (oldest === null || r.acknowledgedAt < oldest)) oldest = r.acknowledgedAt;
  }
  $("queue-oldest").textContent = oldest === null ? "0 s" : `${((Date.now() - oldest) / 1000).toFixed(1)} s`;
  $("queue-oldest-label").textContent = "oldest acknowledged, not yet committed";
}

// The fault under way as this page follows it: one entry of run.faults from its start to its end.
// On AWS the cluster may still read "available" for a while after the call, and a status answered by
// another container of the console function does not know the fault this page started: the entry is
// closed only once the fault was seen running and is no longer, or after FAULT_GRACE_MS unseen.
let openFault = null; // { entry, seenRunning, since }
const FAULT_GRACE_MS = 120_000;

function followFault(started) {
  openFault = { entry: { ...started }, seenRunning: false, since: Date.now() };
  run.faults.push(openFault.entry);
  renderFault();
}

function showFault(fault, at) {
  const running = Boolean(fault && !fault.ended_at);
  if (running && !openFault) {
    followFault(fault); // started elsewhere (another page, the ops CLI) or before this page opened
  }
  if (running) {
    openFault.seenRunning = true;
  } else if (openFault) {
    const sameRun = fault && fault.started_at === openFault.entry.started_at;
    if (sameRun || openFault.seenRunning || Date.now() - openFault.since > FAULT_GRACE_MS) {
      Object.assign(openFault.entry, {
        ended_at: (sameRun && fault.ended_at) || at.toISOString(),
        error: (sameRun && fault.error) || null,
      });
      openFault = null;
    }
  }
  renderFault();
}

function renderFault() {
  for (const button of document.querySelectorAll("#faults button")) button.disabled = Boolean(openFault);
  const fault = openFault ? openFault.entry : run.faults[run.faults.length - 1];
  if (!fault) return;
  const box = $("fault-status");
  const length = fault.seconds ? ` (${fault.seconds} s)` : "";
  box.className = `fault-status ${openFault ? "running" : fault.error ? "failed" : ""}`;
  box.textContent = openFault
    ? `${fault.name}${length} running since ${new Date(fault.started_at).toLocaleTimeString("en-GB")}`
    : fault.error
      ? `${fault.name} failed: ${fault.error}`
      : `${fault.name}${length} ended at ${new Date(fault.ended_at).toLocaleTimeString("en-GB")}`;
}

// ---- Step 2: faults ------------------------------------------------------------------------------

function renderFaults(faults) {
  const box = $("faults");
  box.textContent = "";
  for (const fault of faults) {
    const row = document.createElement("div");
    row.className = "fault";
    const button = document.createElement("button");
    button.id = `fault-${fault.name}`;
    button.className = "danger";
    button.textContent = fault.label;
    button.title = fault.description;
    row.appendChild(button);
    let input = null;
    if (fault.seconds) {
      const [low, standard, high] = fault.seconds;
      input = document.createElement("input");
      Object.assign(input, { type: "number", id: `seconds-${fault.name}`, min: low, max: high, value: standard });
      input.title = `${low} to ${high} s`;
      const unit = document.createElement("span");
      unit.className = "unit";
      unit.textContent = "s";
      row.append(input, unit);
    }
    button.addEventListener("click", () => startFault(fault, input));
    box.appendChild(row);
  }
}

async function startFault(fault, input) {
  showError("fault-error", "");
  const body = { name: fault.name };
  if (input) body.seconds = Number(input.value);
  try {
    followFault(await api("faults", body));
  } catch (error) {
    showError("fault-error", error.message);
  }
}

function showError(id, message) {
  $(id).textContent = message;
}

// ---- reconciliation ------------------------------------------------------------------------------

async function reconcile(maxIds) {
  if (!run.id) return;
  const acknowledged = run.requests.filter((r) => r.requestId);
  const open = acknowledged.filter((r) => !r.committed);
  const done = acknowledged.filter((r) => r.committed);
  const recheck = Math.min(done.length, Math.floor(maxIds * RECHECK_SHARE));
  const batch = [];
  // Ids not yet seen committed first (in turns, when there are more than fit), then a rolling slice
  // of those already seen, so each is checked again every few seconds.
  const openRoom = maxIds - recheck;
  for (let i = 0; i < Math.min(open.length, openRoom); i++) batch.push(open[(pendingCursor + i) % open.length]);
  pendingCursor = open.length > openRoom ? (pendingCursor + openRoom) % open.length : 0;
  const room = maxIds - batch.length;
  for (let i = 0; i < Math.min(done.length, room); i++) batch.push(done[(recheckCursor + i) % done.length]);
  recheckCursor = done.length ? (recheckCursor + Math.min(done.length, room)) % done.length : 0;
  const checkedAt = Date.now();
  const queueEmptyAt = seen.queueEmptyAt; // seen before this check was sent
  // How long the database had been writable when this check was sent (null: it was not): the verdict
  // on each id rests on the moment of its check, not on what happens to the database later.
  const writableFor = seen.writable ? checkedAt - seen.writableSince : null;
  let answer;
  try {
    answer = await api("reconcile", { run_id: run.id, request_ids: batch.map((r) => r.requestId) });
  } catch (error) {
    $("verdict-detail").textContent = `reconciliation: ${error.message}`;
    return;
  }
  const committed = new Set(answer.committed);
  const deadLettered = new Set(answer.dead_lettered);
  for (const request of batch) {
    request.committed = committed.has(request.requestId);
    request.deadLettered = deadLettered.has(request.requestId);
    request.checkedAt = checkedAt;
    request.queueEmptyBeforeCheck = queueEmptyAt;
    request.writableForAtCheck = writableFor;
  }
  run.reconciled = answer.run;
  showReconciliation();
  showOldest();
}

function isLost(request) {
  if (!request.acknowledgedAt || request.committed || request.deadLettered || request.checkedAt === null) return false;
  // The pipeline has had its chance: the queue was seen empty after the 2xx and before the check, or
  // the check came a minute after the 2xx while the database had been writable for 30 s.
  const drainedSince = request.queueEmptyBeforeCheck > request.acknowledgedAt;
  const overdue = request.checkedAt - request.acknowledgedAt > LOST_AFTER_MS && request.writableForAtCheck > WRITABLE_FOR_MS;
  return Boolean(drainedSince || overdue);
}

function totals() {
  const acknowledged = run.requests.filter((r) => r.requestId);
  const committed = acknowledged.filter((r) => r.committed).length;
  const deadLettered = acknowledged.filter((r) => r.deadLettered).length;
  const lost = acknowledged.filter(isLost).length;
  const summary = run.reconciled || {};
  return {
    offered: run.requests.length,
    acknowledged: acknowledged.length,
    committed,
    pending: acknowledged.length - committed - deadLettered - lost,
    lost,
    duplicates: summary.duplicates ?? 0,
    stale_profiles: summary.stale_profiles ?? 0,
    dead_lettered: deadLettered,
    rows: summary.rows ?? 0,
    lag_p50_ms: summary.lag_p50_ms ?? null,
    lag_p99_ms: summary.lag_p99_ms ?? null,
  };
}

function showReconciliation() {
  const t = totals();
  for (const [id, value] of [["acknowledged", t.acknowledged], ["committed", t.committed], ["pending", t.pending], ["lost", t.lost]]) {
    $(`rec-${id}`).textContent = fmt(value);
    $(`rec-${id}-2`).textContent = fmt(value);
  }
  $("rec-dead-lettered").textContent = fmt(t.dead_lettered);
  $("rec-duplicates").textContent = fmt(t.duplicates);
  $("rec-stale").textContent = fmt(t.stale_profiles);
  $("rec-rows").textContent = fmt(t.rows);
  $("rec-lag").textContent = t.lag_p50_ms === null ? "–" : `${fmt(Math.round(t.lag_p50_ms))} ms / ${fmt(Math.round(t.lag_p99_ms))} ms`;
  const bar = $("verdict-bar");
  $("verdict").textContent = `${fmt(t.lost)} lost of ${fmt(t.acknowledged)} acknowledged`;
  const notes = [];
  if (t.acknowledged > 0 && t.committed === t.acknowledged) notes.push("acknowledged = committed");
  if (t.pending > 0) notes.push(`${fmt(t.pending)} pending`);
  if (t.dead_lettered > 0) notes.push(`${fmt(t.dead_lettered)} in the dead-letter queue`);
  if (t.duplicates > 0) notes.push(`${fmt(t.duplicates)} duplicated`);
  if (t.stale_profiles > 0) notes.push(`${fmt(t.stale_profiles)} stale profiles`);
  $("verdict-detail").textContent = notes.join(" · ");
  bar.className = `verdict-bar ${t.lost > 0 || t.duplicates > 0 ? "bad" : t.pending > 0 ? "pending" : "ok"}`;
}

// ---- counters, series and charts -------------------------------------------------------------------

function showTraffic() {
  const answered = (predicate) => run.requests.filter(predicate).length;
  $("offered").textContent = fmt(run.requests.length);
  $("answered-2xx").textContent = fmt(answered((r) => r.requestId));
  $("answered-4xx").textContent = fmt(answered((r) => typeof r.status === "number" && r.status < 500 && !r.requestId));
  $("in-flight").textContent = fmt(answered((r) => r.status === null));
  $("gave-up").textContent = fmt(answered((r) => r.status === "gave up"));
  let server = 0;
  let retries = 0;
  for (const bucket of perSecond.values()) {
    server += bucket.server;
    retries += bucket.retries;
  }
  $("failed-attempts").textContent = fmt(server);
  $("retries").textContent = fmt(retries);
  const origin = run.startedAt || pageLoadedAt;
  const rel = (Date.now() - origin) / 1000;
  $("clock").textContent = `T+${rel.toFixed(1)} s · ${new Date().toLocaleTimeString("en-GB", { hour12: false })}`;
}

function recordSeries(status) {
  const s = run.series;
  const second = Math.floor(Date.now() / 1000) - 1; // the last complete second
  if (s.t.length && s.t[s.t.length - 1] >= second) return;
  const bucket = perSecond.get(second) || { offered: 0, ok: 0, client: 0, server: 0, retries: 0 };
  s.t.push(second);
  s.offered.push(bucket.offered);
  s.ok.push(bucket.ok);
  s.client.push(bucket.client);
  s.server.push(bucket.server);
  s.retries.push(bucket.retries);
  s.visible.push(status.queue.visible);
  s.inFlight.push(status.queue.in_flight);
  s.deadLetter.push(status.queue.dead_letter);
  for (const instance of status.instances) {
    if (!s.counts[instance.name]) s.counts[instance.name] = s.t.slice(0, -1).map(() => null);
    s.counts[instance.name].push(instance.committed_rows);
  }
  drawCharts();
}

const charts = {};
const palette = { offered: "#8a94a8", ok: "#1a8f5a", client: "#c98a06", server: "#d1343b", retries: "#7a57d1", visible: "#2f6fed", inFlight: "#0d7f86", deadLetter: "#d1343b" };

function makeChart(id, series) {
  const element = $(id);
  const width = Math.max(element.clientWidth, 280);
  const height = element.classList.contains("small") ? 160 : 210;
  return new uPlot(
    {
      width,
      height,
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [{}, { size: 50 }],
      series: [{}, ...series.map(([label, color]) => ({ label, stroke: color, width: 1.6, spanGaps: false }))],
    },
    [[]].concat(series.map(() => [])),
    element,
  );
}

function window_(values) {
  return values.slice(-SERIES_SECONDS);
}

function drawCharts() {
  const s = run.series;
  if (!charts.traffic) {
    charts.traffic = makeChart("traffic-chart", [["offered/s", palette.offered], ["2xx/s", palette.ok], ["4xx/s", palette.client], ["5xx + network errors/s", palette.server], ["retries/s", palette.retries]]);
    charts.queue = makeChart("queue-chart", [["visible", palette.visible], ["in flight", palette.inFlight], ["dead-letter", palette.deadLetter]]);
  }
  const names = Object.keys(s.counts).sort();
  if (!charts.counts && names.length) charts.counts = makeChart("counts-chart", names.map((name, i) => [name, ["#2f6fed", "#7a57d1", "#0d7f86"][i % 3]]));
  const t = window_(s.t);
  charts.traffic.setData([t, window_(s.offered), window_(s.ok), window_(s.client), window_(s.server), window_(s.retries)]);
  charts.queue.setData([t, window_(s.visible), window_(s.inFlight), window_(s.deadLetter)]);
  if (charts.counts) charts.counts.setData([t, ...names.map((name) => window_(s.counts[name]))]);
}

window.addEventListener("resize", () => {
  for (const [name, chart] of Object.entries(charts)) {
    const element = $(`${name}-chart`);
    chart.setSize({ width: Math.max(element.clientWidth, 280), height: chart.height });
  }
});

// ---- download --------------------------------------------------------------------------------------

function download() {
  const t = totals();
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
  renderFaults(config.faults);
  $("start-traffic").addEventListener("click", startTraffic);
  $("stop-traffic").addEventListener("click", stopTraffic);
  $("download").addEventListener("click", download);
  observe("page", `Console opened on the ${config.backend} stack`);
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
  setInterval(showTraffic, 250);
  poll();
}

main().catch((error) => showError("traffic-error", `console failed to start: ${error.message}`));
