"""The packed fragment index round-trips every fragment list, big offsets included, and is small."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.catalog import Fragment
from storage.catalog.fragment_index import FragmentIndexError, pack_fragments, unpack_fragments

I64 = st.integers(min_value=-(2**62), max_value=2**62)
U64 = st.integers(min_value=0, max_value=2**63)


@given(st.lists(st.builds(Fragment, U64, U64, I64, U64), max_size=40))
def test_any_fragments_round_trip(frags: list[Fragment]) -> None:
    assert unpack_fragments(pack_fragments(frags)) == frags


@given(st.integers(0, 2**62), I64, st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=40))
def test_contiguous_fragments_round_trip(first: int, start: int, sd: list[tuple[int, int]]) -> None:
    frags = []
    for size, dur in sd:
        frags.append(Fragment(first, size, start, dur))
        first, start = first + size, start + dur
    assert unpack_fragments(pack_fragments(frags)) == frags


def test_big_offsets_and_gaps_round_trip() -> None:
    frags = [Fragment(5 * 2**32 + 17, 3_000_000, 0, 2_000_000), Fragment(5 * 2**32 + 9_000_000, 1, 2_000_100, 1_999_900),
             Fragment(2**40, 2**33, -40, 7)]
    assert unpack_fragments(pack_fragments(frags)) == frags


def test_a_minute_of_contiguous_gops_packs_to_a_fifth_of_json() -> None:
    frags = [Fragment(812 + i * 187_345, 187_345, i * 2_000_000, 2_000_000) for i in range(30)]
    packed = pack_fragments(frags)
    as_json = json.dumps([[f.offset, f.size, f.start_off_us, f.duration_us] for f in frags])
    assert len(packed) <= 260 < len(as_json) / 4
    assert unpack_fragments(packed) == frags
    assert unpack_fragments(pack_fragments([])) == []


@pytest.mark.parametrize("bad", [b"\x03\x00", b"\x01\x02\x00\x01", b"\x01\x01\x00\x80", b"\x02\x02\x00\x00\x01"])
def test_damaged_index_is_a_clear_error(bad: bytes) -> None:
    with pytest.raises(FragmentIndexError):
        unpack_fragments(bad)


def test_negative_size_is_refused() -> None:
    with pytest.raises(FragmentIndexError):
        pack_fragments([Fragment(0, -1, 0, 1)])


def test_rows_copied_from_the_json_schema_still_read() -> None:
    assert unpack_fragments(b"[[812, 500000, 0, 2000000], [500812, 7, 2000000, 40]]") == [
        Fragment(812, 500_000, 0, 2_000_000), Fragment(500_812, 7, 2_000_000, 40)]
    with pytest.raises(FragmentIndexError):
        unpack_fragments(b"[[1, 2")
