"""Evidence signing keys published in the catalog: two apps on one catalog are two nodes of a
cluster; node B lists node A's key, a bundle made on A verifies with B's config (`vigil verify`)
and with the stock `openssl` against the PEM B serves; after A rotates, its old key is listed
retired and the old bundle still verifies; keys a node had published only in its own directory
(before the catalog held them) are imported when it starts. On SQLite and PostgreSQL, a real
shared object store (a directory both apps use) and real recordings."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from evidence.signing_keys import SigningKeys, key_path
from harness.recorded import RunSpec, make_recording
from storage.catalog import Catalog, audit
from storage.migrate import upgrade
from storage.object_store import LocalStore
from tests.api.conftest import T0, ApiEnv, export_incident, make_env
from vigil.cli import main as vigil

def _config(env: ApiEnv, node_id: str) -> Path:
    p = env.workdir / "vigil.yaml"
    p.write_text(yaml.safe_dump({"catalog": env.catalog.url, "data_dir": str(env.workdir), "node_id": node_id}))
    return p


def _keys(c: TestClient, env: ApiEnv) -> dict[str, dict[str, object]]:
    r = c.get("/api/signing-keys", headers=env.auth("viewer"))
    assert r.status_code == 200, r.text
    return {k["fingerprint_sha256"]: k for k in r.json()["keys"]}


def test_every_node_verifies_every_nodes_bundles(catalog_url: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    store = LocalStore(tmp_path / "objects")  # one object store for the cluster
    a = make_env(tmp_path / "a", store=store, node_id="node-a", catalog=Catalog(catalog_url))
    b = make_env(tmp_path / "b", store=store, node_id="node-b", catalog=Catalog(catalog_url, create=False))
    a.add_camera("sk-cam")
    make_recording(store, a.catalog, "sk-cam", tmp_path / "media", [RunSpec(T0, 6, 2)])
    fp_a = SigningKeys(key_path(a.ctx.settings))
    with a.client() as ca, b.client() as cb:
        key_a, key_b = fp_a.current().fingerprint, SigningKeys(key_path(b.ctx.settings)).current().fingerprint
        assert key_a != key_b, "each node signs with its own key"
        listed = _keys(cb, b)
        assert set(listed) == {key_a, key_b}
        assert (listed[key_a]["node_id"], listed[key_a]["current"], listed[key_a]["retired_us"]) == ("node-a", True, None)
        assert (listed[key_b]["node_id"], listed[key_b]["current"]) == ("node-b", True)
        assert "PRIVATE" not in json.dumps(listed)

        job = export_incident(ca, a, ["sk-cam"])
        r = cb.get(f"/api/exports/{job['id']}/bundle.zip", headers=b.auth("investigator"))  # downloaded from B
        assert r.status_code == 200, r.text
    zpath, folder = tmp_path / "bundle.zip", tmp_path / "bundle"
    zpath.write_bytes(r.content)
    with zipfile.ZipFile(zpath) as z:
        z.extractall(folder)
    assert json.loads((folder / "manifest.json").read_bytes())["signing_key"]["fingerprint_sha256"] == key_a

    # the stock openssl, with the PEM node B serves for A's key (not the one inside the bundle)
    served = tmp_path / "served-a.pem"
    served.write_text(str(listed[key_a]["pem"]))
    sig = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(served), "-rawin",
                          "-in", "manifest.json", "-sigfile", "manifest.sig"], cwd=folder, capture_output=True, text=True)
    assert sig.returncode == 0 and "Signature Verified Successfully" in sig.stdout, sig
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(served), "-outform", "DER"], capture_output=True, check=True)
    assert hashlib.sha256(der.stdout).hexdigest() == key_a

    cfg_a, cfg_b = _config(a, "node-a"), _config(b, "node-b")
    capsys.readouterr()
    assert vigil(["verify", str(zpath), "--config", str(cfg_b)]) == 0  # B's config, A's bundle
    out = capsys.readouterr().out
    assert "published in the catalog by node 'node-a'" in out and "in use by node 'node-a' when the bundle was signed" in out, out

    assert vigil(["signing-key", "rotate", "--config", str(cfg_a)]) == 0
    new_a = fp_a.current().fingerprint
    assert new_a not in (key_a, key_b)
    with b.client() as cb:
        listed = _keys(cb, b)
    assert set(listed) == {key_a, key_b, new_a}
    assert listed[key_a]["current"] is False and listed[key_a]["node_id"] == "node-a"
    assert int(listed[key_a]["retired_us"]) == int(listed[new_a]["created_us"])  # type: ignore[call-overload]
    assert (listed[new_a]["node_id"], listed[new_a]["current"]) == ("node-a", True)
    assert listed[key_b]["current"] is True, "A's rotation leaves B's key alone"
    with a.catalog.engine.connect() as c:
        rot = c.execute(sa.select(audit.c.detail).where(audit.c.action == "signing_key.rotate")).scalars().all()
    assert [(d["old"], d["new"]) for d in rot] == [(key_a, new_a)]

    capsys.readouterr()
    assert vigil(["verify", str(zpath), "--config", str(cfg_b)]) == 0  # signed before the rotation: still good
    out = capsys.readouterr().out
    assert "retired" in out and "in use by node 'node-a' when the bundle was signed" in out, out
    assert vigil(["signing-key", "--config", str(cfg_b)]) == 0
    out = capsys.readouterr().out
    assert out.count("BEGIN PUBLIC KEY") == 3 and f"retired Ed25519 key, SHA-256 fingerprint {key_a}, node 'node-a'" in out

    old_url = f"sqlite:///{tmp_path / 'at-0013.db'}"  # a catalog no node of this version has started on
    upgrade(sa.create_engine(old_url), "0013")
    (tmp_path / "old.yaml").write_text(yaml.safe_dump({"catalog": old_url, "data_dir": str(tmp_path / "old")}))
    assert vigil(["verify", str(zpath), "--config", str(tmp_path / "old.yaml")]) == 1  # a message, not a traceback
    assert "the catalog publishes no keys (its schema predates migration 0014)" in capsys.readouterr().out
    a.catalog.close()
    b.catalog.close()


def test_keys_published_only_in_the_directory_are_imported_at_start(catalog_url: str, tmp_path: Path) -> None:
    """A node that rotated before the catalog held keys: both keys of its directory appear, the
    old one retired when its successor was made; a second start changes nothing."""
    catalog = Catalog(catalog_url)
    keydir = tmp_path / "old" / "signing"
    old = SigningKeys(keydir / "signing-key.pem")
    old.ensure(now_us=1_000_000)
    first, second = old.rotate(now_us=2_000_000)
    env = make_env(tmp_path / "old", node_id="node-old", catalog=catalog)
    with env.client() as c:
        listed = _keys(c, env)
    assert set(listed) == {first, second}
    assert (listed[first]["created_us"], listed[first]["retired_us"], listed[first]["current"]) == (1_000_000, 2_000_001, False)
    assert (listed[second]["created_us"], listed[second]["retired_us"], listed[second]["current"]) == (2_000_001, None, True)
    assert {k["node_id"] for k in listed.values()} == {"node-old"}
    with env.client() as c:
        assert _keys(c, env) == listed
    catalog.close()
