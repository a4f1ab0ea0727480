"""The live playlist over a recording in progress (a fake recorder writing a real spool, the real
uploader moving closed segments to the store): it advances, numbers fragments stably across
reloads, segment boundaries, uploads and runs, and FFmpeg plays it over HTTP.

When the recorder lands, `FakeRecorder` is what a `vigil run` subprocess with a live RTSP camera
replaces (newest media at most two GOPs plus a second behind the camera).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import av
import httpx
import pytest

from storage.catalog import Segment
from storage.spool import OpenSegment, Spool
from storage.uploader import Uploader
from tests.api.conftest import T0, ApiEnv, make_env, serve
from harness.recorded import FragmentBytes, fragment_mp4, split_fmp4, us
from harness.media import make_clip
from harness.fakes import FakeClock

GOP_US = 1_000_000  # the clip's GOP: 25 frames at 25 fps


class FakeRecorder:
    """Writes one run's fragments into the spool the way the recorder does (journal after bytes)."""

    def __init__(self, spool: Spool, camera: str, run_id: str, start_us: int, header: bytes,
                 frags: list[FragmentBytes], timescale: int, per_segment: int) -> None:  # fmt: skip
        self.spool, self.camera, self.run_id, self.start_us = spool, camera, run_id, start_us
        self.header, self.frags, self.timescale, self.per_segment = header, frags, timescale, per_segment
        self.next = 0
        self.seq = -1
        self.open: OpenSegment | None = None

    def _us(self, ticks: int) -> int:
        return ticks * 1_000_000 // self.timescale

    def write(self, n: int = 1) -> None:
        for _ in range(n):
            fb = self.frags[self.next]
            if self.open is None or len(self.open.segment.fragments) == self.per_segment:
                self.close()
                self.seq += 1
                media = self._us(fb.decode_time)
                meta = Segment.opening(self.camera, self.run_id, self.seq, self.start_us + media, media, "h264",
                                   width=320, height=240)  # fmt: skip
                self.open = self.spool.open_segment(meta, self.header)
            seg_media = self.open.segment.media_start_us
            self.open.add_fragment(fb.data, self._us(fb.decode_time) - seg_media, self._us(fb.duration), fb.samples)
            self.next += 1

    @property
    def written_end_us(self) -> int:
        fb = self.frags[self.next - 1]
        return self.start_us + self._us(fb.decode_time + fb.duration)

    def close(self) -> None:
        if self.open is not None:
            last = self.open.segment.fragments[-1]
            self.open.close(self.open.segment.start_us + last.start_off_us + last.duration_us, None)
            self.open = None


@dataclass
class Entry:
    seq: int
    start_us: int
    uri: str


