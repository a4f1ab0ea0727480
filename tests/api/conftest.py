"""Fixtures for the API tests (the environment itself is harness/api_env.py): a fresh `ApiEnv` per
test, and a session-wide check that no response carried the cameras' password.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from harness.api_env import (  # noqa: F401 - re-exported for the tests here
    BODIES_SEEN, CAMERA_PASSWORD, CAMERA_USER, LEAKS, ROLES, T0, ApiEnv, Leak, LeakWatch, camera_url, make_env, serve,
)
from harness.recorded import Recording, RunSpec, make_recording, us
from harness.servers import SeaweedS3
from storage.object_store import S3Store


@pytest.fixture(scope="session", autouse=True)
def _no_password_in_any_response() -> Iterator[None]:
    yield
    assert not LEAKS, f"the camera password appeared in responses: {LEAKS[:5]}"


@pytest.fixture
def env(tmp_path: Path) -> ApiEnv:
    return make_env(tmp_path / "env")


@pytest.fixture
def client(env: ApiEnv) -> Iterator[TestClient]:
    with env.client() as c:
        yield c


# ---- evidence -----------------------------------------------------------------------------------

EXPORT_WINDOW = {"start": "2024-05-01T10:00:01Z", "end": "2024-05-01T10:00:05Z"}


def export_incident(c: TestClient, env: ApiEnv, cameras: list[str]) -> dict[str, object]:
    """An incident over `EXPORT_WINDOW` of `cameras`, exported; the finished job (asserted done)."""
    from harness.vigilproc import wait_until

    h = env.auth("investigator")
    inc = c.post("/api/incidents", headers=h, json={"name": "store", **EXPORT_WINDOW, "cameras": cameras})
    assert inc.status_code == 201, inc.text
    eid = c.post(f"/api/incidents/{inc.json()['id']}/exports", headers=h).json()["id"]
    job = wait_until(lambda: (j := c.get(f"/api/exports/{eid}", headers=h).json())["state"] in ("done", "failed") and j,
                     60, 0.05, "the export")
    assert job["state"] == "done", job
    return job  # type: ignore[no-any-return]


# ---- a recorded camera in real S3 ---------------------------------------------------------------


@dataclass
class RecordedEnv:
    env: ApiEnv
    rec: Recording
    base_url: str
    camera_id: str = "cam1"

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)


@pytest.fixture(scope="session")
def s3_store(s3: SeaweedS3) -> S3Store:
    return S3Store(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory, s3_store: S3Store) -> Iterator[RecordedEnv]:
    """Camera `cam1` with two runs in SeaweedFS: [T0, T0+12 s) in 4 segments of 3 one-second GOPs,
    a gap, then [T0+20 s, T0+28 s) in 4 segments of 2 GOPs; served by uvicorn."""
    work = tmp_path_factory.mktemp("recorded")
    env = make_env(work / "env", store=s3_store)
    env.add_camera("cam1")
    env.add_camera("empty")
    rec = make_recording(
        s3_store, env.catalog, "cam1", work / "media", [RunSpec(T0, 12, 3), RunSpec(T0 + us(20), 8, 2)]
    )
    with serve(env.app) as base:
        yield RecordedEnv(env=env, rec=rec, base_url=base)
