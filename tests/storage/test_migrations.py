"""Alembic: an empty database and one at the first revision reach the same schema, on SQLite and
PostgreSQL, and that schema is exactly what storage/catalog.py declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage.catalog import Catalog, metadata
from storage.migrate import current_revision, head, upgrade


def shape(engine: sa.Engine) -> dict[str, object]:
    insp = sa.inspect(engine)
    out: dict[str, object] = {}
    for t in sorted(insp.get_table_names()):
        cols = sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t))
        idx = sorted((i["name"], tuple(i["column_names"])) for i in insp.get_indexes(t))
        out[t] = (cols, idx, insp.get_pk_constraint(t)["constrained_columns"])
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    first = str(request.getfixturevalue("pg_url"))
    second = str(request.getfixturevalue("pg_url_2"))
    return first, second


@pytest.fixture
def pg_url_2(pg_url: str) -> object:
    # a second fresh database: the pg_url fixture is per test, so make another by hand
    import uuid

    from tests.conftest import PG_ADMIN

    name = f"vigil_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_empty_and_first_revision_upgrade_to_the_same_schema(two_urls: tuple[str, str]) -> None:
    fresh_url, old_url = two_urls
    fresh = sa.create_engine(fresh_url)
    old = sa.create_engine(old_url)
    upgrade(fresh)
    upgrade(old, "0001")
    assert current_revision(old) == "0001"
    assert "leases" not in sa.inspect(old).get_table_names()
    with old.begin() as c:  # data written at the first revision survives the upgrade
        c.execute(
            sa.text("INSERT INTO cameras (id, name, url, transport, tags, enabled, options, updated_us) "
                    "VALUES ('cam', 'Cam', 'rtsp://h/x', 'tcp', '{}', true, '{}', 1)")
        )
    Catalog(old_url)  # what a node does at start
    assert current_revision(fresh) == current_revision(old) == head()
    assert shape(fresh) == shape(old)
    for eng in (fresh, old):
        with eng.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert [c.id for c in Catalog(old_url, create=False).list_cameras()] == ["cam"]
    fresh.dispose()
    old.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0013_keeps_exports_made_before_with_no_object(backend: str, request: pytest.FixtureRequest,
                                                       tmp_path: Path) -> None:
    """An export done at 0012 (its zip on its node only) reads at head as local: no key, no error."""
    url = f"sqlite:///{tmp_path / 'e.db'}" if backend == "sqlite" else str(request.getfixturevalue("pg_url"))
    eng = sa.create_engine(url)
    upgrade(eng, "0012")
    with eng.begin() as c:
        c.execute(sa.text("INSERT INTO exports (id, incident_id, state, progress, path, error, node_id, created_us) "
                          "VALUES ('e1', 1, 'done', 1.0, '/data/exports/e1/bundle.zip', '', 'a', 1)"))
    upgrade(eng)
    assert current_revision(eng) == head()
    with eng.connect() as c:
        row = c.execute(sa.text("SELECT path, node_id, object_key, store_error FROM exports")).one()
        assert tuple(row) == ("/data/exports/e1/bundle.zip", "a", None, None)
        assert compare_metadata(MigrationContext.configure(c), metadata) == []
    eng.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0014_publishes_the_keys_of_a_node_upgraded_from_0013(backend: str, request: pytest.FixtureRequest,
                                                              tmp_path: Path) -> None:
    """A catalog at 0013 with an export, a node whose keys (one rotated) were published only in its
    directory: after the upgrade the export reads as before and the node's start puts both keys
    in the catalog, the old one retired when the new one was made."""
    from evidence.signing_keys import SigningKeys, publish_in

    url = f"sqlite:///{tmp_path / 'k.db'}" if backend == "sqlite" else str(request.getfixturevalue("pg_url"))
    eng = sa.create_engine(url)
    upgrade(eng, "0013")
    with eng.begin() as c:
        c.execute(sa.text("INSERT INTO exports (id, incident_id, state, progress, error, node_id, created_us, object_key) "
                          "VALUES ('e1', 1, 'done', 1.0, '', 'a', 1, '_exports/e1/bundle.zip')"))
    keys = SigningKeys(tmp_path / "signing" / "signing-key.pem")
    keys.ensure(now_us=10)
    old, new = keys.rotate(now_us=20)
    cat = Catalog(url)  # a node's start: the upgrade, then its keys
    assert current_revision(eng) == head() == "0014"
    assert publish_in(keys, cat, "a") == 2
    got = {k.fingerprint: (k.node_id, k.created_us, k.retired_us) for k in cat.published_signing_keys()}
    assert got == {old: ("a", 10, 21), new: ("a", 21, None)}
    assert [k.pem for k in cat.published_signing_keys()] == [k.pem for k in keys.public_keys()]
    with eng.connect() as c:
        assert c.execute(sa.text("SELECT object_key FROM exports")).scalar_one() == "_exports/e1/bundle.zip"
        assert compare_metadata(MigrationContext.configure(c), metadata) == []
    cat.close()
    eng.dispose()
