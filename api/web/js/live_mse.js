// Live video over a WebSocket into Media Source Extensions: one fMP4 fragment per frame from the
// worker that holds the camera's connection (api/routers/live_ws.py, docs/design/live.md).
//
// - Joins at the latest keyframe; keeps the play head near the live edge: more than MAX_BEHIND_S
//   behind → a jump to the edge, a little behind → plays 15 % faster until caught up.
// - A jitter buffer: how far behind it plays adapts to how frames arrive. Frames one by one (the
//   recorder's default while watched) → within CATCH_UP_S of the edge, as before; in bursts (a
//   recorder keeping its 0.2 s read pause while watched, a relay, a jittery network) → just far
//   enough behind that the play head does not run dry between bursts: each underflow stops the
//   picture, and Chromium then buffers more before it plays on (seen as 0.7 s behind live).
// - Measures the live delay: server time now − when the worker read the frame on screen.
// - Never silent: no frame for STALL_MS → "stalled" with the server's reason (camera offline,
//   recorded elsewhere) or the network's; it reconnects and resumes by itself.
// - A codec the browser cannot decode (H.265 without a decoder) → onUnsupported with the reason.

import { cam, getJson } from "./api.js";

const STALL_MS = 2000;
const MAX_BEHIND_S = 1.0; // behind the newest frame by more: jump to it
const CATCH_UP_S = 0.12; // by more: play 15 % faster until caught up (the least of the target)
const MAX_TARGET_S = 0.6; // the jitter buffer's most
const JITTER_WINDOW_S = 5; // arrivals it looks back on
const JITTER_MARGIN_S = 0.04; // on top of the 95th percentile of lateness
const DECAY_S_PER_S = 0.05; // the need falls back this fast when arrival is smooth again
const SLOW_BAND_S = 0.03; // closer to the edge than need − this: play 10 % slower
const KEEP_S = 10;
const HEAD = 17; // u8 kind | f64 arrival ms | f64 decode time s

/** The jitter buffer's state: (arrival s, arrival − decode time s) of the window's frames. */
function freshJitter() {
  return { samples: [], best: 0, need: 0, target: CATCH_UP_S, late95: 0, at: 0 };
}

export class LivePlayer {
  /**
   * @param {HTMLVideoElement} video
   * @param {{onState: (state: string, text: string) => void, onDelay?: (s: number) => void,
   *          onUnsupported?: (reason: string) => void, onSubstream?: (reason: string) => void,
   *          lowDelay?: boolean}} hooks  lowDelay: ask for each frame as it arrives (~0.1 s behind;
   *          the camera's recorder wakes per frame while so watched) instead of the recorder's
   *          bursts (~0.4 s behind, what a wall tile needs: being watched then costs it nothing)
   */
  constructor(video, { onState, onDelay = () => {}, onUnsupported = () => {}, onSubstream = () => {}, lowDelay = false }) {
    this.onSubstream = onSubstream;
    this.lowDelay = lowDelay;
    this.video = video;
    this.onState = onState;
    this.onDelay = onDelay;
    this.onUnsupported = onUnsupported;
    this.gen = 0;
    this.ws = null;
    this.timer = null;
    this.stats = { frames: 0, jumps: 0, stalls: 0, seeks: 0 };
    this.queue = [];
    this.arrivals = [];
    this.jitter = freshJitter();
    video.livePlayer = this; // for trouble-shooting from the console (and the tests)
  }

  static supported() {
    return typeof MediaSource !== "undefined" && typeof WebSocket !== "undefined";
  }

  /** Start playing camera `id` live (`stream`: main, or sub: its H.264 substream). */
  async start(id, stream = "main") {
    this.stop();
    const gen = ++this.gen;
    this.id = id;
    this.stream = stream;
    this.substream = false;
    this.serverState = { state: "connecting", reason: "" };
    this.lastFrameAt = performance.now();
    this.state = "";
    this.timer = setInterval(() => this.tick(gen), 250);
    this.setState("connecting", "Connecting to the live stream…");
    await this.connect(gen);
  }

