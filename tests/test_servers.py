"""The test servers are real: PyAV reads every mount kind over RTSP/TCP, picture faults
change what a decoder sees while packets keep flowing, SeaweedFS checks signatures and
keeps data across a restart. Other tests rely on these facts, so they are checked here."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from harness.media import make_clip, probe
from harness.servers import RtspServer, SeaweedS3, ServerError, free_port, listening_sockets

pytestmark = pytest.mark.e2e  # the real servers started, restarted and played for seconds

# analyzeduration=0, probesize=32: open in ~0.08 s instead of ~1.2 s of probing. Codec
# parameters may then be unknown until the first decode, which these tests do not need.
FAST_OPEN = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32"}


def open_rtsp(url: str, fast: bool = True, read_timeout: float = 5.0) -> av.container.InputContainer:
    options = dict(FAST_OPEN) if fast else {"rtsp_transport": "tcp"}
    options["timeout"] = str(int(read_timeout * 1_000_000))  # RTSP socket timeout, µs
    return av.open(url, options=options, timeout=(5, read_timeout))


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The Y plane as float32 (video range, 16 = black), without a colour conversion."""
    plane = frame.planes[0]
    y = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
    return y.astype(np.float32)


def laplacian_var(y: np.ndarray) -> float:
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(lap.var())


class Watcher:
    """Reads one RTSP stream in a thread and decodes every frame; tests wait on conditions."""

    def __init__(self, url: str):
        self.container = open_rtsp(url)
        self.frames: list[tuple[float, np.ndarray]] = []  # (arrival time, luma)
        self.packets: list[tuple[float, int]] = []  # (arrival time, size)
        self.cond = threading.Condition()
        self.error: BaseException | None = None
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for pkt in self.container.demux(video=0):
                if self.stopped:
                    break
                now = time.monotonic()
                decoded = [luma(f) for f in pkt.decode()]
                with self.cond:
                    if pkt.size:
                        self.packets.append((now, pkt.size))
                    self.frames.extend((now, y) for y in decoded)
                    self.cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - surfaced to the test
            self.error = e
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def frames_after(self, t: float, n: int, timeout: float = 10.0) -> list[np.ndarray]:
        """The first n frames that arrived after monotonic time t (waits for them)."""
        with self.cond:
            ok = self.cond.wait_for(
                lambda: self.stopped or sum(1 for ts, _ in self.frames if ts > t) >= n, timeout
            )
            got = [y for ts, y in self.frames if ts > t][:n]
        assert ok and len(got) == n, f"only {len(got)} frames after t (error={self.error!r})"
        return got

    def packets_between(self, t0: float, t1: float) -> int:
        with self.cond:
            return sum(1 for ts, _ in self.packets if t0 < ts <= t1)

    def close(self) -> None:
        self.stopped = True
        self.thread.join(10)
        self.container.close()


def diffs(frames: list[np.ndarray]) -> list[float]:
    return [float(np.abs(a - b).mean()) for a, b in zip(frames, frames[1:])]


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "h264": make_clip(d / "a.mp4", 4, codec="h264", gop=25).path,
        "hevc_aac": make_clip(d / "b.mp4", 3, codec="hevc", gop=25, audio=True).path,
        "short": make_clip(d / "short.mp4", 2, codec="h264", gop=10).path,
        "loop": make_clip(d / "loop.mp4", 1, codec="h264", width=160, height=120, gop=25).path,
    }


@pytest.fixture(scope="module")
def cams(clips) -> RtspServer:
    mounts = {
        "/file264": f"file:{clips['h264']}",
        "/file265": f"file:{clips['hevc_aac']}",
        "/short": f"file:{clips['short']}",
        "/loop": f"loop:{clips['loop']}?gop=25",
        "/moving": "synthetic:?w=320&h=240&fps=25&gop=25&scene=moving",
        "/noise": "synthetic:?w=320&h=240&fps=25&gop=25&scene=static-noise",
        "/faults": "synthetic:?w=320&h=240&fps=25&gop=25&scene=moving",
        "/sched": "synthetic:?w=160&h=120&fps=25&gop=25&scene=moving",
    }
    with RtspServer(mounts, schedules={"/sched": "freeze:2:1"}) as srv:
        yield srv


@pytest.fixture
def faults(cams):
    """The /faults camera, put back to normal afterwards."""
    yield cams
    if cams.running:
        cams.set_mode("/faults", "normal")


@pytest.fixture(scope="module")
def own_s3(tmp_path_factory) -> SeaweedS3:
    """A SeaweedFS of this module's own: these tests stop and restart it."""
    with SeaweedS3(tmp_path_factory.mktemp("weed")) as srv:
        yield srv


# ------------------------------------------------------------------ media helpers


