// The incident view (#/incidents): pick cameras by list, district or distance from a point and a
// time range, see what each recorded there (gaps shown), export a signed bundle with a progress
// bar, download it through a signed URL (the browser saves it to disk, never to memory) and see
// the manifest's digests — the manifest itself re-hashed here and compared with the server's.

import { ApiError, authHeaders, getJson, request } from "./api.js";
import { bytes, dateTime, duration, getZone, zoneLabel } from "./format.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 500;
const LOCAL_POLL_MS = 4000; // a bundle kept on its node: look again for the node's upload retry

function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...kids);
  return e;
}

/** "2026-11-25T14:05" from <input type=datetime-local>, read in the page's zone → epoch ms. */
function inputMs(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value || "");
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => Number(x || 0));
  return getZone() === "UTC" ? Date.UTC(y, mo - 1, d, h, mi, s) : new Date(y, mo - 1, d, h, mi, s).getTime();
}

async function postJson(path, body) {
  // api.js's request() is GET-only; POST the same way (Bearer key, the server's sentence on error)
  const res = await fetch(path, {
    method: "POST",
    headers: authHeaders({ "Content-Type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, data.detail || `HTTP ${res.status}`, path);
  return data;
}

async function sha256Hex(buf) {
  const d = await crypto.subtle.digest("SHA-256", buf);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class Incidents {
  constructor({ cameras, onError }) {
    this.cameras = cameras; // () => camera objects from the status document
    this.onError = onError;
    this.polling = null;
    $("inc-form").addEventListener("submit", (e) => { e.preventDefault(); this.create(); });
    $("inc-list").addEventListener("change", (e) => { if (e.target.value) this.open(Number(e.target.value)); });
  }

  async show() {
    this.fillChoices();
    $("inc-zone").textContent = zoneLabel();
    try {
      const { incidents } = await getJson("/api/incidents?limit=100");
      const sel = $("inc-list");
      sel.replaceChildren(el("option", { value: "", text: incidents.length ? "Open an incident…" : "No incidents yet" }));
      for (const i of incidents) sel.append(el("option", { value: String(i.id), text: `#${i.id} ${i.name} · ${i.cameras} camera(s)` }));
    } catch (e) {
      this.onError(e.message);
    }
  }

  hide() { clearTimeout(this.polling); }

  fillChoices() {
    const cams = this.cameras();
    const list = $("inc-cameras");
    const chosen = new Set([...list.selectedOptions].map((o) => o.value));
    list.replaceChildren(...cams.map((c) => {
      const o = el("option", { value: c.id, text: `${c.name || c.id} (${c.id})` });
      o.selected = chosen.has(c.id);
      return o;
    }));
    const districts = [...new Set(cams.map((c) => c.tags?.district).filter(Boolean))].sort();
    const d = $("inc-district");
    const keep = d.value;
    d.replaceChildren(el("option", { value: "", text: "—" }), ...districts.map((x) => el("option", { value: x, text: x })));
    d.value = districts.includes(keep) ? keep : "";
  }

  async create() {
    const out = $("inc-form-msg");
    out.textContent = "";
    const start = inputMs($("inc-start").value);
    const end = inputMs($("inc-end").value);
    if (start === null || end === null) return (out.textContent = "Give a start and an end.");
    const body = { name: $("inc-name").value.trim(), description: $("inc-desc").value, start: start / 1000, end: end / 1000 };
    body.cameras = [...$("inc-cameras").selectedOptions].map((o) => o.value);
    if ($("inc-district").value) body.tags = { district: $("inc-district").value };
    const [lat, lon, r] = ["inc-lat", "inc-lon", "inc-radius"].map((id) => $(id).value.trim());
    if (lat || lon || r) body.near = { lat: Number(lat), lon: Number(lon), radius_m: Number(r) };
    $("inc-create").disabled = true;
    try {
      const inc = await postJson("/api/incidents", body);
      await this.show();
      $("inc-list").value = String(inc.id);
      this.render(inc);
    } catch (e) {
      out.textContent = e.message;
    } finally {
      $("inc-create").disabled = false;
    }
  }

  async open(id) {
    try {
      this.render(await getJson(`/api/incidents/${id}`));
    } catch (e) {
      this.onError(e.message);
    }
  }

  render(inc) {
    clearTimeout(this.polling);
    const box = $("inc-detail");
    box.hidden = false;
    $("inc-title").textContent = `#${inc.id} ${inc.name}`;
    $("inc-window").textContent =
      `${dateTime(inc.start_us / 1000)} → ${dateTime(inc.end_us / 1000)} (${zoneLabel(inc.start_us / 1000)}) · held from retention`;
    const span = inc.end_us - inc.start_us;
    const rows = inc.cameras.map((c) => {
      const bar = el("div", { class: "inc-bar", role: "img",
        "aria-label": `${c.camera_id}: ${duration(c.recorded_s)} recorded, ${duration(c.gap_s)} missing` });
      for (const g of c.gaps) {
        const left = ((g.start_us - inc.start_us) / span) * 100;
        const width = ((g.end_us - g.start_us) / span) * 100;
        const gap = el("i", { class: "inc-gap", title: `gap ${dateTime(g.start_us / 1000)} → ${dateTime(g.end_us / 1000)}` });
        gap.style.left = `${left}%`; // CSSOM, not a style attribute: the page's CSP allows only this
        gap.style.width = `${width}%`;
        bar.append(gap);
      }
      const where = c.location ? `${c.location.address || ""} (${c.location.lat.toFixed(5)}, ${c.location.lon.toFixed(5)})` : "—";
      return el("tr", { "data-camera": c.camera_id },
        el("td", { text: c.name || c.camera_id }), el("td", { class: "mono", text: c.camera_id }),
        el("td", { text: where + (c.distance_m != null ? ` · ${Math.round(c.distance_m)} m` : "") }),
        el("td", { text: duration(c.recorded_s) }), el("td", { class: "inc-gaps", text: String(c.gaps.length) }),
        el("td", {}, bar));
    });
    $("inc-cams").querySelector("tbody").replaceChildren(...rows);
    $("inc-export").onclick = () => this.export(inc.id);
    $("inc-export-out").replaceChildren();
    const last = inc.exports.at(-1);
    if (last) this.follow(last.id);
  }

  async export(incidentId) {
    $("inc-export").disabled = true;
    try {
      const job = await postJson(`/api/incidents/${incidentId}/exports`);
      this.follow(job.id);
    } catch (e) {
      $("inc-export").disabled = false;
      this.onError(e.message);
    }
  }

  async follow(exportId) {
    clearTimeout(this.polling);
    const out = $("inc-export-out");
    let job;
    try {
      job = await getJson(`/api/exports/${exportId}`);
    } catch (e) {
      out.textContent = e.message;
      return;
    }
    const bar = el("progress", { id: "inc-progress", max: "1", value: String(job.progress) });
    const pct = Math.round(job.progress * 100);
    out.replaceChildren(el("p", {}, `Export ${job.id}: ${job.state} `, bar, ` ${pct} %`));
    if (job.state === "queued" || job.state === "running") {
      this.polling = setTimeout(() => this.follow(exportId), POLL_MS);
      return;
    }
    $("inc-export").disabled = false;
    if (job.state === "failed") {
      out.append(el("p", { class: "bad", text: `Failed: ${job.error}` }));
      return;
    }
    if (job.local_only) {
      // Not in the object store: only its node serves it; elsewhere a download would be a 503.
      const node = job.node_id ? `node ${job.node_id}` : "the node that made it";
      out.append(el("p", { id: "inc-local-only", class: "bad", text: `Kept on ${node} only: ${job.local_only}; that node retries.` }));
      this.polling = setTimeout(() => this.follow(exportId), LOCAL_POLL_MS);
      if (!job.served_here) return;
    }
    const link = el("a", { id: "inc-download", class: "primary button", href: "#", text: `Download bundle (${bytes(job.bytes)})` });
    link.addEventListener("click", async (e) => {
      e.preventDefault();
      try {
        const { url } = await getJson(`/api/exports/${job.id}/bundle-url`);
        const a = el("a", { href: url, download: `incident-${job.incident_id}-${job.id}.zip` });
        document.body.append(a);
        a.click();
        a.remove();
      } catch (err) {
        this.onError(err.message);
      }
    });
    out.append(el("p", {}, link), el("p", { class: "digest", text: `bundle SHA-256 ${job.sha256}` }));
    if (!job.local_only) await this.showManifest(job, out);
  }

  async showManifest(job, out) {
    try {
      const res = await request(`/api/exports/${job.id}/manifest.json`);
      const raw = await res.arrayBuffer();
      const got = await sha256Hex(raw);
      const ok = got === job.manifest_sha256;
      out.append(el("p", { id: "inc-manifest-check", class: ok ? "ok" : "bad",
        text: ok ? `manifest.json re-hashed here: ${got} ✓`
          : `manifest.json does not match its digest (${got})` }));
      const m = JSON.parse(new TextDecoder().decode(raw));
      const rows = m.files.map((f) => el("tr", {},
        el("td", { class: "mono", text: f.path }), el("td", { text: bytes(f.bytes) }),
        el("td", { text: f.kind === "video" ? `${f.frames} frames, ${f.codec} ${f.width}×${f.height}` : f.kind }),
        el("td", { class: "digest", text: f.sha256 })));
      out.append(el("table", { id: "inc-manifest", class: "events" },
        el("thead", {}, el("tr", {}, el("th", { text: "File" }), el("th", { text: "Size" }), el("th", { text: "What" }), el("th", { text: "SHA-256" }))),
        el("tbody", {}, ...rows)));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) out.append(el("p", { class: "bad", text: e.message }));
    }
  }
}
