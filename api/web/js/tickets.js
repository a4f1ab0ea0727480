// The tickets view (#/tickets): fault tickets, open first, grouped by district; technicians and
// admins acknowledge, add notes and resolve from here. The notifier (server side) opens and closes
// tickets; this view only reads and works them, and refreshes on every state event.
// It also keeps the open tickets current for the wall (tile markers, the live view's ticket): one
// read of GET /api/tickets?status=open every 5 s and after state changes, whatever the tab shown;
// the live view's buttons work tickets through `act`, the same path as this view's.

import { ApiError, authHeaders, getJson } from "./api.js";
import { dateTime } from "./format.js";

/** A tile's ticket marker ("T#12"): red while nobody has acknowledged the ticket, quiet once
 *  someone has; hidden without one. The camera wall's tiles and the live wall's use it. */
export function showTicketMark(mark, t) {
  const key = t ? `${t.id}:${t.acked_by || ""}` : "";
  if (mark.dataset.key === key) return;
  mark.dataset.key = key;
  mark.hidden = !t;
  mark.textContent = t ? `T#${t.id}` : "";
  mark.dataset.acked = String(Boolean(t?.acked_us));
  mark.title = !t ? "" : t.acked_us ? `Ticket #${t.id}, acknowledged by ${t.acked_by}` : `Ticket #${t.id}, not acknowledged yet`;
}

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 15000;
const OPEN_POLL_MS = 5000;
const NAME_KEY = "vigil.tk-name";

/** The name a technician works tickets under: the one typed last in this tab, else the key's. */
export const workerName = {
  get: (keyName) => sessionStorage.getItem(NAME_KEY) || keyName || "",
  set: (name) => sessionStorage.setItem(NAME_KEY, name.trim()),
};

