"""Weakest links over a real SQLite catalog: scores, order, grouping by tag, CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from reports.weakest_links import NO_FIGURES_SCORE, link_score, to_csv, weakest_links
from storage.catalog import Camera, Catalog, FeedStatus

HEALTHY = {"reconnects_per_hour": 0.0, "stalled_s": 0.0, "delivery_ratio": 1.0, "bitrate_ratio": 1.02,
           "jitter_ms": 3.0, "rtp_lost": None, "bitrate_kbps": 900.0}  # fmt: skip


def test_weakest_first_per_camera_and_per_uplink(tmp_path: Path) -> None:
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    figures = {
        "ok-1": HEALTHY,
        "ok-2": {**HEALTHY, "jitter_ms": 12.0},
        "lossy": {**HEALTHY, "rtp_lost": 250, "delivery_ratio": 0.9},  # 25 + 10 + 0.3
        "flapping": {**HEALTHY, "reconnects_per_hour": 30.0, "stalled_s": 360.0},  # 30 + 10 + 0.3
        "never": None,  # no figures: never connected since its node started
    }
    uplinks = {"ok-1": "up-a", "ok-2": "up-a", "lossy": "up-b", "flapping": "up-b"}
    for cid, n in figures.items():
        tags = {"uplink": uplinks[cid]} if cid in uplinks else {}
        cat.upsert_camera(Camera(id=cid, url=f"rtsp://u:secret@h/{cid}", tags=tags), 1)
        if n is not None:
            cat.put_status(FeedStatus(camera_id=cid, state="online", since_us=1, updated_us=1, figures={"network": n}))
    rows = weakest_links(cat)
    assert [r.key for r in rows] == ["never", "flapping", "lossy", "ok-2", "ok-1"]
    assert rows[0].score == NO_FIGURES_SCORE and rows[1].score == link_score(figures["flapping"]) == 40.3
    groups = weakest_links(cat, by="uplink")
    assert [(g.key, g.cameras, g.worst_camera) for g in groups] == [
        ("(none)", 1, "never"), ("up-b", 2, "flapping"), ("up-a", 2, "ok-2")
    ]
    assert groups[1].score == round((40.3 + 35.3) / 2, 2) and groups[1].rtp_lost == 250
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert table[1]["key"] == "flapping" and table[1]["tags"] == "uplink=up-b" and table[0]["rtp_lost"] == ""
    assert "secret" not in to_csv(rows)
    assert [r.key for r in weakest_links(cat, limit=2)] == ["never", "flapping"]
    cat.close()
