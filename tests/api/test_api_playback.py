"""Recordings, the VOD playlist and media over real HTTP (uvicorn) from real S3 (SeaweedFS).

Issue 4 test 1: a playlist spanning two segments and a gap is read over HTTP by FFmpeg's HLS
demuxer (PyAV) and decodes every frame; the count matches the catalog.
"""

from __future__ import annotations

import itertools
import re
import time
from urllib.parse import parse_qsl, urlsplit

import av
import pytest

from storage.audit_log import list_audit
from tests.api.conftest import T0, RecordedEnv
from harness.recorded import us

RANGE = {"start": "2024-05-01T10:00:01.5Z", "end": "1714557626.5"}  # 1.5 s .. 26.5 s: both runs, the gap


def test_recordings_listing(recorded: RecordedEnv) -> None:
    env = recorded.env
    with recorded.http() as c:
        r = c.get("/api/cameras/cam1/recordings", params={"start": "1714557595", "end": "1714557635"},
                  headers=env.auth("investigator"))  # fmt: skip
        assert r.status_code == 200, r.text
        doc = r.json()
        assert len(doc["segments"]) == 8
        assert [(g["start_us"] - T0, g["end_us"] - T0) for g in doc["gaps"]] == [
            (-us(5), 0), (us(12), us(20)), (us(28), us(35))
        ]  # fmt: skip
        assert doc["recorded_s"] == 20.0 and doc["gap_s"] == 20.0
        s0 = doc["segments"][0]
        assert (s0["start_utc"], s0["duration_s"], s0["frames"], s0["width"]) == ("2024-05-01T10:00:00Z", 3.0, 75, 320)
        empty = c.get("/api/cameras/empty/recordings", params=RANGE, headers=env.auth("investigator")).json()
        assert empty["segments"] == [] and len(empty["gaps"]) == 1
        assert c.get("/api/cameras/nope/recordings", params=RANGE, headers=env.auth("investigator")).status_code == 404


