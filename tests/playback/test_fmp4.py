"""playback.fmp4: tfdt shifted in place in a box stream, whatever the chunking or the cut."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from storage.catalog import Catalog
from playback.fmp4 import shift_decode_times, track_timescales
from storage.object_store import LocalStore
from harness.recorded import Recording, RunSpec, make_recording, split_fmp4, us


@pytest.fixture(scope="module")
def rec() -> tuple[Recording, bytes]:
    d = Path(tempfile.mkdtemp())
    store = LocalStore(d / "o")
    r = make_recording(store, Catalog(f"sqlite:///{d}/c.db"), "c", d / "m", [RunSpec(us(1714557600), 4, 2)])
    seg = r.segments[1]
    return r, store.get_range(seg.object_key)


def chunked(data: bytes, n: int) -> list[bytes]:
    return [data[i : i + n] for i in range(0, len(data), n)]


def test_timescales(rec: tuple[Recording, bytes]) -> None:
    r, data = rec
    assert track_timescales(data[: r.segments[1].header_bytes]) == {1: 12800}


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
def test_shift_every_fragment(rec: tuple[Recording, bytes], chunk: int) -> None:
    r, data = rec
    seg = r.segments[1]
    header, body = data[: seg.header_bytes], data[seg.header_bytes :]
    out = b"".join(shift_decode_times(chunked(body, chunk), track_timescales(header), 20_000_000))
    assert len(out) == len(body)
    _, ts, before = split_fmp4(data)
    _, _, after = split_fmp4(header + out)
    assert [f.decode_time for f in after] == [f.decode_time + 20 * ts for f in before]
    assert [f.data[-100:] for f in after] == [f.data[-100:] for f in before]  # media untouched


def test_cut_stream_passes_through(rec: tuple[Recording, bytes]) -> None:
    r, data = rec
    seg = r.segments[1]
    body = data[seg.header_bytes : seg.fragments[0].offset + 40]  # cut inside the first moof
    assert b"".join(shift_decode_times([body], {1: 12800}, 1_000_000)) == body
    assert b"".join(shift_decode_times([], {1: 12800}, 1_000_000)) == b""
