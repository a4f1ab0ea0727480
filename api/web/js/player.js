// Plays an HLS URL (a signed playlist URL from the API) in a <video>.
//
// Which engine:
// - recordings (VOD): hls.js (from npm, served under /web/vendor/) where Media Source Extensions
//   exist: it knows each frame's wall-clock time (EXT-X-PROGRAM-DATE-TIME), which the timeline shows
//   and uses to set a clip's start and end, and it reports errors precisely. Without it, the
//   browser's native HLS, with the time read from the playlist's first PROGRAM-DATE-TIME plus
//   currentTime (the API makes a playlist one timeline in wall-clock offsets).
// - live: the browser's native HLS where there is one (Chromium, Safari), else hls.js. Measured:
//   hls.js 1.7.4 in Chromium 156 queues its first appends of vigil's live playlists and never runs
//   them (the same playlists' VOD form plays), while Chromium's native HLS plays them.
// `?player=native` or `?player=hlsjs` in the page URL forces one engine (for trouble-shooting).

let hlsModule = null;
let hlsUrl = "";

/** Where the session route says hls.js is served ("" when it is not installed). */
export function setHlsUrl(url) {
  hlsUrl = url || "";
}

async function loadHls() {
  if (!hlsUrl) return null;
  hlsModule ??= import(hlsUrl).then((m) => m.default).catch(() => null);
  return hlsModule;
}

function forced() {
  const p = new URLSearchParams(location.search).get("player");
  return p === "native" || p === "hlsjs" ? p : "";
}

const canNative = (video) => Boolean(video.canPlayType("application/vnd.apple.mpegurl"));

export class Player {
  /**
   * @param {HTMLVideoElement} video
   * @param {{onError: (message: string) => void, onPlaying?: () => void}} hooks
   */
  constructor(video, { onError, onPlaying = () => {} }) {
    this.video = video;
    this.onError = onError;
    this.onPlaying = onPlaying;
    this.hls = null;
    this.engine = "";
    this.nativeStartMs = null;
    this.generation = 0;
    this.mediaRecoveries = 0;
    this.playingHandler = () => this.onPlaying();
    this.errorHandler = () => this.nativeError();
    video.addEventListener("playing", this.playingHandler);
  }

  /** Start playing `url` (live or VOD); resolves once loading has begun. */
  async load(url, { live = false } = {}) {
    this.stop();
    const gen = ++this.generation;
    const want = forced() || (live && canNative(this.video) ? "native" : "hlsjs");
    const Hls = want === "native" ? null : await loadHls();
    if (gen !== this.generation) return;
    if (Hls && Hls.isSupported()) {
      this.engine = "hls.js";
      this.mediaRecoveries = 0;
      const hls = new Hls({
        enableWorker: true,
        lowLatencyMode: false,
        backBufferLength: live ? 30 : 90,
        liveSyncDurationCount: 2,
        manifestLoadingMaxRetry: 2,
        fragLoadingMaxRetry: 3,
      });
      this.hls = hls;
      hls.on(Hls.Events.ERROR, (_evt, data) => this.hlsError(Hls, data, live));
      hls.attachMedia(this.video);
      hls.loadSource(url);
      this.video.play().catch(() => {}); // autoplay of a muted video is allowed; a refusal is not an error
    } else if (canNative(this.video)) {
      this.engine = "native";
      this.video.addEventListener("error", this.errorHandler);
      this.video.src = url;
      this.video.play().catch(() => {});
      if (!live) this.readStart(url, gen);
    } else {
      this.onError("This browser cannot play HLS video (no Media Source Extensions, and hls.js is not installed).");
    }
    this.video.dataset.engine = this.engine;
  }

  /** Native engine: the playlist's first PROGRAM-DATE-TIME anchors currentTime 0. */
  async readStart(url, gen) {
    try {
      const text = await (await fetch(url, { cache: "no-store" })).text();
      const m = /#EXT-X-PROGRAM-DATE-TIME:(\S+)/.exec(text);
      if (m && gen === this.generation) this.nativeStartMs = Date.parse(m[1]);
    } catch { /* the time readout stays empty */ }
  }

  hlsError(Hls, data, live) {
    if (!data.fatal) return;
    const code = data.response?.code ?? data.networkDetails?.status;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && this.mediaRecoveries < 2) {
      this.mediaRecoveries += 1;
      this.hls.recoverMediaError();
      return;
    }
    let msg;
    if (code === 404) {
      msg = live
        ? "No live video: the camera is not recording right now (offline, or just reconnecting)."
        : "Nothing recorded in this range.";
    } else if (code === 401 || code === 403) {
      msg = "The video link expired or the key was revoked. Close and open the video again, or sign in again.";
    } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      msg = "The video cannot be loaded: the server did not answer.";
    } else {
      msg = `The video cannot be played (${data.details}).`;
    }
    this.stop();
    this.onError(msg);
  }

  nativeError() {
    const e = this.video.error;
    if (!e) return;
    const msg = e.code === 4
      ? "The video cannot be played: the camera is not recording or nothing is recorded here."
      : `The video cannot be played (${e.message || `media error ${e.code}`}).`;
    this.stop();
    this.onError(msg);
  }

  /** Wall-clock time (ms) of the frame on screen, or null when it is not known. */
  currentDateMs() {
    if (this.hls) {
      const d = this.hls.playingDate;
      return d ? d.getTime() : null;
    }
    if (this.engine === "native" && this.nativeStartMs != null && this.video.readyState >= 2) {
      return this.nativeStartMs + this.video.currentTime * 1000;
    }
    return null;
  }

  stop() {
    this.generation += 1;
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    this.video.removeEventListener("error", this.errorHandler);
    if (this.video.getAttribute("src")) {
      this.video.removeAttribute("src");
      this.video.load();
    }
    this.nativeStartMs = null;
    this.engine = "";
    delete this.video.dataset.engine;
  }
}
