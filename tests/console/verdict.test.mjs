// The console page's verdict on each acknowledged request (functions/console/static/verdict.js),
// as docs/design.md "The demo console" states it.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  checkContext,
  createWatch,
  LOST_AFTER_MS,
  noteDatabase,
  noteQueueDepth,
  recordAnswer,
  verdictOf,
  WRITABLE_FOR_MS,
} from "../../functions/console/static/verdict.js";
import { acknowledged, SECOND, startedRun, unacknowledged } from "./helpers.mjs";

const ACKNOWLEDGED_AT = 100 * SECOND;

// The facts of a check sent at `checkedAt`: when the queue was last seen empty, how long the
// database had been writable (null: not writable).
function context(checkedAt, { queueEmptyAt = null, writableFor = null } = {}) {
  return { checkedAt, queueEmptyAt, writableFor };
}

function answer({ committed = [], deadLettered = [] } = {}) {
  return { committed, dead_lettered: deadLettered, run: {} };
}

// One request acknowledged at ACKNOWLEDGED_AT, then checked once with `facts` and answered `reply`.
function verdictAfterOneCheck(facts, reply = answer()) {
  const request = acknowledged(startedRun(), "r-1", ACKNOWLEDGED_AT);
  recordAnswer([request], reply, facts);
  return verdictOf(request);
}

describe("each verdict", () => {
  test("an id the ledger holds is committed", () => {
    // GIVEN an acknowledged request
    // WHEN a check finds it in the ledger
    // THEN it is committed
    assert.equal(verdictAfterOneCheck(context(ACKNOWLEDGED_AT + SECOND), answer({ committed: ["r-1"] })), "committed");
  });

  test("an id parked in the dead-letter queue is dead-lettered, not lost, even after the pipeline had its chance", () => {
    // GIVEN an acknowledged request whose check comes after the queue was seen empty, well past the
    // minute, the database writable all along
    const facts = context(ACKNOWLEDGED_AT + 2 * LOST_AFTER_MS, { queueEmptyAt: ACKNOWLEDGED_AT + SECOND, writableFor: 10 * LOST_AFTER_MS });
    // WHEN the check finds it in the dead-letter queue, not in the ledger
    // THEN it is dead-lettered (the redrive brings it back), not lost
    assert.equal(verdictAfterOneCheck(facts, answer({ deadLettered: ["r-1"] })), "dead-lettered");
  });

  test("an id not yet checked is pending, however old", () => {
    // GIVEN a request acknowledged long ago
    const request = acknowledged(startedRun(), "r-1", ACKNOWLEDGED_AT);
    // WHEN no reconcile has asked about it yet
    // THEN it is pending
    assert.equal(verdictOf(request), "pending");
  });

  test("a request without a 2xx has no verdict", () => {
    // GIVEN a request answered 400 (no request id)
    const request = unacknowledged(startedRun(), 400);
    // WHEN its verdict is asked
    // THEN there is none: it was never acknowledged
    assert.equal(verdictOf(request), null);
  });
});

describe("lost once the queue was seen empty after the 2xx and before the check", () => {
  test("the queue seen empty after the 2xx makes an id not in the ledger lost", () => {
    // GIVEN a check two seconds after the 2xx, the queue seen empty one second after it, the
    // database not writable (so the minute rule cannot apply)
    const facts = context(ACKNOWLEDGED_AT + 2 * SECOND, { queueEmptyAt: ACKNOWLEDGED_AT + SECOND });
    // WHEN the ledger does not hold it
    // THEN it is lost: the queue had delivered everything queued after it
    assert.equal(verdictAfterOneCheck(facts), "lost");
  });

  test("the queue seen empty at the moment of the 2xx or before it leaves the id pending", () => {
    for (const queueEmptyAt of [ACKNOWLEDGED_AT - SECOND, ACKNOWLEDGED_AT]) {
      // GIVEN a check soon after the 2xx, the queue last seen empty at or before the 2xx
      const facts = context(ACKNOWLEDGED_AT + 2 * SECOND, { queueEmptyAt, writableFor: 10 * LOST_AFTER_MS });
      // WHEN the ledger does not hold it
      // THEN it is pending: the message may still be on its way
      assert.equal(verdictAfterOneCheck(facts), "pending", `queue empty at ${queueEmptyAt}`);
    }
  });
});

