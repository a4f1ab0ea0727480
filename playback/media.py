"""A segment object's bytes for a player: where they are, how big, and a byte range of them.

A segment is in the spool while it is recorded and until the uploader has stored it, then in the
object store; a player asks by its object key either way (`locate`). With `shift_us` every
fragment's decode time is moved (playback/fmp4.py) so a VOD playlist's runs form one timeline:
reading then starts at the fragment holding the range's first byte, since boxes are parsed whole.
HTTP (status codes, Range headers) stays with the API; this module raises `MediaNotFound` or
`ObjectStoreError`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from playback.fmp4 import shift_decode_times, track_timescales
from storage.catalog import Catalog
from storage.keys import parse_segment_key
from storage.object_store import ObjectStore, ObjectStoreError
from storage.spool import Spool, SpooledSegment

__all__ = ["MediaNotFound", "MediaObject", "locate"]

CHUNK = 1 << 18


class MediaNotFound(Exception):
    """No segment object by that key, in the spool or the store."""


@dataclass(frozen=True, slots=True)
class MediaObject:
    key: str
    size: int
    spooled: SpooledSegment | None  # its files in the spool (it may still grow); None: in the store
    store: ObjectStore
    catalog: Catalog

    @property
    def in_spool(self) -> bool:
        return self.spooled is not None

    def read(self, first: int, length: int, shift_us: int = 0) -> Iterator[bytes]:
        """Bytes [first, first + length), decode times moved by `shift_us`. The first chunk is read
        at once, so a store that fails does so here (raises) rather than in the middle of a body."""
        layout = self._layout() if shift_us else None
        if layout is not None:
            body: Iterator[bytes] = _shifted(self._reader(), first, length, layout, shift_us)
            try:
                head = next(body, b"")
            except KeyError as e:  # gone from the store between the stat and the read
                raise ObjectStoreError(str(e)) from None
        elif self.spooled is not None:
            return _file_chunks(self.spooled.data_path, first, length)
        else:
            body = iter(self.store.iter_range(self.key, first, length))
            try:
                head = next(body, b"")
            except KeyError:
                raise MediaNotFound(self.key) from None
        return itertools.chain((head,), body)

    def _reader(self) -> Callable[[int, int], Iterator[bytes]]:
        if self.spooled is not None:
            path = self.spooled.data_path
            return lambda offset, n: _file_chunks(path, offset, n)
        return lambda offset, n: iter(self.store.iter_range(self.key, offset, n))

    def _layout(self) -> tuple[int, list[int]] | None:
        """(header bytes, fragment offsets), from the spool's journal or the catalog."""
        seg = self.spooled.segment if self.spooled is not None else self.catalog.get_segment_by_key(self.key)
        return (seg.header_bytes, [f.offset for f in seg.fragments]) if seg else None


def locate(key: str, *, spool: Spool | None, store: ObjectStore, catalog: Catalog) -> MediaObject:
    """The segment object `key`: from the spool while it is there, else from the store."""
    try:
        sk = parse_segment_key(key)
    except ValueError:
        raise MediaNotFound(key) from None
    spooled = spool.find(sk.camera, sk.start_us) if spool is not None else None
    if spooled is not None:
        try:
            return MediaObject(key, os.stat(spooled.data_path).st_size, spooled, store, catalog)
        except FileNotFoundError:  # uploaded and removed meanwhile: the store has it
            pass
    st = store.stat(key)
    if st is None:
        raise MediaNotFound(key)
    return MediaObject(key, st.size, None, store, catalog)


def _file_chunks(path: Path, first: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(first)
        left = length
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


def _skip(chunks: Iterator[bytes], n: int) -> Iterator[bytes]:
    """Drop the first n bytes of a chunk stream."""
    for chunk in chunks:
        if n >= len(chunk):
            n -= len(chunk)
            continue
        yield chunk[n:] if n else chunk
        n = 0


def _shifted(
    read: Callable[[int, int], Iterator[bytes]], first: int, length: int, layout: tuple[int, list[int]], shift_us: int
) -> Iterator[bytes]:
    """Bytes [first, first+length) with every fragment's decode time moved by shift_us."""
    header_bytes, offsets = layout
    end = first + length
    header = b"".join(read(0, header_bytes))
    if first < header_bytes:
        yield header[first : min(end, header_bytes)]
    if end <= header_bytes:
        return
    start = max(first, header_bytes)
    boundary = max(o for o in [header_bytes, *offsets] if o <= start)
    chunks = shift_decode_times(read(boundary, end - boundary), track_timescales(header), shift_us)
    yield from _skip(iter(chunks), start - boundary)
