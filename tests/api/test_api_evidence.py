"""Incidents and signed evidence bundles through the API, on real SeaweedFS S3 and a real SQLite
catalog: cameras chosen by id, tag and distance; the bundle checked with the stock `openssl` and
`sha256sum` commands and with `vigil verify`; one flipped byte anywhere fails both; the incident's
holds keep retention off its window."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from core.camera_config import CameraLocation, CameraOptions
from evidence.exports import get_export
from evidence.signing_keys import SigningKeys, key_path
from harness.fakes import FakeClock
from harness.recorded import RunSpec, make_recording, us
from harness.vigilproc import wait_until
from storage.object_store import LocalStore, S3Store
from storage.retention import apply_retention
from tests.api.conftest import T0, ApiEnv, make_env
from vigil.cli import main as vigil

# three cameras in Semarang: two near Simpang Lima (≈ 300 m apart), one 5 km away
PLACES = {
    "ev-simpang-1": ({"lat": -6.99049, "lon": 110.42293, "heading_deg": 90, "address": "Simpang Lima, north"}, "tengah"),
    "ev-simpang-2": ({"lat": -6.99300, "lon": 110.42150, "heading_deg": 270, "address": "Jl. Pahlawan"}, "tengah"),
    "ev-harbour": ({"lat": -6.94900, "lon": 110.42300, "heading_deg": 0, "address": "Tanjung Emas"}, "utara"),
}
START, END = T0 + us(2), T0 + us(9)  # the incident's window: inside the recordings, across a gap


@dataclass
class Bundle:
    env: ApiEnv
    zip_path: Path
    folder: Path
    config: Path
    export: dict[str, object]
    incident: dict[str, object]


def _config(env: ApiEnv) -> Path:
    p = env.workdir / "vigil.yaml"
    p.write_text(yaml.safe_dump({"catalog": str(env.catalog.url), "data_dir": str(env.workdir)}))
    return p


def _wait_export(c: TestClient, env: ApiEnv, export_id: str) -> dict[str, object]:
    seen: list[float] = []

    def done() -> dict[str, object] | None:
        j = c.get(f"/api/exports/{export_id}", headers=env.auth("investigator")).json()
        seen.append(float(j["progress"]))
        return j if j["state"] in ("done", "failed") else None

    j = wait_until(done, 60, 0.05, "the export to finish")
    assert j["state"] == "done", j
    assert seen == sorted(seen), "progress never goes back"
    return j


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, s3_store: S3Store) -> ApiEnv:
    e = make_env(tmp_path_factory.mktemp("evidence"), store=s3_store)
    for cid, (loc, district) in PLACES.items():
        e.add_camera(cid, name=loc["address"], tags={"district": district}, options=CameraOptions(location=CameraLocation(**loc)))
    media = e.workdir / "media"
    # ev-simpang-1: two runs with a gap; ev-simpang-2: the picture size changes between two runs
    make_recording(s3_store, e.catalog, "ev-simpang-1", media, [RunSpec(T0, 6, 2), RunSpec(T0 + us(8), 4, 2)])
    make_recording(s3_store, e.catalog, "ev-simpang-2", media, [RunSpec(T0, 5, 2)])
    make_recording(s3_store, e.catalog, "ev-simpang-2", media / "b", [RunSpec(T0 + us(5), 6, 2)], width=160, height=128)
    make_recording(s3_store, e.catalog, "ev-harbour", media, [RunSpec(T0, 12, 3)])
    return e


@pytest.fixture(scope="module")
def client(env: ApiEnv) -> Iterator[TestClient]:
    with env.client() as c:
        yield c


def _incident(c: TestClient, env: ApiEnv, **selector: object) -> dict[str, object]:
    r = c.post("/api/incidents", headers=env.auth("investigator"),
               json={"name": "bag snatching", "description": "reported by a passer-by", "start": "2024-05-01T10:00:02Z",
                     "end": "2024-05-01T10:00:09Z", **selector})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_incident_by_ids_tags_and_distance(client: TestClient, env: ApiEnv) -> None:
    by_id = _incident(client, env, cameras=["ev-harbour"])
    assert [c["camera_id"] for c in by_id["cameras"]] == ["ev-harbour"]
    by_tag = _incident(client, env, tags={"district": "tengah"})
    assert [c["camera_id"] for c in by_tag["cameras"]] == ["ev-simpang-1", "ev-simpang-2"]
    near = _incident(client, env, near={"lat": -6.99049, "lon": 110.42293, "radius_m": 500})
    got = {c["camera_id"]: c["distance_m"] for c in near["cameras"]}
    assert set(got) == {"ev-simpang-1", "ev-simpang-2"} and got["ev-simpang-1"] == 0.0
    assert 250 < got["ev-simpang-2"] < 400, got  # ≈ 325 m by the haversine
    wide = _incident(client, env, near={"lat": -6.99049, "lon": 110.42293, "radius_m": 6000}, cameras=["ev-simpang-1"])
    assert len(wide["cameras"]) == 3

    # what each recorded in the window, and its gaps: ev-simpang-1 has nothing in [6 s, 8 s)
    one = client.get(f"/api/incidents/{by_tag['id']}", headers=env.auth("investigator")).json()
    cam1 = next(c for c in one["cameras"] if c["camera_id"] == "ev-simpang-1")
    assert cam1["recorded_s"] == 5.0 and cam1["gap_s"] == 2.0
    assert [(g["start_utc"], g["end_utc"]) for g in cam1["gaps"]] == [("2024-05-01T10:00:06Z", "2024-05-01T10:00:08Z")]
    assert cam1["location"]["address"] == "Simpang Lima, north"
    # every camera got a hold on exactly the window
    holds = client.get("/api/cameras/ev-simpang-1/holds", headers=env.auth("investigator")).json()
    assert {(h["start_us"], h["end_us"]) for h in holds} == {(START, END)}
    listed = client.get("/api/incidents", headers=env.auth("investigator")).json()["incidents"]
    assert {i["id"] for i in listed} >= {by_id["id"], by_tag["id"], near["id"], wide["id"]}

    # bad selections are refused, and nothing is held for them
    n_holds = len(holds)
    for bad in ({"cameras": ["nope"]}, {"tags": {"district": "nowhere"}}, {},
                {"near": {"lat": 91, "lon": 0, "radius_m": 10}}, {"near": {"lat": 0, "lon": 0, "radius_m": 10}}):
        r = client.post("/api/incidents", headers=env.auth("investigator"),
                        json={"name": "x", "start": START / 1e6, "end": END / 1e6, **bad})
        assert r.status_code == 422, (bad, r.text)
    r = client.post("/api/incidents", headers=env.auth("investigator"),
                    json={"name": "x", "start": END / 1e6, "end": START / 1e6, "cameras": ["ev-harbour"]})
    assert r.status_code == 422
    assert len(client.get("/api/cameras/ev-simpang-1/holds", headers=env.auth("investigator")).json()) == n_holds
    assert client.post("/api/incidents", headers=env.auth("viewer"), json={}).status_code == 403


@pytest.fixture(scope="module")
def bundle(client: TestClient, env: ApiEnv, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    inc = _incident(client, env, tags={"district": "tengah"}, cameras=["ev-harbour"])
    r = client.post(f"/api/incidents/{inc['id']}/exports", headers=env.auth("investigator"))
    assert r.status_code == 202, r.text
    j = _wait_export(client, env, r.json()["id"])
    data = client.get(f"/api/exports/{j['id']}/bundle.zip", headers=env.auth("investigator"))
    assert data.status_code == 200 and len(data.content) == j["bytes"]
    assert hashlib.sha256(data.content).hexdigest() == j["sha256"]
    out = tmp_path_factory.mktemp("bundle")
    zpath = out / "bundle.zip"
    zpath.write_bytes(data.content)
    folder = out / "unzipped"
    with zipfile.ZipFile(zpath) as z:
        z.extractall(folder)
    return Bundle(env, zpath, folder, _config(env), j, inc)


def _stock_check(folder: Path) -> bool:
    """VERIFY.txt's commands, as a person would run them: signature, key fingerprint, list, files."""
    sig = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "signing-key.pem", "-rawin",
                          "-in", "manifest.json", "-sigfile", "manifest.sig"], cwd=folder, capture_output=True, text=True)
    if sig.returncode != 0 or "Signature Verified Successfully" not in sig.stdout:
        return False
    manifest = json.loads((folder / "manifest.json").read_text())
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", "signing-key.pem", "-outform", "DER"], cwd=folder,
                         capture_output=True)
    if der.returncode != 0 or hashlib.sha256(der.stdout).hexdigest() != manifest["signing_key"]["fingerprint_sha256"]:
        return False
    listed = subprocess.run(["sha256sum", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    if listed.stdout.split()[0] != manifest["checksums"]["sha256"]:
        return False
    return subprocess.run(["sha256sum", "-c", "--strict", "--quiet", "SHA256SUMS"], cwd=folder,
                          capture_output=True).returncode == 0


def test_bundle_contents_and_both_verifications(bundle: Bundle, client: TestClient) -> None:
    env, m = bundle.env, json.loads((bundle.folder / "manifest.json").read_text())
    assert _stock_check(bundle.folder)
    assert vigil(["verify", str(bundle.zip_path), "--config", str(bundle.config)]) == 0
    assert vigil(["verify", str(bundle.folder)]) == 0

    videos = {f["path"]: f for f in m["files"] if f["kind"] == "video"}
    # ev-simpang-2's picture size changes at 5 s: two files; the others one each
    assert sorted(videos) == ["media/ev-harbour_01.mp4", "media/ev-simpang-1_01.mp4", "media/ev-simpang-2_01.mp4",
                              "media/ev-simpang-2_02.mp4"]
    assert [(videos[p]["width"], videos[p]["height"]) for p in ("media/ev-simpang-2_01.mp4", "media/ev-simpang-2_02.mp4")] \
        == [(320, 240), (160, 128)]
    s1 = videos["media/ev-simpang-1_01.mp4"]
    assert s1["camera_id"] == "ev-simpang-1" and s1["location"]["lat"] == -6.99049 and s1["codec"] == "h264"
    assert s1["requested_start_utc"] == "2024-05-01T10:00:02Z" and s1["requested_end_utc"] == "2024-05-01T10:00:09Z"
    # whole GOPs (1 s) from the keyframe at or before the start, to the end of the GOP holding the end
    assert s1["first_frame_utc"] == "2024-05-01T10:00:02Z" and s1["last_frame_utc"] == "2024-05-01T10:00:08.960000Z"
    assert s1["frames"] == 4 * 25 + 1 * 25  # [2 s, 6 s) of the first run, [8 s, 9 s) of the second
    assert [(g["start_utc"], g["end_utc"]) for g in s1["gaps"]] == [("2024-05-01T10:00:06Z", "2024-05-01T10:00:08Z")]
    assert "max_abs_us" in s1["clock_drift"]
    # the WebVTT beside it: one cue per frame, with that frame's UTC time
    vtt = (bundle.folder / "media/ev-simpang-1_01.vtt").read_text()
    assert vtt.count(" --> ") == s1["frames"]
    assert "00:00:00.040 --> 00:00:00.080\n2024-05-01 10:00:02.040 UTC" in vtt
    assert "2024-05-01 10:00:08.000 UTC" in vtt and "2024-05-01 10:00:06.000 UTC" not in vtt
    import av

    with av.open(str(bundle.folder / "media/ev-simpang-1_01.mp4")) as f:
        assert sum(1 for _ in f.decode(video=0)) == s1["frames"]

    assert m["incident"]["id"] == bundle.incident["id"] and m["export"]["exported_by"]["name"] == "test-investigator"
    assert m["export"]["vigil_version"] and m["export"]["exported_at_utc"].startswith("20")
    keys = client.get("/api/signing-keys", headers=env.auth("viewer")).json()["keys"]
    assert m["signing_key"]["fingerprint_sha256"] in {k["fingerprint_sha256"] for k in keys}
    assert (bundle.folder / "signing-key.pem").read_text() in {k["pem"] for k in keys}
    key_file = key_path(env.ctx.settings)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600 and b"PRIVATE" in key_file.read_bytes()
    assert b"PRIVATE" not in bundle.zip_path.read_bytes()

    # the export ran in a thread at nice 10: the recorders (other processes) keep the CPU first
    from api.evidence_services import evidence_of

    threads = list(evidence_of(env.app.state.services).runner._pool._threads)
    assert threads
    for t in threads:
        stat_line = Path(f"/proc/self/task/{t.native_id}/stat").read_text()
        assert int(stat_line.rsplit(")", 1)[1].split()[16]) == 10

    audit = client.get("/api/audit", headers=env.auth("admin"), params={"limit": 1000}).json()["entries"]
    actions = {a["action"] for a in audit}
    assert {"incident.create", "hold.create", "export.create", "export.complete", "export.download",
            "signing_key.create"} <= actions


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def _rezip(folder: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, str(p.relative_to(folder)))


def test_one_flipped_byte_anywhere_fails_both(bundle: Bundle, tmp_path: Path) -> None:
    names = sorted(str(p.relative_to(bundle.folder)) for p in bundle.folder.rglob("*") if p.is_file())
    assert len(names) == 13  # 4 videos, their 4 WebVTT files, 5 more
    for i, name in enumerate(names):
        work = tmp_path / f"t{i}"
        shutil.copytree(bundle.folder, work)
        size = (work / name).stat().st_size
        _flip(work / name, size // 2 + i)  # somewhere in the middle: payload, not padding
        assert not _stock_check(work), f"openssl/sha256sum accepted a flipped byte in {name}"
        assert vigil(["verify", str(work)]) == 1, name
        _rezip(work, tmp_path / f"t{i}.zip")
        assert vigil(["verify", str(tmp_path / f"t{i}.zip"), "--config", str(bundle.config)]) == 1, name
    # a file slipped in, or one taken out
    work = tmp_path / "extra"
    shutil.copytree(bundle.folder, work)
    (work / "media/note.txt").write_text("added later")
    assert vigil(["verify", str(work)]) == 1
    (work / "media/note.txt").unlink()
    (work / "media/ev-harbour_01.vtt").unlink()
    assert vigil(["verify", str(work)]) == 1


def test_verify_needs_the_audit_entry_and_a_published_key(bundle: Bundle, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle signed by some other key, or one the audit log does not hold, is not the service's."""
    import sqlite3

    import sqlalchemy as sa

    from storage.catalog import Catalog, audit, signing_keys

    def copy(name: str, change: sa.Executable) -> Path:
        """The catalog as it is but for `change`: a config pointing at it."""
        other = tmp_path / f"{name}.db"
        with sqlite3.connect(bundle.env.catalog.url.split("///", 1)[1]) as src, sqlite3.connect(other) as dst:
            src.backup(dst)  # the WAL's pages too
        cat = Catalog(f"sqlite:///{other}", create=False)
        with cat.engine.begin() as c:
            c.execute(change)
        cat.close()
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump({"catalog": cat.url, "data_dir": str(bundle.env.workdir)}))
        return cfg

    no_audit = copy("no-audit", sa.delete(audit).where(audit.c.action == "export.complete"))
    assert vigil(["verify", str(bundle.zip_path), "--config", str(no_audit)]) == 1
    capsys.readouterr()
    assert vigil(["verify", str(bundle.zip_path), "--config", str(copy("no-key", sa.delete(signing_keys)))]) == 1
    assert "is not one the service published" in capsys.readouterr().out  # the catalog publishes keys, not the key file
    signed_us = json.loads((bundle.folder / "manifest.json").read_bytes())["export"]["exported_at_us"]
    retired = copy("retired", sa.update(signing_keys).values(retired_us=signed_us - 1_000_000))
    assert vigil(["verify", str(bundle.zip_path), "--config", str(retired)]) == 1  # signed with a key already replaced
    assert "the key was not in use by the unnamed node when the bundle was signed" in capsys.readouterr().out
    stranger = tmp_path / "stranger"
    SigningKeys(stranger / "k.pem").ensure()
    (stranger / "pub.pem").write_text(SigningKeys(stranger / "k.pem").current().public_pem)
    assert vigil(["verify", str(bundle.zip_path), "--key", str(stranger / "pub.pem")]) == 1


def test_download_by_range_and_signed_url(bundle: Bundle, client: TestClient) -> None:
    env, eid, size = bundle.env, bundle.export["id"], int(bundle.export["bytes"])  # type: ignore[arg-type]
    whole = bundle.zip_path.read_bytes()
    r = client.get(f"/api/exports/{eid}/bundle.zip", headers={**env.auth("investigator"), "Range": "bytes=100-1099"})
    assert r.status_code == 206 and r.content == whole[100:1100]
    assert r.headers["content-range"] == f"bytes 100-1099/{size}"
    r = client.get(f"/api/exports/{eid}/bundle.zip", headers={**env.auth("investigator"), "Range": f"bytes={size}-"})
    assert r.status_code == 416
    url = client.get(f"/api/exports/{eid}/bundle-url", headers=env.auth("investigator")).json()["url"]
    assert "sig=" in url
    assert client.get(url).content == whole  # no header: the signature admits exactly this URL
    assert client.get(url.replace("sig=", "sig=x")).status_code == 401
    assert client.get(f"/api/exports/{eid}/bundle.zip").status_code == 401
    assert client.get("/api/exports/000000000000000000000000", headers=env.auth("investigator")).status_code == 404
    man = client.get(f"/api/exports/{eid}/manifest.json", headers=env.auth("investigator"))
    assert man.content == (bundle.folder / "manifest.json").read_bytes()  # as signed, byte for byte
    assert hashlib.sha256(man.content).hexdigest() == bundle.export["manifest_sha256"]


def test_rotated_key_still_verifies_old_bundles(bundle: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "rot.yaml"
    keydir = tmp_path / "keys"
    shutil.copytree(key_path(bundle.env.ctx.settings).parent, keydir)
    cfg.write_text(yaml.safe_dump({"catalog": bundle.env.catalog.url, "data_dir": str(tmp_path),
                                   "evidence": {"signing_key_path": str(keydir / "signing-key.pem")}}))
    old = json.loads((bundle.folder / "manifest.json").read_text())["signing_key"]["fingerprint_sha256"]
    assert vigil(["signing-key", "rotate", "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert vigil(["signing-key", "--config", str(cfg)]) == 0
    printed = capsys.readouterr().out
    assert f"retired Ed25519 key, SHA-256 fingerprint {old}" in printed and printed.count("BEGIN PUBLIC KEY") == 2
    keys = SigningKeys(keydir / "signing-key.pem")
    assert keys.current().fingerprint != old
    assert vigil(["verify", str(bundle.zip_path), "--config", str(cfg)]) == 0  # the old key is still published


def test_retention_with_incident_holds_deletes_nothing_inside(tmp_path: Path, s3_store: S3Store) -> None:
    e = make_env(tmp_path / "ret", store=s3_store)
    e.add_camera("ev-retained", tags={"district": "x"})
    make_recording(s3_store, e.catalog, "ev-retained", tmp_path / "m", [RunSpec(T0, 12, 2)])
    before = e.catalog.segments_for("ev-retained")
    with e.client() as c:
        inc = _incident(c, e, cameras=["ev-retained"])
    inside = [s for s in before if s.start_us < END and s.end_us > START]
    assert inside and len(inside) < len(before)
    res = apply_retention(e.catalog, s3_store, default_days=1, clock=FakeClock(T0 / 1e6 + 30 * 86_400))
    after = e.catalog.segments_for("ev-retained")
    assert [s.object_key for s in after] == [s.object_key for s in inside]
    assert res.deleted == len(before) - len(inside) and res.spared_by_holds == len(inside)
    for s in inside:
        st = s3_store.stat(s.object_key)
        assert st is not None and st.size == s.bytes
    for s in before:
        if s not in inside:
            assert s3_store.stat(s.object_key) is None
    assert inc["cameras"][0]["hold_id"]


def test_camera_location_is_validated(client: TestClient, env: ApiEnv, tmp_path: Path) -> None:
    h = env.auth("admin")
    ok = client.post("/api/cameras", headers=h, json={"id": "ev-loc", "url": "rtsp://10.0.0.9/x",
                                                       "location": {"lat": 1.5, "lon": 2.5, "address": "here"}})
    assert ok.status_code == 201 and ok.json()["location"] == {"lat": 1.5, "lon": 2.5, "heading_deg": None, "address": "here"}
    for bad in ({"lat": 91, "lon": 0}, {"lat": 0, "lon": 181}, {"lat": 0, "lon": 0, "heading_deg": 360}, {"lon": 0},
                {"lat": 0, "lon": 0, "floor": 2}):
        r = client.patch("/api/cameras/ev-loc", headers=h, json={"location": bad})
        assert r.status_code == 422, bad
    assert client.get("/api/cameras/ev-loc", headers=h).json()["location"]["address"] == "here"
    r = client.patch("/api/cameras/ev-loc", headers=h, json={"location": {"lat": -6.9, "lon": 110.4, "heading_deg": 45}})
    assert r.json()["location"]["heading_deg"] == 45
    assert client.patch("/api/cameras/ev-loc", headers=h, json={"location": None}).json()["location"] is None

    from core.settings import ConfigError, load_settings

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"cameras": [{"id": "a", "url": "rtsp://h/x", "location": {"lat": -6.9, "lon": 110.4}}]}))
    assert load_settings(cfg).cameras[0].location.lat == -6.9  # type: ignore[union-attr]
    cfg.write_text(yaml.safe_dump({"cameras": [{"id": "a", "url": "rtsp://h/x", "location": {"lat": -96, "lon": 110.4}}]}))
    with pytest.raises(ConfigError, match="cameras.0.location.lat"):
        load_settings(cfg)


class _SlowStore(LocalStore):
    """A real local store that takes 50 ms per chunk read: an export that lasts long enough to stop."""

    def iter_range(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        for chunk in super().iter_range(key, offset, length):
            time.sleep(0.05)
            yield chunk


def test_stopping_the_service_interrupts_a_running_export(tmp_path: Path) -> None:
    """Shutdown must not wait for a long export: it gives up at its next read and says so."""
    e = make_env(tmp_path / "slow", store=_SlowStore(tmp_path / "slow" / "objects"))
    e.add_camera("ev-slow")
    make_recording(e.ctx.store, e.catalog, "ev-slow", tmp_path / "m", [RunSpec(T0, 8, 1)])
    with e.client() as c:
        inc = _incident(c, e, cameras=["ev-slow"])
        eid = c.post(f"/api/incidents/{inc['id']}/exports", headers=e.auth("investigator")).json()["id"]
        wait_until(lambda: c.get(f"/api/exports/{eid}", headers=e.auth("investigator")).json()["state"] == "running",
                   10, 0.02, "the export to start")
        t = time.monotonic()
    # leaving the client ran the app's shutdown
    job = wait_until(lambda: (j := get_export(e.catalog, eid)) and j.state != "running" and j, 5, 0.02, "the stop")
    assert time.monotonic() - t < 3.0
    assert (job.state, job.error) == ("failed", "interrupted: the service stopped")
    assert not (e.workdir / "exports" / eid / "bundle.zip").exists()
