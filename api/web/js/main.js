// The page's controller: sign-in, what the key's role may see, the status document and the event
// stream that keep the wall current, and the two views (#/wall, #/timeline/<camera>/<day>).

import { ApiError, getJson, keyProblem, keyStore, onUnauthorized, request, setKeyRequired } from "./api.js";
import { EventStream } from "./events.js";
import { getZone, noteServerTime, onZoneChange, setZone } from "./format.js";
import { Incidents } from "./incidents.js";
import { LiveView } from "./live.js";
import { LiveWall } from "./livewall.js";
import { NetworkView } from "./network.js";
import { setHlsUrl } from "./player.js";
import { TicketsView } from "./tickets.js";
import { Timeline } from "./timeline.js";
import { Wall } from "./wall.js";

const $ = (id) => document.getElementById(id);
// what a role name asks for, as a permission of the session (core/roles.py)
const NEEDS = { viewer: "status", investigator: "recordings", admin: "admin" };
// The event stream carries changes; this read catches cameras added or removed, and cameras whose
// worker stopped reporting (`unknown` after 6 s without a report: no event says so).
const STATUS_POLL_MS = 5000;
const STATUS_TIMEOUT_MS = 15000;

const app = {
  session: null,
  wall: null,
  live: null,
  timeline: null,
  network: null,
  incidents: null,
  stream: null,
  etag: "",
  pollTimer: null,
  statusBusy: false,
  tickets: null,
};

const allows = (needed) => Boolean(app.session) && (app.session.permissions || []).includes(NEEDS[needed] || needed);
/** The weakest links: for those who see recordings (investigators) or work tickets (technicians). */
const canNetwork = () => allows("recordings") || allows("ticket_work");

// ---- messages

let bannerSource = "";

/** One message at a time across the top; `source` lets the part that raised it clear it. */
function banner(text, source = "") {
  $("banner-text").textContent = text;
  $("banner").hidden = !text;
  bannerSource = text ? source : "";
}

// ---- sign-in

async function boot() {
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("signin-key").value.trim());
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("banner-close").addEventListener("click", () => banner(""));
  $("zone-local").addEventListener("click", () => setZone("local"));
  $("zone-utc").addEventListener("click", () => setZone("UTC"));
  onZoneChange(zoneChanged);
  zoneChanged();
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", globalKeys);
  onUnauthorized((detail) => {
    if (app.session) signOut(`Your key is no longer accepted (${detail}). It may have been revoked or expired: sign in again.`);
  });

  let server;
  try {
    server = await getJson("/web/session", { key: "" });
  } catch (e) {
    showSignIn(e.message);
    return;
  }
  setKeyRequired(server.auth_required);
  if (!server.auth_required) return start(server);
  const saved = keyStore.get();
  if (saved && !keyProblem(saved)) return signIn(saved);
  showSignIn("");
}

function showSignIn(message) {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  $("signin-button").disabled = false;
  $("signin-key").focus();
}

async function signIn(key) {
  const problem = keyProblem(key);
  if (problem) return showSignIn(problem);
  $("signin-button").disabled = true;
  $("signin-error").textContent = "";
  try {
    const s = await getJson("/web/session", { key });
    keyStore.set(key);
    $("signin-key").value = "";
    start(s);
  } catch (e) {
    keyStore.clear();
    showSignIn(
      e instanceof ApiError && e.status === 401
        ? "This key is not accepted: it is unknown, revoked or expired."
        : e.message,
    );
  }
}

function signOut(message) {
  app.stream?.stop();
  clearInterval(app.pollTimer);
  app.live?.dialog.close();
  app.timeline?.hide();
  app.network?.hide();
  app.tickets?.stop();
  app.wall?.stop();
  app.liveWall?.hide();
  app.session = null;
  app.etag = "";
  keyStore.clear();
  banner("");
  showSignIn(message);
}

// ---- running

function start(session) {
  app.session = session;
  setHlsUrl(session.hls_js_url);
  $("signin").hidden = true;
  $("app").hidden = false;
  for (const e of document.querySelectorAll("[data-needs]")) e.hidden = !allows(e.dataset.needs);
  $("tab-network").hidden = !canNetwork();
  const who = $("who");
  who.textContent = "";
  const strong = document.createElement("strong");
  strong.textContent = session.role;
  who.append(strong, ` · ${session.key_name || "anonymous"}`);
  who.title = session.key_id ? `key ${session.key_id} (${session.role}): ${describeRole(session.role)}` : describeRole(session.role);

  app.wall ??= new Wall({ onOpen: (c) => app.live.open(c) });
  app.live ??= new LiveView({
    canTimeline: () => allows("investigator"),
    onTimeline: (id) => { location.hash = `#/timeline/${encodeURIComponent(id)}`; },
    onError: (m) => banner(m),
    ticketFor: (id) => (allows("tickets") ? app.wall.ticketOf(id) : null),
    canWork: () => allows("ticket_work"),
    keyName: () => app.session?.key_name || "",
    onTicketAct: (id, what, body, by) => app.tickets?.act(id, what, body, by) ?? Promise.resolve(false),
  });
  if (allows("tickets")) {
    app.tickets ??= new TicketsView({
      canWork: () => allows("ticket_work"),
      keyName: session.key_name || "",
      onError: (m) => banner(m),
      onCount: (open, unacked) => {
        $("tk-count").hidden = open === 0;
        $("tk-count").textContent = unacked ? `${open} (${unacked} new)` : String(open);
      },
      onOpen: (tickets) => {
        app.wall.setTickets(tickets);
        if (app.live.isOpen) app.live.renderTicket();
        app.liveWall?.refresh();
      },
    });
    app.tickets.watch();
  }
  app.wall.start();
  app.stream = new EventStream("/api/events/stream", { onEvent, onState: streamState });
  app.stream.start();
  loadStatus();
  app.pollTimer = setInterval(loadStatus, STATUS_POLL_MS);
  route();
}

