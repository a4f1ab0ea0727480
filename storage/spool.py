"""The spool: segments land on local disk first, then the uploader moves them to the object store.

Each segment is two files in `{root}/{camera}/`:
- `{name}.mp4`  — the fMP4 bytes: the run's header (ftyp + moov), then one fragment per GOP;
- `{name}.jsonl` — its journal: a `segment` record, one `fragment` record per fragment written
  (after its bytes), and a `closed` record at the end.
The writer holds an exclusive `flock` on the journal while the segment is open. A segment with no
`closed` record whose lock is free was left by a dead writer: recovery truncates its data to the last
journaled fragment and closes it, so a crash loses at most the fragment being written.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.catalog import Fragment, Segment

__all__ = ["OpenSegment", "Spool", "SpooledSegment", "SegmentMeta", "read_journal"]

log = logging.getLogger("vigil.spool")

Buffer = bytes | bytearray | memoryview  # what `os.writev` takes


@dataclass(slots=True)
class SegmentMeta:
    """What is known when a segment opens."""

    camera_id: str
    run_id: str
    seq: int
    start_us: int
    media_start_us: int
    video_codec: str
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    lease_epoch: int | None = None
    node_id: str | None = None

    @property
    def name(self) -> str:
        return f"{self.start_us:017d}-{self.run_id}-{self.seq:05d}"


@dataclass(slots=True)
class SpooledSegment:
    """A segment on disk, as read back from its journal."""

    meta: SegmentMeta
    data_path: Path
    journal_path: Path
    header_bytes: int
    fragments: list[Fragment]
    frames: int
    closed: bool
    end_us: int | None = None
    drift_us: int | None = None
    recovered: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        if not self.fragments:
            return self.header_bytes
        last = self.fragments[-1]
        return last.offset + last.size

    def to_segment(self) -> Segment:
        m = self.meta
        end = self.end_us if self.end_us is not None else m.start_us + sum(f.duration_us for f in self.fragments)
        return Segment(
            camera_id=m.camera_id,
            run_id=m.run_id,
            seq=m.seq,
            start_us=m.start_us,
            end_us=end,
            media_start_us=m.media_start_us,
            bytes=self.bytes,
            header_bytes=self.header_bytes,
            video_codec=m.video_codec,
            audio_codec=m.audio_codec,
            width=m.width,
            height=m.height,
            frames=self.frames,
            fragments=list(self.fragments),
            recovered=self.recovered,
            drift_us=self.drift_us,
            lease_epoch=m.lease_epoch,
            node_id=m.node_id,
        )


class OpenSegment:
    """A segment being written by one session thread."""

    def __init__(self, spool_dir: Path, meta: SegmentMeta, header: bytes) -> None:
        self.meta = meta
        spool_dir.mkdir(parents=True, exist_ok=True)
        self.data_path = spool_dir / f"{meta.name}.mp4"
        self.journal_path = spool_dir / f"{meta.name}.jsonl"
        self._journal = open(self.journal_path, "a+b", buffering=0)
        fcntl.flock(self._journal.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._data = open(self.data_path, "wb", buffering=0)
        self._data.write(header)
        self.header_bytes = len(header)
        self.size = len(header)
        self.fragments: list[Fragment] = []
        self.frames = 0
        self.closed = False
        self._record({"type": "segment", **_meta_dict(meta), "header_bytes": self.header_bytes})

    def _record(self, rec: dict[str, Any]) -> None:
        self._journal.write((json.dumps(rec, separators=(",", ":")) + "\n").encode())

    def add_fragment(
        self, data: Buffer | Sequence[Buffer], start_off_us: int, duration_us: int, frames: int
    ) -> Fragment:
        """Append one fragment, given whole or as its boxes (written with one `writev`, so the
        writer need not join them); its journal line follows its bytes so the index never lies."""
        parts = (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data
        size = _write_all(self._data.fileno(), parts)
        frag = Fragment(self.size, size, start_off_us, duration_us)
        self.size += size
        self.fragments.append(frag)
        self.frames += frames
        self._record({"type": "fragment", "f": [frag.offset, frag.size, start_off_us, duration_us, frames]})
        return frag

    def close(self, end_us: int, drift_us: int | None, start_us: int | None = None) -> None:
        """Close for good; `start_us` corrects the start estimated when the segment opened."""
        if self.closed:
            return
        os.fsync(self._data.fileno())
        self._data.close()
        rec: dict[str, Any] = {"type": "closed", "end_us": end_us, "drift_us": drift_us}
        if start_us is not None and start_us != self.meta.start_us:
            rec["start_us"] = start_us
            self.meta.start_us = start_us
        self._record(rec)
        os.fsync(self._journal.fileno())
        fcntl.flock(self._journal.fileno(), fcntl.LOCK_UN)
        self._journal.close()
        self.closed = True

    def abandon(self) -> None:
        """Drop an open segment that holds no fragment (nothing worth keeping)."""
        self._data.close()
        self._journal.close()
        self.data_path.unlink(missing_ok=True)
        self.journal_path.unlink(missing_ok=True)
        self.closed = True


def _write_all(fd: int, parts: Sequence[Buffer]) -> int:
    total = sum(memoryview(p).nbytes for p in parts)
    done = os.writev(fd, parts)
    while done < total:  # a short write (rare on a local file): the rest one copy at a time
        done += os.write(fd, b"".join(parts)[done:])
    return total


def _meta_dict(m: SegmentMeta) -> dict[str, Any]:
    return {
        "camera_id": m.camera_id,
        "run_id": m.run_id,
        "seq": m.seq,
        "start_us": m.start_us,
        "media_start_us": m.media_start_us,
        "video_codec": m.video_codec,
        "audio_codec": m.audio_codec,
        "width": m.width,
        "height": m.height,
        "lease_epoch": m.lease_epoch,
        "node_id": m.node_id,
    }


def _ends_closed(journal_path: str | Path) -> bool:
    """Whether a journal's last record closes it, read from its tail alone.

    The uploader asks this of every journal in the spool each pass, so: one `pread`, and an open
    segment's last record (a fragment) is rejected without parsing it.
    """
    try:
        fd = os.open(journal_path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        tail = os.pread(fd, 512, max(0, size - 512))
    finally:
        os.close(fd)
    for line in reversed(tail.split(b"\n")):
        if line.strip():
            if b'"closed"' not in line:
                return False
            try:
                rec = json.loads(line)
            except ValueError:  # torn, or cut by the tail window: not a closing record
                return False
            return isinstance(rec, dict) and rec.get("type") == "closed"
    return False


def read_journal(journal_path: Path) -> SpooledSegment | None:
    """Parse a journal; a torn last line (crash mid-write) is ignored."""
    try:
        raw = journal_path.read_bytes()
    except FileNotFoundError:
        return None
    meta: SegmentMeta | None = None
    header = 0
    frags: list[Fragment] = []
    frames = 0
    closed = False
    end_us = drift = None
    recovered = False
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:  # a line torn by a crash; the recovery record follows it
            continue
        t = rec.get("type")
        if t == "segment":
            header = int(rec.pop("header_bytes"))
            rec.pop("type")
            meta = SegmentMeta(**rec)
        elif t == "fragment":
            o, s, st, d, n = rec["f"]
            frags.append(Fragment(o, s, st, d))
            frames += n
        elif t == "closed":
            closed = True
            if meta is not None and "start_us" in rec:
                meta.start_us = int(rec["start_us"])
            end_us = rec.get("end_us")
            drift = rec.get("drift_us")
            recovered = bool(rec.get("recovered", False))
    if meta is None:
        return None
    return SpooledSegment(
        meta=meta,
        data_path=journal_path.with_suffix(".mp4"),
        journal_path=journal_path,
        header_bytes=header,
        fragments=frags,
        frames=frames,
        closed=closed,
        end_us=end_us,
        drift_us=drift,
        recovered=recovered,
    )


def _lock_free(path: Path) -> bool:
    """True when no live writer holds the journal's lock."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


