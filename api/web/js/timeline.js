// The timeline (investigator and admin): for one camera and one day, what was recorded, the gaps,
// and the health events on a time axis; click to play from a time (a signed playback playlist),
// drag or type a start and end to export a clip, whose SHA-256 the page shows and checks.

import { ApiError, cam, getJson, request } from "./api.js";
import {
  addDays, apiTime, bytes, clock, dateTime, dayOf, dayStart, duration, serverNow, timeInputValue, timeOnDay, zoneLabel,
} from "./format.js";
import { Player } from "./player.js";
import { PICTURE, label } from "./states.js";
import { clear, el, gapPattern, tickStep } from "./svg.js";

const $ = (id) => document.getElementById(id);
const MIN_GAP_MS = 20; // as storage/timeline.py: shorter holes are not gaps a person could see
const PLAY_SPAN_MS = 3600 * 1000; // a click plays up to an hour (new clicks load a new range)
const EVENT_PAGES = 10;
const PENDING_MS = 5 * 60 * 1000;
const STATE_COLOR = {
  online: "var(--online)", frozen: "var(--frozen)", black: "var(--black)", tampered: "var(--tampered)",
  offline: "var(--offline)", starting: "var(--starting)", unknown: "var(--unknown)", disabled: "var(--disabled)",
};
// Axis rows (px from the top of the 124 px axis).
const Y = { label: 14, recTop: 22, recH: 44, bandTop: 72, bandH: 12, evTop: 90, evH: 22, bottom: 118 };

/** Sorted union of [start, end) spans, joining those closer than MIN_GAP_MS (as the API does). */
export function mergeSpans(spans) {
  const out = [];
  for (const s of [...spans].sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1];
    if (last && s.start - last.end < MIN_GAP_MS) last.end = Math.max(last.end, s.end);
    else out.push({ start: s.start, end: s.end });
  }
  return out;
}

export class Timeline {
  /** @param {{cameras: () => object[], camera: (id: string) => object | undefined,
   *            maxClipS: () => number, onError: (m: string) => void}} hooks */
  constructor({ cameras, camera, maxClipS, onError }) {
    this.cameras = cameras;
    this.camera = camera;
    this.maxClipS = maxClipS;
    this.onError = onError;
    this.camId = "";
    this.day = dayOf(serverNow());
    this.data = null;
    this.win = null;
    this.cursor = null;
    this.playhead = null;
    this.drag = null;
    this.loadSeq = 0;
    this.exportUrl = "";
    this.axis = $("tl-axis");
    this.overview = $("tl-overview");
    this.player = new Player($("tl-video"), {
      onError: (m) => this.playerMessage(m, true),
      onPlaying: () => this.playerMessage(""),
    });
    this.bind();
    this.timer = null;
  }