def parse(text: str) -> tuple[list[Entry], int, int]:
    """Entries with their media sequence and wall-clock start; (entries, MSN, DSN)."""
    msn = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    dsn = int(re.search(r"#EXT-X-DISCONTINUITY-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    out: list[Entry] = []
    t = dur = 0
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            dt = datetime.fromisoformat(line.split(":", 1)[1])
            t = int(dt.timestamp()) * 1_000_000 + dt.microsecond
        elif line.startswith("#EXTINF:"):
            dur = round(float(line[8:].rstrip(",")) * 1e6)
        elif line and not line.startswith("#"):
            out.append(Entry(msn + len(out), t, line))
            t += dur
    return out, msn, dsn


@pytest.fixture(scope="module")
def run_media(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, int, list[FragmentBytes]]:
    clip = make_clip(tmp_path_factory.mktemp("live") / "live.mp4", 30, gop=25)
    return split_fmp4(fragment_mp4(clip.path))


@pytest.fixture
def live_env(tmp_path: Path) -> tuple[ApiEnv, Spool, FakeClock]:
    clock = FakeClock(T0 / 1e6)
    spool = Spool(tmp_path / "spool")
    env = make_env(tmp_path / "env", clock=clock, spool=spool)
    env.add_camera("live1")
    return env, spool, clock


def test_live_playlist_advances_with_stable_numbers(
    live_env: tuple[ApiEnv, Spool, FakeClock], run_media: tuple[bytes, int, list[FragmentBytes]]
) -> None:
    env, spool, clock = live_env
    header, ts, frags = run_media
    rec = FakeRecorder(spool, "live1", "runA", T0, header, frags, ts, per_segment=4)
    uploader = Uploader(spool, env.ctx.store, env.catalog, max_spool_bytes=10**9, clock=clock)
    h = env.auth("viewer")
    seen: dict[int, int] = {}  # media sequence -> fragment start (must never change)
    with env.client() as c:
        assert c.get("/api/cameras/live1/live.m3u8", headers=h).status_code == 404  # nothing yet
        newest_prev = 0
        for step in range(18):
            rec.write()
            clock.advance(1.0)
            if step % 5 == 4:
                uploader.pass_once()  # closed segments move to the store under the player's feet
            r = c.get("/api/cameras/live1/live.m3u8", headers=h)
            assert r.status_code == 200, r.text
            assert "#EXT-X-ENDLIST" not in r.text
            entries, msn, dsn = parse(r.text)
            base = T0 // 10_000
            for e in entries:
                assert seen.setdefault(e.seq, e.start_us) == e.start_us, f"MSN {e.seq} moved"
                assert e.seq - base == (e.start_us - T0) // GOP_US  # = the fragment's index in the run
            newest = entries[-1].start_us + GOP_US
            assert newest == rec.written_end_us  # the newest fragment written is listed at once
            assert newest > newest_prev
            newest_prev = newest
            # the window: at least 4 target durations (12 s here) once there is that much
            assert sum(1 for _ in entries) == min(step + 1, 12)
            assert dsn == T0 // 1_000_000
        assert env.catalog.latest_segments("live1", 10), "the uploader stored closed segments"

        # a new run (the camera reconnected): numbers jump above the old run's, DSN changes
        rec.close()
        clock.advance(5.0)
        rec2 = FakeRecorder(spool, "live1", "runB", T0 + us(25), header, frags, ts, per_segment=4)
        rec2.write(2)
        entries, msn, dsn = parse(c.get("/api/cameras/live1/live.m3u8", headers=h).text)
        assert msn == (T0 + us(25)) // 10_000 > max(seen)
        assert dsn == (T0 + us(25)) // 1_000_000
        assert len(entries) == 2

        # nothing recent: not live
        rec2.close()
        clock.advance(600)
        r = c.get("/api/cameras/live1/live.m3u8", headers=h)
        assert r.status_code == 404 and "no recent media" in r.json()["detail"]


def test_ffmpeg_plays_the_live_playlist(
    live_env: tuple[ApiEnv, Spool, FakeClock], run_media: tuple[bytes, int, list[FragmentBytes]]
) -> None:
    env, spool, clock = live_env
    header, ts, frags = run_media
    rec = FakeRecorder(spool, "live1", "runA", T0, header, frags, ts, per_segment=4)
    rec.write(10)  # two closed segments and an open one
    clock.advance(10)
    with serve(env.app) as base:
        url = httpx.get(f"{base}/api/cameras/live1/live-url", headers=env.auth("viewer")).json()["url"]
        # a player without headers: the signed playlist URL, signed media URLs inside
        decoded = 0
        with av.open(base + url, options={"live_start_index": "0"}, timeout=20) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                decoded += len(stream.codec_context.decode(packet))
                if decoded >= 10 * 25:
                    break
        assert decoded == 10 * 25
        # a viewer's signed live media URL cannot be turned into other recordings
        pl = httpx.get(base + url).text
        media = next(line for line in pl.splitlines() if line.startswith("/api/media/"))
        assert httpx.get(base + media, headers={"Range": "bytes=0-9"}).status_code == 206
        assert httpx.get(base + media.replace("sig=", "sig=x")).status_code == 401
        assert httpx.get(base + media.split("?")[0], headers=env.auth("viewer")).status_code == 403
