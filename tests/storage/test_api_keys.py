"""storage.api_keys: keys stored hashed and checked in constant time, roles, audit log, server secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.roles import ROLES, role_allows
from storage.api_keys import create_key, get_key, list_keys, revoke_key, verify_key
from storage.audit_log import add_audit, list_audit
from storage.server_secrets import server_secret
from storage.catalog import Catalog


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")


def test_key_round_trip_and_only_the_hash_is_stored(catalog: Catalog, tmp_path: Path) -> None:
    key = create_key(catalog, "investigator", "alice", now_us=123)
    assert key.startswith("vgl_")
    info = verify_key(catalog, key)
    assert info is not None
    assert (info.name, info.role, info.created_us, info.revoked) == ("alice", "investigator", 123, False)
    secret = key.split("_", 2)[2]
    catalog.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("catalog.db*"))
    assert secret.encode() not in raw
    assert info.id.encode() in raw


def test_wrong_malformed_and_revoked_keys_fail(catalog: Catalog) -> None:
    key = create_key(catalog, "viewer", "wall")
    key_id = key.split("_")[1]
    assert verify_key(catalog, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert verify_key(catalog, "vgl_000000000000_" + "x" * 43) is None  # unknown id
    for bad in ("", "nonsense", key + " ", key.replace("vgl_", "vgk_"), "vgl__" + "x" * 43):
        assert verify_key(catalog, bad) is None
    assert revoke_key(catalog, key_id)
    assert verify_key(catalog, key) is None
    assert get_key(catalog, key_id).revoked  # type: ignore[union-attr]
    assert not revoke_key(catalog, "ffffffffffff")


def test_create_key_validates(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="role"):
        create_key(catalog, "root", "x")
    with pytest.raises(ValueError, match="name"):
        create_key(catalog, "viewer", "  ")
    a, b = create_key(catalog, "viewer", "a"), create_key(catalog, "admin", "b")
    assert a != b
    assert [k.name for k in list_keys(catalog)] == ["a", "b"]


def test_roles_are_ordered() -> None:
    assert ROLES == ("viewer", "investigator", "admin")
    assert role_allows("admin", "viewer") and role_allows("investigator", "investigator")
    assert not role_allows("viewer", "investigator") and not role_allows("investigator", "admin")
    assert not role_allows("root", "viewer")


def test_audit_log(catalog: Catalog) -> None:
    key = verify_key(catalog, create_key(catalog, "investigator", "bob"))
    assert key is not None
    first = add_audit(
        catalog,
        "clip.export",
        key=key,
        at_us=10,
        camera_id="cam1",
        start_us=1,
        end_us=2,
        sha256="ab" * 32,
        bytes=99,
        detail={"frames": 50},
    )
    add_audit(catalog, "playback.view", key=key, at_us=11, camera_id="cam2")
    add_audit(catalog, "camera.delete", at_us=12, camera_id="cam1")
    rows = list_audit(catalog)
    assert [r.action for r in rows] == ["clip.export", "playback.view", "camera.delete"]
    e = rows[0]
    assert (e.id, e.key_id, e.key_name, e.camera_id, e.sha256, e.bytes, e.detail) == (
        first,
        key.id,
        "bob",
        "cam1",
        "ab" * 32,
        99,
        {"frames": 50},
    )
    assert rows[2].key_id is None
    assert [r.action for r in list_audit(catalog, camera_id="cam1")] == ["clip.export", "camera.delete"]
    assert [r.action for r in list_audit(catalog, action="playback.view")] == ["playback.view"]
    assert [r.id for r in list_audit(catalog, since=first, limit=1)] == [first + 1]


def test_server_secret_is_made_once_and_shared(catalog: Catalog, tmp_path: Path) -> None:
    s1 = server_secret(catalog)
    assert len(s1) == 32
    assert server_secret(catalog) == s1
    other = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")  # another node, same catalog
    assert server_secret(other) == s1
    assert server_secret(other, "another") != s1


def test_key_rotation_reseals_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`vigil secrets rotate` after putting a new key first: the old key alone opens nothing."""
    monkeypatch.delenv("VIGIL_SECURITY__KEY")  # the key file, as on a node
    from storage.catalog import Camera
    from storage.sealing import SealError, Sealer, new_key
    from vigil.cli import main

    old, new = new_key(), new_key()
    url = f"sqlite:///{tmp_path / 'c.db'}"
    cat = Catalog(url, sealer=Sealer.from_text(old))
    cat.upsert_camera(Camera(id="c1", url="rtsp://u:Old-pw@h/x"), 1)
    secret = server_secret(cat)
    cfg = tmp_path / "v.yaml"
    (tmp_path / "k").write_text(f"{new}\n{old}\n")
    cfg.write_text(f"catalog: '{url}'\nsecurity: {{key_file: {tmp_path / 'k'}}}\n")
    assert main(["secrets", "rotate", "--config", str(cfg)]) == 0
    fresh = Catalog(url, sealer=Sealer.from_text(new))
    assert fresh.get_camera("c1", unseal=True).source_url == "rtsp://u:Old-pw@h/x"  # type: ignore[union-attr]
    assert server_secret(fresh) == secret
    with pytest.raises(SealError):
        Sealer.from_text(old).unseal(fresh.get_camera("c1").password_sealed or "")  # type: ignore[union-attr]


def test_rows_stored_in_clear_are_split_and_sealed(tmp_path: Path) -> None:
    """What an older version stored (the URL with its password, the signing secret in hex) is
    sealed by the next start's `seal_credentials` / first `server_secret` read."""
    import sqlalchemy as sa

    from storage.catalog import cameras, server_secrets

    cat = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    with cat.engine.begin() as c:
        c.execute(sa.insert(cameras).values(id="old", url="rtsp://u:Clear-pw@h/x;password=Clear-pw", name="",
                                            transport="tcp", tags={}, enabled=True, options={}, updated_us=5))
        c.execute(sa.insert(server_secrets).values(name="url-signing", value="ab" * 32, created_us=1))
    assert cat.seal_credentials() == 1 and cat.seal_credentials() == 0
    assert server_secret(cat) == bytes.fromhex("ab" * 32)
    with cat.engine.connect() as c:
        rows = [tuple(r) for r in c.execute(sa.select(cameras.c.url, cameras.c.password_sealed, cameras.c.updated_us))]
        secret_row = c.execute(sa.select(server_secrets.c.value)).scalar_one()
    assert rows[0][0] == "rtsp://h/x;password={password}" and "Clear-pw" not in str(rows) and rows[0][2] == 5
    assert secret_row.startswith("fernet:")
    assert cat.get_camera("old", unseal=True).source_url == "rtsp://u:Clear-pw@h/x;password=Clear-pw"  # type: ignore[union-attr]
