// Which acknowledged ids each reconcile asks about (selectBatch), and the run's totals
// (functions/console/static/verdict.js), as docs/design.md "The demo console" states them.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { recordAnswer, selectBatch, totals } from "../../functions/console/static/verdict.js";
import { acknowledged, SECOND, startedRun, unacknowledged } from "./helpers.mjs";

const MAX_IDS = 900;

// A run with `open` acknowledged ids not yet seen committed (o-0, o-1, ...) and `done` seen committed
// (d-0, d-1, ...), in that order of their 2xx.
function runWith({ open = 0, done = 0 }) {
  const run = startedRun();
  for (let i = 0; i < open; i++) acknowledged(run, `o-${i}`, SECOND);
  for (let i = 0; i < done; i++) acknowledged(run, `d-${i}`, SECOND).committed = true;
  return run;
}

const ids = (batch) => batch.map((r) => r.requestId);
const range = (prefix, from, to) => Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);

describe("reconcile batches", () => {
  test("a batch holds at most 900 ids, and the ids not yet committed take turns", () => {
    // GIVEN 2,000 acknowledged ids, none seen committed
    const run = runWith({ open: 2000 });
    // WHEN three batches are chosen one after the other
    const first = selectBatch(run.requests, MAX_IDS, run.cursors);
    const second = selectBatch(run.requests, MAX_IDS, first.cursors);
    const third = selectBatch(run.requests, MAX_IDS, second.cursors);
    // THEN each holds 900, going on where the last stopped and round to the start again
    assert.deepEqual(ids(first.batch), range("o", 0, 900));
    assert.deepEqual(ids(second.batch), range("o", 900, 1800));
    assert.deepEqual(ids(third.batch), [...range("o", 1800, 2000), ...range("o", 0, 700)]);
  });

  test("a fifth of a full batch checks again, in turns, ids already seen committed", () => {
    // GIVEN 1,000 ids not yet seen committed and 1,000 seen committed
    const run = runWith({ open: 1000, done: 1000 });
    // WHEN two batches are chosen one after the other
    const first = selectBatch(run.requests, MAX_IDS, run.cursors);
    const second = selectBatch(run.requests, MAX_IDS, first.cursors);
    // THEN each has 720 not yet committed first, then 180 already committed, the second the next 180
    assert.deepEqual(ids(first.batch), [...range("o", 0, 720), ...range("d", 0, 180)]);
    assert.deepEqual(ids(second.batch), [...range("o", 720, 1000), ...range("o", 0, 440), ...range("d", 180, 360)]);
  });

  test("ids already committed fill the room the others leave", () => {
    // GIVEN 10 ids not yet seen committed and 1,000 seen committed
    const run = runWith({ open: 10, done: 1000 });
    // WHEN a batch is chosen
    const { batch, cursors } = selectBatch(run.requests, MAX_IDS, run.cursors);
    // THEN it holds all 10, then 890 committed ones; the next batch starts the 10 over
    assert.deepEqual(ids(batch), [...range("o", 0, 10), ...range("d", 0, 890)]);
    assert.deepEqual(cursors, { pending: 0, recheck: 890 });
  });

  test("a request without a 2xx is never asked about", () => {
    // GIVEN a run with one acknowledged id, one request still unanswered and one answered 400
    const run = startedRun();
    unacknowledged(run);
    acknowledged(run, "o-0", SECOND);
    unacknowledged(run, 400);
    // WHEN a batch is chosen
    // THEN it holds the acknowledged id only
    assert.deepEqual(ids(selectBatch(run.requests, MAX_IDS, run.cursors).batch), ["o-0"]);
  });
});

describe("totals", () => {
  test("every acknowledged id counts once, in one verdict; the rest comes from the backend's run summary", () => {
    // GIVEN a run of 7 requests: one unanswered, one answered 400, and five acknowledged that a check
    // two minutes later, the database writable all along, finds committed (two), dead-lettered (one),
    // both (one: committed wins), neither (one: lost)
    const run = startedRun();
    unacknowledged(run);
    unacknowledged(run, 400);
    const batch = ["c-1", "c-2", "dl-1", "both-1", "gone-1"].map((id) => acknowledged(run, id, SECOND));
    const facts = { checkedAt: 121 * SECOND, queueEmptyAt: null, writableFor: 120 * SECOND };
    recordAnswer(batch, { committed: ["c-1", "c-2", "both-1"], dead_lettered: ["dl-1", "both-1"] }, facts);
    // ... and one more acknowledged, not yet checked
    acknowledged(run, "new-1", 120 * SECOND);
    run.reconciled = { rows: 4, duplicates: 1, stale_profiles: 2, lag_p50_ms: 12.5, lag_p99_ms: 80 };
    // WHEN the totals are taken
    // THEN they add up: acknowledged = committed + dead-lettered + lost + pending
    assert.deepEqual(totals(run), {
      offered: 8,
      acknowledged: 6,
      committed: 3,
      dead_lettered: 1,
      lost: 1,
      pending: 1,
      rows: 4,
      duplicates: 1,
      stale_profiles: 2,
      lag_p50_ms: 12.5,
      lag_p99_ms: 80,
    });
  });

  test("before any reconciliation the backend's figures are zero and the lags unknown", () => {
    // GIVEN a run with one acknowledged request and no reconcile answer yet
    const run = startedRun();
    acknowledged(run, "o-0", SECOND);
    // WHEN the totals are taken
    // THEN it is pending, and rows, duplicates and stale profiles are 0, the lags null
    const t = totals(run);
    assert.deepEqual([t.pending, t.rows, t.duplicates, t.stale_profiles, t.lag_p50_ms, t.lag_p99_ms], [1, 0, 0, 0, null, null]);
  });
});
