"""Camera URLs: the one redaction rule, credentials split out and put back, the scheme rule (shared
by the config file and the API), and FFmpeg's matching protocol whitelist."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.camera_url import check_camera_url, ffmpeg_protocols, join_credentials, split_credentials
from core.redact import redact_url, scrub_text
from core.settings import ConfigError, load_settings

S = "Sx-9_pw"
FORMS = [
    f"rtsp://admin:{S}@10.0.0.7:554/Streaming/Channels/101",
    f"rtsp://10.0.0.7/user=admin&password={S}&channel=1&stream=0.sdp",
    f"rtsp://10.0.0.7/live;password={S};channel=1",
    f"rtsp://10.0.0.7/x?token={S}&a=1",
    f"rtsp://10.0.0.7/x#pass={S}",
    f"rtsp://10.0.0.7/x?pwd%3D{S}",
    f"rtsp://admin:{S}@10.0.0.7/cam;password={S}",
]


@pytest.mark.parametrize("url", FORMS)
def test_every_form_is_redacted_split_and_joined(url: str) -> None:
    assert S not in redact_url(url)
    assert S not in scrub_text(f"cannot open '{url}': 401 Unauthorized ({url})")
    split = split_credentials(url)
    assert S not in split.url and split.password == S
    assert join_credentials(split.url, split.username, split.password) == url


def test_user_info_with_awkward_characters() -> None:
    url = "rtsp://ad%40min:p%2Fa%3Ass@h/x"
    split = split_credentials(url)
    assert (split.url, split.username, split.password) == ("rtsp://h/x", "ad@min", "p/a:ss")
    assert join_credentials(split.url, split.username, split.password) == url
    assert "p/a:ss" not in scrub_text("rtsp://ad@min:p/a:ss@h/x failed")


def test_two_different_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="two different secrets"):
        split_credentials("rtsp://a:one@h/x?password=two")
    # a password given apart wins over the URL's
    assert split_credentials("rtsp://a:one@h/x", password="three").password == "three"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "/tmp/a.jpg", "concat:a|b", "tcp://h:1", "http://10.0.0.1/", "rtsp:///x", "rtsp://h/ x"]
)
def test_only_rtsp_by_default(url: str) -> None:
    with pytest.raises(ValueError):
        check_camera_url(url)


def test_protocol_whitelist_matches_the_scheme() -> None:
    assert ffmpeg_protocols("rtsp://h/x") == "rtsp,rtp,udp,tcp"
    assert "file" not in ffmpeg_protocols("rtsps://h/x") and "http" not in ffmpeg_protocols("rtsps://h/x")
    assert ffmpeg_protocols("/a/b.mp4") == "file"


def test_config_file_takes_the_api_rule(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cameras: [{id: a, url: 'file:///etc/passwd'}]\n")
    with pytest.raises(ConfigError, match=r"cameras\.0 \(a\)\.url: URL scheme 'file' is not allowed"):
        load_settings(cfg)
    cfg.write_text("security: {camera_url_schemes: [rtsp, file]}\ncameras: [{id: a, url: '/srv/clip.mp4'}]\n")
    assert load_settings(cfg).cameras[0].url == "/srv/clip.mp4"
    cfg.write_text("security: {camera_url_schemes: [gopher]}\n")
    with pytest.raises(ConfigError, match="unknown scheme"):
        load_settings(cfg)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("api: {auth: true}\ncameras: []\napi: {auth: false}\n")
    with pytest.raises(ConfigError, match="line 3.*duplicate key 'api'"):
        load_settings(cfg)
    cfg.write_text("cameras:\n  - {id: a, url: 'rtsp://h/x', id: b}\n")
    with pytest.raises(ConfigError, match="duplicate key 'id'"):
        load_settings(cfg)
