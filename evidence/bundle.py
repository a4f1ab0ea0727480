"""The evidence bundle: one zip an investigator hands over and anyone checks without vigil.

Inside: per camera one MP4 (stream copy; several when the codec or picture size changes inside the
window) with a WebVTT file beside it giving every frame's UTC time (any player shows it as
subtitles), `SHA256SUMS` (`sha256sum -c --strict`), `manifest.json` (what, where, when, who, the
digests), `manifest.sig` (raw Ed25519 over manifest.json's exact bytes), the public key
(`signing-key.pem`) and `VERIFY.txt` (the stock commands).

Why this shape: nothing but OpenSSL and coreutils is needed to verify it; the manifest signs the
checksum list's digest, so the list cannot be swapped along with a file; nothing is held whole in
memory — each MP4 is remuxed from the object store's byte ranges (playback/clips.py) into a temp
file, then copied into the zip (stored, not deflated: video does not compress).
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from evidence.incidents import CameraCoverage, Incident
from evidence.signing_keys import SigningKey
from playback.clips import ClipPlan, ClipResult, IncompatibleRuns, NothingRecorded, plan_clip, write_clip
from playback.clips import _sha256  # the one file digest helper
from storage.catalog import Segment
from storage.keys import us_to_datetime
from storage.object_store import ObjectStore, StoredObject
from storage.timeline import Span

__all__ = ["BUNDLE_FORMAT", "BundleResult", "ExportedBy", "FIXED_FILES", "write_bundle"]

BUNDLE_FORMAT = "vigil-evidence-bundle/1"
FIXED_FILES = ("manifest.json", "manifest.sig", "SHA256SUMS")  # the files the manifest cannot list


def iso(us: int) -> str:
    return us_to_datetime(us).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ExportedBy:
    key_id: str | None
    name: str


@dataclass(slots=True)
class BundleResult:
    path: Path
    bytes: int
    sha256: str  # of the zip
    manifest_sha256: str
    files: int
    manifest: dict[str, Any] = field(default_factory=dict)


class _CountingStore:
    """The store, counting the bytes read: the export's progress."""

    def __init__(self, store: ObjectStore, on_bytes: Callable[[int], None]) -> None:
        self._store, self._on = store, on_bytes

    def iter_range(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        for chunk in self._store.iter_range(key, offset, length):
            self._on(len(chunk))
            yield chunk

    def get_range(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = self._store.get_range(key, offset, length)
        self._on(len(data))
        return data

    def stat(self, key: str) -> StoredObject | None:
        return self._store.stat(key)


@dataclass(slots=True)
class _FrameTimes:
    times_us: list[int]
    end_us: int
    codec: str
    width: int | None
    height: int | None


def _frame_times(path: Path, origin_us: int) -> _FrameTimes:
    """Every video frame's wall-clock start, from the written file itself (demux only)."""
    pts: list[int] = []
    last_end = 0
    with av.open(str(path)) as f:
        st = f.streams.video[0]
        tb = st.time_base or Fraction(1, 90000)
        for pkt in f.demux(st):
            p = pkt.pts
            if p is None:
                continue
            pts.append(p)
            e = p + (pkt.duration or 0)
            if e > last_end:
                last_end = e
        cc = st.codec_context
        codec, width, height = cc.name, cc.width or None, cc.height or None
    pts.sort()
    num, den = tb.numerator * 1_000_000, tb.denominator  # integers in the per-frame loop
    times = [origin_us + p * num // den for p in pts]
    end = origin_us + last_end * num // den
    return _FrameTimes(times, max(end, times[-1] if times else origin_us), codec, width, height)


def _vtt_time(rel_us: int) -> str:
    ms = rel_us // 1000
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _write_vtt(ft: _FrameTimes, origin_us: int, out: Path) -> None:
    """One cue per frame: the frame's UTC time, shown while that frame is."""
    lines = ["WEBVTT - UTC time of every frame (vigil)\n\n"]
    n = len(ft.times_us)
    second, prefix = -1, ""
    for i, t in enumerate(ft.times_us):
        nxt = ft.times_us[i + 1] if i + 1 < n else ft.end_us
        a, b = t - origin_us, max(nxt - origin_us, t - origin_us + 1000)
        if t // 1_000_000 != second:  # 25 frames share a second's text
            second = t // 1_000_000
            prefix = us_to_datetime(second * 1_000_000).strftime("%Y-%m-%d %H:%M:%S.")
        lines.append(f"{_vtt_time(a)} --> {_vtt_time(b)}\n{prefix}{t % 1_000_000 // 1000:03d} UTC\n\n")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(lines)


def _pieces(plan: ClipPlan, segs: Sequence[Segment]) -> list[ClipPlan]:
    """Consecutive runs with the same codecs and picture size share a file; a change starts another."""
    first_seg = {}
    for s in segs:
        first_seg.setdefault(s.run_id, s)
    out: list[list[Any]] = []
    last: tuple[Any, ...] | None = None
    for run in plan.runs:
        s = first_seg[run.run_id]
        params = (s.video_codec, s.audio_codec, s.width, s.height)
        if out and params == last:
            out[-1].append(run)
        else:
            out.append([run])
        last = params
    return [ClipPlan(plan.camera_id, plan.requested, tuple(runs)) for runs in out]


def _drift(segs: Sequence[Segment], keys: Sequence[str]) -> dict[str, Any]:
    used = set(keys)
    values = [s.drift_us for s in segs if s.object_key in used and s.drift_us is not None]
    return {
        "meaning": "recorder's wall clock minus the camera's media clock since the run began, per segment",
        "first_us": values[0] if values else None,
        "last_us": values[-1] if values else None,
        "max_abs_us": max((abs(v) for v in values), default=None),
    }


def _gaps(spans: Sequence[Span]) -> list[dict[str, Any]]:
    return [{"start_utc": iso(g.start_us), "end_utc": iso(g.end_us), "start_us": g.start_us, "end_us": g.end_us,
             "duration_s": round(g.duration_us / 1e6, 6)} for g in spans]


VERIFY_TEXT = """How to verify this evidence bundle without vigil (OpenSSL 3 and GNU coreutils)
================================================================================

Unzip it, enter the folder, then:

1. The signature over manifest.json (prints "Signature Verified Successfully"):

   openssl pkeyutl -verify -pubin -inkey signing-key.pem -rawin -in manifest.json -sigfile manifest.sig

2. The key is the service's: this must print the fingerprint in manifest.json
   (signing_key.fingerprint_sha256), and the service publishes it (GET /api/signing-keys,
   or `vigil signing-key` on the server):

   openssl pkey -pubin -in signing-key.pem -outform DER | sha256sum

3. The checksum list is the one the manifest signs: this must print manifest.json's
   checksums.sha256:

   sha256sum SHA256SUMS

4. Every file is as exported:

   sha256sum -c --strict SHA256SUMS

Each .vtt file beside a video gives the UTC time of every frame; players (VLC, mpv, ffplay)
show it as subtitles. manifest.json lists, per file, the camera, its location, the requested and
actual first and last frame times, frames, codec, picture size, gaps and the recorder's clock
drift. With vigil: `vigil verify BUNDLE.zip` does all of the above (and, given --config, checks
that the service's audit log holds this export).
"""


def write_bundle(
    store: ObjectStore,
    incident: Incident,
    cover: Sequence[CameraCoverage],
    out_zip: Path,
    work_dir: Path,
    key: SigningKey,
    *,
    export_id: str,
    exported_by: ExportedBy,
    exported_at_us: int,
    version: str,
    audit_head: tuple[int, str],
    node_id: str = "",
    on_progress: Callable[[float], None] | None = None,
) -> BundleResult:
    """Write the bundle to `out_zip`; temp files live in `work_dir` and are removed as they go."""
    work_dir.mkdir(parents=True, exist_ok=True)
    total = max(1, sum(s.bytes for c in cover for s in c.segments))
    done = [0]

    def count(n: int) -> None:
        done[0] += n
        if on_progress is not None:
            on_progress(min(0.99, done[0] / total))

    reading = _CountingStore(store, count)
    files: list[dict[str, Any]] = []
    cameras: list[dict[str, Any]] = []
    sums: list[tuple[str, str]] = []
    tmp_zip = out_zip.with_name(out_zip.name + ".part")
    with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:

        def add(local: Path, arc: str, meta: dict[str, Any], digest: tuple[str, int] | None = None) -> None:
            """Copy a finished file into the zip in 1 MB chunks (zipfile's own write uses 8 kB),
            hashing what is copied unless the digest is known (an MP4 is hashed as it is finished)."""
            h, size = (None if digest else hashlib.sha256()), 0
            info = zipfile.ZipInfo(arc, date_time=time.gmtime(exported_at_us // 1_000_000)[:6])
            with open(local, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(1 << 20):
                    if h is not None:
                        h.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
            sha = digest[0] if digest else h.hexdigest()  # type: ignore[union-attr]
            if digest is not None and digest[1] != size:
                raise RuntimeError(f"{arc} changed on disk between its export and the bundle")
            local.unlink()
            files.append({"path": arc, "sha256": sha, "bytes": size, **meta})
            sums.append((sha, arc))

        for cov in cover:
            cam = cov.camera
            cid = cov.member.camera_id
            location = cam.options.location.model_dump() if cam and cam.options.location else None
            entry: dict[str, Any] = {
                "camera_id": cid,
                "name": cam.name if cam else "",
                "location": location,
                "tags": dict(cam.tags or {}) if cam else {},
                "distance_m": cov.member.distance_m,
                "hold_id": cov.member.hold_id,
                "recorded_s": round(cov.recorded_us / 1e6, 6),
                "gaps": _gaps(cov.gaps),
                "files": [],
            }
            cameras.append(entry)
            try:
                plan = plan_clip(cid, cov.segments, incident.start_us, incident.end_us)
            except NothingRecorded:
                continue
            n = 0
            queue = _pieces(plan, cov.segments)
            while queue:
                piece = queue.pop(0)
                n += 1
                stem = f"media/{cid}_{n:02d}"
                mp4 = work_dir / f"{cid}_{n:02d}.mp4"
                try:
                    res: ClipResult = write_clip(reading, piece, mp4)  # type: ignore[arg-type]
                except IncompatibleRuns:
                    # the catalog's codec and size agreed but the parameter sets did not: one file per run
                    mp4.unlink(missing_ok=True)
                    n -= 1
                    queue[:0] = [ClipPlan(piece.camera_id, piece.requested, (r,)) for r in piece.runs]
                    continue
                ft = _frame_times(mp4, piece.first_us)
                vtt = work_dir / f"{cid}_{n:02d}.vtt"
                _write_vtt(ft, piece.first_us, vtt)
                meta = {
                    "kind": "video",
                    "camera_id": cid,
                    "camera_name": entry["name"],
                    "location": location,
                    "requested_start_utc": iso(incident.start_us),
                    "requested_end_utc": iso(incident.end_us),
                    "first_frame_utc": iso(ft.times_us[0]) if ft.times_us else None,
                    "last_frame_utc": iso(ft.times_us[-1]) if ft.times_us else None,
                    "first_frame_us": ft.times_us[0] if ft.times_us else None,
                    "last_frame_us": ft.times_us[-1] if ft.times_us else None,
                    "end_utc": iso(ft.end_us),
                    "frames": len(ft.times_us),
                    "codec": ft.codec,
                    "width": ft.width,
                    "height": ft.height,
                    "gaps": _gaps(res.gaps),
                    "clock_drift": _drift(cov.segments, res.segment_keys),
                    "segments": list(res.segment_keys),
                    "frame_times": f"{stem}.vtt",
                }
                add(mp4, f"{stem}.mp4", meta, (res.sha256, res.bytes))  # hashed as it was finished
                add(vtt, f"{stem}.vtt", {"kind": "frame-times", "camera_id": cid, "video": f"{stem}.mp4"})
                entry["files"].append(f"{stem}.mp4")
        verify = work_dir / "VERIFY.txt"
        verify.write_text(VERIFY_TEXT)
        add(verify, "VERIFY.txt", {"kind": "instructions"})
        pem = work_dir / "signing-key.pem"
        pem.write_text(key.public_pem)
        add(pem, "signing-key.pem", {"kind": "public-key"})
        sums_text = "".join(f"{sha}  {arc}\n" for sha, arc in sums).encode()
        zf.writestr("SHA256SUMS", sums_text)
        manifest = {
            "format": BUNDLE_FORMAT,
            "export": {
                "id": export_id,
                "exported_by": {"key_id": exported_by.key_id, "name": exported_by.name},
                "exported_at_utc": iso(exported_at_us),
                "exported_at_us": exported_at_us,
                "vigil_version": version,
                "node_id": node_id,
            },
            "incident": {
                "id": incident.id,
                "name": incident.name,
                "description": incident.description,
                "start_utc": iso(incident.start_us),
                "end_utc": iso(incident.end_us),
                "start_us": incident.start_us,
                "end_us": incident.end_us,
                "selector": incident.selector.as_json(),
                "created_by": incident.created_by,
                "created_utc": iso(incident.created_us),
            },
            "signing_key": {"algorithm": "Ed25519", "fingerprint_sha256": key.fingerprint, "file": "signing-key.pem"},
            "audit_chain_head": {"row_id": audit_head[0], "row_sha256": audit_head[1]},
            "checksums": {"file": "SHA256SUMS", "sha256": hashlib.sha256(sums_text).hexdigest()},
            "cameras": cameras,
            "files": files,
        }
        manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        zf.writestr("manifest.json", manifest_bytes)
        zf.writestr("manifest.sig", key.sign(manifest_bytes))
    sha, size = _sha256(tmp_zip)
    tmp_zip.replace(out_zip)
    if on_progress is not None:
        on_progress(1.0)
    return BundleResult(out_zip, size, sha, hashlib.sha256(manifest_bytes).hexdigest(), len(files) + 3, manifest)