def test_make_clip_exact_frames_and_gop(clips):
    p = probe(clips["h264"], decode=True)
    assert (p.frames, p.decoded_frames, p.video_codec, p.audio_codec) == (100, 100, "h264", None)
    assert p.keyframes == [0, 25, 50, 75]
    assert p.duration_s == pytest.approx(4.0, abs=0.01)
    p = probe(clips["hevc_aac"])
    assert (p.frames, p.video_codec, p.audio_codec) == (75, "hevc", "aac")
    assert p.keyframes == [0, 25, 50]


# ------------------------------------------------------------------ RTSP mounts


def test_camserver_binds_loopback_only(cams):
    assert listening_sockets(cams.pid) == [("127.0.0.1", cams.port)]


def test_file_h264(cams):
    with open_rtsp(cams.url("/file264"), fast=False) as c:
        assert [(s.type, s.codec_context.name) for s in c.streams] == [("video", "h264")]
        pkts = []
        for pkt in c.demux(video=0):
            pkts.append(pkt)
            if len(pkts) == 30:
                break
    # FFmpeg's first RTSP packet (the IDR) has no timestamp; the rest do.
    assert pkts[0].is_keyframe and pkts[0].pts is None
    assert all(p.pts is not None for p in pkts[1:])


def test_file_hevc_with_aac_gives_two_streams(cams):
    with open_rtsp(cams.url("/file265"), fast=False) as c:
        kinds = sorted((s.type, s.codec_context.name) for s in c.streams)
        assert kinds == [("audio", "aac"), ("video", "hevc")]
        seen = {"audio": 0, "video": 0}
        for pkt in c.demux():
            if pkt.size:
                seen[pkt.stream.type] += 1
            if seen["video"] >= 25 and seen["audio"] >= 25:
                break
    assert seen["video"] >= 25 and seen["audio"] >= 25


def test_file_served_from_start_to_eos(cams):
    """Every frame of the file arrives, then the session ends (demux stops by itself)."""
    t0 = time.monotonic()
    with open_rtsp(cams.url("/short")) as c:
        n = sum(1 for pkt in c.demux(video=0) if pkt.size)
    assert n == 50
    assert time.monotonic() - t0 < 6


def test_loop_runs_past_the_clip_end(cams):
    """The 1 s clip keeps coming past its end with monotonic timestamps and decodable frames."""
    with open_rtsp(cams.url("/loop")) as c:
        pts, decoded = [], 0
        for pkt in c.demux(video=0):
            if pkt.pts is not None:
                pts.append(pkt.pts)
            decoded += len(pkt.decode())
            if len(pts) >= 45:
                break
    assert decoded >= 40
    assert all(b > a for a, b in zip(pts, pts[1:]))


@pytest.mark.parametrize("path", ["/moving", "/noise"])
def test_synthetic_scenes(cams, path):
    w = Watcher(cams.url(path))
    try:
        frames = w.frames_after(0, 30)
    finally:
        w.close()
    d = diffs(frames[5:])
    lap = np.median([laplacian_var(y) for y in frames])
    assert lap > 100, "the scene has texture and edges, not a flat picture"
    if path == "/moving":
        assert min(d) > 1.0
    else:  # static scene under sensor noise: small but never-zero change
        assert 0.05 < np.median(d) < 3.0
        assert min(d) > 0.0


# ------------------------------------------------------------------ picture faults


def test_freeze_then_normal(faults):
    w = Watcher(faults.url("/faults"))
    try:
        w.frames_after(0, 5)
        faults.set_mode("/faults", "freeze")
        t = time.monotonic() + 0.3  # frames already in flight when the mode changed
        frozen = w.frames_after(t, 30)
        t_end = time.monotonic()
        d = diffs(frozen)
        # identical pictures, except the periodic IDR that re-encodes the frozen picture
        assert sum(1 for x in d if x == 0.0) >= 0.8 * len(d), d
        assert max(d) < 2.0
        # ...while the stream keeps flowing at ~25 fps
        assert w.packets_between(t, t_end) >= 20

        faults.set_mode("/faults", "normal")
        moving = w.frames_after(time.monotonic() + 0.3, 10)
        assert min(diffs(moving)) > 1.0
    finally:
        w.close()


def test_black(faults):
    w = Watcher(faults.url("/faults"))
    try:
        faults.set_mode("/faults", "black")
        frames = w.frames_after(time.monotonic() + 0.3, 10)
        assert max(float(y.mean()) for y in frames) < 20
    finally:
        w.close()


