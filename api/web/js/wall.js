// The camera wall: every feed's state from one /api/status document, kept current by the event
// stream; counters, filters, search, faults first; a virtualised grid of tiles with snapshots; a
// marker on the tile of a camera in an open ticket (the open tickets come from tickets.js).

import { shortDuration, duration, serverNow } from "./format.js";
import { VirtualGrid } from "./grid.js";
import { Snapshots } from "./snapshots.js";
import { FAULTS, MEANING, ORDER, label, rank } from "./states.js";
import { showTicketMark } from "./tickets.js";

const $ = (id) => document.getElementById(id);
const NO_PICTURE = { offline: "No signal", disabled: "Recording off", starting: "Connecting…", unknown: "No report" };

/**
 * Whether a camera keeps the state an event gave it over a status document's row. Only while the
 * document may predate the event: it was built before the event reached this page (an event is
 * sent once it is in the catalog, with its status row) and says an older state began earlier. A
 * document built after the event always wins, so a state can never stick on the wall however the
 * worker dated its transitions.
 */
export function keepsEvent(old, row, generatedUs) {
  return Boolean(old && old.fromEvent && old.state !== row.state &&
    generatedUs < (old.heard_us ?? 0) && old.since_us > (row.since_us ?? 0));
}

export class Wall {
  /** @param {{onOpen: (camera: object) => void}} hooks */
  constructor({ onOpen }) {
    this.onOpen = onOpen;
    this.cams = new Map(); // id -> camera (the status document's fields, kept up to date)
    this.tickets = new Map(); // camera id -> its open ticket
    this.filter = { state: "", district: "", text: "" };
    this.list = [];
    this.activeId = null;
    this.districtKey = "";
    this.dirty = false;

    this.gridEl = $("wall-grid");
    this.countersEl = $("counters");
    this.snaps = new Snapshots({ onPicture: (id, url) => this.showPicture(id, url) });
    this.grid = new VirtualGrid(this.gridEl, {
      create: () => this.createTile(),
      update: (el, c) => this.updateTile(el, c),
      onRange: (items) => this.snaps.setVisible(items),
    });

    $("wall-search").addEventListener("input", (e) => this.setFilter({ text: e.target.value.trim().toLowerCase() }));
    $("wall-district").addEventListener("change", (e) => this.setFilter({ district: e.target.value }));
    $("wall-size").addEventListener("change", (e) => this.grid.setMinWidth(Number(e.target.value)));
    this.countersEl.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-filter]");
      if (b) this.setFilter({ state: b.dataset.filter === this.filter.state ? "" : b.dataset.filter });
    });
    this.gridEl.addEventListener("click", (e) => {
      const t = e.target.closest(".tile");
      if (!t || !t.dataset.id) return;
      this.setActive(t.dataset.id);
      this.open(t.dataset.id);
    });
    this.gridEl.addEventListener("keydown", (e) => this.onKey(e));
    this.gridEl.addEventListener("focus", () => this.setActive(this.activeId ?? this.list[0]?.id ?? null));
    this.buildCounters();
    this.ticker = setInterval(() => this.tickAges(), 1000);
  }

  start() {
    this.snaps.start();
  }

  stop() {
    this.snaps.stop();
    this.cams.clear();
    this.tickets.clear();
    this.schedule();
  }

  // ---- data in

  /** A full /api/status document: the truth as of `generated_us`. */
  setStatus(doc) {
    const seen = new Set();
    for (const c of doc.cameras) {
      seen.add(c.id);
      const old = this.cams.get(c.id);
      if (keepsEvent(old, c, doc.generated_us)) {
        Object.assign(old, { ...c, state: old.state, since_us: old.since_us, reason: old.reason });
      } else {
        this.cams.set(c.id, { ...c, fromEvent: false });
      }
    }
    for (const id of [...this.cams.keys()]) if (!seen.has(id)) this.cams.delete(id);
    this.schedule();
  }

  /** A health event from the stream; returns false when the camera is unknown here. */
  applyEvent(ev) {
    if (ev.kind !== "state" || !ev.to_state) return true;
    const c = this.cams.get(ev.camera_id);
    if (!c) return false;
    if (ev.at_us < (c.since_us ?? 0)) return true; // older than what we show
    Object.assign(c, { state: ev.to_state, since_us: ev.at_us, reason: ev.reason || "", fromEvent: true, heard_us: serverNow() * 1000 });
    this.schedule();
    return true;
  }

  /**
   * The open tickets (GET /api/tickets?status=open, newest first): each camera's, preferring one
   * it is still in a fault in over one it has come back from (a correlated ticket stays open
   * until all its cameras are back). Updates the markers of the tiles in view.
   */
  setTickets(tickets) {
    const found = new Map();
    for (const t of tickets) {
      if (t.status !== "open") continue;
      for (const c of t.cameras) {
        const had = found.get(c.camera_id);
        if (!had || (!c.recovered_us && had.back)) found.set(c.camera_id, { t, back: Boolean(c.recovered_us) });
      }
    }
    this.tickets = new Map([...found].map(([id, v]) => [id, v.t]));
    for (const [id, el] of this.grid.live) {
      const c = this.cams.get(id);
      if (c) this.updateTile(el, c);
    }
  }

  ticketOf(id) {
    return this.tickets.get(id) || null;
  }

  get(id) {
    return this.cams.get(id);
  }

  ids() {
    return [...this.cams.values()].sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
  }

  // ---- filtering and sorting

  setFilter(change) {
    Object.assign(this.filter, change);
    this.grid.top();
    this.schedule();
  }

  schedule() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => {
      this.dirty = false;
      this.recompute();
    });
  }

  matches(c) {
    const f = this.filter;
    if (f.state && c.state !== f.state) return false;
    if (f.district && (c.tags?.district || "") !== f.district) return false;
    if (f.text) {
      const hay = `${c.name || ""}\n${c.id}\n${c.tags?.district || ""}`.toLowerCase();
      if (!hay.includes(f.text)) return false;
    }
    return true;
  }

  recompute() {
    const all = [...this.cams.values()];
    const counts = Object.fromEntries(ORDER.map((s) => [s, 0]));
    for (const c of all) counts[c.state] = (counts[c.state] || 0) + 1;
    this.renderCounters(counts, all.length);
    this.renderDistricts(all);
    this.list = all.filter((c) => this.matches(c)).sort(
      (a, b) => rank(a.state) - rank(b.state) || (a.name || a.id).localeCompare(b.name || b.id) || a.id.localeCompare(b.id),
    );
    $("wall-shown").textContent = this.list.length === all.length ? `${all.length} cameras` : `${this.list.length} of ${all.length} cameras shown`;
    $("wall-empty").hidden = this.list.length > 0 || all.length === 0;
    this.grid.setItems(this.list);
    if (this.activeId && !this.list.some((c) => c.id === this.activeId)) this.activeId = null;
    this.markActive();
  }

  buildCounters() {
    const mk = (state, text) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "counter";
      b.dataset.filter = state;
      if (state) b.dataset.state = state;
      b.setAttribute("aria-pressed", "false");
      b.innerHTML = `<span class="n">0</span><span class="l"></span>`;
      b.querySelector(".l").textContent = text;
      if (state) b.title = `${text}: ${MEANING[state]}. Click to show only these.`;
      this.countersEl.append(b);
    };
    mk("", "All");
    for (const s of ORDER) mk(s, label(s));
  }

  renderCounters(counts, total) {
    for (const b of this.countersEl.children) {
      const s = b.dataset.filter;
      const n = s ? counts[s] || 0 : total;
      b.querySelector(".n").textContent = n.toLocaleString("en");
      b.classList.toggle("zero", n === 0 && s !== "");
      b.setAttribute("aria-pressed", String(this.filter.state === s));
      b.setAttribute("aria-label", `${s ? label(s) : "All cameras"}: ${n}`);
    }
  }

  renderDistricts(all) {
    const names = [...new Set(all.map((c) => c.tags?.district).filter(Boolean))].sort();
    const key = names.join("\n");
    if (key === this.districtKey) return;
    this.districtKey = key;
    const sel = $("wall-district");
    const keep = sel.value;
    sel.length = 1;
    for (const n of names) sel.add(new Option(n, n));
    sel.value = names.includes(keep) ? keep : "";
    if (sel.value !== keep) this.filter.district = "";
  }

  // ---- tiles

  createTile() {
    const el = document.createElement("div");
    el.className = "tile";
    el.setAttribute("role", "option");
    el.innerHTML = `<div class="pic"><img alt="" decoding="async"><div class="nopic"></div>
      <span class="badge"></span><span class="age"></span><span class="tk-mark" hidden></span></div>
      <div class="info"><div class="name"></div><div class="meta"></div></div>`;
    return el;
  }

  updateTile(el, c) {
    if (el.dataset.id !== c.id) {
      el.dataset.id = c.id;
      el.id = `tile-${c.id}`;
      el.querySelector(".name").textContent = c.name || c.id;
      const meta = el.querySelector(".meta");
      meta.textContent = "";
      if (c.tags?.district) {
        const t = document.createElement("span");
        t.className = "tag";
        t.textContent = c.tags.district;
        meta.append(t);
      }
      meta.append(c.id);
      delete el.dataset.shownPic; // a reused tile: whatever picture it showed is not this camera's
    }
    if (el.dataset.state !== c.state) {
      el.dataset.state = c.state;
      const badge = el.querySelector(".badge");
      badge.dataset.state = c.state;
      badge.textContent = label(c.state);
      el.classList.toggle("fault", FAULTS.has(c.state));
    }
    const url = this.snaps.url(c.id);
    const img = el.querySelector("img");
    if (el.dataset.shownPic !== url) {
      el.dataset.shownPic = url;
      if (url) img.src = url;
      else img.removeAttribute("src");
      img.hidden = !url;
    }
    el.querySelector(".nopic").textContent = url ? "" : NO_PICTURE[c.state] || "No picture yet";
    el.classList.toggle("stale", Boolean(url) && (c.state === "offline" || c.state === "disabled" || c.state === "unknown"));
    showTicketMark(el.querySelector(".tk-mark"), this.tickets.get(c.id));
    this.setAge(el, c);
    el.title = c.reason ? `${label(c.state)}: ${c.reason}` : MEANING[c.state] || ""; // unknown: since when no report
    el.setAttribute("aria-selected", String(c.id === this.activeId));
    el.classList.toggle("active", c.id === this.activeId);
  }

  setAge(el, c) {
    const age = el.querySelector(".age");
    if (!c.since_us) {
      age.textContent = "";
      age.hidden = true;
      return;
    }
    const s = (serverNow() - c.since_us / 1000) / 1000;
    age.hidden = false;
    age.textContent = shortDuration(s);
    age.title = `${label(c.state)} for ${duration(s)}`;
    const t = this.tickets.get(c.id);
    const ticket = t ? `, ticket ${t.id}${t.acked_us ? " acknowledged" : " not acknowledged"}` : "";
    el.setAttribute(
      "aria-label",
      `${c.name || c.id}, ${label(c.state)} for ${duration(s)}${c.tags?.district ? `, district ${c.tags.district}` : ""}${ticket}`,
    );
  }

  tickAges() {
    for (const [id, el] of this.grid.live) {
      const c = this.cams.get(id);
      if (c) this.setAge(el, c);
    }
  }

  showPicture(id, url) {
    const el = this.grid.element(id);
    const c = this.cams.get(id);
    if (el && c) this.updateTile(el, c);
  }

  // ---- keyboard

  indexOf(id) {
    return id == null ? -1 : this.list.findIndex((c) => c.id === id);
  }

  setActive(id) {
    this.activeId = id;
    this.markActive();
  }

  markActive() {
    for (const [id, el] of this.grid.live) {
      el.classList.toggle("active", id === this.activeId);
      el.setAttribute("aria-selected", String(id === this.activeId));
    }
    if (this.activeId && this.grid.element(this.activeId)) {
      this.gridEl.setAttribute("aria-activedescendant", `tile-${this.activeId}`);
    } else {
      this.gridEl.removeAttribute("aria-activedescendant");
    }
  }

  onKey(e) {
    if (!this.list.length) return;
    const cols = this.grid.cols;
    const page = cols * this.grid.rowsInView();
    let i = Math.max(0, this.indexOf(this.activeId));
    const moves = {
      ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols, PageDown: page, PageUp: -page,
    };
    if (e.key in moves) i += moves[e.key];
    else if (e.key === "Home") i = 0;
    else if (e.key === "End") i = this.list.length - 1;
    else if (e.key === "Enter" || e.key === " ") {
      if (this.activeId) this.open(this.activeId);
      e.preventDefault();
      return;
    } else return;
    e.preventDefault();
    i = Math.min(this.list.length - 1, Math.max(0, i));
    this.activeId = this.list[i].id;
    this.grid.reveal(i);
    this.markActive();
  }

  open(id) {
    const c = this.cams.get(id);
    if (c) this.onOpen(c);
  }
}