async function post(path, body) {
  let res;
  try {
    res = await fetch(path, {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The vigil server cannot be reached.", path);
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, data.detail || `HTTP ${res.status}`, path);
  return data;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class TicketsView {
  constructor({ canWork, keyName, onError, onCount, onOpen }) {
    this.canWork = canWork;
    this.onError = onError;
    this.onCount = onCount;
    this.onOpen = onOpen;
    this.timer = null;
    this.openTimer = null;
    this.pending = null;
    this.visible = false;
    $("tk-status").addEventListener("change", () => this.refresh());
    $("tk-district").addEventListener("change", () => this.refresh());
    $("tk-name").value = workerName.get(keyName);
    $("tk-name").addEventListener("change", () => workerName.set($("tk-name").value));
  }

  /** Keep the open tickets (the tab's count, the wall's markers) current until `stop`. */
  watch() {
    this.loadOpen();
    clearInterval(this.openTimer);
    this.openTimer = setInterval(() => this.loadOpen(), OPEN_POLL_MS);
  }

  stop() {
    this.hide();
    clearInterval(this.openTimer);
    clearTimeout(this.pending);
    this.onOpen([]);
  }

  show() {
    this.visible = true;
    this.refresh();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  hide() {
    this.visible = false;
    clearInterval(this.timer);
  }

  /** A state change somewhere: tickets may have opened or closed (coalesced to one read). */
  changed() {
    clearTimeout(this.pending);
    this.pending = setTimeout(() => {
      if (this.visible) this.refresh();
      this.loadOpen();
    }, 1500);
  }

  /** Every open ticket: the tab's count and `onOpen` (the wall's markers, the live view). */
  async loadOpen() {
    try {
      const doc = await getJson("/api/tickets?status=open&limit=5000");
      this.onCount(doc.tickets.length, doc.tickets.filter((t) => !t.acked_us).length);
      this.onOpen(doc.tickets);
    } catch { /* the next change or poll tries again */ }
  }

  async refresh() {
    const status = $("tk-status").value;
    const district = $("tk-district").value;
    const q = new URLSearchParams();
    if (status) q.set("status", status);
    if (district) q.set("district", district);
    let doc;
    try {
      doc = await getJson(`/api/tickets?${q}`);
    } catch (e) {
      if (e.status !== 401) this.onError(`Tickets could not be read: ${e.message}`);
      return;
    }
    if (status === "open" && !district) this.onCount(doc.tickets.length, doc.tickets.filter((t) => !t.acked_us).length);
    this.render(doc.tickets);
    this.report();
  }

  async report() {
    let doc;
    try {
      doc = await getJson("/api/report/tickets?by=district");
    } catch {
      return; // the list above matters more; the next refresh tries again
    }
    const dur = (s) => (s === null ? "—" : s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);
    const body = document.querySelector("#tk-report tbody");
    body.replaceChildren();
    for (const r of doc.rows) {
      const tr = el("tr");
      for (const v of [r.key, String(r.tickets), String(r.open), dur(r.mtta_s), dur(r.ack_to_repair_s), dur(r.mttr_s)]) tr.append(el("td", "", v));
      body.append(tr);
    }
  }

  fillDistricts(tickets) {
    const sel = $("tk-district");
    const have = new Set([...sel.options].map((o) => o.value));
    for (const d of tickets.flatMap((t) => t.districts)) {
      if (!have.has(d)) {
        sel.append(new Option(d, d));
        have.add(d);
      }
    }
  }

  render(tickets) {
    this.fillDistricts(tickets);
    const list = $("tk-list");
    list.replaceChildren();
    $("tk-empty").hidden = tickets.length > 0;
    $("tk-shown").textContent = `${tickets.length} ticket${tickets.length === 1 ? "" : "s"}`;
    // open first, then by district, newest first inside each
    const groups = new Map();
    const sorted = [...tickets].sort((a, b) =>
      (a.status === "open" ? 0 : 1) - (b.status === "open" ? 0 : 1) || b.detected_us - a.detected_us);
    for (const t of sorted) {
      const key = `${t.status === "open" ? "Open" : "Closed"} · ${t.districts.join(", ") || "no district"}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(t);
    }
    for (const [key, ts] of groups) {
      const section = el("section", "tk-group");
      section.append(el("h2", "tk-group-title", `${key} (${ts.length})`));
      for (const t of ts) section.append(this.card(t));
      list.append(section);
    }
  }

  card(t) {
    const card = el("article", `tk-card card ${t.status}`);
    card.dataset.ticket = String(t.id);
    const head = el("div", "tk-head");
    const badge = el("span", "badge", t.status === "open" ? t.fault : "closed");
    badge.dataset.state = t.status === "open" ? t.fault : "online";
    head.append(badge, el("strong", "tk-title", `#${t.id} ${t.title}`));
    card.append(head);
    const how = (c) => (c.recovered_reason === "camera_removed" ? "removed" : c.recovered_us ? "back" : c.state);
    const cams = t.cameras.map((c) => `${c.name} (${how(c)})`).join(", ");
    card.append(el("p", "tk-cams", cams));
    const times = [`detected ${dateTime(t.detected_us / 1000)}`];
    if (t.acked_us) times.push(`acknowledged by ${t.acked_by} ${dateTime(t.acked_us / 1000)}`);
    const closed = { resolved: `resolved by ${t.closed_by}`, camera_removed: `camera removed by ${t.closed_by}` }[t.close_reason] || "recovered";
    if (t.closed_us) times.push(`${closed} ${dateTime(t.closed_us / 1000)}`);
    card.append(el("p", "tk-times muted", times.join(" · ")));
    if (t.status === "open" && this.canWork()) {
      const row = el("div", "tk-actions row");
      const ack = el("button", "ghost small tk-ack", t.acked_us ? "Acknowledged" : "Acknowledge");
      ack.type = "button";
      ack.disabled = Boolean(t.acked_us);
      ack.addEventListener("click", () => this.act(t.id, "ack", {}));
      const note = el("input", "tk-note");
      note.placeholder = "Note (what was found, what was done)";
      note.maxLength = 4000;
      const add = el("button", "ghost small tk-add-note", "Add note");
      add.type = "button";
      add.addEventListener("click", () => note.value.trim() && this.act(t.id, "notes", { text: note.value.trim() }));
      const resolve = el("button", "primary small tk-resolve", "Resolve");
      resolve.type = "button";
      resolve.addEventListener("click", () => this.act(t.id, "resolve", note.value.trim() ? { note: note.value.trim() } : {}));
      row.append(ack, note, add, resolve);
      card.append(row);
    }
    return card;
  }

  /**
   * The one path for working a ticket (this view's cards, the live view's buttons): POST `what`
   * (ack, notes, resolve) as `by` (default: the name field here), then re-read. True when done.
   */
  async act(id, what, body, by = $("tk-name").value.trim()) {
    let done = true;
    try {
      await post(`/api/tickets/${id}/${what}`, by ? { ...body, by } : body);
    } catch (e) {
      done = false;
      this.onError(`Ticket ${id}: ${e.message}`);
    }
    if (this.visible) this.refresh();
    await this.loadOpen();
    return done;
  }
}
