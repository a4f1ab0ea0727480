// The "Network" view (#/network): the weakest links, per camera, district or uplink, weakest first
// (GET /api/reports/network; docs/design/network.md). Rows are text only: tags and ids come from
// the catalog and never reach innerHTML.

import { authHeaders, getJson } from "./api.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 15000;

const num = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(Number(v) * 100)} %`);

const COLUMNS = [
  ["key", "Link", (r) => r.key],
  ["cameras", "Cameras", (r) => String(r.cameras)],
  ["score", "Score", (r) => num(r.score)],
  ["reconnects_per_hour", "Reconnects / h", (r) => num(r.reconnects_per_hour)],
  ["stalled_s", "Stalled s (1 h)", (r) => num(r.stalled_s)],
  ["delivery_ratio", "Frames delivered", (r) => pct(r.delivery_ratio)],
  ["bitrate_ratio", "Bitrate vs usual", (r) => pct(r.bitrate_ratio)],
  ["jitter_ms", "Jitter ms", (r) => num(r.jitter_ms)],
  ["rtp_lost", "RTP lost", (r) => (r.rtp_lost === null || r.rtp_lost === undefined ? "–" : String(r.rtp_lost))],
  ["worst", "Weakest camera / state", (r) => r.worst_camera || r.state || ""],
];

export class NetworkView {
  constructor({ onError }) {
    this.onError = onError;
    this.timer = null;
    this.busy = false;
    $("net-by").addEventListener("change", () => this.load());
    $("net-refresh").addEventListener("click", () => this.load());
    $("net-csv").addEventListener("click", () => this.downloadCsv());
  }

  show() {
    this.load();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  query() {
    const by = $("net-by").value;
    return by ? `?by=${encodeURIComponent(by)}` : "";
  }

  async load() {
    if (this.busy) return;
    this.busy = true;
    try {
      const doc = await getJson(`/api/reports/network${this.query()}`);
      this.render(doc.rows);
    } catch (e) {
      if (e.status !== 401) this.onError(`The network report could not be loaded: ${e.message}`);
    } finally {
      this.busy = false;
    }
  }

  render(rows) {
    const head = $("net-table").tHead.rows[0];
    head.replaceChildren(...COLUMNS.map(([, label]) => Object.assign(document.createElement("th"), { scope: "col", textContent: label })));
    const body = $("net-table").tBodies[0];
    body.replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.key = r.key;
      for (const [, , cell] of COLUMNS) tr.append(Object.assign(document.createElement("td"), { textContent: cell(r) }));
      return tr;
    }));
    $("net-empty").hidden = rows.length > 0;
  }

  async downloadCsv() {
    try {
      const res = await fetch(`/api/reports/network${this.query()}`, { headers: authHeaders({ Accept: "text/csv" }), cache: "no-store" });
      if (!res.ok) throw new Error(res.statusText || `HTTP ${res.status}`);
      const url = URL.createObjectURL(await res.blob());
      const a = Object.assign(document.createElement("a"), { href: url, download: `weakest_links${$("net-by").value ? "_" + $("net-by").value : ""}.csv` });
      a.click();
      URL.revokeObjectURL(url);
    } catch (e) {
      this.onError(`The CSV could not be downloaded: ${e.message}`);
    }
  }
}
