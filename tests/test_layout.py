"""The rooms' dependency direction, checked from the source: what each package may import.

Why a test: Python cannot make an import direction impossible to break (Moonfire NVR's crates
can), so the rule of docs/design/architecture.md is read off every module's imports here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# room -> the rooms it may import (besides itself and third-party packages)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "camserver": set(),
    "storage": {"core"},
    "ingest": {"core", "storage"},
    "playback": {"core", "storage"},
    "reports": {"core", "storage"},
    "evidence": {"core", "storage", "playback"},
    "api": {"core", "storage", "playback", "reports", "evidence"},
    "notify": {"core", "storage"},
    "vigil": {"core", "storage", "ingest", "playback", "reports", "evidence", "api", "notify", "camserver"},
    # the tests' and benchmarks' shared helpers: above every room, imported by none
    "harness": {"core", "storage", "ingest", "playback", "reports", "evidence", "api", "notify", "vigil", "camserver"},
}
ROOMS = set(ALLOWED)


def _imports(path: Path) -> set[str]:
    """Top-level names of every module `path` imports (absolute imports; the code uses no others)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_each_room_imports_only_the_rooms_below_it(room: str) -> None:
    bad = []
    for path in sorted((REPO / room).rglob("*.py")):
        for name in sorted(_imports(path) & ROOMS - {room} - ALLOWED[room]):
            bad.append(f"{path.relative_to(REPO)} imports {name}")
    assert not bad, "imports against the rooms' direction:\n" + "\n".join(bad)


def test_the_rule_catches_a_wrong_import(tmp_path: Path) -> None:
    """The reader itself: an `ingest` module importing `api` is found, in both import forms."""
    f = tmp_path / "m.py"
    f.write_text("import api.app\nfrom api.schemas import X\ndef f():\n    from playback import hls\n")
    assert _imports(f) == {"api", "playback"}
