import pytest

from storage.keys import parse_segment_key, segment_key


@pytest.mark.parametrize("us", [0, 1_764_000_000_123_456, 1_764_028_799_999_999, 4_102_444_800_000_001])
def test_round_trip(us: int) -> None:
    key = segment_key("simpang-lima-01", us)
    back = parse_segment_key(key)
    assert back.camera == "simpang-lima-01" and back.start_us == us


def test_layout_is_browsable_utc() -> None:
    # 2025-11-24 23:59:59.5 UTC
    assert segment_key("cam", 1_764_028_799_500_000) == "cam/2025/11/24/23/20251124T235959.500000Z.mp4"


@pytest.mark.parametrize(
    "bad", ["cam/2025/11/24/22/20251124T235959.500000Z.mp4", "../x.mp4", "cam/20251124T235959.500000Z.mp4"]
)
def test_rejects_keys_that_do_not_round_trip(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_segment_key(bad)
