// Sign-in, on AWS only: config.json is served there; locally it is absent and auth is off. The
// authorization-code flow with PKCE against Cognito's public app client, tokens in sessionStorage.

export const auth = {
  config: null,
  token: sessionStorage.getItem("console.token"),
  refreshToken: sessionStorage.getItem("console.refresh"),
  refreshing: null, // the refresh under way, shared by every request that needs it
  refreshTimer: null,
  keepsRun: () => false, // the page's answer to a lapsed sign-in: true when it stopped traffic instead
};
// The access token lasts an hour: it is renewed this long before it expires.
const REFRESH_BEFORE_EXPIRY_MS = 5 * 60 * 1000;

export async function loadAuthConfig() {
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

export async function signIn() {
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

export async function finishSignIn() {
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
export function renewToken() {
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

// The sign-in has lapsed and cannot be renewed: while traffic runs the run is kept (auth.keepsRun
// stops the traffic), not left for the sign-in.
export function signInLapsed() {
  if (auth.keepsRun()) return;
  sessionStorage.removeItem("console.token");
  signIn();
}

export function authHeaders() {
  return auth.token ? { Authorization: auth.token } : {};
}