describe("lost when the check came over 60 s after the 2xx with the database writable for over 30 s", () => {
  const longWritable = { writableFor: 10 * LOST_AFTER_MS };

  test("a check exactly 60 s after the 2xx leaves it pending, one a millisecond later makes it lost", () => {
    // GIVEN the database writable for ten minutes, the queue never seen empty
    // WHEN the ledger does not hold the id at a check 60 s, then 60.001 s after the 2xx
    // THEN it is pending at the first, lost at the second
    assert.equal(verdictAfterOneCheck(context(ACKNOWLEDGED_AT + LOST_AFTER_MS, longWritable)), "pending");
    assert.equal(verdictAfterOneCheck(context(ACKNOWLEDGED_AT + LOST_AFTER_MS + 1, longWritable)), "lost");
  });

  test("a database writable for exactly 30 s leaves it pending, for a millisecond more makes it lost", () => {
    // GIVEN a check two minutes after the 2xx, the queue never seen empty
    const checkedAt = ACKNOWLEDGED_AT + 2 * LOST_AFTER_MS;
    // WHEN the database had been writable for 30 s, then 30.001 s, when the check was sent
    // THEN the id is pending at the first, lost at the second
    assert.equal(verdictAfterOneCheck(context(checkedAt, { writableFor: WRITABLE_FOR_MS })), "pending");
    assert.equal(verdictAfterOneCheck(context(checkedAt, { writableFor: WRITABLE_FOR_MS + 1 })), "lost");
  });

  test("a database not writable at the check leaves it pending however late the check", () => {
    // GIVEN a check ten minutes after the 2xx, the queue never seen empty
    // WHEN the database was not writable when the check was sent
    // THEN the id is pending: the pipeline has not had its chance
    assert.equal(verdictAfterOneCheck(context(ACKNOWLEDGED_AT + 10 * LOST_AFTER_MS)), "pending");
  });
});

describe("a verdict over several checks", () => {
  test("a later outage does not turn lost back into pending", () => {
    // GIVEN an id lost at a check 61 s after its 2xx with the database writable for 31 s
    const request = acknowledged(startedRun(), "r-1", ACKNOWLEDGED_AT);
    recordAnswer([request], answer(), context(ACKNOWLEDGED_AT + 61 * SECOND, { writableFor: 31 * SECOND }));
    assert.equal(verdictOf(request), "lost");
    // WHEN the next check is sent during an outage (the database not writable) and the ledger still
    // does not hold it
    recordAnswer([request], answer(), context(ACKNOWLEDGED_AT + 62 * SECOND));
    // THEN it is still lost
    assert.equal(verdictOf(request), "lost");
  });

  test("a lost id that a later check finds in the ledger is committed", () => {
    // GIVEN an id lost at one check
    const request = acknowledged(startedRun(), "r-1", ACKNOWLEDGED_AT);
    recordAnswer([request], answer(), context(ACKNOWLEDGED_AT + 2 * SECOND, { queueEmptyAt: ACKNOWLEDGED_AT + SECOND }));
    assert.equal(verdictOf(request), "lost");
    // WHEN the next check finds it committed
    recordAnswer([request], answer({ committed: ["r-1"] }), context(ACKNOWLEDGED_AT + 3 * SECOND));
    // THEN it is committed
    assert.equal(verdictOf(request), "committed");
  });

  test("a committed row that disappears from the ledger turns up as lost", () => {
    // GIVEN an id committed at a check after the queue was seen empty
    const request = acknowledged(startedRun(), "r-1", ACKNOWLEDGED_AT);
    const facts = context(ACKNOWLEDGED_AT + 2 * SECOND, { queueEmptyAt: ACKNOWLEDGED_AT + SECOND });
    recordAnswer([request], answer({ committed: ["r-1"] }), facts);
    assert.equal(verdictOf(request), "committed");
    // WHEN a later check no longer finds it
    recordAnswer([request], answer(), context(ACKNOWLEDGED_AT + 10 * SECOND, { queueEmptyAt: ACKNOWLEDGED_AT + SECOND }));
    // THEN it is lost
    assert.equal(verdictOf(request), "lost");
  });
});

describe("the facts a check is judged by", () => {
  test("the database counts as writable from the status that first found it so, and not at all while down", () => {
    // GIVEN a page that has seen the database down, then writable from t = 10 s
    const watch = createWatch();
    assert.equal(noteDatabase(watch, false, 0), false); // the first status: nothing changed yet
    assert.equal(noteDatabase(watch, true, 10 * SECOND), true);
    assert.equal(noteDatabase(watch, true, 20 * SECOND), false);
    // WHEN checks are sent at t = 45 s, and after it went down again at t = 50 s
    const whileWritable = checkContext(watch, 45 * SECOND);
    assert.equal(noteDatabase(watch, false, 50 * SECOND), true);
    const whileDown = checkContext(watch, 55 * SECOND);
    // THEN the first was sent with the database writable for 35 s, the second with it not writable
    assert.equal(whileWritable.writableFor, 35 * SECOND);
    assert.equal(whileDown.writableFor, null);
  });

  test("the queue counts as seen empty when a status asked at that moment found no message, visible or in flight", () => {
    // GIVEN statuses asked at t = 1 s (empty) and t = 2 s (one message in flight)
    const watch = createWatch();
    noteQueueDepth(watch, 0, 1 * SECOND);
    noteQueueDepth(watch, 1, 2 * SECOND);
    // WHEN a check is sent at t = 3 s
    // THEN the queue was last seen empty at t = 1 s, when that status was asked
    assert.equal(checkContext(watch, 3 * SECOND).queueEmptyAt, 1 * SECOND);
  });
});
