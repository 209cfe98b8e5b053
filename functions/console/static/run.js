// The run: what the page sent and what it was told. Pure state, no DOM: the page's other modules
// change it, and tests/console/ checks it with Node's test runner.

export const SERIES_SECONDS = 300; // what the charts keep

export function createRun() {
  return {
    id: null,
    startedAt: null, // ms since the epoch, first Start
    requests: [], // one per Idempotency-Key
    sequence: 0,
    rate: 20,
    customers: 50,
    rolesBefore: null,
    rolesAfter: null,
    reconciled: null, // the last reconciliation's run summary
    cursors: { pending: 0, recheck: 0 }, // where the next reconcile batch goes on (verdict.js)
    timeline: [],
    perSecond: new Map(), // second -> {offered, ok, client, server, retries}
    series: { t: [], offered: [], ok: [], client: [], server: [], retries: [], visible: [], inFlight: [], deadLetter: [], counts: {} },
    faults: [],
    openFault: null, // the fault being followed (fault.js)
  };
}

export function newRunId() {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => alphabet[b % alphabet.length]).join("");
}

export function runPrefix(id) {
  return `console-${id}-`;
}

// The next logical request of the run, for a customer out of the run's `customers`, under `key`: a
// fresh Idempotency-Key that every retry of it reuses.
export function newRequest(run, key, now) {
  run.sequence += 1;
  const customer = String(Math.floor(Math.random() * run.customers)).padStart(5, "0");
  const request = {
    key,
    body: JSON.stringify({
      customer_id: runPrefix(run.id) + customer,
      name: `Customer ${customer}`,
      email: `customer${customer}@example.com`,
      attributes: { console_key: key, sequence: run.sequence },
    }),
    sentAt: now,
    attempts: 0,
    status: null, // final HTTP status; null while unanswered, "gave up" after 5 minutes
    requestId: null,
    acknowledgedAt: null,
    renewed: false, // asked again once with a renewed sign-in
    committed: false,
    deadLettered: false,
    checkedAt: null, // when the last reconcile that asked about it was sent
    hadItsChance: false, // the pipeline had had its chance at one of its checks (verdict.js)
  };
  run.requests.push(request);
  return request;
}

// One more `field` (offered, ok, client, server, retries) in the second of `now`.
export function count(run, field, now) {
  const second = Math.floor(now / 1000);
  let bucket = run.perSecond.get(second);
  if (!bucket) run.perSecond.set(second, (bucket = { offered: 0, ok: 0, client: 0, server: 0, retries: 0 }));
  bucket[field] += 1;
}

// The traffic counters since the run began.
export function trafficCounts(run) {
  const answered = (predicate) => run.requests.filter(predicate).length;
  let failedAttempts = 0;
  let retries = 0;
  for (const bucket of run.perSecond.values()) {
    failedAttempts += bucket.server;
    retries += bucket.retries;
  }
  return {
    offered: run.requests.length,
    ok: answered((r) => r.requestId),
    client: answered((r) => typeof r.status === "number" && r.status < 500 && !r.requestId),
    inFlight: answered((r) => r.status === null),
    gaveUp: answered((r) => r.status === "gave up"),
    failedAttempts,
    retries,
  };
}

// Appends the last complete second before `now` to the series (once per second): the page's counts
// and the backend's status of that moment. False when that second is in already.
export function recordSecond(run, status, now) {
  const s = run.series;
  const second = Math.floor(now / 1000) - 1;
  if (s.t.length && s.t[s.t.length - 1] >= second) return false;
  const bucket = run.perSecond.get(second) || { offered: 0, ok: 0, client: 0, server: 0, retries: 0 };
  s.t.push(second);
  for (const field of ["offered", "ok", "client", "server", "retries"]) s[field].push(bucket[field]);
  s.visible.push(status.queue.visible);
  s.inFlight.push(status.queue.in_flight);
  s.deadLetter.push(status.queue.dead_letter);
  for (const instance of status.instances) {
    // An instance first seen now has no values before: gaps, not zeros.
    if (!s.counts[instance.name]) s.counts[instance.name] = s.t.slice(0, -1).map(() => null);
    s.counts[instance.name].push(instance.committed_rows);
  }
  return true;
}

// The roles a status reported: the first after the run's start are kept as the roles before it.
export function noteRoles(run, instances) {
  const roles = instances.map(({ name, role, availability_zone }) => ({ name, role, availability_zone }));
  if (run.id && !run.rolesBefore && roles.length) run.rolesBefore = roles;
  run.rolesAfter = roles;
}
