"""The camera-id rule, one home for the config file, the API and the object keys."""

from __future__ import annotations

import pytest

from core.ids import CAMERA_ID_RULE, check_camera_id
from core.settings import ConfigError, load_settings
from storage.keys import parse_segment_key, segment_key


@pytest.mark.parametrize("good", ["a", "cam-01", "simpang_lima-01", "0" * 64])
def test_good_ids_pass_everywhere(good: str) -> None:
    assert check_camera_id(good) == good
    assert load_settings(cameras=[{"id": good, "url": "rtsp://h/x"}]).cameras[0].id == good
    assert parse_segment_key(segment_key(good, 1_700_000_000_000_000)).camera == good


@pytest.mark.parametrize("bad", ["", "Cam", "-cam", "cam/1", "a" * 65, "cam\n", "cam 1"])
def test_bad_ids_are_refused_everywhere(bad: str) -> None:
    with pytest.raises(ValueError, match="camera id must be"):
        check_camera_id(bad)
    with pytest.raises(ConfigError, match="cameras.0.id"):
        load_settings(cameras=[{"id": bad, "url": "rtsp://h/x"}])
    with pytest.raises(ValueError):
        parse_segment_key(segment_key(bad, 1_700_000_000_000_000))
    assert "1-64" in CAMERA_ID_RULE
