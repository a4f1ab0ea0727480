from pathlib import Path

import pytest

from vigil.cli import main
from core.settings import ConfigError, load_settings


def test_yaml_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "spool: {path: /tmp/x, max_bytes: 2GiB}\nrecording: {segment_seconds: 10}\n"
        "cameras:\n  - {id: cam-1, url: 'rtsp://u:p@h/s', tags: {district: north}}\n"
    )
    monkeypatch.setenv("VIGIL_RECORDING__SEGMENT_SECONDS", "30")
    s = load_settings(cfg)
    assert s.spool.max_bytes == 2 * 1024**3
    assert s.recording.segment_seconds == 30
    assert s.cameras[0].tags == {"district": "north"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("storage: {backend: ftp}", "storage.backend"),
        ("recording: {segment_seconds: 1}", "recording.segment_seconds"),
        ("spool: {max_bytes: lots}", "spool.max_bytes"),
        ("cameras: [{id: 'Bad Id', url: x}]", "cameras.0.id"),
        ("cameras: [{id: a}]", "cameras.0.url"),
        ("cameras: [{id: a, url: 'rtsp://h/x', health: {freeze_after_s: -1}}]",
         "cameras.0.health.freeze_after_s: Input should be greater than 0"),
        ("cameras: [{id: a, url: 'rtsp://h/x', health: {black_fraction: 2}}]", "cameras.0.health.black_fraction"),
        ("cameras: [{id: a, url: 'rtsp://h/x', retention_days: 0}]", "cameras.0.retention_days"),
        ("cameras: [{id: a, url: 'not a url'}]", "cameras.0.url: expected a URL"),
        ("cameras: [{id: a, url: 'rtsp://h/x', tags: {'bad key!': x}}]", "cameras.0.tags"),
        ("workers: {watched_read_coalesce_s: -0.1}", "workers.watched_read_coalesce_s: Input should be greater than or equal to 0"),
        ("workers: {read_coalesce_s: 0.2, watched_read_coalesce_s: 0.5}",
         "workers: watched_read_coalesce_s (0.5 s) must not exceed read_coalesce_s (0.2 s)"),
        ("nonsense: 1", "nonsense: unknown key"),
        ("storage: [1, 2", "not valid YAML at line"),
        ("- just a list", "top level must be a mapping"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert expected in str(e.value)


def test_cli_prints_one_clear_line_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("workers: {processes: 0}\n")
    assert main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vigil: config error:") and "workers.processes" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_bad_camera_health_setting_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same rule as the API's 422: the process never starts with a value its worker would refuse."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("cameras:\n  - {id: gate, url: 'rtsp://u:secret@h/s', health: {freeze_after_s: -1}}\n")
    assert main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vigil: config error: {cfg}: cameras.0.health.freeze_after_s: Input should be greater than 0"


def test_the_watched_read_pause_is_at_most_the_unwatched_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default: the unwatched pause, whatever it is set to (wall tiles take the bursts); 0 to read
    every watched camera frame by frame; up to the unwatched pause, from the file or the
    environment; a larger one is refused in one line naming both keys."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("workers: {read_coalesce_s: 0.2}\n")
    assert load_settings(cfg).workers.watched_pause_s == 0.2
    cfg.write_text("workers: {read_coalesce_s: 0.1}\n")
    assert load_settings(cfg).workers.watched_pause_s == 0.1
    cfg.write_text("workers: {read_coalesce_s: 0.2, watched_read_coalesce_s: 0}\n")
    assert load_settings(cfg).workers.watched_pause_s == 0
    cfg.write_text("workers: {read_coalesce_s: 0.2}\n")
    monkeypatch.setenv("VIGIL_WORKERS__WATCHED_READ_COALESCE_S", "0.2")
    assert load_settings(cfg).workers.watched_pause_s == 0.2
    cfg.write_text("workers: {read_coalesce_s: 0}\n")  # reads never coalesced: none while watched either
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert str(e.value) == (f"{cfg}: workers: watched_read_coalesce_s (0.2 s) must not exceed read_coalesce_s (0 s): "
                            "a watched camera is read at least as often")