  async connect(gen) {
    let url;
    try {
      ({ url } = await getJson(`${cam(this.id)}/live-ws-url${this.stream === "sub" ? "?stream=sub" : ""}`));
    } catch (e) {
      if (gen === this.gen) this.retry(gen, `the server refused the live stream: ${e.message}`);
      return;
    }
    if (gen !== this.gen) return;
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${url}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => { if (this.lowDelay) this.sendDelay(); };
    ws.onmessage = (ev) => gen === this.gen && this.message(ev.data);
    ws.onclose = (ev) => {
      if (gen !== this.gen || this.ws !== ws) return;
      this.ws = null;
      this.retry(gen, ev.code >= 4000 ? `the server refused the live stream (${ev.reason || ev.code})` : "the connection to the server was lost (network)");
    };
  }

  /** Low delay on or off for this view (a tile made fullscreen, a layout of one). */
  setLowDelay(on) {
    if (on === this.lowDelay) return;
    this.lowDelay = on;
    this.sendDelay();
  }

  sendDelay() {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "delay", low: this.lowDelay }));
  }

  retry(gen, why) {
    this.setState("stalled", `Stalled: ${why}. Reconnecting…`);
    this.connectAt = performance.now() + 1000;
    this.pendingGen = gen;
  }

  message(data) {
    if (typeof data === "string") {
      const m = JSON.parse(data);
      if (m.type === "hello") this.skewMs = m.server_ms - Date.now();
      else if (m.type === "state") this.serverState = m;
      else if (m.type === "camera") {
        this.substream = m.substream;
        if (this.preferSub && m.substream && this.stream !== "sub") {
          const id = this.id;
          setTimeout(() => this.start(id, "sub"));
        }
      }
      else if (m.type === "codec") this.codec(m);
      return;
    }
    const bytes = new Uint8Array(data);
    const view = new DataView(data);
    const kind = bytes[0];
    if (kind === 1) {
      this.queue.length = 0; // a new init segment: what was queued belongs to the old stream
      this.waitKey = true;
      this.initChunk = bytes.subarray(HEAD);
      this.push(this.initChunk);
      return;
    }
    if (this.waitKey && kind !== 3) return;
    this.waitKey = false;
    this.lastFrameAt = performance.now();
    this.stats.frames += 1;
    if (this.state !== "live" && this.state !== "unsupported") this.setState("live", "");
    this.newest = view.getFloat64(9);
    this.arrivals.push([this.newest, view.getFloat64(1)]);
    this.arrived(performance.now() / 1000, this.newest);
    if (this.arrivals.length > 300) this.arrivals.splice(0, 100);
    if (this.queue.length > 75) {
      // the page fell behind (a background tab, a slow machine): skip to the next keyframe,
      // keeping an init segment not yet appended
      this.queue = this.queue.filter((c) => c === this.initChunk);
      this.waitKey = kind !== 3;
      this.stats.jumps += 1;
      if (this.waitKey) return;
    }
    this.push(bytes.subarray(HEAD));
  }

  codec(m) {
    if (!m.supported || !MediaSource.isTypeSupported(m.mime)) {
      const why = m.reason || `this browser cannot decode ${m.codec} (${m.mime})`;
      if (this.substream && this.stream !== "sub") {
        // the camera's H.264 substream (health_url) plays where the main stream cannot
        const id = this.id;
        this.onSubstream(why);
        this.start(id, "sub");
        return;
      }
      this.setState("unsupported", why);
      this.onUnsupported(why);
      this.stop();
      return;
    }
    if (this.mime === m.mime && this.ms) return;
    this.mime = m.mime;
    this.openSource(m.mime);
  }

  openSource(mime) {
    this.queue = [];
    this.arrivals = [];
    this.jitter.samples = [];
    this.sb = null;
    const ms = new MediaSource();
    this.ms = ms;
    if (this.video.src) URL.revokeObjectURL(this.video.src);
    this.video.src = URL.createObjectURL(ms);
    ms.addEventListener("sourceopen", () => {
      if (this.ms !== ms) return;
      this.sb = ms.addSourceBuffer(mime);
      this.sb.mode = "segments";
      this.sb.addEventListener("updateend", () => this.pump());
      this.pump();
    });
    this.video.play().catch(() => {});
  }

  push(chunk) {
    if (!this.ms) return;
    this.queue.push(chunk);
    this.pump();
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || !this.queue.length || this.ms.readyState !== "open") return;
    const chunk = this.queue.shift();
    try {
      sb.appendBuffer(chunk);
    } catch (e) {
      this.waitKey = true;
      this.stats.appendErrors = (this.stats.appendErrors || 0) + 1;
      this.stats.lastAppendError = e.name;
      if (e.name === "QuotaExceededError") {
        this.queue = [];
        this.trim(0);
      } else {
        // the source is unusable (a decode error ended it): start a new one from the init
        this.openSource(this.mime);
        if (this.initChunk) this.queue.push(this.initChunk);
      }
    }
  }

  trim(keep = KEEP_S) {
    const sb = this.sb;
    if (!sb || sb.updating || !sb.buffered.length) return;
    const until = this.video.currentTime - keep;
    if (until > sb.buffered.start(0) + 1) sb.remove(0, until);
  }

  tick(gen) {
    if (gen !== this.gen) return;
    const now = performance.now();
    if (!this.ws && this.connectAt && now >= this.connectAt) {
      this.connectAt = 0;
      this.connect(gen);
    }
    const v = this.video;
    const sb = this.sb;
    if (sb && sb.buffered.length) {
      const i = sb.buffered.length - 1;
      const start = sb.buffered.start(i);
      // the newest frame's start (the buffered end adds its guessed duration)
      const edge = Math.min(sb.buffered.end(i), this.newest ?? Infinity);
      const j = this.jitterNow(now / 1000);
      // behind the live edge as frames arriving on time would place it (between bursts the newest
      // frame stands still while the edge moves on); without enough arrivals yet, the newest frame
      const live = j ? Math.max(j.edge, edge) : edge;
      const behind = live - v.currentTime;
      if (v.currentTime < start || edge - v.currentTime > MAX_BEHIND_S) {
        this.stats.seeks += 1;
        // why, for trouble-shooting: behind the newest frame (s), or before the buffered start
        this.stats.lastSeek = v.currentTime < start ? "before the buffer" : `${(edge - v.currentTime).toFixed(2)} s behind`;
        v.currentTime = Math.max(start, Math.min(edge - 0.04, live - this.jitter.need));
      }
      let rate = 1.0;
      if (behind > this.jitter.target) rate = 1.15;
      // held back only for bursts: under CATCH_UP_S of lateness (frames one by one, with the
      // encoder's and the network's jitter: 40 ms at p95 for 720p) Chromium's own buffer covers it
      // and holding back would only add delay
      else if (j && this.jitter.need >= CATCH_UP_S && behind < this.jitter.need - SLOW_BAND_S) rate = 0.9;
      if (v.playbackRate !== rate) v.playbackRate = rate;
      if (v.paused) v.play().catch(() => {});
      if (now - (this.trimmedAt || 0) > 5000) {
        this.trimmedAt = now;
        this.trim();
      }
      const d = this.delay();
      if (d != null) this.onDelay(d, this.jitter.target);
    }
    if (now - this.lastFrameAt > STALL_MS) {
      if (this.state !== "stalled" && this.state !== "unsupported") this.stats.stalls += 1;
      if (this.state !== "unsupported" && (this.ws || !this.connectAt)) {
        const s = this.serverState;
        const why = s.state === "offline" || s.state === "stalled" ? s.reason : "no data from the server (network)";
        this.setState("stalled", `Stalled: no new frame for ${((now - this.lastFrameAt) / 1000).toFixed(0)} s — ${why || "waiting for the camera"}.`);
      }
    } else if (this.stats.frames && this.state !== "live") {
      this.setState("live", "");
    }
  }

  /** One frame in: its lateness against the window's best (arrival − decode time) is what the
   * jitter buffer must cover. A step of more than MAX_BEHIND_S either way is a new timeline (a
   * camera reconnect continues decode times across the outage; a skip to a keyframe), not jitter. */
  arrived(nowS, decodeS) {
    const j = this.jitter;
    const off = nowS - decodeS;
    const s = j.samples;
    if (s.length && Math.abs(off - j.best) > MAX_BEHIND_S) s.length = 0;
    if (!s.length || off < j.best) j.best = off;
    s.push([nowS, off]);
  }

  /** The jitter buffer's figures now: `need` (the 95th percentile of how late frames came over the
   * last JITTER_WINDOW_S, + a margin; it rises at once and falls back slowly), `target` (play faster
   * beyond it: need, at least CATCH_UP_S, at most MAX_TARGET_S) and `edge` (the decode time a frame
   * arriving now on time would have). Null until there are enough arrivals. */
  jitterNow(nowS) {
    const j = this.jitter;
    const s = j.samples;
    let cut = 0;
    while (cut < s.length && s[cut][0] < nowS - JITTER_WINDOW_S) cut++;
    if (cut) s.splice(0, cut);
    if (s.length < 10) return null;
    // lateness against the best offset seen so far in the window, not the window's best: a backlog
    // (the keyframe's GOP at a join) arrives with falling offsets and is not late
    let best = Infinity;
    const late = [];
    for (const [, off] of s) {
      if (off < best) best = off;
      late.push(off - best);
    }
    j.best = best;
    late.sort((a, b) => a - b);
    j.late95 = late[Math.floor(0.95 * (late.length - 1))];
    const dt = j.at ? Math.max(0, nowS - j.at) : 0;
    j.at = nowS;
    j.need = Math.min(MAX_TARGET_S, Math.max(j.late95 + JITTER_MARGIN_S, j.need - DECAY_S_PER_S * dt));
    j.target = Math.min(MAX_TARGET_S, Math.max(CATCH_UP_S, j.need + SLOW_BAND_S));
    return { edge: nowS - best };
  }

  /** Seconds between the frame on screen reaching the worker and now (server clock). A frame read
   * from a backlog (the reader's pause while watched, a burst after a network hiccup) waited in the
   * socket before its read stamp, so its arrival is taken as its decode time plus the smallest
   * (read stamp − decode time) of the recent frames — the offset of a frame read as it came — and
   * never later than its own stamp. Frames before a step of more than MAX_BEHIND_S (a camera
   * reconnect continues decode times across the outage) are left out. */
  delay() {
    const t = this.video.currentTime;
    const a = this.arrivals;
    if (!a || !a.length || this.video.readyState < 2) return null;
    let shown = null;
    for (let i = a.length - 1; i >= 0; i--) {
      if (a[i][0] <= t + 0.001) {
        shown = a[i];
        break;
      }
    }
    if (!shown) return null;
    const last = a[a.length - 1];
    const newestOff = last[1] / 1000 - last[0];
    let bestOff = newestOff;
    for (let i = a.length - 1; i >= 0; i--) {
      const off = a[i][1] / 1000 - a[i][0];
      if (Math.abs(off - newestOff) > MAX_BEHIND_S) break;
      if (off < bestOff) bestOff = off;
    }
    const arrivedMs = Math.min(shown[1], (shown[0] + bestOff) * 1000);
    return (Date.now() + (this.skewMs || 0) - arrivedMs) / 1000;
  }

  setState(state, text) {
    if (state === this.state && text === this.text) return;
    this.state = state;
    this.text = text;
    this.video.dataset.live = state;
    this.onState(state, text);
  }

  stop() {
    this.gen += 1;
    clearInterval(this.timer);
    this.timer = null;
    this.connectAt = 0;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.onmessage = null;
      // closing while still connecting is an error in the console: close once it is open
      if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close();
      else ws.close();
    }
    this.ms = null;
    this.sb = null;
    this.mime = "";
    this.queue = [];
    this.arrivals = [];
    this.jitter = freshJitter();
    if (this.video.getAttribute("src")) {
      URL.revokeObjectURL(this.video.src);
      this.video.removeAttribute("src");
      this.video.load();
    }
  }
}
