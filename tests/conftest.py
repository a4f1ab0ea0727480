"""Shared fixtures: real servers (GStreamer RTSP, SeaweedFS S3) and generated clips."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.sealing import ENV_KEY, new_key
from harness.media import ClipInfo, make_clip
from harness.servers import SeaweedS3

# Catalogs the tests open in this process seal camera passwords with this key (storage/sealing.py);
# `vigil run` subprocesses (tests/vigilproc.py) go without it and use their own key file.
os.environ.setdefault(ENV_KEY, new_key())


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def clip_h264_30s(clip_dir: Path) -> ClipInfo:
    """30 s, H.264, GOP 2 s, no audio: the 'served file of known length'."""
    return make_clip(clip_dir / "h264-30s.mp4", 30.0, codec="h264", gop=50, width=320, height=240)


@pytest.fixture(scope="session")
def clip_hevc_aac(clip_dir: Path) -> ClipInfo:
    return make_clip(clip_dir / "hevc-aac-24s.mp4", 24.0, codec="hevc", gop=25, audio=True, width=320, height=240)


PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL (127.0.0.1:5432, trust auth), dropped after."""
    import uuid

    import sqlalchemy as sa

    name = f"vigil_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        # the session's end: nothing in it is read again, and after a whole run `weed mini` took
        # 12–20 s to exit on SIGTERM (the default wait is 20 s before SIGKILL)
        server.stop(timeout=3.0)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A catalog URL on each backend: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("pg_url"))
