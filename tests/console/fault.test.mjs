// How the console page follows a fault (functions/console/static/fault.js): from the backend's
// answer to its start until the status shows it ended, or FAULT_SETTLE_MS pass without a sign of it.

import assert from "node:assert/strict";
import { test } from "node:test";

import { FAULT_SETTLE_MS, followFault, noteFault } from "../../functions/console/static/fault.js";
import { SECOND, startedRun } from "./helpers.mjs";

const STARTED = { name: "failover", seconds: null, started_at: "2026-01-31T12:00:00+00:00", ended_at: null, error: null };
const STARTED_AT_MS = Date.parse(STARTED.started_at);
const statusAt = (ms) => new Date(ms);

test("a fault the status never reports is followed for FAULT_SETTLE_MS, then closed", () => {
  // GIVEN a fault the page started, and statuses that do not know it (another container answers,
  // the cluster still reads available)
  const run = startedRun();
  followFault(run, STARTED, STARTED_AT_MS);
  // WHEN statuses come FAULT_SETTLE_MS after it, then a millisecond later
  noteFault(run, null, statusAt(STARTED_AT_MS + FAULT_SETTLE_MS), STARTED_AT_MS + FAULT_SETTLE_MS);
  const openAtTheLimit = run.openFault !== null;
  const lastStatus = STARTED_AT_MS + FAULT_SETTLE_MS + 1;
  noteFault(run, null, statusAt(lastStatus), lastStatus);
  // THEN it is still followed at the first, and ended at the second's time, without error
  assert.equal(openAtTheLimit, true);
  assert.equal(run.openFault, null);
  assert.deepEqual(run.faults, [{ ...STARTED, ended_at: new Date(lastStatus).toISOString(), error: null }]);
});

test("a fault seen running closes when a status no longer reports it", () => {
  // GIVEN a fault the page started and a status that reported it running
  const run = startedRun();
  followFault(run, STARTED, STARTED_AT_MS);
  noteFault(run, STARTED, statusAt(STARTED_AT_MS + SECOND), STARTED_AT_MS + SECOND);
  // WHEN the next status (from a container that does not know it) reports none
  noteFault(run, null, statusAt(STARTED_AT_MS + 2 * SECOND), STARTED_AT_MS + 2 * SECOND);
  // THEN it is closed at that status's time
  assert.equal(run.openFault, null);
  assert.equal(run.faults[0].ended_at, new Date(STARTED_AT_MS + 2 * SECOND).toISOString());
});

test("a fault the status reports ended closes with the backend's end and error", () => {
  // GIVEN a fault the page started
  const run = startedRun();
  followFault(run, STARTED, STARTED_AT_MS);
  // WHEN a status reports that same fault ended with an error
  const ended = { ...STARTED, ended_at: "2026-01-31T12:00:30+00:00", error: "cluster not found" };
  noteFault(run, ended, statusAt(STARTED_AT_MS + 40 * SECOND), STARTED_AT_MS + 40 * SECOND);
  // THEN the page's entry has the backend's end and error
  assert.equal(run.openFault, null);
  assert.deepEqual(run.faults, [ended]);
});

test("a fault started elsewhere is followed from the status that reports it running", () => {
  // GIVEN a page that started no fault
  const run = startedRun();
  // WHEN a status reports one running (started by the ops CLI, by RDS, or before the page opened)
  noteFault(run, STARTED, statusAt(STARTED_AT_MS + SECOND), STARTED_AT_MS + SECOND);
  // THEN the page follows it as running
  assert.deepEqual(run.openFault, { entry: STARTED, seenRunning: true, since: STARTED_AT_MS + SECOND });
  assert.deepEqual(run.faults, [STARTED]);
});
