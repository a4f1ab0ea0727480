// The live wall: up to 16 cameras playing live at once (live_mse.js per tile, the H.264 substream
// where a camera has one), in layouts 1×1, 2×2, 3×3 and 4×4; named sets of cameras saved in this
// browser; fullscreen; keyboard: arrows move, Enter opens the live view, 1–4 pick the layout,
// PageUp/PageDown page through the cameras, F toggles fullscreen.
// Only the tiles on screen play; the rest of the cameras are a page away. A tile whose camera is
// not online says so (a frozen picture still plays, and would pass for live) and shows its open
// ticket, as the camera wall does.

import { LivePlayer } from "./live_mse.js";
import { Snapshots } from "./snapshots.js";
import { MEANING, label } from "./states.js";
import { showTicketMark } from "./tickets.js";

const $ = (id) => document.getElementById(id);
const SETS_ITEM = "vigil.livewall.sets";
const LAYOUTS = [1, 2, 3, 4];

export class LiveWall {
  /**
   * @param {{cameras: () => Array<{id: string, name?: string}>, onOpen: (c: object) => void,
   *          camera?: (id: string) => ({state?: string, reason?: string} | undefined),
   *          ticketOf?: (id: string) => ({id: number, acked_us?: number, acked_by?: string} | null)}} hooks
   */
  constructor({ cameras, onOpen, camera = () => undefined, ticketOf = () => null }) {
    this.cameras = cameras;
    this.onOpen = onOpen;
    this.camera = camera;
    this.ticketOf = ticketOf;
    this.root = $("view-livewall");
    this.side = 2;
    this.page = 0;
    this.focus = 0;
    this.set = ""; // the saved set shown ("" = every camera)
    this.tiles = [];
    // tiles whose codec the browser cannot play (H.265 without a substream) show the camera's
    // latest snapshot instead, every 2 s, rather than a black tile
    this.snaps = new Snapshots({ onPicture: (id, url) => this.poster(id, url), refreshMs: 2000 });
    this.build();
  }

  poster(id, url) {
    for (const t of this.tiles) if (t.camera.id === id && t.tile.dataset.live === "unsupported") t.video.poster = url;
  }

  /** The cameras whose tiles cannot play, with their current state (snapshots are asked only
   *  while a picture exists). */
  stills() {
    const ids = this.tiles.filter((t) => t.tile.dataset.live === "unsupported").map((t) => t.camera.id);
    if (ids.length && this.snaps.timer === null) this.snaps.start();
    this.snaps.setVisible(ids.map((id) => this.camera(id) || { id }));
  }

