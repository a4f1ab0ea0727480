"""Publishes a camera's frames, as they arrive, to the live channel (storage/live_channel.py).

Why in the worker: the worker holds the camera's one RTSP connection; a viewer must never cause a
second one. Demand-driven: while nobody subscribes, the session pays one attribute test per packet
(`active`); with subscribers (one per API process, not per viewer), a packet costs one
non-blocking `sendmsg` of its bytes. A subscriber that cannot keep up is never waited for: what it
has not taken stays in a bounded buffer, and past `MAX_PENDING` it is disconnected (the API
reconnects and starts again at the next keyframe). Recording is untouched: this runs before the
packet goes to the muxer and never changes it.

A subscriber says whether one of its viewers wants low delay (`LOW_DELAY` / `BURSTS` bytes,
storage/live_channel.py); the camera's reader reads `low_delay` to choose its pause.

One thread per worker process (`LiveHub`) accepts subscribers on every camera's socket.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
from dataclasses import dataclass, field

import av

from storage.live_channel import (
    LOW_DELAY,
    ChannelConfig,
    channel_address,
    encode_config,
    encode_end,
    encode_frame_header,
    substream_channel,
)

__all__ = ["LiveHub", "LivePublisher", "open_publisher", "substream_channel"]

log = logging.getLogger("vigil.live")

MAX_PENDING = 8 << 20  # bytes a subscriber may fall behind before it is dropped
SEND_BUFFER = 2 << 20


@dataclass(eq=False, slots=True)
class _Subscriber:
    sock: socket.socket
    pending: bytearray = field(default_factory=bytearray)
    low_delay: bool = False


class LivePublisher:
    """One camera connection's live channel: a listening socket and its subscribers."""

    def __init__(self, hub: "LiveHub", camera_id: str, address: str, config: ChannelConfig) -> None:
        self.hub = hub
        self.camera_id = camera_id
        self.address = address
        self.config = encode_config(config)
        self.active = False  # read per packet by the session: True while anyone subscribes
        self.low_delay = False  # read by the reader: True while a subscriber asks for low delay
        self._subs: list[_Subscriber] = []
        self._lock = threading.Lock()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(address)
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.sent_frames = 0
        self.dropped_subscribers = 0

    def add(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass
        sub = _Subscriber(sock)
        with self._lock:
            self._subs.append(sub)
            self._send(sub, (self.config,), len(self.config))
            self._changed()

    def remove(self, sock: socket.socket) -> None:
        with self._lock:
            self._subs = [s for s in self._subs if s.sock is not sock]
            self._changed()
        sock.close()

    def heard(self, sock: socket.socket, data: bytes) -> None:
        """A subscriber's bytes: the last of them says whether it wants low delay."""
        want = data[-1:] == LOW_DELAY
        with self._lock:
            for sub in self._subs:
                if sub.sock is sock and sub.low_delay != want:
                    sub.low_delay = want
                    self._changed()
                    log.info("%s: live read %s", self.camera_id, "frame by frame (a viewer wants low delay)" if self.low_delay else "in bursts")

    def _changed(self) -> None:
        self.active = bool(self._subs)
        self.low_delay = any(s.low_delay for s in self._subs)

    def publish(self, pkt: av.Packet, arrival_us: int) -> None:
        """Send one video packet to every subscriber (called by the camera's thread)."""
        data = memoryview(pkt)
        size = len(data)
        head = encode_frame_header(pkt.is_keyframe, pkt.dts, pkt.pts, pkt.duration or 0, arrival_us, size)
        parts = (head, data)
        with self._lock:
            for sub in list(self._subs):
                self._send(sub, parts, len(head) + size)
        self.sent_frames += 1

    def _send(self, sub: _Subscriber, parts: tuple[bytes | memoryview, ...], total: int) -> None:
        """Non-blocking: what the socket does not take now waits in `pending`, bounded."""
        try:
            if sub.pending:
                n = sub.sock.send(sub.pending)
                del sub.pending[:n]
            if not sub.pending:
                n = sub.sock.sendmsg(parts)
                if n == total:
                    return
                rest = b"".join(parts)[n:]
            else:
                rest = b"".join(parts)
        except BlockingIOError:
            rest = b"".join(parts)
        except OSError:
            self._drop(sub, "gone")
            return
        sub.pending += rest
        if len(sub.pending) > MAX_PENDING:
            self._drop(sub, "too slow")

    def _drop(self, sub: _Subscriber, why: str) -> None:
        self.dropped_subscribers += 1
        log.warning("%s: live subscriber dropped (%s)", self.camera_id, why)
        if sub in self._subs:
            self._subs.remove(sub)
            self._changed()
        self.hub.forget(sub.sock)

    def close(self, reason: str) -> None:
        """The camera connection ended: tell subscribers why, and free the socket's name."""
        self.hub.unregister(self)
        with self._lock:
            subs, self._subs = self._subs, []
            self.active = self.low_delay = False
        end = encode_end(reason)
        for sub in subs:
            try:
                sub.sock.setblocking(True)
                sub.sock.settimeout(0.5)
                if sub.pending:
                    sub.sock.sendall(sub.pending)
                sub.sock.sendall(end)
            except OSError:
                pass
            self.hub.forget(sub.sock)
        self.listener.close()


class LiveHub:
    """The worker process's one thread that accepts subscribers and notices them leave."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
        self._thread.start()

    def register(self, pub: LivePublisher) -> None:
        with self._lock:
            self.selector.register(pub.listener, selectors.EVENT_READ, pub)
        self._wake()

    def unregister(self, pub: LivePublisher) -> None:
        with self._lock:
            try:
                self.selector.unregister(pub.listener)
            except (KeyError, ValueError):
                pass
        self._wake()

    def forget(self, sock: socket.socket) -> None:
        with self._lock:
            try:
                self.selector.unregister(sock)
            except (KeyError, ValueError):
                pass
        try:
            sock.close()
        except OSError:
            pass

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _run(self) -> None:
        while True:
            events = self.selector.select()
            for key, _ in events:
                obj = key.fileobj
                if obj is self._wake_r:
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
                    continue
                pub = key.data
                if isinstance(pub, LivePublisher) and obj is pub.listener:
                    try:
                        conn, _ = pub.listener.accept()
                    except OSError:
                        continue
                    with self._lock:
                        self.selector.register(conn, selectors.EVENT_READ, ("sub", pub))
                    pub.add(conn)
                    log.info("%s: live subscriber joined", pub.camera_id)
                elif isinstance(pub, tuple):
                    sock = obj
                    try:
                        data = sock.recv(4096)  # type: ignore[union-attr]
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:  # the subscriber left
                        self.forget(sock)  # type: ignore[arg-type]
                        pub[1].remove(sock)
                        log.info("%s: live subscriber left", pub[1].camera_id)
                    else:
                        pub[1].heard(sock, data)  # type: ignore[arg-type]


_hub: LiveHub | None = None
_hub_pid = 0
_hub_lock = threading.Lock()


def _the_hub() -> LiveHub:
    """This process's hub, started on first use (a forked child starts its own)."""
    global _hub, _hub_pid
    with _hub_lock:
        if _hub is None or _hub_pid != os.getpid():
            _hub, _hub_pid = LiveHub(), os.getpid()
        return _hub


def open_publisher(spool_root: str | os.PathLike[str], camera_id: str, video: av.video.stream.VideoStream) -> LivePublisher | None:
    """The live channel of a camera connection, or None when its name is taken (another process
    still holds the camera: the older one keeps it until its connection ends)."""
    cc = video.codec_context
    tb = video.time_base
    config = ChannelConfig(
        codec=cc.name,
        extradata=bytes(cc.extradata or b""),
        width=int(cc.width or 0),
        height=int(cc.height or 0),
        time_base=(tb.numerator, tb.denominator) if tb else (1, 90000),
    )
    hub = _the_hub()
    try:
        pub = LivePublisher(hub, camera_id, channel_address(spool_root, camera_id), config)
    except OSError as e:
        log.warning("%s: no live channel (%s)", camera_id, e)
        return None
    hub.register(pub)
    return pub
