// Builders shared by the console page's tests: a run with requests in the states the page gives them.

import { createRun, newRequest } from "../../functions/console/static/run.js";

export const SECOND = 1000;
let keys = 0;
export const freshKey = () => `key-${(keys += 1)}`;

export function startedRun() {
  const run = createRun();
  run.id = "testrun";
  run.startedAt = 0;
  return run;
}

// A request of `run` that got its 2xx with `requestId` at `acknowledgedAt`.
export function acknowledged(run, requestId, acknowledgedAt) {
  const request = newRequest(run, freshKey(), acknowledgedAt - 50);
  Object.assign(request, { attempts: 1, status: 202, requestId, acknowledgedAt });
  return request;
}

// A request of `run` still without a final answer, or with the final `status` and no request id.
export function unacknowledged(run, status = null) {
  const request = newRequest(run, freshKey(), 0);
  request.status = status;
  return request;
}