  build() {
    const bar = document.createElement("div");
    bar.className = "toolbar";
    const layouts = document.createElement("div");
    layouts.className = "zone";
    layouts.setAttribute("role", "group");
    layouts.setAttribute("aria-label", "Layout");
    for (const n of LAYOUTS) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "seg";
      b.id = `lw-layout-${n}`;
      b.textContent = `${n}×${n}`;
      b.addEventListener("click", () => this.layout(n));
      layouts.append(b);
    }
    this.setSelect = document.createElement("select");
    this.setSelect.id = "lw-set";
    this.setSelect.setAttribute("aria-label", "Camera set");
    this.setSelect.addEventListener("change", () => this.useSet(this.setSelect.value));
    this.setName = document.createElement("input");
    this.setName.id = "lw-set-name";
    this.setName.placeholder = "Set name";
    this.setName.setAttribute("aria-label", "Name of the set to save");
    const save = document.createElement("button");
    save.type = "button";
    save.id = "lw-save";
    save.textContent = "Save these cameras as a set";
    save.addEventListener("click", () => this.saveSet(this.setName.value.trim()));
    const full = document.createElement("button");
    full.type = "button";
    full.id = "lw-fullscreen";
    full.textContent = "Fullscreen (F)";
    full.addEventListener("click", () => this.fullscreen());
    this.pageLabel = document.createElement("span");
    this.pageLabel.className = "muted";
    this.pageLabel.id = "lw-page";
    bar.append(layouts, this.setSelect, this.setName, save, full, this.pageLabel);
    this.grid = document.createElement("div");
    this.grid.id = "lw-grid";
    this.grid.className = "lw-grid";
    this.grid.tabIndex = 0;
    this.grid.setAttribute("role", "grid");
    this.grid.setAttribute("aria-label", "Live wall. Arrows move, Enter opens, 1 to 4 pick the layout, Page Up and Page Down page, F fullscreen.");
    this.grid.addEventListener("keydown", (e) => this.key(e));
    this.root.append(bar, this.grid);
    this.fillSets();
  }

  sets() {
    try {
      return JSON.parse(localStorage.getItem(SETS_ITEM) || "{}");
    } catch {
      return {};
    }
  }

  fillSets() {
    const sets = this.sets();
    this.setSelect.textContent = "";
    const all = new Option("All cameras", "");
    this.setSelect.append(all, ...Object.keys(sets).sort().map((n) => new Option(n, n)));
    this.setSelect.value = this.set in sets ? this.set : "";
  }

  saveSet(name) {
    if (!name) return;
    const sets = this.sets();
    sets[name] = this.shown().map((c) => c.id);
    localStorage.setItem(SETS_ITEM, JSON.stringify(sets));
    this.set = name;
    this.fillSets();
  }

  useSet(name) {
    this.set = name;
    this.page = 0;
    this.focus = 0;
    this.render();
  }

  list() {
    const cams = this.cameras();
    const ids = this.set ? this.sets()[this.set] : null;
    if (!ids) return cams;
    const byId = new Map(cams.map((c) => [c.id, c]));
    return ids.map((id) => byId.get(id) || { id, name: id });
  }

  shown() {
    const n = this.side * this.side;
    return this.list().slice(this.page * n, this.page * n + n);
  }

  show() {
    this.root.hidden = false;
    this.render();
  }

  /** The camera list changed: a wall still empty (opened before the first status) fills. */
  /** A new status document, event or ticket list: the tiles' states and tickets follow it. */
  refresh() {
    if (this.root.hidden) return;
    if (!this.tiles.length) this.render();
    else for (const t of this.tiles) this.markState(t);
    this.stills();
  }

  markState({ camera, tile, badge, ticket }) {
    const c = this.camera(camera.id) || camera;
    const state = c.state || "";
    if (tile.dataset.state !== state) {
      tile.dataset.state = state;
      badge.dataset.state = state;
      badge.textContent = state ? label(state) : "";
    }
    badge.hidden = !state || state === "online";
    badge.title = c.reason ? `${label(state)}: ${c.reason}` : MEANING[state] || "";
    showTicketMark(ticket, this.ticketOf(camera.id));
  }

  hide() {
    this.root.hidden = true;
    this.clear();
  }

  layout(n) {
    const first = this.page * this.side * this.side;
    this.side = n;
    this.page = Math.floor(first / (n * n));
    this.focus = 0;
    this.render();
  }

  clear() {
    for (const t of this.tiles) t.player.stop();
    this.snaps.stop();
    this.tiles = [];
    this.grid.textContent = "";
  }

  render() {
    if (this.root.hidden) return;
    this.clear();
    const all = this.list();
    const n = this.side * this.side;
    const pages = Math.max(1, Math.ceil(all.length / n));
    this.page = Math.min(this.page, pages - 1);
    this.grid.style.gridTemplateColumns = `repeat(${this.side}, 1fr)`;
    this.grid.dataset.layout = `${this.side}x${this.side}`;
    for (const b of LAYOUTS) $(`lw-layout-${b}`).setAttribute("aria-pressed", String(b === this.side));
    this.pageLabel.textContent = `Page ${this.page + 1} of ${pages} · ${all.length} camera${all.length === 1 ? "" : "s"}`;
    for (const [i, c] of this.shown().entries()) {
      const tile = document.createElement("div");
      tile.className = "lw-tile";
      tile.dataset.id = c.id;
      tile.setAttribute("role", "gridcell");
      const video = document.createElement("video");
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      const name = document.createElement("div");
      name.className = "lw-label";
      name.textContent = c.name || c.id;
      const status = document.createElement("div");
      status.className = "lw-status";
      status.setAttribute("role", "status");
      const badge = document.createElement("span");
      badge.className = "badge lw-badge";
      const ticket = document.createElement("span");
      ticket.className = "tk-mark lw-ticket";
      tile.append(video, name, badge, ticket, status);
      tile.addEventListener("click", () => { this.focus = i; this.mark(); });
      tile.addEventListener("dblclick", () => this.onOpen(c));
      this.grid.append(tile);
      const player = new LivePlayer(video, {
        lowDelay: this.side === 1, // tiles take the recorder's bursts (~0.4 s); a layout of one, each frame
        onState: (state, text) => { tile.dataset.live = state; if (state !== "live") status.textContent = text; },
        onDelay: (s) => { status.textContent = `${s.toFixed(2)} s`; },
        onUnsupported: (why) => {
          tile.dataset.live = "unsupported";
          status.textContent = `Cannot play here: ${why}. The latest snapshot, every 2 s.`;
          const url = this.snaps.url(c.id);
          if (url) video.poster = url;
          this.stills();
        },
      });
      player.preferSub = true; // the substream where configured: a wall needs no 4K
      player.start(c.id);
      const t = { camera: c, player, tile, video, badge, ticket };
      this.markState(t);
      this.tiles.push(t);
    }
    this.mark();
  }

  mark() {
    this.tiles.forEach((t, i) => t.tile.classList.toggle("active", i === this.focus));
  }

  fullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else this.grid.requestFullscreen?.().catch(() => {});
  }

  key(e) {
    const n = this.tiles.length;
    const s = this.side;
    let f = this.focus;
    switch (e.key) {
      case "ArrowRight": f = Math.min(n - 1, f + 1); break;
      case "ArrowLeft": f = Math.max(0, f - 1); break;
      case "ArrowDown": f = Math.min(n - 1, f + s); break;
      case "ArrowUp": f = Math.max(0, f - s); break;
      case "Enter": if (this.tiles[f]) this.onOpen(this.tiles[f].camera); break;
      case "PageDown": this.page += 1; this.focus = 0; this.render(); e.preventDefault(); return;
      case "PageUp": this.page = Math.max(0, this.page - 1); this.focus = 0; this.render(); e.preventDefault(); return;
      case "f": case "F": this.fullscreen(); break;
      case "1": case "2": case "3": case "4": this.layout(Number(e.key)); e.preventDefault(); return;
      default: return;
    }
    e.preventDefault();
    this.focus = f;
    this.mark();
  }
}
