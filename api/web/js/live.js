// The live view: a camera's live video in a dialog, with its state and the health sampler's figures
// beside it, refreshed every 2 s while open. Video: frame by frame over a WebSocket into Media
// Source Extensions (live_mse.js), with the live delay it measures; where MSE is missing, the live
// HLS playlist (a signed URL from /live-url); where the codec cannot be decoded, snapshots.
// Beside it, the camera's open fault ticket: read-only, or with Acknowledge and Resolve for roles
// that work tickets (through tickets.js's `act`, via the `onTicketAct` hook).

import { cam, getJson, request } from "./api.js";
import { dateTime, duration, serverNow, zoneLabel } from "./format.js";
import { LivePlayer } from "./live_mse.js";
import { Player } from "./player.js";
import { MEANING, PICTURE, label } from "./states.js";
import { workerName } from "./tickets.js";

const $ = (id) => document.getElementById(id);
const FIGURE_LIMIT = 12;

export class LiveView {
  /**
   * @param {{canTimeline: () => boolean, onTimeline: (id: string) => void, onError: (msg: string) => void,
   *   ticketFor: (cameraId: string) => object|null, canWork: () => boolean, keyName: () => string,
   *   onTicketAct: (ticketId: number, what: string, body: object, by: string) => Promise<boolean>}} hooks
   */
  constructor({ canTimeline, onTimeline, onError, ticketFor, canWork, keyName, onTicketAct }) {
    this.dialog = $("live");
    this.video = $("live-video");
    this.msg = $("live-msg");
    this.canTimeline = canTimeline;
    this.onError = onError;
    this.ticketFor = ticketFor;
    this.canWork = canWork;
    this.keyName = keyName;
    this.onTicketAct = onTicketAct;
    this.ticketId = null;
    this.working = false;
    this.camera = null;
    this.detail = null;
    this.timer = null;
    this.playing = false;
    this.player = new Player(this.video, {
      onError: (m) => {
        this.playing = false;
        this.message(m, true);
      },
      onPlaying: () => { if (!this.usesMse()) this.message(""); }, // the live stream sets its own messages
    });
    this.delayEl = document.createElement("span");
    this.delayEl.id = "live-delay";
    this.delayEl.className = "muted";
    this.delayEl.setAttribute("role", "status");
    $("live-badge").after(this.delayEl);
    this.mse = LivePlayer.supported()
      ? new LivePlayer(this.video, {
        onState: (state, text) => this.liveState(state, text),
        onDelay: (s, target) => {
          this.delayEl.textContent = `${s.toFixed(2)} s behind live`;
          this.delayEl.title = `Jitter buffer: plays within ${target.toFixed(2)} s of the live edge (adapts to how frames arrive)`;
        },
        onUnsupported: (why) => this.fallback(why),
        onSubstream: (why) => { this.substreamWhy = why; },
        lowDelay: true, // one camera the operator looks at: each frame as it arrives
      })
      : null;
    $("live-close").addEventListener("click", () => this.dialog.close());
    $("live-tk-ack").addEventListener("click", () => this.work("ack", {}));
    $("live-tk-resolve").addEventListener("click", () => {
      const note = $("live-tk-note").value.trim();
      this.work("resolve", note ? { note } : {});
    });
    this.dialog.addEventListener("close", () => this.closed());
    $("live-timeline").addEventListener("click", () => {
      const id = this.camera?.id;
      this.dialog.close();
      if (id) onTimeline(id);
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  open(camera) {
    this.camera = camera;
    this.detail = null;
    $("live-title").textContent = camera.name || camera.id;
    const district = camera.tags?.district ? ` · district ${camera.tags.district}` : "";
    $("live-sub").textContent = `${camera.id}${district}`;
    $("live-timeline").hidden = !this.canTimeline();
    this.renderState();
    this.renderFigures();
    this.ticketId = null;
    this.renderTicket();
    if (!this.dialog.open) this.dialog.showModal();
    $("live-close").focus();
    this.startVideo();
    this.poll();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.poll(), 2000);
  }

  closed() {
    clearInterval(this.timer);
    clearTimeout(this.renew);
    this.timer = null;
    this.player.stop();
    this.mse?.stop();
    this.stopSnapshots();
    this.playing = false;
    this.camera = null;
    this.substreamWhy = "";
    this.delayEl.textContent = "";
  }

  liveState(state, text) {
    this.video.dataset.live = state;
    this.video.dataset.stream = this.mse?.stream || "main";
    if (state === "live" && this.mse?.stream === "sub") {
      this.message(`Playing the camera's H.264 substream: ${this.substreamWhy || "the main stream cannot play here"}.`);
    } else if (state === "live") this.message("");
    else this.message(text, state === "stalled");
    if (state !== "live") this.delayEl.textContent = state === "stalled" ? "stalled" : "";
  }

  /** The codec cannot be decoded here: say so, and show the camera's snapshots instead. */
  fallback(why) {
    const id = this.camera?.id;
    this.message(`Live video cannot play in this browser: ${why}. Showing the latest snapshot instead, refreshed every 2 s.`, true);
    this.video.dataset.live = "unsupported";
    this.stopSnapshots();
    this.showSnapshot(id);
    this.snapTimer = setInterval(() => this.showSnapshot(id), 2000);
  }

  async showSnapshot(id) {
    if (this.camera?.id !== id || !PICTURE.has(this.camera.state)) return; // no picture yet: a 404
    try {
      const blob = await (await request(`${cam(id)}/snapshot.jpg`)).blob();
      if (this.camera?.id !== id) return;
      if (this.poster) URL.revokeObjectURL(this.poster);
      this.poster = URL.createObjectURL(blob);
      this.video.poster = this.poster;
    } catch { /* no snapshot yet: the message says what is happening */ }
  }

  stopSnapshots() {
    clearInterval(this.snapTimer);
    this.snapTimer = null;
    this.video.removeAttribute("poster");
    if (this.poster) URL.revokeObjectURL(this.poster);
    this.poster = null;
  }

  /** The wall saw this camera change (event stream). */
  update(camera) {
    if (!this.camera || camera.id !== this.camera.id) return;
    this.camera = camera;
    this.renderState();
    this.renderTicket();
    if (this.usesMse()) return; // the live stream says itself why it stalls, and resumes by itself
    if (!PICTURE.has(camera.state)) {
      this.message(this.why(camera), !this.playing);
    } else if (!this.playing) {
      this.startVideo();
    }
  }

  why(c) {
    if (c.state === "offline") return `Camera offline since ${dateTime(c.since_us / 1000)} ${zoneLabel()}${c.reason ? ` (${c.reason})` : ""}.`;
    if (c.state === "disabled") return "Recording is switched off for this camera.";
    if (c.state === "starting" || c.state === "unknown") return "The camera has not delivered a picture yet. Waiting…";
    return "";
  }

  usesMse() {
    return Boolean(this.mse) && new URLSearchParams(location.search).get("live") !== "hls";
  }

  async startVideo() {
    const c = this.camera;
    if (this.usesMse()) {
      this.playing = true;
      this.message("Loading live video…");
      this.showSnapshot(c.id); // the latest picture until the first keyframe arrives
      this.mse.start(c.id);
      return;
    }
    if (!PICTURE.has(c.state)) {
      this.player.stop();
      this.playing = false;
      this.message(this.why(c), c.state === "offline");
      return;
    }
    this.playing = true;
    this.message("Loading live video…");
    try {
      const { url, expires_us: expiresUs } = await getJson(`${cam(c.id)}/live-url`);
      if (this.camera?.id !== c.id) return;
      await this.player.load(url, { live: true });
      // The signed playlist URL expires (1 h by default): take a fresh one a minute before.
      clearTimeout(this.renew);
      this.renew = setTimeout(() => this.camera?.id === c.id && this.startVideo(), Math.max(60000, expiresUs / 1000 - serverNow() - 60000));
    } catch (e) {
      this.playing = false;
      this.message(e.message, true);
    }
  }

  message(text, isError = false) {
    this.msg.textContent = text;
    this.msg.classList.toggle("error", isError);
  }

  async poll() {
    const id = this.camera?.id;
    if (!id) return;
    try {
      const d = await getJson(`${cam(id)}/status`);
      if (this.camera?.id !== id) return;
      this.detail = d;
      this.renderFigures();
    } catch (e) {
      if (e.status !== 401) this.onError(e.message);
    }
  }

  /** The camera's open ticket, if any (the wall's list of open tickets changed, or the camera did). */
  renderTicket() {
    const t = this.camera ? this.ticketFor(this.camera.id) : null;
    const box = $("live-ticket");
    box.hidden = !t;
    if (!t) {
      this.ticketId = null;
      return;
    }
    if (this.ticketId !== t.id) { // another ticket: fresh fields
      this.ticketId = t.id;
      $("live-tk-name").value = workerName.get(this.keyName());
      $("live-tk-note").value = "";
      $("live-tk-msg").textContent = "";
    }
    box.dataset.ticket = String(t.id);
    box.dataset.acked = String(Boolean(t.acked_us));
    $("live-tk-title").textContent = `Ticket #${t.id}: ${t.title}`;
    const ack = t.acked_us ? `acknowledged by ${t.acked_by} ${dateTime(t.acked_us / 1000)}` : "not acknowledged yet";
    $("live-tk-times").textContent = `opened ${dateTime(t.opened_us / 1000)} ${zoneLabel()} · ${ack}`;
    $("live-tk-work").hidden = !this.canWork();
    $("live-tk-ack").textContent = t.acked_us ? "Acknowledged" : "Acknowledge";
    $("live-tk-ack").disabled = this.working || Boolean(t.acked_us);
    $("live-tk-resolve").disabled = this.working;
  }

  /** Acknowledge or resolve the shown ticket under the name typed (asked for when empty). */
  async work(what, body) {
    const id = this.ticketId;
    const by = $("live-tk-name").value.trim();
    if (!id || this.working) return;
    if (!by) {
      $("live-tk-msg").textContent = "Type your name first: it goes on the ticket.";
      $("live-tk-name").focus();
      return;
    }
    workerName.set(by);
    $("live-tk-msg").textContent = "";
    this.working = true;
    this.renderTicket();
    const done = await this.onTicketAct(id, what, body, by);
    this.working = false;
    if (done && what === "resolve" && this.ticketId === id) $("live-tk-note").value = "";
    this.renderTicket();
  }

  renderState() {
    const c = this.camera;
    const badge = $("live-badge");
    badge.dataset.state = c.state;
    badge.textContent = label(c.state);
    badge.title = MEANING[c.state] || "";
  }

  renderFigures() {
    const c = this.camera;
    if (!c) return;
    const d = this.detail || c;
    const rows = [
      ["State", `${label(c.state)} — ${MEANING[c.state] || ""}`],
      ["Since", c.since_us ? `${dateTime(c.since_us / 1000)} (${duration((serverNow() - c.since_us / 1000) / 1000)})` : "—"],
      ["Reason", c.reason || "—"],
      ["Frame rate", d.fps != null ? `${d.fps.toFixed(1)} fps` : "—"],
      ["Bitrate", d.bitrate_kbps != null ? `${Math.round(d.bitrate_kbps).toLocaleString("en")} kbit/s` : "—"],
      ["Last packet", d.last_packet_us ? `${dateTime(d.last_packet_us / 1000)}` : "—"],
      ["Reconnects", String(d.reconnects ?? 0)],
    ];
    if (this.detail?.latest_recording_end_us) rows.push(["Recorded until", dateTime(this.detail.latest_recording_end_us / 1000)]);
    const figures = Object.entries(this.detail?.figures || {}).slice(0, FIGURE_LIMIT);
    for (const [k, v] of figures) {
      rows.push([k.replaceAll("_", " "), typeof v === "number" ? String(Math.round(v * 1000) / 1000) : String(v)]);
    }
    rows.push(["Times in", zoneLabel()]);
    const dl = $("live-figures");
    dl.textContent = "";
    for (const [k, v] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dl.append(dt, dd);
    }
  }
}
