"""Clip export over HTTP: the bytes hash to `Repr-Digest`, the clip decodes,
starts on a keyframe at or before `start`, covers `end`; the audit log holds it."""

from __future__ import annotations

import base64
import hashlib
import tempfile
from pathlib import Path

import av
import httpx

from tests.api.conftest import T0, RecordedEnv
from harness.recorded import us
from harness.media import probe
from harness.vigilproc import wait_until


def test_clip_digest_decode_cut_and_audit(recorded: RecordedEnv) -> None:
    env = recorded.env
    start, end = T0 + us(2.5), T0 + us(24.2)  # across segments, the gap and into run B
    with recorded.http() as c:
        r = c.get("/api/cameras/cam1/clip.mp4", params={"start": "2024-05-01T10:00:02.5Z",
                  "end": "2024-05-01T12:00:24.2+02:00"}, headers=env.auth("investigator"))  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.content
        digest = hashlib.sha256(body).digest()
        assert r.headers["repr-digest"] == f"sha-256=:{base64.b64encode(digest).decode()}:"
        assert r.headers["content-type"] == "video/mp4"
        assert 'filename="cam1_20240501T100002Z_20240501T100024Z.mp4"' in r.headers["content-disposition"]
        first_us, end_us = int(r.headers["vigil-first-frame-us"]), int(r.headers["vigil-end-us"])
        assert first_us <= start and end_us >= end
        assert (first_us, end_us) == (T0 + us(2), T0 + us(25))
        assert r.headers["vigil-gaps"] == "1"
        frames = int(r.headers["vigil-frames"])
        assert frames == recorded.rec.frames_between(start, end)

        path = Path(tempfile.mkdtemp()) / "clip.mp4"
        path.write_bytes(body)
        p = probe(path, decode=True)
        assert p.frames == p.decoded_frames == frames
        assert p.keyframes[0] == 0  # starts on a keyframe
        with av.open(str(path)) as ct:
            first = next(ct.demux(ct.streams.video[0]))
            assert first.is_keyframe and first.pts == 0
        assert p.duration_s == (end_us - first_us) / 1e6  # wall-clock faithful, the gap kept

        # the audit trail: who, what, which digest
        audit = c.get("/api/audit", params={"action": "clip.export"}, headers=env.auth("admin")).json()["entries"]
        entry = audit[-1]
        assert entry["key_name"] == "test-investigator"
        assert entry["key_id"] == env.keys["investigator"].split("_")[1]
        assert entry["camera_id"] == "cam1" and entry["sha256"] == digest.hex() and entry["bytes"] == len(body)
        assert (entry["start_us"], entry["end_us"]) == (first_us, end_us)
        assert entry["detail"]["requested_start_us"] == start and entry["detail"]["frames"] == frames
        assert len(entry["detail"]["segments"]) == 7

        exact = c.get("/api/cameras/cam1/clip.mp4", params={"start": "1714557602.5", "end": "1714557605.2",
                      "exact": "true"}, headers=env.auth("investigator"))  # fmt: skip
        assert exact.status_code == 200
        assert exact.headers["repr-digest"].startswith("sha-256=:")
    # temporary clip files are removed once sent (a background task after the body)
    wait_until(lambda: not list((env.workdir / "tmp").glob("clip-*")), 5, 0.02, "temporary clips removed")


def test_clip_errors(recorded: RecordedEnv) -> None:
    h = recorded.env.auth("investigator")

    def get(params: dict[str, str], cam: str = "cam1") -> httpx.Response:
        with recorded.http() as c:
            return c.get(f"/api/cameras/{cam}/clip.mp4", params=params, headers=h)

    r = get({"start": "1714557613", "end": "1714557619"})  # inside the gap
    assert r.status_code == 404 and r.json()["detail"].startswith("nothing recorded")
    r = get({"start": "1714557600", "end": "1714561201"})  # 1 h + 1 s
    assert r.status_code == 422 and "too long" in r.json()["detail"]
    assert get({"start": "1714557610", "end": "1714557600"}).status_code == 422
    assert get({"start": "1714557600", "end": "1714557610"}, cam="nope").status_code == 404
    assert get({"start": "1714557600", "end": "1714557610"}, cam="empty").status_code == 404
    assert get({"start": "1714557600", "end": "1714557610", "exact": "maybe"}).status_code == 422
