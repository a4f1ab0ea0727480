// Server-Sent Events read with fetch(): EventSource cannot send the Authorization header, and the
// stream route takes only a Bearer key. Resumes after a drop with Last-Event-ID (the catalog's event
// id), so no health event is lost while the connection is down.

import { request } from "./api.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class EventStream {
  /**
   * @param {string} path  e.g. "/api/events/stream"
   * @param {{onEvent: (type: string, data: any, id: string) => void,
   *          onState?: (state: "connecting"|"live"|"retrying", why?: string) => void}} handlers
   */
  constructor(path, { onEvent, onState = () => {} }) {
    this.path = path;
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastId = "";
    this.retryMs = 1000;
    this.stopped = true;
    this.ctrl = null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    this.ctrl?.abort();
  }

  async loop() {
    let failures = 0;
    while (!this.stopped) {
      this.ctrl = new AbortController();
      this.onState("connecting");
      try {
        const headers = this.lastId ? { "Last-Event-ID": this.lastId } : {};
        const res = await request(this.path, { headers, signal: this.ctrl.signal });
        failures = 0;
        this.onState("live");
        await this.read(res.body);
        if (!this.stopped) this.onState("retrying", "the event stream ended");
      } catch (e) {
        if (this.stopped || e.name === "AbortError") return;
        if (e.status === 401) { this.stopped = true; return; } // the page signs out
        failures += 1;
        this.onState("retrying", e.message);
      }
      if (this.stopped) return;
      // The server's retry hint, backing off to 30 s while it stays unreachable.
      await sleep(Math.min(30000, this.retryMs * 2 ** Math.min(failures, 5)));
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let data = [];
    let type = "";
    let id = null;
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (this.stopped || e.name === "AbortError") return;
        throw e;
      }
      if (chunk.done) return;
      buf += chunk.value;
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        if (buf[nl] === "\r" && nl === buf.length - 1) break; // a CRLF split across chunks
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          if (id !== null) this.lastId = id;
          if (data.length) this.dispatch(type || "message", data.join("\n"), this.lastId);
          data = [];
          type = "";
          id = null;
          continue;
        }
        if (line.startsWith(":")) continue; // keep-alive comment
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") type = value;
        else if (field === "id" && !value.includes("\0")) id = value;
        else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
      }
    }
  }

  dispatch(type, text, id) {
    let payload;
    try {
      payload = JSON.parse(text);
    } catch {
      return; // not ours to show
    }
    this.onEvent(type, payload, id);
  }
}
