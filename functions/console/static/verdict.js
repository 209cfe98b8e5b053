// The verdict on each acknowledged request, and which ids each reconcile asks about. Pure functions
// over the run (run.js), no DOM: tests/console/verdict.test.mjs checks them with Node's test runner.
//
// An acknowledged id (a 2xx with a request id) is committed when the ledger holds it, dead-lettered
// when it is parked in the dead-letter queue (not lost: the redrive brings it back), lost when it is
// neither and the pipeline has had its chance, pending otherwise. The pipeline has had its chance
// when, at one of the id's checks, the queue had been seen empty after the 2xx and before the check,
// or the check came over LOST_AFTER_MS after the 2xx while the database had been writable for over
// WRITABLE_FOR_MS. Once it has had its chance it keeps it: a later outage does not turn lost back
// into pending, only a check that finds the id committed or dead-lettered changes the verdict.

export const LOST_AFTER_MS = 60 * 1000;
export const WRITABLE_FOR_MS = 30 * 1000;
export const RECHECK_SHARE = 0.2; // of each reconcile batch: ids already seen committed, checked again

// What the page has seen of the backend that the verdict rests on.
export function createWatch() {
  return { writable: null, writableSince: null, queueEmptyAt: null };
}

// A status said whether the database is writable; true when that changed (null at first: no change).
export function noteDatabase(watch, writable, now) {
  const changed = watch.writable !== null && watch.writable !== writable;
  if (writable && watch.writable !== true) watch.writableSince = now;
  watch.writable = writable;
  return changed;
}

// A status asked at `askedAt` found `depth` messages queued (visible + in flight).
export function noteQueueDepth(watch, depth, askedAt) {
  if (depth === 0) watch.queueEmptyAt = askedAt;
}

// The facts a check sent at `now` is judged by: a later status does not change them.
export function checkContext(watch, now) {
  return {
    checkedAt: now,
    queueEmptyAt: watch.queueEmptyAt, // seen before this check was sent
    writableFor: watch.writable ? now - watch.writableSince : null, // null: not writable
  };
}

// Up to maxIds acknowledged requests to check: first those not yet seen committed (in turns when
// there are more than fit), then a rolling slice of those already seen committed (at least a
// RECHECK_SHARE of the batch when there are that many), so every id is checked again every few
// seconds and a row deleted later turns up as lost. `cursors` says where the last batch ended; the
// answer has the cursors for the next one.
export function selectBatch(requests, maxIds, cursors) {
  const acknowledged = requests.filter((r) => r.requestId);
  const open = acknowledged.filter((r) => !r.committed);
  const done = acknowledged.filter((r) => r.committed);
  const openRoom = maxIds - Math.min(done.length, Math.floor(maxIds * RECHECK_SHARE));
  const batch = [];
  for (let i = 0; i < Math.min(open.length, openRoom); i++) batch.push(open[(cursors.pending + i) % open.length]);
  const room = maxIds - batch.length;
  for (let i = 0; i < Math.min(done.length, room); i++) batch.push(done[(cursors.recheck + i) % done.length]);
  return {
    batch,
    cursors: {
      pending: open.length > openRoom ? (cursors.pending + openRoom) % open.length : 0,
      recheck: done.length ? (cursors.recheck + Math.min(done.length, room)) % done.length : 0,
    },
  };
}

// Records the backend's answer about `batch` (the ledger's committed ids, the dead-letter queue's),
// judged by the facts of the moment the check was sent (`context`, from checkContext).
export function recordAnswer(batch, answer, context) {
  const committed = new Set(answer.committed);
  const deadLettered = new Set(answer.dead_lettered);
  for (const request of batch) {
    request.committed = committed.has(request.requestId);
    request.deadLettered = deadLettered.has(request.requestId);
    request.checkedAt = context.checkedAt;
    request.hadItsChance ||= pipelineHadItsChance(request, context);
  }
}

function pipelineHadItsChance(request, { checkedAt, queueEmptyAt, writableFor }) {
  const drainedSince = queueEmptyAt !== null && queueEmptyAt > request.acknowledgedAt;
  const overdue = checkedAt - request.acknowledgedAt > LOST_AFTER_MS && writableFor !== null && writableFor > WRITABLE_FOR_MS;
  return drainedSince || overdue;
}

// "committed", "dead-lettered", "lost" or "pending"; null for a request not acknowledged.
export function verdictOf(request) {
  if (!request.requestId) return null;
  if (request.committed) return "committed";
  if (request.deadLettered) return "dead-lettered";
  return request.hadItsChance ? "lost" : "pending";
}

// The run's figures: the page's own per verdict, the backend's last run summary for the rest.
export function totals(run) {
  const byVerdict = { committed: 0, "dead-lettered": 0, lost: 0, pending: 0 };
  let acknowledged = 0;
  for (const request of run.requests) {
    const verdict = verdictOf(request);
    if (verdict === null) continue;
    acknowledged += 1;
    byVerdict[verdict] += 1;
  }
  const summary = run.reconciled || {};
  return {
    offered: run.requests.length,
    acknowledged,
    committed: byVerdict.committed,
    pending: byVerdict.pending,
    lost: byVerdict.lost,
    duplicates: summary.duplicates ?? 0,
    stale_profiles: summary.stale_profiles ?? 0,
    dead_lettered: byVerdict["dead-lettered"],
    rows: summary.rows ?? 0,
    lag_p50_ms: summary.lag_p50_ms ?? null,
    lag_p99_ms: summary.lag_p99_ms ?? null,
  };
}

// When the oldest acknowledged request not yet committed nor dead-lettered got its 2xx (null: none).
export function oldestUncommittedAt(requests) {
  let oldest = null;
  for (const r of requests) {
    if (r.acknowledgedAt && !r.committed && !r.deadLettered && (oldest === null || r.acknowledgedAt < oldest)) oldest = r.acknowledgedAt;
  }
  return oldest;
}
