// The fault under way as this page follows it: one entry of run.faults from its start to its end.
// Pure state, no DOM: tests/console/fault.test.mjs checks it with Node's test runner.
//
// On AWS the cluster may still read "available" for a while after the call, and a status answered by
// another container of the console function does not know the fault this page started: the entry is
// closed only once the fault was seen running and is no longer, or after FAULT_SETTLE_MS unseen.
// FAULT_SETTLE_MS is the backend's FAULT_SETTLE_TIMEOUT (layers/console/ingest_console/aws.py), the same idea: how
// long a fault just started may show nothing before it counts as over. One value, so the page never
// offers a fault while the container that started the last one still refuses it (409).
export const FAULT_SETTLE_MS = 5 * 60 * 1000;

// The page started `started` (the backend's answer to POST faults), or saw it running, at `now`.
export function followFault(run, started, now) {
  run.openFault = { entry: { ...started }, seenRunning: false, since: now };
  run.faults.push(run.openFault.entry);
}

// A status answered at `at` (the backend's clock) reported `fault`: the last one, running (no
// ended_at), ended, or null. `now` is the page's clock.
export function noteFault(run, fault, at, now) {
  const running = Boolean(fault && !fault.ended_at);
  if (running && !run.openFault) followFault(run, fault, now); // started elsewhere or before the page opened
  if (running) {
    run.openFault.seenRunning = true;
    return;
  }
  const open = run.openFault;
  if (!open) return;
  const sameRun = Boolean(fault) && fault.started_at === open.entry.started_at;
  if (sameRun || open.seenRunning || now - open.since > FAULT_SETTLE_MS) {
    Object.assign(open.entry, {
      ended_at: (sameRun && fault.ended_at) || at.toISOString(),
      error: (sameRun && fault.error) || null,
    });
    run.openFault = null;
  }
}
