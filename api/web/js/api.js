// Every request to vigil's API goes through here: the key of this browser tab as a Bearer header,
// errors turned into sentences for a person, and one place that notices a key stopped working.

const KEY_ITEM = "vigil.key";

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.path = path;
  }
}

/** The key lives in sessionStorage: this tab only, gone when it closes. */
export const keyStore = {
  get: () => sessionStorage.getItem(KEY_ITEM) || "",
  set: (key) => sessionStorage.setItem(KEY_ITEM, key),
  clear: () => sessionStorage.removeItem(KEY_ITEM),
};

let unauthorized = () => {};
let keyRequired = true;
/** Whether the server wants a key (api.auth); without one, requests are not even sent. */
export const setKeyRequired = (yes) => { keyRequired = yes; };
/** Called once per request that got 401 (expired or revoked key) with the server's message. */
export const onUnauthorized = (fn) => { unauthorized = fn; };

export function authHeaders(extra = {}, key = keyStore.get()) {
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

/** Why a key looks wrong before asking the server (a 401 is a red line in the console). */
export function keyProblem(key) {
  if (!key) return "Enter your API key.";
  if (!/^vgl_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}$/.test(key)) {
    return "That does not look like a vigil key: keys look like vgl_ followed by 12 hex digits, _ and a secret.";
  }
  return "";
}

function explain(status, detail) {
  switch (status) {
    case 401: return `Your key is no longer accepted (${detail}). It may have been revoked or expired: sign in again.`;
    case 403: return `Your key's role does not allow this (${detail}).`;
    case 422: return `The server refused the request: ${detail}.`;
    case 503: return `The server is busy or its storage is unavailable (${detail}). Try again in a moment.`;
    default: return detail;
  }
}

async function detailOf(res) {
  try {
    const body = await res.json();
    if (body && typeof body.detail === "string") return body.detail;
  } catch { /* not JSON */ }
  return res.statusText || `HTTP ${res.status}`;
}

/**
 * fetch() with the key. Resolves with the Response for 2xx and 304; throws ApiError otherwise
 * (status 0 when the server cannot be reached). AbortError passes through untouched.
 */
export async function request(path, { headers = {}, signal, key } = {}) {
  if (key === undefined && keyRequired && !keyStore.get()) {
    // Signed out (maybe a moment ago, while this part of the page was still busy): no request,
    // so no 401 to log.
    throw new ApiError(401, "Signed out.", path);
  }
  let res;
  try {
    res = await fetch(path, { headers: authHeaders(headers, key ?? keyStore.get()), signal, cache: "no-store" });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "The vigil server cannot be reached (network down or server stopped).", path);
  }
  if (res.ok || res.status === 304) return res;
  const detail = await detailOf(res);
  if (res.status === 401 && key === undefined) unauthorized(detail);
  throw new ApiError(res.status, explain(res.status, detail), path);
}

export async function getJson(path, opts) {
  return (await request(path, opts)).json();
}

/** Path segment for a camera id (ids are [a-z0-9_-], but never trust that in a URL). */
export const cam = (id) => `/api/cameras/${encodeURIComponent(id)}`;