class Spool:
    """The spool directory of one node."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def camera_dir(self, camera_id: str) -> Path:
        return self.root / camera_id

    def open_segment(self, meta: SegmentMeta, header: bytes) -> OpenSegment:
        return OpenSegment(self.camera_dir(meta.camera_id), meta, header)

    def _journal_paths(self, camera_id: str | None = None) -> Iterator[str]:
        """Every journal (of one camera, or of all), in no order, as plain strings: the uploader
        asks for all of them every pass, with one open segment per camera, so no `Path` per file."""
        if camera_id:
            dirs = [str(self.camera_dir(camera_id))]
        else:
            with os.scandir(self.root) as it:
                dirs = [e.path for e in it if e.is_dir()]
        for d in dirs:
            try:
                with os.scandir(d) as it:
                    found = [e.path for e in it if e.name.endswith(".jsonl")]
            except (FileNotFoundError, NotADirectoryError):
                continue
            yield from found

    def _journals(self, camera_id: str | None = None) -> Iterator[Path]:
        """`_journal_paths` as `Path`s, by camera directory, then name."""
        for j in sorted(self._journal_paths(camera_id), key=os.path.split):
            yield Path(j)

    def closed_segments(self) -> list[SpooledSegment]:
        """Closed segments, oldest start first (across cameras).

        The uploader asks twice a second with one open segment per camera in the spool: only
        journals whose last record closes them are parsed.
        """
        out = []
        for j in self._journal_paths():
            if not _ends_closed(j):
                continue
            seg = read_journal(Path(j))
            if seg is not None and seg.closed:
                out.append(seg)
        out.sort(key=lambda s: s.meta.start_us)
        return out

    def open_segments(self, camera_id: str) -> list[SpooledSegment]:
        """Segments of a camera still being written (for the live view)."""
        out = []
        for j in self._journals(camera_id):
            seg = read_journal(j)
            if seg is not None and not seg.closed:
                out.append(seg)
        return out

    def recover(self) -> list[SpooledSegment]:
        """Close every segment a dead writer left open; returns the ones recovered.

        Data past the last journaled fragment (a fragment torn by the crash) is cut off; a segment
        without one complete fragment is deleted, since it holds no playable media.
        """
        recovered = []
        with self._lock:
            for j in self._journals():
                seg = read_journal(j)
                if seg is None:
                    if _lock_free(j):
                        log.warning("spool: dropping unreadable journal %s", j.name)
                        j.unlink(missing_ok=True)
                        j.with_suffix(".mp4").unlink(missing_ok=True)
                    continue
                if seg.closed or not _lock_free(j):
                    continue
                data = seg.data_path
                size = data.stat().st_size if data.exists() else 0
                frags = [f for f in seg.fragments if f.offset + f.size <= size]
                if not frags:
                    log.warning("spool: %s/%s left no complete fragment; removed", seg.meta.camera_id, seg.meta.name)
                    j.unlink(missing_ok=True)
                    data.unlink(missing_ok=True)
                    continue
                end_bytes = frags[-1].offset + frags[-1].size
                if size > end_bytes:
                    with open(data, "r+b") as f:
                        f.truncate(end_bytes)
                        os.fsync(f.fileno())
                last = frags[-1]
                end_us = seg.meta.start_us + last.start_off_us + last.duration_us
                with open(j, "ab") as f:
                    rec = {"type": "closed", "end_us": end_us, "drift_us": None, "recovered": True}
                    # a torn last line must not swallow the record: always start on a fresh line
                    f.write(b"\n" + json.dumps(rec).encode() + b"\n")
                    os.fsync(f.fileno())
                seg = read_journal(j)
                assert seg is not None
                log.info(
                    "spool: recovered %s/%s: %d fragments, %.1f s",
                    seg.meta.camera_id,
                    seg.meta.name,
                    len(seg.fragments),
                    (end_us - seg.meta.start_us) / 1e6,
                )
                recovered.append(seg)
        return recovered

    def remove(self, seg: SpooledSegment) -> None:
        seg.data_path.unlink(missing_ok=True)
        seg.journal_path.unlink(missing_ok=True)

    def usage_bytes(self) -> int:
        total = 0
        with os.scandir(self.root) as dirs:
            for d in dirs:
                if not d.is_dir():
                    continue
                try:
                    with os.scandir(d.path) as files:
                        for f in files:
                            try:
                                total += f.stat().st_size
                            except FileNotFoundError:
                                pass
                except FileNotFoundError:
                    pass
        return total
