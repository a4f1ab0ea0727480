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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.catalog import Fragment, Segment

__all__ = ["OpenSegment", "Spool", "SpooledSegment", "read_journal"]

log = logging.getLogger("vigil.spool")

Buffer = bytes | bytearray | memoryview  # what `os.writev` takes


# The fields of a segment's journal's first record: what its writer knew when it opened it.
_OPENING = ("camera_id", "run_id", "seq", "start_us", "media_start_us", "video_codec", "audio_codec", "width",
            "height", "lease_epoch", "node_id")


def _file_stem(seg: Segment) -> str:
    """`{start}-{run}-{seq}`: a camera's spool files sort by start time."""
    return f"{seg.start_us:017d}-{seg.run_id}-{seg.seq:05d}"


@dataclass(slots=True)
class SpooledSegment:
    """A segment's two files in the spool and what its journal says of it (`segment.state` is
    `recording` until the journal's closing record, then `spooled`)."""

    segment: Segment
    data_path: Path
    journal_path: Path

    @property
    def closed(self) -> bool:
        return self.segment.state != "recording"

    @property
    def name(self) -> str:
        return self.journal_path.stem


class OpenSegment:
    """A segment being written by one session thread; `segment` follows every fragment written."""

    def __init__(self, spool_dir: Path, segment: Segment, header: bytes) -> None:
        self.segment = segment
        spool_dir.mkdir(parents=True, exist_ok=True)
        stem = _file_stem(segment)
        self.data_path = spool_dir / f"{stem}.mp4"
        self.journal_path = spool_dir / f"{stem}.jsonl"
        self._journal = open(self.journal_path, "a+b", buffering=0)
        fcntl.flock(self._journal.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._data = open(self.data_path, "wb", buffering=0)
        self._data.write(header)
        segment.header_bytes = segment.bytes = len(header)
        segment.state = "recording"
        self._record({"type": "segment", **{k: getattr(segment, k) for k in _OPENING}, "header_bytes": len(header)})

    @property
    def closed(self) -> bool:
        return self.segment.state != "recording"

    def _record(self, rec: dict[str, Any]) -> None:
        self._journal.write((json.dumps(rec, separators=(",", ":")) + "\n").encode())

    def add_fragment(
        self, data: Buffer | Sequence[Buffer], start_off_us: int, duration_us: int, frames: int
    ) -> Fragment:
        """Append one fragment, given whole or as its boxes (written with one `writev`, so the
        writer need not join them); its journal line follows its bytes so the index never lies."""
        parts = (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data
        size = _write_all(self._data.fileno(), parts)
        seg = self.segment
        frag = Fragment(seg.bytes, size, start_off_us, duration_us)
        seg.bytes += size
        seg.fragments.append(frag)
        seg.frames += frames
        seg.end_us = seg.start_us + start_off_us + duration_us
        self._record({"type": "fragment", "f": [frag.offset, frag.size, start_off_us, duration_us, frames]})
        return frag

    def close(self, end_us: int, drift_us: int | None, start_us: int | None = None) -> None:
        """Close for good; `start_us` corrects the start estimated when the segment opened."""
        if self.closed:
            return
        seg = self.segment
        os.fsync(self._data.fileno())
        self._data.close()
        rec: dict[str, Any] = {"type": "closed", "end_us": end_us, "drift_us": drift_us}
        if start_us is not None and start_us != seg.start_us:
            rec["start_us"] = start_us
            _move_start(seg, start_us)
        self._record(rec)
        os.fsync(self._journal.fileno())
        fcntl.flock(self._journal.fileno(), fcntl.LOCK_UN)
        self._journal.close()
        seg.end_us, seg.drift_us, seg.state = end_us, drift_us, "spooled"

    def abandon(self) -> None:
        """Drop an open segment that holds no fragment (nothing worth keeping)."""
        self._data.close()
        self._journal.close()
        self.data_path.unlink(missing_ok=True)
        self.journal_path.unlink(missing_ok=True)
        self.segment.state = "spooled"


def _move_start(seg: Segment, start_us: int) -> None:
    """A recovered segment starts later than planned; its object key follows (derived from the start)."""
    seg.start_us = start_us


def _write_all(fd: int, parts: Sequence[Buffer]) -> int:
    total = sum(memoryview(p).nbytes for p in parts)
    done = os.writev(fd, parts)
    while done < total:  # a short write (rare on a local file): the rest one copy at a time
        done += os.write(fd, b"".join(parts)[done:])
    return total


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
    """Parse a journal (the one place a journal becomes a Segment); a torn last line (crash
    mid-write) is ignored."""
    try:
        raw = journal_path.read_bytes()
    except FileNotFoundError:
        return None
    seg: Segment | None = None
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:  # a line torn by a crash; the recovery record follows it
            continue
        t = rec.get("type")
        if t == "segment":
            seg = Segment.opening(**{k: rec.get(k) for k in _OPENING})
            seg.header_bytes = seg.bytes = int(rec["header_bytes"])
        elif seg is None:
            continue
        elif t == "fragment":
            o, size, st, d, n = rec["f"]
            seg.fragments.append(Fragment(o, size, st, d))
            seg.frames += n
            seg.bytes = o + size
            seg.end_us = seg.start_us + st + d
        elif t == "closed":
            seg.state = "spooled"
            if "start_us" in rec:
                _move_start(seg, int(rec["start_us"]))
            if rec.get("end_us") is not None:
                seg.end_us = int(rec["end_us"])
            else:  # a journal from before end_us was always written: the fragments' end
                seg.end_us = seg.start_us + sum(f.duration_us for f in seg.fragments)
            seg.drift_us = rec.get("drift_us")
            seg.recovered = bool(rec.get("recovered", False))
    if seg is None:
        return None
    return SpooledSegment(seg, journal_path.with_suffix(".mp4"), journal_path)


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

    def open_segment(self, segment: Segment, header: bytes) -> OpenSegment:
        """Start writing `segment` (as from `Segment.opening`): its header now, fragments as they come."""
        return OpenSegment(self.camera_dir(segment.camera_id), segment, header)

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
        out.sort(key=lambda s: s.segment.start_us)
        return out

    def open_segments(self, camera_id: str) -> list[SpooledSegment]:
        """Segments of a camera still being written."""
        return [s for s in self.camera_segments(camera_id) if not s.closed]

    def camera_segments(self, camera_id: str) -> list[SpooledSegment]:
        """Every segment of a camera in the spool, being written or awaiting upload, oldest first."""
        out = [seg for j in self._journals(camera_id) if (seg := read_journal(j)) is not None]
        out.sort(key=lambda s: s.segment.start_us)
        return out

    def find(self, camera_id: str, start_us: int) -> SpooledSegment | None:
        """The spooled segment of a camera starting at `start_us` (its object key's time), if any."""
        return next((s for s in self.camera_segments(camera_id) if s.segment.start_us == start_us), None)

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
                frags = [f for f in seg.segment.fragments if f.offset + f.size <= size]
                if not frags:
                    log.warning("spool: %s/%s left no complete fragment; removed", seg.segment.camera_id, seg.name)
                    j.unlink(missing_ok=True)
                    data.unlink(missing_ok=True)
                    continue
                end_bytes = frags[-1].offset + frags[-1].size
                if size > end_bytes:
                    with open(data, "r+b") as f:
                        f.truncate(end_bytes)
                        os.fsync(f.fileno())
                last = frags[-1]
                end_us = seg.segment.start_us + last.start_off_us + last.duration_us
                with open(j, "ab") as f:
                    rec = {"type": "closed", "end_us": end_us, "drift_us": None, "recovered": True}
                    # a torn last line must not swallow the record: always start on a fresh line
                    f.write(b"\n" + json.dumps(rec).encode() + b"\n")
                    os.fsync(f.fileno())
                seg = read_journal(j)
                assert seg is not None
                log.info(
                    "spool: recovered %s/%s: %d fragments, %.1f s",
                    seg.segment.camera_id,
                    seg.name,
                    len(seg.segment.fragments),
                    (end_us - seg.segment.start_us) / 1e6,
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
