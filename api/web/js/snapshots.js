// Snapshot pictures for the tiles in view. The snapshot route wants the Bearer key, so pictures are
// fetched here and shown as blob: URLs; each is asked again every few seconds with If-None-Match
// (an unchanged picture costs a 304). Only cameras whose state says a picture was decoded are asked
// (a camera that never delivered one would answer 404, a red line in the console); an offline
// camera keeps its last picture, greyed.

import { cam, request } from "./api.js";
import { serverNow } from "./format.js";
import { PICTURE } from "./states.js";

export class Snapshots {
  /**
   * @param {{onPicture: (id: string, url: string) => void, refreshMs?: number, parallel?: number, keep?: number}} opts
   */
  constructor({ onPicture, refreshMs = 5000, parallel = 4, keep = 400 }) {
    this.onPicture = onPicture;
    this.refreshMs = refreshMs;
    this.parallel = parallel;
    this.keep = keep;
    this.cache = new Map(); // id -> {url, etag, at, missingUntil}
    this.visible = [];
    this.running = 0;
    this.timer = null;
    this.ctrl = new AbortController();
  }

  start() {
    this.timer = setInterval(() => this.pump(), 1000);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.ctrl.abort();
    this.ctrl = new AbortController();
    for (const c of this.cache.values()) if (c.url) URL.revokeObjectURL(c.url);
    this.cache.clear();
    this.visible = [];
  }

  url(id) {
    return this.cache.get(id)?.url || "";
  }

  /** The cameras now on screen (objects with id and state), most important first. */
  setVisible(cams) {
    this.visible = cams;
    this.pump();
  }

  due(c, now) {
    if (!PICTURE.has(c.state)) return false;
    const e = this.cache.get(c.id);
    // The first picture is stored just after the state that announces it: give it a moment.
    if (!e) return !(c.since_us && serverNow() - c.since_us / 1000 < 1500);
    if (e.busy || (e.missingUntil && now < e.missingUntil)) return false;
    return now - e.at >= this.refreshMs;
  }

  pump() {
    if (this.timer === null) return; // stopped
    const now = Date.now();
    for (const c of this.visible) {
      if (this.running >= this.parallel) return;
      if (this.due(c, now)) this.fetch(c.id);
    }
  }

  async fetch(id) {
    const e = this.cache.get(id) || { url: "", etag: "", at: 0, missingUntil: 0 };
    e.busy = true;
    this.cache.set(id, e);
    this.running += 1;
    try {
      const headers = e.etag ? { "If-None-Match": e.etag } : {};
      const res = await request(`${cam(id)}/snapshot.jpg`, { headers, signal: this.ctrl.signal });
      if (res.status === 200) {
        const blob = await res.blob();
        if (e.url) URL.revokeObjectURL(e.url);
        e.url = URL.createObjectURL(blob);
        e.etag = res.headers.get("ETag") || "";
        this.onPicture(id, e.url);
      }
      e.missingUntil = 0;
    } catch (err) {
      if (err.name === "AbortError") return;
      // 404: no picture yet; other errors: the banner of the status poll says more.
      e.missingUntil = Date.now() + (err.status === 404 ? 30000 : 10000);
    } finally {
      e.busy = false;
      e.at = Date.now();
      this.running -= 1;
    }
    this.evict();
    this.pump(); // the next picture on screen, without waiting for the tick
  }

  /** Keep at most `keep` pictures: drop the oldest of those not on screen. */
  evict() {
    if (this.cache.size <= this.keep) return;
    const onScreen = new Set(this.visible.map((c) => c.id));
    const old = [...this.cache.entries()].filter(([id, e]) => !onScreen.has(id) && !e.busy).sort((a, b) => a[1].at - b[1].at);
    for (const [id, e] of old.slice(0, this.cache.size - this.keep)) {
      if (e.url) URL.revokeObjectURL(e.url);
      this.cache.delete(id);
    }
  }
}