def test_playlist_shape(recorded: RecordedEnv) -> None:
    with recorded.http() as c:
        r = c.get("/api/cameras/cam1/playback.m3u8", params=RANGE, headers=recorded.env.auth("investigator"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        text = r.text
        assert text.count("#EXT-X-MAP:") == 2 and text.count("#EXT-X-DISCONTINUITY\n") == 1
        assert "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T10:00:01.000Z" in text  # the keyframe before 1.5 s
        assert "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T10:00:20.000Z" in text
        assert text.rstrip().endswith("#EXT-X-ENDLIST")
        media = [line for line in text.splitlines() if line.startswith("/api/media/")]
        assert media and all({"kid", "exp", "sig"} <= dict(parse_qsl(urlsplit(u).query)).keys() for u in media)
        for span in ({"start": "1714557613", "end": "1714557619"}, {"start": "1714557500", "end": "1714557590"}):
            r = c.get("/api/cameras/cam1/playback.m3u8", params=span, headers=recorded.env.auth("investigator"))
            assert r.status_code == 404 and "nothing recorded" in r.json()["detail"]


def test_pyav_plays_the_playlist_over_http(recorded: RecordedEnv) -> None:
    env, rec = recorded.env, recorded.rec
    with recorded.http() as c:
        signed = c.get("/api/cameras/cam1/playback-url", params=RANGE, headers=env.auth("investigator")).json()
    assert signed["expires_us"] > time.time() * 1e6
    url = recorded.base_url + signed["url"]
    expected = rec.frames_between(T0 + us(1.5), T0 + us(26.5))
    assert expected == (12 - 1 + 27 - 20) * 25  # GOP-aligned: [1 s, 12 s) and [20 s, 27 s)
    decoded = errors = 0
    times: list[float] = []
    with av.open(url, timeout=20) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                frames = stream.codec_context.decode(packet)
            except av.error.FFmpegError:
                errors += 1
                continue
            decoded += len(frames)
            times += [float(f.time) for f in frames]
    assert errors == 0
    assert decoded == expected
    # one increasing timeline (decode times of the second run shifted by the media route), and the
    # 8 s without recording stays 8 s long
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert min(steps) > 0
    assert max(steps) == pytest.approx(8.0 + 1 / 25)
    views = [a for a in list_audit(env.catalog, action="playback.view") if a.detail.get("via") == "signature"]
    assert views and views[-1].key_name == "test-investigator" and views[-1].camera_id == "cam1"


def test_pyav_with_a_bearer_header(recorded: RecordedEnv) -> None:
    """Players that can send headers need no signed playlist URL (media URLs are signed anyway)."""
    url = f"{recorded.base_url}/api/cameras/cam1/playback.m3u8?start=1714557620&end=1714557624"
    auth = recorded.env.auth("investigator")["Authorization"]
    with av.open(url, options={"headers": f"Authorization: {auth}\r\n"}, timeout=20) as container:
        n = sum(1 for p in container.demux(container.streams.video[0]) if p.size)
    assert n == 4 * 25


def test_media_ranges_and_signatures(recorded: RecordedEnv) -> None:
    env, seg = recorded.env, recorded.rec.segments[1]
    path = f"/api/media/{seg.object_key}"
    h = env.auth("investigator")
    with recorded.http() as c:
        whole = c.get(path, headers=h)
        assert whole.status_code == 200 and len(whole.content) == seg.bytes
        assert whole.headers["accept-ranges"] == "bytes"
        f = seg.fragments[1]
        part = c.get(path, headers={**h, "Range": f"bytes={f.offset}-{f.offset + f.size - 1}"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes {f.offset}-{f.offset + f.size - 1}/{seg.bytes}"
        assert part.content == whole.content[f.offset : f.offset + f.size]
        assert part.content[4:8] == b"moof"
        assert c.get(path, headers={**h, "Range": "bytes=-10"}).content == whole.content[-10:]
        assert c.get(path, headers={**h, "Range": f"bytes={seg.header_bytes}-"}).content[4:8] == b"moof"
        r = c.get(path, headers={**h, "Range": f"bytes={seg.bytes}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{seg.bytes}"
        hd = c.head(path, headers={**h, "Range": "bytes=0-99"})
        assert hd.status_code == 206 and hd.headers["content-length"] == "100" and hd.content == b""
        assert c.get("/api/media/cam1/2024/05/01/10/20240501T100059.000000Z.mp4", headers=h).status_code == 404
        assert c.get("/api/media/not-a-key", headers=h).status_code == 404
        assert c.get(path, headers=env.auth("viewer")).status_code == 403

        # shifted decode times: same length, header untouched, any sub-range consistent
        shifted = c.get(f"{path}?shift_us=1000000", headers=h).content
        assert len(shifted) == seg.bytes and shifted != whole.content
        assert shifted[: seg.header_bytes] == whole.content[: seg.header_bytes]
        lo, hi = seg.header_bytes - 5, f.offset + f.size + 50
        sub = c.get(f"{path}?shift_us=1000000", headers={**h, "Range": f"bytes={lo}-{hi}"})
        assert sub.status_code == 206 and sub.content == shifted[lo : hi + 1]
        sub = c.get(f"{path}?shift_us=1000000", headers={**h, "Range": f"bytes={f.offset + 20}-"})
        assert sub.content == shifted[f.offset + 20 :]

        # signed URLs: exactly that URL, unexpired, from a live key
        pl = c.get("/api/cameras/cam1/playback.m3u8", params=RANGE, headers=h).text
        url = next(line for line in pl.splitlines() if line.startswith(path))
        assert c.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
        tampered = re.sub(r"sig=[^&]+", "sig=" + "A" * 43, url)
        assert c.get(tampered).status_code == 401
        other = url.replace(seg.object_key, recorded.rec.segments[2].object_key)
        assert c.get(other).status_code == 401
        assert c.get(re.sub(r"exp=\d+", "exp=9999999999", url)).status_code == 401
        signer = env.app.state.services.signer
        kid = env.keys["investigator"].split("_")[1]
        expired = signer.sign(path, {}, kid, int(time.time()) - 1)
        assert c.get(expired).status_code == 401
        assert c.get(signer.sign(path, {}, kid, int(time.time()) + 60)).status_code == 200
        assert c.get(signer.sign(path, {}, "000000000000", int(time.time()) + 60)).status_code == 401
        # a signed URL does not open other routes
        assert c.get(url.replace(path, "/api/audit")).status_code == 401


def test_playback_validation(recorded: RecordedEnv) -> None:
    h = recorded.env.auth("investigator")
    with recorded.http() as c:

        def detail(params: dict[str, str]) -> tuple[int, str]:
            r = c.get("/api/cameras/cam1/playback.m3u8", params=params, headers=h)
            return r.status_code, r.json()["detail"]

        assert detail({"start": "1714557610", "end": "1714557600"})[0] == 422
        assert "before end" in detail({"start": "1714557610", "end": "1714557610"})[1]
        assert "too long" in detail({"start": "1714557600", "end": "1714657600"})[1]
        assert "no zone" in detail({"start": "2024-05-01T10:00:00", "end": "1714557610"})[1]
        assert detail({"start": "soon", "end": "1714557610"})[0] == 422
        assert detail({"end": "1714557610"}) == (422, "query.start: Field required")
        # an offset whose '+' arrived as a space (not URL-encoded) still parses
        r = c.get("/api/cameras/cam1/playback.m3u8?start=2024-05-01T12:00:01+02:00&end=2024-05-01T12:00:05+02:00",
                  headers=h)  # fmt: skip
        assert r.status_code == 200, r.text
