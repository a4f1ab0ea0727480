// Times and durations as people in the command center read them.
// The API speaks µs since the epoch (UTC); the page keeps ms (what Date uses) and shows either the
// browser's local time or UTC, as chosen in the top bar (kept for the tab's session).

const ZONE_ITEM = "vigil.zone";
let zone = sessionStorage.getItem(ZONE_ITEM) === "UTC" ? "UTC" : "local";
const listeners = new Set();

export const getZone = () => zone;

export function setZone(z) {
  zone = z === "UTC" ? "UTC" : "local";
  sessionStorage.setItem(ZONE_ITEM, zone);
  listeners.forEach((fn) => fn(zone));
}

export const onZoneChange = (fn) => listeners.add(fn);

const pad = (n, w = 2) => String(n).padStart(w, "0");

function parts(ms) {
  const d = new Date(ms);
  return zone === "UTC"
    ? { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), ms: d.getUTCMilliseconds() }
    : { y: d.getFullYear(), mo: d.getMonth() + 1, d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds(), ms: d.getMilliseconds() };
}

/** "UTC" or "UTC+07:00" for the zone in force at `ms`. */
export function zoneLabel(ms = Date.now()) {
  if (zone === "UTC") return "UTC";
  const off = -new Date(ms).getTimezoneOffset();
  const sign = off >= 0 ? "+" : "−";
  return `UTC${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

/** "14:05:09", or "14:05:09.250" with `withMs`. */
export function clock(ms, withMs = false) {
  const p = parts(ms);
  const t = `${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}`;
  return withMs ? `${t}.${pad(p.ms, 3)}` : t;
}

/** "2026-11-25" (the day `ms` falls on in the chosen zone). */
export function dayOf(ms) {
  const p = parts(ms);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)}`;
}

export const dateTime = (ms, withMs = false) => `${dayOf(ms)} ${clock(ms, withMs)}`;

/** Start of a day ("2026-11-25") in ms; days can be 23 or 25 h long in local time. */
export function dayStart(day) {
  const [y, mo, d] = day.split("-").map(Number);
  return zone === "UTC" ? Date.UTC(y, mo - 1, d) : new Date(y, mo - 1, d).getTime();
}

export function addDays(day, n) {
  const [y, mo, d] = day.split("-").map(Number);
  const t = new Date(Date.UTC(y, mo - 1, d + n));
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}

/** ms of "HH:MM[:SS]" on `day`; "24:00" or a time before `notBefore` rolls to the next day. */
export function timeOnDay(day, hms) {
  const m = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(hms.trim());
  if (!m) return null;
  const [h, mi, s, frac] = [Number(m[1]), Number(m[2]), Number(m[3] || 0), Number((m[4] || "0").padEnd(3, "0"))];
  if (h > 24 || mi > 59 || s > 59) return null;
  const [y, mo, d] = day.split("-").map(Number);
  return zone === "UTC"
    ? Date.UTC(y, mo - 1, d, h, mi, s, frac)
    : new Date(y, mo - 1, d, h, mi, s, frac).getTime();
}

/** "HH:MM:SS" for an <input type=time step=1>. */
export const timeInputValue = (ms) => clock(ms);

/** "8 s", "4 min 12 s", "2 h 05 min", "3 d 4 h". */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** Short form for tiles: "8s", "4m", "2h05", "3d". */
export function shortDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** Epoch seconds with ms precision, as the API's time parameters accept. */
export const apiTime = (ms) => (ms / 1000).toFixed(3);

/** The server's clock minus ours (ms), learnt from documents the server stamps. A stamp is at
 * most ~1 s old when it arrives (the status document is shared), so the largest recent difference
 * is the best estimate; a difference under 2 s is left alone (same machine, or NTP). */
let skewMs = 0;
const skews = [];
export const serverNow = () => Date.now() + skewMs;
export function noteServerTime(serverMs) {
  if (!Number.isFinite(serverMs)) return;
  skews.push(serverMs - Date.now());
  if (skews.length > 10) skews.shift();
  const best = Math.max(...skews);
  skewMs = Math.abs(best) >= 2000 ? best : 0;
}
