"""The audit log's hash chain on SQLite and PostgreSQL: concurrent writers never fork it, and
`vigil audit verify` names an edited, a deleted and an inserted row."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from storage.audit_log import GENESIS, add_audit, chain_head, list_audit, row_digest, verify_chain
from storage.catalog import Catalog, audit
from vigil.cli import main as vigil



def _config(tmp_path: Path, url: str) -> str:
    p = tmp_path / "vigil.yaml"
    p.write_text(yaml.safe_dump({"catalog": url, "data_dir": str(tmp_path)}))
    return str(p)


def test_concurrent_writers_make_one_chain(catalog_url: str) -> None:
    """8 threads, each its own connection, 25 rows each: every row links to the one before it."""
    cat = Catalog(catalog_url)
    start = threading.Barrier(8)

    def write(n: int) -> None:
        start.wait()
        for i in range(25):
            add_audit(cat, "playback.view", camera_id=f"cam{n}", detail={"i": i, "thread": n})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = list_audit(cat, limit=1000)
    assert len(rows) == 200
    prevs = [r.prev_sha256 for r in rows]
    assert len(set(prevs)) == 200, "two rows chained onto the same predecessor: the chain forked"
    assert prevs[0] == GENESIS
    for a, b in zip(rows, rows[1:]):
        assert b.prev_sha256 == a.row_sha256
    rep = verify_chain(cat)
    assert rep.ok and rep.rows == 200 and (rep.head_id, rep.head_sha256) == chain_head(cat)


def test_edited_deleted_and_inserted_rows_are_named(catalog_url: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cat = Catalog(catalog_url)
    ids = [add_audit(cat, "clip.export", camera_id="gate", sha256="ab" * 32, bytes=1000 + i,
                     detail={"frames": 250, "segments": [f"k{i}"]}) for i in range(6)]
    cfg = _config(tmp_path, catalog_url)
    assert vigil(["audit", "verify", "--config", cfg]) == 0
    assert "audit log intact: 6 rows" in capsys.readouterr().out

    # an edited row: the digest of row 3 no longer matches its content
    with cat.engine.begin() as c:
        c.execute(sa.update(audit).where(audit.c.id == ids[2]).values(bytes=999))
    rep = verify_chain(cat)
    assert [(p.row_id, p.kind) for p in rep.problems] == [(ids[2], "edited")]
    assert vigil(["audit", "verify", "--config", cfg]) == 1
    out = capsys.readouterr().out
    assert f"row {ids[2]} (clip.export) was edited" in out and "NOT intact" in out
    with cat.engine.begin() as c:
        c.execute(sa.update(audit).where(audit.c.id == ids[2]).values(bytes=1002))
    assert verify_chain(cat).ok

    # a deleted row: the row after it no longer follows the row before it
    with cat.engine.begin() as c:
        c.execute(sa.delete(audit).where(audit.c.id == ids[3]))
    rep = verify_chain(cat)
    assert [(p.row_id, p.kind) for p in rep.problems] == [(ids[4], "broken-link")]
    assert f"row {ids[4]} does not follow row {ids[2]}" in rep.problems[0].message

    # an inserted row, even one whose own digest is made right, breaks the link after it
    cat2 = Catalog(f"sqlite:///{tmp_path / 'fresh.db'}") if catalog_url.startswith("sqlite") else cat
    if cat2 is cat:
        with cat.engine.begin() as c:
            c.execute(sa.delete(audit))
    ids = [add_audit(cat2, "playback.view", camera_id="gate") for _ in range(4)]
    with cat2.engine.connect() as c:
        prev = c.execute(sa.select(audit.c.row_sha256).where(audit.c.id == ids[1])).scalar_one()
    forged = {"id": ids[1] + 1000, "at_us": 1, "key_id": None, "key_name": "mallory", "action": "playback.view",
              "camera_id": "gate", "start_us": None, "end_us": None, "sha256": None, "bytes": None, "detail": {}}
    # slipped in between rows 2 and 3 by id: take row 3's id for it and move row 3 to the end
    with cat2.engine.begin() as c:
        row3 = dict(c.execute(sa.select(audit).where(audit.c.id == ids[2])).one()._mapping)
        c.execute(sa.delete(audit).where(audit.c.id == ids[2]))
        forged["id"] = ids[2]
        c.execute(sa.insert(audit).values(**forged, prev_sha256=prev, row_sha256=row_digest(forged, prev)))
        c.execute(sa.insert(audit).values(**{**row3, "id": ids[3] + 1}))
    rep = verify_chain(cat2)
    kinds = {(p.row_id, p.kind) for p in rep.problems}
    assert (ids[3], "broken-link") in kinds, rep.problems
    assert not verify_chain(cat2).ok


def test_anchors_catch_a_truncated_tail(tmp_path: Path) -> None:
    """Deleting the newest rows leaves a valid chain; a digest kept elsewhere (a signed export
    manifest holds the head at export time) shows it."""
    cat = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    for _ in range(3):
        add_audit(cat, "playback.view")
    head = chain_head(cat)
    with cat.engine.begin() as c:
        c.execute(sa.delete(audit).where(audit.c.id == head[0]))
    assert verify_chain(cat).ok
    rep = verify_chain(cat, anchors={head[0]: head[1]})
    assert [p.kind for p in rep.problems] == ["missing-anchor"]


def test_upgrade_chains_the_rows_already_there(tmp_path: Path) -> None:
    from storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    upgrade(engine, "0002")
    with engine.begin() as c:
        for i in range(3):
            c.execute(sa.text("INSERT INTO audit (at_us, action, detail) VALUES (:t, 'clip.export', :d)"),
                      {"t": 1000 + i, "d": f'{{"frames": {i}}}'})
    engine.dispose()
    cat = Catalog(url)  # upgrades to head
    rep = verify_chain(cat)
    assert rep.ok and rep.rows == 3 and rep.unchained_before == 0
    add_audit(cat, "playback.view")
    rows = list_audit(cat)
    assert rows[3].prev_sha256 == rows[2].row_sha256 and verify_chain(cat).ok