  bind() {
    const camInput = $("tl-camera");
    camInput.addEventListener("change", () => {
      const id = camInput.value.trim();
      if (id && id !== this.camId) this.open(id, this.day);
    });
    $("tl-day").addEventListener("change", (e) => e.target.value && this.open(this.camId, e.target.value));
    $("tl-prev-day").addEventListener("click", () => this.open(this.camId, addDays(this.day, -1)));
    $("tl-next-day").addEventListener("click", () => this.open(this.camId, addDays(this.day, 1)));
    $("tl-zoom").addEventListener("change", () => this.zoomTo($("tl-zoom").value));
    $("tl-pan-left").addEventListener("click", () => this.pan(-0.5));
    $("tl-pan-right").addEventListener("click", () => this.pan(0.5));
    $("tl-refresh").addEventListener("click", () => this.load({ keepWindow: true }));
    $("tl-start-now").addEventListener("click", () => this.setEdge("start", this.playhead));
    $("tl-end-now").addEventListener("click", () => this.setEdge("end", this.playhead));
    $("tl-start").addEventListener("change", () => this.draw());
    $("tl-end").addEventListener("change", () => this.draw());
    $("tl-export").addEventListener("submit", (e) => {
      e.preventDefault();
      this.exportClip();
    });
    $("tl-events").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-at]");
      if (b) this.play(Number(b.dataset.at));
    });

    const ax = this.axis;
    ax.addEventListener("pointerdown", (e) => {
      if (!this.win || e.button !== 0) return;
      ax.setPointerCapture(e.pointerId);
      this.drag = { x0: e.offsetX, t0: this.timeAt(e.offsetX), moved: false };
      ax.focus({ preventScroll: true });
    });
    ax.addEventListener("pointermove", (e) => {
      if (!this.win) return;
      this.hover(e.offsetX);
      if (!this.drag) return;
      if (Math.abs(e.offsetX - this.drag.x0) > 4) this.drag.moved = true;
      if (this.drag.moved) this.setSelection(this.drag.t0, this.timeAt(e.offsetX));
    });
    ax.addEventListener("pointerup", (e) => {
      if (!this.drag) return;
      const d = this.drag;
      this.drag = null;
      if (d.moved) this.setSelection(d.t0, this.timeAt(e.offsetX));
      else {
        this.cursor = d.t0;
        this.play(d.t0);
      }
    });
    ax.addEventListener("pointerleave", () => { $("tl-hover").hidden = true; this.drawHover(null); });
    ax.addEventListener("keydown", (e) => this.onKey(e));
    this.overview.addEventListener("click", (e) => {
      if (!this.data) return;
      const w = this.overview.clientWidth;
      const t = this.data.start + (e.offsetX / w) * (this.data.end - this.data.start);
      const span = this.win.end - this.win.start;
      this.setWindow(t - span / 2, span);
    });
    new ResizeObserver(() => this.draw()).observe(ax);
  }

  // ---- opening a camera and day

  fillCameras() {
    const list = $("tl-cameras");
    const cams = this.cameras();
    // Opened before the camera list arrived: take the first camera now.
    if (!this.camId && cams.length && this.timer !== null) this.open(cams[0].id, this.day);
    if (list.childElementCount === cams.length) return;
    list.textContent = "";
    for (const c of cams) {
      const o = document.createElement("option");
      o.value = c.id;
      o.label = c.name && c.name !== c.id ? `${c.name}${c.tags?.district ? ` · ${c.tags.district}` : ""}` : c.tags?.district || "";
      list.append(o);
    }
  }

  /** Show the view; load `camId` on `day` (defaults: the last camera, today). */
  show(camId, day) {
    this.fillCameras();
    const id = camId || this.camId || this.cameras()[0]?.id || "";
    this.open(id, day || this.day);
    clearInterval(this.timer);
    // Today's recordings grow: look again every 15 s while the view is open.
    this.timer = setInterval(() => {
      if (this.day === dayOf(serverNow()) && this.camId) this.load({ keepWindow: true, quiet: true });
    }, 15000);
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
    this.player.stop();
  }

  open(camId, day) {
    const changed = camId !== this.camId || day !== this.day;
    this.camId = camId;
    this.day = day;
    $("tl-camera").value = camId;
    $("tl-day").value = day;
    history.replaceState(null, "", `#/timeline/${encodeURIComponent(camId)}/${day}`);
    if (changed) {
      this.player.stop();
      this.playhead = null;
      this.setReadout(null);
      this.playerMessage("Click the timeline to play.");
      $("tl-start").value = "";
      $("tl-end").value = "";
      $("tl-export-out").textContent = "";
    }
    this.load({ keepWindow: !changed && this.win !== null });
  }

  async load({ keepWindow = false, quiet = false } = {}) {
    const id = this.camId;
    if (!id) {
      $("tl-summary").textContent = "Choose a camera.";
      return;
    }
    const seq = ++this.loadSeq;
    const start = dayStart(this.day);
    const end = dayStart(addDays(this.day, 1));
    if (!quiet) $("tl-summary").textContent = "Loading recordings…";
    try {
      const q = `start=${apiTime(start)}&end=${apiTime(end)}`;
      const [rec, events] = await Promise.all([
        getJson(`${cam(id)}/recordings?${q}`),
        this.loadEvents(id, start, end),
      ]);
      if (seq !== this.loadSeq) return;
      const segments = rec.segments.map((s) => ({ start: s.start_us / 1000, end: s.end_us / 1000, run: s.run_id }));
      this.data = {
        start,
        end,
        segments,
        ranges: mergeSpans(segments.map((s) => ({ start: Math.max(s.start, start), end: Math.min(s.end, end) }))),
        gaps: rec.gaps.map((g) => ({ start: g.start_us / 1000, end: g.end_us / 1000 })),
        recordedS: rec.recorded_s,
        events,
      };
      if (!keepWindow || !this.win) this.zoomTo($("tl-zoom").value, false);
      this.summary();
      this.renderEvents();
      this.draw();
    } catch (e) {
      if (seq !== this.loadSeq) return;
      this.data = null;
      this.draw();
      $("tl-summary").textContent = e instanceof ApiError && e.status === 404 ? `Unknown camera "${id}".` : e.message;
    }
  }

  async loadEvents(id, start, end) {
    const out = [];
    let since = 0;
    for (let page = 0; page < EVENT_PAGES; page++) {
      const q = `camera=${encodeURIComponent(id)}&start=${apiTime(start)}&end=${apiTime(end)}&limit=1000&since=${since}`;
      const r = await getJson(`/api/events?${q}`);
      out.push(...r.events);
      if (r.events.length < 1000) break;
      since = r.next_cursor;
    }
    return out;
  }

  summary() {
    const d = this.data;
    const now = serverNow();
    const stateEvents = d.events.filter((e) => e.kind === "state").length;
    const parts = [];
    if (!d.segments.length) parts.push(`Nothing recorded on ${this.day}`);
    else {
      const first = d.ranges[0].start;
      const last = d.ranges[d.ranges.length - 1].end;
      // Gaps between the day's first and last recording; the time before and after is said apart.
      const inside = this.pastGaps().filter((g) => g.start >= first && g.end <= last);
      const gapS = inside.reduce((a, g) => a + (g.end - g.start), 0) / 1000;
      parts.push(`Recorded ${duration(d.recordedS)} between ${clock(first)} and ${clock(last)}`);
      parts.push(inside.length ? `${inside.length} gap${inside.length === 1 ? "" : "s"} (${duration(gapS)})` : "no gaps");
    }
    parts.push(`${stateEvents} health event${stateEvents === 1 ? "" : "s"}`);
    if (d.end > now && d.start <= now) parts.push("day in progress");
    $("tl-summary").textContent = `${parts.join(" · ")} — times in ${zoneLabel(d.start)}`;
  }

  /** Gaps up to now (the rest of today is not a gap yet). The last few minutes of a camera that
   * is recording are not a gap either: its newest segments are still open or being uploaded. */
  pastGaps() {
    const now = serverNow();
    const gaps = this.data.gaps
      .map((g) => ({ start: g.start, end: Math.min(g.end, now) }))
      .filter((g) => g.end - g.start >= MIN_GAP_MS);
    const last = gaps[gaps.length - 1];
    this.pending = null;
    if (last && last.end >= now - 1000 && now - last.start < PENDING_MS && PICTURE.has(this.camera(this.camId)?.state)) {
      this.pending = gaps.pop();
    }
    return gaps;
  }

  renderEvents() {
    const body = $("tl-events").tBodies[0];
    body.textContent = "";
    const evs = this.data.events;
    if (!evs.length) {
      const tr = body.insertRow();
      const td = tr.insertCell();
      td.colSpan = 4;
      td.className = "muted";
      td.textContent = "No health events this day.";
      return;
    }
    for (const ev of evs) {
      const tr = body.insertRow();
      tr.insertCell().textContent = clock(ev.at_us / 1000, true);
      const change = tr.insertCell();
      if (ev.kind === "state") {
        for (const [i, s] of [ev.from_state, ev.to_state].entries()) {
          if (!s) continue;
          if (i === 1 && ev.from_state) change.append(" → ");
          const b = document.createElement("span");
          b.className = "badge";
          b.dataset.state = s;
          b.textContent = label(s);
          change.append(b);
        }
      } else {
        change.textContent = ev.kind;
      }
      tr.insertCell().textContent = ev.reason || "";
      const b = document.createElement("button");
      b.type = "button";
      b.className = "ghost small";
      b.dataset.at = String(ev.at_us / 1000);
      b.textContent = "Play";
      b.setAttribute("aria-label", `Play from ${clock(ev.at_us / 1000)}`);
      tr.insertCell().append(b);
    }
  }

  // ---- window (zoom and pan)

  zoomTo(value, redraw = true) {
    const d = this.data;
    if (!d) return;
    let span;
    let center;
    if (value === "fit") {
      if (d.ranges.length) {
        const a = d.ranges[0].start;
        const b = d.ranges[d.ranges.length - 1].end;
        span = Math.max(60000, (b - a) * 1.1);
        center = (a + b) / 2;
      } else {
        span = d.end - d.start;
        center = (d.start + d.end) / 2;
      }
    } else {
      span = Number(value) * 1000;
      center = this.playhead ?? (this.win ? (this.win.start + this.win.end) / 2 : (d.start + d.end) / 2);
    }
    this.setWindow(center - span / 2, span, redraw);
  }

  setWindow(start, span, redraw = true) {
    const d = this.data;
    span = Math.min(span, d.end - d.start);
    start = Math.min(Math.max(start, d.start), d.end - span);
    this.win = { start, end: start + span };
    if (redraw) this.draw();
  }

  pan(fraction) {
    if (!this.win) return;
    const span = this.win.end - this.win.start;
    this.setWindow(this.win.start + fraction * span, span);
  }

  zoomBy(factor) {
    if (!this.win) return;
    const span = this.win.end - this.win.start;
    const c = this.cursor ?? (this.win.start + this.win.end) / 2;
    const next = Math.max(10000, span * factor);
    this.setWindow(c - ((c - this.win.start) / span) * next, next);
  }

  timeAt(x) {
    const w = this.axis.clientWidth || 1;
    return this.win.start + (Math.min(Math.max(x, 0), w) / w) * (this.win.end - this.win.start);
  }

  xOf(t) {
    const w = this.axis.clientWidth || 1;
    return ((t - this.win.start) / (this.win.end - this.win.start)) * w;
  }

  // ---- drawing

  draw() {
    this.drawOverview();
    this.drawAxis();
    this.selectionInfo();
  }

  drawOverview() {
    const svg = this.overview;
    clear(svg);
    const d = this.data;
    if (!d) return;
    const w = svg.clientWidth;
    const x = (t) => ((t - d.start) / (d.end - d.start)) * w;
    const now = serverNow();
    if (now < d.end) svg.append(el("rect", { class: "future", x: x(Math.max(now, d.start)), y: 0, width: Math.max(0, w - x(Math.max(now, d.start))), height: 28 }));
    for (const g of this.pastGaps()) svg.append(el("rect", { class: "gap-solid", x: x(g.start), y: 8, width: Math.max(1, x(g.end) - x(g.start)), height: 16, opacity: 0.6 }));
    for (const r of d.ranges) svg.append(el("rect", { class: "rec", x: x(r.start), y: 8, width: Math.max(1, x(r.end) - x(r.start)), height: 16 }));
    for (let h = 3; h < 24; h += 3) {
      const t = timeOnDay(this.day, `${h}:00`);
      svg.append(el("line", { x1: x(t), x2: x(t), y1: 0, y2: 6, stroke: "var(--muted)" }));
    }
    if (this.win) {
      svg.append(el("rect", { class: "window", x: x(this.win.start), y: 1, width: Math.max(3, x(this.win.end) - x(this.win.start)), height: 26, rx: 3 }));
    }
  }

  drawAxis() {
    const svg = this.axis;
    clear(svg);
    gapPattern(svg, "gap-hatch");
    const d = this.data;
    if (!d || !this.win) return;
    const w = svg.clientWidth;
    const { start, end } = this.win;
    svg.dataset.startMs = String(start);
    svg.dataset.endMs = String(end);
    const now = serverNow();

    // ticks, aligned to the clock of the chosen zone
    const step = tickStep((end - start) / 1000, w) * 1000;
    const first = d.start + Math.ceil((start - d.start) / step) * step;
    for (let t = first; t <= end; t += step) {
      const g = el("g", { class: "tick" });
      g.append(el("line", { x1: this.xOf(t), x2: this.xOf(t), y1: 18, y2: Y.bottom }));
      const txt = el("text", { x: this.xOf(t) + 3, y: Y.label });
      txt.textContent = step < 60000 ? clock(t) : clock(t).slice(0, 5);
      g.append(txt);
      svg.append(g);
    }
    if (now < end) {
      const fx = this.xOf(Math.max(now, start));
      svg.append(el("rect", { class: "future", x: fx, y: Y.recTop, width: Math.max(0, w - fx), height: Y.bottom - Y.recTop }));
    }
    const visible = (s) => s.end > start && s.start < end;
    const rect = (s, cls, y, h, data) => {
      const x1 = Math.max(0, this.xOf(s.start));
      const x2 = Math.min(w, this.xOf(s.end));
      return el("rect", { class: cls, x: x1, y, width: Math.max(1, x2 - x1), height: h }, data);
    };
    for (const g of this.pastGaps().filter(visible)) {
      const r = rect(g, "gap", Y.recTop, Y.recH, { startMs: g.start, endMs: g.end, kind: "gap" });
      r.append(el("title"));
      r.lastChild.textContent = `Gap ${clock(g.start)} – ${clock(g.end)} (${duration((g.end - g.start) / 1000)})`;
      svg.append(r);
    }
    if (this.pending && visible(this.pending)) {
      const r = rect(this.pending, "pending", Y.recTop, Y.recH, { startMs: this.pending.start, endMs: this.pending.end, kind: "pending" });
      r.append(el("title"));
      r.lastChild.textContent = "Being recorded: the newest segments are not stored yet";
      svg.append(r);
    }
    for (const s of d.ranges.filter(visible)) {
      const r = rect(s, "rec", Y.recTop, Y.recH, { startMs: s.start, endMs: s.end, kind: "recorded" });
      r.append(el("title"));
      r.lastChild.textContent = `Recorded ${clock(s.start)} – ${clock(s.end)} (${duration((s.end - s.start) / 1000)})`;
      svg.append(r);
    }
    for (const b of this.stateBand().filter(visible)) {
      const r = rect(b, "band", Y.bandTop, Y.bandH, { state: b.state });
      r.setAttribute("fill", STATE_COLOR[b.state] || "var(--unknown)");
      r.append(el("title"));
      r.lastChild.textContent = `${label(b.state)} ${clock(b.start)} – ${clock(b.end)}`;
      svg.append(r);
    }
    for (const ev of d.events) {
      const t = ev.at_us / 1000;
      if (t < start || t > end) continue;
      const line = el("line", {
        class: "ev", x1: this.xOf(t), x2: this.xOf(t), y1: Y.evTop, y2: Y.evTop + Y.evH,
        stroke: STATE_COLOR[ev.to_state] || "var(--muted)",
      }, { atMs: t });
      line.append(el("title"));
      line.lastChild.textContent = `${clock(t)} ${ev.kind === "state" ? `${label(ev.from_state || "?")} → ${label(ev.to_state)}` : ev.kind}${ev.reason ? ` (${ev.reason})` : ""}`;
      svg.append(line);
    }
    const sel = this.selection();
    if (sel && sel.end > start && sel.start < end) {
      svg.append(rect(sel, "sel", Y.recTop - 2, Y.bottom - Y.recTop + 2, { startMs: sel.start, endMs: sel.end, kind: "selection" }));
    }
    if (this.cursor != null && this.cursor >= start && this.cursor <= end) {
      svg.append(el("line", { class: "cursor", x1: this.xOf(this.cursor), x2: this.xOf(this.cursor), y1: 18, y2: Y.bottom }));
    }
    if (this.playhead != null && this.playhead >= start && this.playhead <= end) {
      svg.append(el("line", { class: "playhead", x1: this.xOf(this.playhead), x2: this.xOf(this.playhead), y1: 16, y2: Y.bottom + 4 }, { atMs: this.playhead }));
    }
    this.hoverLine = el("line", { class: "hover", y1: 18, y2: Y.bottom, visibility: "hidden" });
    svg.append(this.hoverLine);
    const at = this.cursor ?? this.playhead ?? start;
    svg.setAttribute("aria-valuenow", String(Math.round(((at - d.start) / (d.end - d.start)) * 100)));
    svg.setAttribute("aria-valuetext", `cursor ${clock(at)}; showing ${clock(start)} to ${clock(end)}`);
  }

  /** The feed's state over the day, from its state events (nothing before the day's first one:
   * when the state before it began is not known). */
  stateBand() {
    const d = this.data;
    const evs = d.events.filter((e) => e.kind === "state" && e.to_state);
    const out = [];
    const until = Math.min(d.end, serverNow());
    let t = d.start;
    let state = null;
    for (const e of evs) {
      const at = e.at_us / 1000;
      if (state && at > t) out.push({ start: t, end: at, state });
      t = at;
      state = e.to_state;
    }
    if (state && until > t) out.push({ start: t, end: until, state });
    return out;
  }

  hover(x) {
    const t = this.timeAt(x);
    const tip = $("tl-hover");
    tip.hidden = false;
    tip.textContent = clock(t);
    tip.style.left = `${Math.min(Math.max(x, 30), this.axis.clientWidth - 30)}px`;
    tip.style.top = `${this.axis.offsetTop - 24}px`;
    this.drawHover(x);
  }

  drawHover(x) {
    if (!this.hoverLine) return;
    if (x == null) this.hoverLine.setAttribute("visibility", "hidden");
    else {
      this.hoverLine.setAttribute("x1", x);
      this.hoverLine.setAttribute("x2", x);
      this.hoverLine.setAttribute("visibility", "visible");
    }
  }

  // ---- keyboard

  onKey(e) {
    if (!this.win) return;
    const span = this.win.end - this.win.start;
    const step = (e.shiftKey ? span / 10 : span / 100);
    let handled = true;
    this.cursor ??= this.playhead ?? (this.win.start + this.win.end) / 2;
    switch (e.key) {
      case "ArrowLeft": this.cursor -= step; break;
      case "ArrowRight": this.cursor += step; break;
      case "Home": this.cursor = this.win.start; break;
      case "End": this.cursor = this.win.end; break;
      case "Enter": case " ": this.play(this.cursor); break;
      case "[": this.setEdge("start", this.cursor); break;
      case "]": this.setEdge("end", this.cursor); break;
      case "+": case "=": this.zoomBy(0.5); break;
      case "-": case "_": this.zoomBy(2); break;
      default: handled = false;
    }
    if (!handled) return;
    e.preventDefault();
    this.cursor = Math.min(Math.max(this.cursor, this.data.start), this.data.end);
    if (this.cursor < this.win.start || this.cursor > this.win.end) this.setWindow(this.cursor - span / 2, span, false);
    this.draw();
  }

  // ---- playback

  playerMessage(text, isError = false) {
    const m = $("tl-player-msg");
    m.textContent = text;
    m.classList.toggle("error", isError);
  }

  async play(t) {
    const d = this.data;
    if (!d) return;
    const seg = d.segments.find((s) => s.end > t);
    const readout = $("tl-pdt");
    readout.dataset.requestedMs = String(t);
    delete readout.dataset.firstPdtMs;
    this.cursor = t;
    if (!seg) {
      this.player.stop();
      this.playerMessage(`Nothing recorded after ${clock(t)} on ${this.day}.`, true);
      this.draw();
      return;
    }
    const from = Math.max(t, seg.start);
    $("tl-pdt-note").textContent = from > t ? `No recording at ${clock(t)}: playing from the next recording, ${clock(from)}.` : "";
    const to = Math.min(from + PLAY_SPAN_MS, d.end);
    this.playerMessage("Loading…");
    try {
      const { url } = await getJson(`${cam(this.camId)}/playback-url?start=${apiTime(from)}&end=${apiTime(to)}`);
      await this.player.load(url, { live: false });
      this.followPlayhead();
    } catch (e) {
      this.playerMessage(e.status === 404 ? `Nothing recorded from ${clock(from)} on.` : e.message, true);
    }
    this.draw();
  }

  followPlayhead() {
    clearInterval(this.playTimer);
    this.playTimer = setInterval(() => {
      const t = this.player.currentDateMs();
      if (t == null) return;
      this.playhead = t;
      this.setReadout(t);
      if (this.win && (t > this.win.end || t < this.win.start)) {
        const span = this.win.end - this.win.start;
        this.setWindow(t - span * 0.1, span, false);
      }
      this.drawAxis();
    }, 250);
  }

  setReadout(t) {
    const r = $("tl-pdt");
    if (t == null) {
      r.textContent = "—";
      r.dataset.pdtMs = "";
      return;
    }
    r.textContent = `${dateTime(t, true)} ${zoneLabel(t)}`;
    r.dataset.pdtMs = String(Math.round(t));
    if (!r.dataset.firstPdtMs) r.dataset.firstPdtMs = String(Math.round(t));
  }

  // ---- selection and export

  setEdge(which, t) {
    if (t == null) {
      this.onError("Play the recording first: the playhead sets the clip's start or end.");
      return;
    }
    $(which === "start" ? "tl-start" : "tl-end").value = timeInputValue(which === "start" ? Math.floor(t / 1000) * 1000 : Math.ceil(t / 1000) * 1000);
    this.draw();
  }

  setSelection(a, b) {
    const [s, e] = a <= b ? [a, b] : [b, a];
    $("tl-start").value = timeInputValue(Math.floor(s / 1000) * 1000);
    $("tl-end").value = timeInputValue(Math.ceil(e / 1000) * 1000);
    this.draw();
  }

  /** The clip range from the inputs (whole seconds on the chosen day), or null. */
  selection() {
    const a = $("tl-start").value;
    const b = $("tl-end").value;
    if (!a || !b) return null;
    const start = timeOnDay(this.day, a);
    let end = timeOnDay(this.day, b);
    if (start == null || end == null) return null;
    if (end <= start && b.startsWith("00:00")) end = timeOnDay(addDays(this.day, 1), b);
    return { start, end };
  }

  selectionInfo() {
    const out = $("tl-sel-info");
    const sel = this.selection();
    if (!sel || !this.data) {
      out.textContent = "Drag on the timeline, type the times, or use the playhead.";
      return;
    }
    if (sel.end <= sel.start) {
      out.textContent = "The end must be after the start.";
      return;
    }
    const rec = this.data.ranges.reduce((a, r) => a + Math.max(0, Math.min(r.end, sel.end) - Math.max(r.start, sel.start)), 0);
    out.textContent = `${duration((sel.end - sel.start) / 1000)} selected, ${duration(rec / 1000)} of it recorded.`;
  }

  async exportClip() {
    const out = $("tl-export-out");
    const sel = this.selection();
    const say = (text, cls = "") => {
      out.textContent = "";
      const p = document.createElement("p");
      p.textContent = text;
      if (cls) p.className = cls;
      out.append(p);
    };
    if (!sel) return say("Set a start and an end first (drag on the timeline, or type the times).", "bad");
    if (sel.end <= sel.start) return say("The end must be after the start.", "bad");
    if ((sel.end - sel.start) / 1000 > this.maxClipS()) {
      return say(`A clip can be at most ${duration(this.maxClipS())} long; this one is ${duration((sel.end - sel.start) / 1000)}.`, "bad");
    }
    if (!this.data.segments.some((s) => s.end > sel.start && s.start < sel.end)) {
      return say(`Nothing is recorded between ${clock(sel.start)} and ${clock(sel.end)}.`, "bad");
    }
    const btn = $("tl-export-btn");
    btn.disabled = true;
    say(`Exporting ${clock(sel.start)} – ${clock(sel.end)}…`);
    try {
      const exact = $("tl-exact").checked ? "&exact=true" : "";
      const res = await request(`${cam(this.camId)}/clip.mp4?start=${apiTime(sel.start)}&end=${apiTime(sel.end)}${exact}`);
      const blob = await res.blob();
      const h = res.headers;
      const m = /sha-256=:([A-Za-z0-9+/=]+):/.exec(h.get("Repr-Digest") || "");
      const serverHex = m ? [...atob(m[1])].map((c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("") : "";
      const localHex = crypto.subtle ? await sha256Hex(blob) : "";
      const name = /filename="([^"]+)"/.exec(h.get("Content-Disposition") || "")?.[1] || `${this.camId}.mp4`;
      if (this.exportUrl) URL.revokeObjectURL(this.exportUrl);
      this.exportUrl = URL.createObjectURL(blob);
      this.showExport({ out, h, serverHex, localHex, name, size: blob.size });
      const a = $("tl-download");
      a.click();
    } catch (e) {
      say(e.status === 404 ? `Nothing is recorded between ${clock(sel.start)} and ${clock(sel.end)}.` : e.message, "bad");
    } finally {
      btn.disabled = false;
    }
  }

  showExport({ out, h, serverHex, localHex, name, size }) {
    out.textContent = "";
    const add = (tag, text, cls = "", attrs = {}) => {
      const e = document.createElement(tag);
      if (text) e.textContent = text;
      if (cls) e.className = cls;
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      out.append(e);
      return e;
    };
    add("p", "SHA-256 of the clip (from the server):");
    add("div", serverHex || "(the server sent no digest)", "digest", { id: "tl-digest", "data-sha256": serverHex });
    if (localHex) {
      if (localHex === serverHex) add("p", "✓ The file received has this SHA-256 (checked in this browser).", "ok", { id: "tl-digest-check" });
      else add("p", `✗ The file received has a different SHA-256: ${localHex}. Export again.`, "bad", { id: "tl-digest-check" });
    }
    const first = Number(h.get("Vigil-First-Frame-Us")) / 1000;
    const last = Number(h.get("Vigil-End-Us")) / 1000;
    const gaps = Number(h.get("Vigil-Gaps") || 0);
    const facts = [`${bytes(size)}`, `${h.get("Vigil-Frames") || "?"} frames`];
    if (first && last) facts.push(`${dateTime(first, true)} – ${clock(last, true)} ${zoneLabel(first)}`);
    facts.push(gaps ? `${gaps} gap${gaps === 1 ? "" : "s"} inside (kept at their real length)` : "no gaps");
    add("p", facts.join(" · "), "muted");
    const a = add("a", `Save ${name} again`, "", { id: "tl-download", href: this.exportUrl, download: name });
    a.dataset.filename = name;
  }
}

async function sha256Hex(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
