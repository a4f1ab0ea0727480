// Reads the clock camera's cell row (camserver/server.py ClockCamera; harness/clockcode.py in Python)
// from every frame a <video> presents, and records the glass-to-glass delay: the presentation time
// minus the milliseconds drawn into the frame when the camera made it.
// window.__clockInstall(video) → {samples: [[presented_ms, delay_ms]], unread, frames, maxGap, gaps};
// evaluated as is, it installs one on #live-video as window.__clock.
(() => {
  const BITS = 24;
  const CELLS = 2 + BITS + 1;
  const MOD = 2 ** BITS;

  window.__clockInstall = (video) => {
    const canvas = document.createElement("canvas");
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const out = { samples: [], unread: 0, frames: 0, lastAt: 0, maxGap: 0, gaps: [] };

    function read() {
      const w = video.videoWidth;
      const h = video.videoHeight;
      if (!w || !h) return null;
      const cell = Math.max(8, Math.floor((w - 16) / CELLS));
      if (canvas.width !== w) { canvas.width = w; canvas.height = cell + 16; }
      ctx.drawImage(video, 0, 0, w, h, 0, 0, w, h);
      const row = ctx.getImageData(0, 8 + Math.floor(cell / 2), w, 1).data;
      const bit = (i) => (row[(8 + i * cell + Math.floor(cell / 2)) * 4] > 128 ? 1 : 0);
      if (bit(0) !== 1 || bit(1) !== 0) return null;
      let v = 0;
      let ones = 0;
      for (let i = 0; i < BITS; i++) {
        const b = bit(2 + i);
        v = v * 2 + b;
        ones += b;
      }
      if ((ones & 1) !== bit(2 + BITS)) return null;
      return v;
    }

    function onFrame(now, meta) {
      const at = performance.timeOrigin + (meta?.expectedDisplayTime ?? now);
      const shown = read();
      out.frames += 1;
      if (shown == null) out.unread += 1;
      else out.samples.push([at, (((at - shown) % MOD) + MOD) % MOD]);
      if (out.samples.length > 5000) out.samples.splice(0, 1000);
      if (out.lastAt) {
        const gap = at - out.lastAt;
        if (gap > out.maxGap) out.maxGap = gap;
        if (gap > 1000) out.gaps.push([out.lastAt, gap]);
      }
      out.lastAt = at;
      video.requestVideoFrameCallback(onFrame);
    }
    video.requestVideoFrameCallback(onFrame);
    return out;
  };
  const live = document.querySelector("#live-video");
  if (live && !window.__clock) window.__clock = window.__clockInstall(live);
})();
