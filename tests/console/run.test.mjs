// The console page's run state (functions/console/static/run.js): its requests, counters and series.

import assert from "node:assert/strict";
import { test } from "node:test";

import { count, newRequest, noteRoles, recordSecond, runPrefix, trafficCounts } from "../../functions/console/static/run.js";
import { acknowledged, freshKey, SECOND, startedRun, unacknowledged } from "./helpers.mjs";

test("each request carries its Idempotency-Key in its body too, its place in the run, and a customer of the run", () => {
  // GIVEN a run over 50 customers
  const run = startedRun();
  // WHEN two requests are made
  const [first, second] = [newRequest(run, freshKey(), 0), newRequest(run, freshKey(), 0)];
  // THEN each body carries its key as console_key, and the customer ids are the run's
  for (const [request, sequence] of [[first, 1], [second, 2]]) {
    const body = JSON.parse(request.body);
    assert.deepEqual(body.attributes, { console_key: request.key, sequence });
    assert.match(body.customer_id, new RegExp(`^${runPrefix(run.id)}000[0-4][0-9]$`));
  }
});

test("the traffic counters tell requests by their final answer and attempts by second", () => {
  // GIVEN a run with an acknowledged request, one answered 400, one still unanswered, one given up,
  // and two failed attempts and one retry counted in two seconds
  const run = startedRun();
  acknowledged(run, "r-1", SECOND);
  unacknowledged(run, 400);
  unacknowledged(run);
  unacknowledged(run, "gave up");
  count(run, "server", 1 * SECOND);
  count(run, "server", 2 * SECOND + 500);
  count(run, "retries", 2 * SECOND + 600);
  // WHEN the counters are taken
  // THEN each request is counted under its answer, the attempts over both seconds
  assert.deepEqual(trafficCounts(run), { offered: 4, ok: 1, client: 1, inFlight: 1, gaveUp: 1, failedAttempts: 2, retries: 1 });
});

test("the series takes each complete second once, and an instance first seen late has gaps before", () => {
  // GIVEN a run with two requests offered in second 9
  const run = startedRun();
  count(run, "offered", 9 * SECOND);
  count(run, "offered", 9 * SECOND + 999);
  const status = (instances) => ({ queue: { visible: 3, in_flight: 1, dead_letter: 0 }, instances });
  // WHEN statuses come at 10.2 s and 10.8 s (the same second), then at 11.1 s with a second instance
  const added = [
    recordSecond(run, status([{ name: "db-a", committed_rows: 5 }]), 10.2 * SECOND),
    recordSecond(run, status([{ name: "db-a", committed_rows: 6 }]), 10.8 * SECOND),
    recordSecond(run, status([{ name: "db-a", committed_rows: 7 }, { name: "db-b", committed_rows: 7 }]), 11.1 * SECOND),
  ];
  // THEN seconds 9 and 10 are in once each, with their counts, and db-b has a gap for second 9
  assert.deepEqual(added, [true, false, true]);
  assert.deepEqual(run.series.t, [9, 10]);
  assert.deepEqual(run.series.offered, [2, 0]);
  assert.deepEqual(run.series.visible, [3, 3]);
  assert.deepEqual(run.series.counts, { "db-a": [5, 7], "db-b": [null, 7] });
});

test("the roles before the run are the first a status reports after its start", () => {
  // GIVEN a page whose first status comes before any run
  const run = startedRun();
  run.id = null;
  noteRoles(run, [{ name: "db-a", role: "writer", availability_zone: "a", status: "available" }]);
  // WHEN the run starts and statuses report db-a, then db-b as the writer
  run.id = "testrun";
  noteRoles(run, [{ name: "db-a", role: "writer", availability_zone: "a" }]);
  noteRoles(run, [{ name: "db-b", role: "writer", availability_zone: "b" }]);
  // THEN the roles before are db-a's (from after the start), the roles after db-b's
  assert.deepEqual(run.rolesBefore, [{ name: "db-a", role: "writer", availability_zone: "a" }]);
  assert.deepEqual(run.rolesAfter, [{ name: "db-b", role: "writer", availability_zone: "b" }]);
});