def test_blur_is_live_but_blurred(faults):
    w = Watcher(faults.url("/faults"))
    try:
        sharp = w.frames_after(0, 5)
        faults.set_mode("/faults", "blur")
        blurred = w.frames_after(time.monotonic() + 0.3, 10)
        assert np.median([laplacian_var(y) for y in blurred]) < 0.05 * np.median([laplacian_var(y) for y in sharp])
        assert np.median(diffs(blurred)) > 0.3, "blurred but still moving"
    finally:
        w.close()


def test_noise_freeze(faults):
    w = Watcher(faults.url("/faults"))
    try:
        w.frames_after(0, 5)
        faults.set_mode("/faults", "noise-freeze")
        frames = w.frames_after(time.monotonic() + 0.3, 20)
        d = diffs(frames)
        assert 0.05 < np.median(d) < 3.0, d  # sensor noise on a still picture
        assert np.median([laplacian_var(y) for y in frames]) > 100  # still the sharp picture
    finally:
        w.close()


def test_unknown_mode_is_refused(cams):
    with pytest.raises(ServerError):
        cams.set_mode("/faults", "melt")
    with pytest.raises(ServerError):
        cams.set_mode("/file264", "freeze")


def test_schedule_freezes_by_itself(cams):
    """/sched: normal for 2 s, frozen 1 s, every 2 s — tiny skip P-frames appear by themselves."""
    w = Watcher(cams.url("/sched"))
    try:
        with w.cond:
            ok = w.cond.wait_for(
                lambda: sum(1 for _, size in w.packets if size < 40) >= 10 or w.stopped, timeout=6
            )
        assert ok and not w.stopped
    finally:
        w.close()


# ------------------------------------------------------------------ server lifecycle


def test_restart_same_port_pause_and_auth(tmp_path):
    srv = RtspServer({"/cam": "synthetic:?w=160&h=120&gop=25"}, auth="demo:secret")
    try:
        port = srv.port
        url = srv.url("/cam", user="demo", password="secret")
        with open_rtsp(url) as c:
            assert next(iter(c.demux(video=0))).size > 0
        with pytest.raises(av.error.HTTPUnauthorizedError):
            open_rtsp(srv.url("/cam", user="demo", password="wrong"))

        assert srv.stop() == 0  # SIGTERM: clean exit
        with pytest.raises(av.error.ConnectionRefusedError):
            open_rtsp(url)
        srv.start()
        assert srv.port == port
        c = open_rtsp(url, read_timeout=2)
        packets = c.demux(video=0)
        next(packets)
        srv.pause()  # hung camera: reads time out instead of ending
        with pytest.raises(av.error.FFmpegError):
            for _ in packets:
                pass
        c.close()
        srv.resume()
        with open_rtsp(url) as c:
            assert next(iter(c.demux(video=0))).size > 0
    finally:
        srv.stop()
    assert not srv.running


def test_free_port_is_bindable():
    import socket

    p = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", p))


# ------------------------------------------------------------------ SeaweedFS S3


def test_s3_roundtrip_and_range(own_s3):
    c = own_s3.client()
    data = bytes(range(256)) * 4000
    c.put_object(own_s3.bucket, "cam/seg-0001.mp4", io.BytesIO(data), len(data), content_type="video/mp4")
    assert c.get_object(own_s3.bucket, "cam/seg-0001.mp4").read() == data
    part = c.get_object(own_s3.bucket, "cam/seg-0001.mp4", offset=1000, length=100)
    assert part.status == 206 and part.read() == data[1000:1100]
    assert [o.object_name for o in c.list_objects(own_s3.bucket, prefix="cam/")] == ["cam/seg-0001.mp4"]


def test_s3_binds_loopback_only_on_its_own_ports(own_s3):
    socks = listening_sockets(own_s3.pid)
    assert socks and all(addr == "127.0.0.1" for addr, _ in socks)
    assert {port for _, port in socks} <= set(own_s3.ports.values())
    assert not {8333, 8888, 9333, 9340, 7333, 23646, 8181, 9101} & set(own_s3.ports.values())


def test_s3_wrong_secret_refused(own_s3):
    from minio.error import S3Error

    bad = own_s3.client(secret_key=own_s3.secret_key + "x", retries=0)
    with pytest.raises(S3Error) as e:
        bad.get_object(own_s3.bucket, "anything")
    assert e.value.code in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")
    with pytest.raises(S3Error):
        bad.put_object(own_s3.bucket, "x", io.BytesIO(b"x"), 1)


def test_s3_restart_keeps_data(own_s3):
    c = own_s3.client()
    c.put_object(own_s3.bucket, "keep/me.bin", io.BytesIO(b"still here"), 10)
    port = own_s3.port
    assert own_s3.stop() == 0
    own_s3.start()
    assert own_s3.port == port
    assert own_s3.client().get_object(own_s3.bucket, "keep/me.bin").read() == b"still here"
