// The page's two servers: the console API (./api/) and the ingest API it is the client of
// (POST ../customers). Every URL is relative to the page (/console/ locally, /{stage}/console/ on AWS).

import { auth, authHeaders, renewToken, signInLapsed } from "./signin.js";
import { count } from "./run.js";

const API = "api/";
const CUSTOMERS_URL = "../customers";
const MAX_RETRY_WAIT_MS = 2000;
const GIVE_UP_AFTER_MS = 5 * 60 * 1000;

// GET (no body) or POST `body` as JSON to the console API; its answer, or an Error with the API's message.
export async function api(path, body, renewed = false) {
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

// Sends `request` (run.js's newRequest) until it has a final answer: a 2xx with a request id
// (acknowledged), a 4xx, or none for GIVE_UP_AFTER_MS. A 5xx or a network error is asked again with
// the same Idempotency-Key and body, after Retry-After (at most MAX_RETRY_WAIT_MS).
export async function sendCustomer(run, request) {
  const deadline = request.sentAt + GIVE_UP_AFTER_MS;
  for (;;) {
    request.attempts += 1;
    if (request.attempts > 1) count(run, "retries", Date.now());
    let waitMs = 500;
    try {
      const response = await fetch(CUSTOMERS_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": request.key, ...authHeaders() },
        body: request.body,
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok && answer.request_id) {
        count(run, "ok", Date.now());
        request.status = response.status;
        request.requestId = answer.request_id;
        request.acknowledgedAt = Date.now();
        return;
      }
      if (response.status === 401 && auth.config && !request.renewed) {
        request.renewed = true; // the token expired on the way: once more with a renewed one
        if (await renewToken()) continue;
        signInLapsed();
      }
      if (!response.ok && response.status < 500) {
        count(run, "client", Date.now());
        request.status = response.status; // final: the request itself is wrong (or not allowed)
        return;
      }
      // A 5xx, or a 2xx whose answer could not be read (the connection cut mid-body): not told, so
      // asked again with the same key, which the API answers with the same request id.
      count(run, "server", Date.now());
      waitMs = 1000 * Number(response.headers.get("Retry-After") || 0.5);
    } catch {
      count(run, "server", Date.now()); // a network error: no answer at all
    }
    if (Date.now() > deadline) {
      request.status = "gave up";
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, MAX_RETRY_WAIT_MS)));
  }
}