function describeRole(role) {
  return {
    viewer: "status, wall and live video",
    technician: "status, wall, live video and fault tickets (acknowledge, notes, resolve)",
    investigator: "wall, live video, recordings, playback and clip export",
    admin: "everything, including cameras and keys",
  }[role] || "";
}

async function loadStatus() {
  if (app.statusBusy || !app.session) return;
  app.statusBusy = true;
  try {
    // A read that never ends would hold `statusBusy` and freeze the wall: it is given up on.
    const res = await request("/api/status", {
      headers: app.etag ? { "If-None-Match": app.etag } : {},
      signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
    });
    if (res.status === 200) {
      const doc = await res.json();
      app.etag = res.headers.get("ETag") || "";
      noteServerTime(doc.generated_us / 1000);
      app.wall.setStatus(doc);
      app.liveWall?.refresh();
      app.timeline?.fillCameras();
      if (app.incidents && !$("view-incidents").hidden) app.incidents.fillChoices();
    }
    if (bannerSource === "status") banner("");
  } catch (e) {
    if (e.status !== 401) banner(`Camera states may be out of date: ${e.message}`, "status");
  } finally {
    app.statusBusy = false;
  }
}

function onEvent(type, ev) {
  if (type !== "state") return;
  app.tickets?.changed();
  if (!app.wall.applyEvent(ev)) loadStatus(); // a camera we do not know yet
  const c = app.wall.get(ev.camera_id);
  if (c && app.live.isOpen) app.live.update(c);
  app.liveWall?.refresh();
}

function streamState(state, why) {
  const conn = $("conn");
  conn.dataset.state = state;
  conn.textContent = { connecting: "Connecting…", live: "Live", retrying: "Reconnecting…" }[state];
  conn.title = state === "live" ? "Camera states update as they change" : why || "";
  // After every (re)connect, one status read covers whatever changed while we were away.
  if (state === "live") {
    app.etag = "";
    loadStatus();
  }
}

// ---- views

function route() {
  if (!app.session) return;
  const [, view = "wall", camId = "", day = ""] = location.hash.split("/").map(decodeURIComponent);
  const onTickets = view === "tickets" && Boolean(app.tickets);
  const onTimeline = view === "timeline";
  const onIncidents = view === "incidents" && allows("investigator");
  const onLiveWall = view === "livewall";
  const onNetwork = view === "network" && canNetwork();
  const elsewhere = onTimeline || onTickets || onIncidents || onLiveWall || onNetwork;
  $("view-wall").hidden = elsewhere;
  $("view-timeline").hidden = !onTimeline;
  $("view-tickets").hidden = !onTickets;
  $("view-incidents").hidden = !onIncidents;
  $("view-network").hidden = !onNetwork;
  $("tab-wall").setAttribute("aria-current", elsewhere ? "false" : "page");
  $("tab-timeline").setAttribute("aria-current", onTimeline ? "page" : "false");
  $("tab-tickets").setAttribute("aria-current", onTickets ? "page" : "false");
  $("tab-incidents").setAttribute("aria-current", onIncidents ? "page" : "false");
  $("tab-livewall").setAttribute("aria-current", onLiveWall ? "page" : "false");
  $("tab-network").setAttribute("aria-current", onNetwork ? "page" : "false");
  app.liveWall ??= new LiveWall({
    cameras: () => app.wall.ids(),
    onOpen: (c) => app.live.open(c),
    camera: (id) => app.wall.get(id),
    ticketOf: (id) => (allows("tickets") ? app.wall.ticketOf(id) : null),
  });
  if (onLiveWall) app.liveWall.show();
  else app.liveWall.hide();
  if (onTickets) app.tickets.show();
  else app.tickets?.hide();
  if (onNetwork) {
    app.network ??= new NetworkView({ onError: (m) => banner(m) });
    app.network.show();
  } else {
    app.network?.hide();
  }
  if (onIncidents) {
    app.timeline?.hide();
    app.incidents ??= new Incidents({ cameras: () => app.wall.ids(), onError: (m) => banner(m) });
    app.incidents.show();
    return;
  }
  app.incidents?.hide();
  if (!onTimeline) {
    app.timeline?.hide();
    return;
  }
  const denied = !allows("investigator");
  $("tl-denied").hidden = !denied;
  $("tl-body").hidden = denied;
  if (denied) {
    $("tl-denied").textContent = `Your key's role (${app.session.role}) shows the wall and live video. Recordings, playback and clip export need an investigator key.`;
    return;
  }
  app.timeline ??= new Timeline({
    cameras: () => app.wall.ids(),
    camera: (id) => app.wall.get(id),
    maxClipS: () => app.session?.max_clip_s ?? 3600,
    onError: (m) => banner(m),
  });
  app.timeline.show(camId, /^\d{4}-\d{2}-\d{2}$/.test(day) ? day : "");
}

function zoneChanged() {
  const utc = getZone() === "UTC";
  $("zone-utc").setAttribute("aria-pressed", String(utc));
  $("zone-local").setAttribute("aria-pressed", String(!utc));
  if (app.timeline && !$("view-timeline").hidden) app.timeline.load({ keepWindow: false });
}

function globalKeys(e) {
  const typing = e.target.closest("input, select, textarea, [contenteditable]");
  if (e.key === "/" && !typing && !$("view-wall").hidden && !$("app").hidden) {
    e.preventDefault();
    $("wall-search").focus();
  }
}

boot();
