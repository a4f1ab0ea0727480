"""`vigil verify`: a bundle's signature, every digest, and (with the catalog) its audit entry.

Does what VERIFY.txt tells a person to do with OpenSSL and sha256sum, plus what they cannot:
that no file was added, that the signing key is one the service published (in the catalog, by
whichever node of the cluster signed: which node, and whether the key was that node's key in use
when the bundle was signed), and that the audit log holds this export (and still holds the chain
row the manifest anchors to). Works on the zip or on an unzipped folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature

from evidence.bundle import FIXED_FILES
from evidence.signing_keys import fingerprint, load_public_pem
from storage.catalog import Catalog, PublishedKey, audit

__all__ = ["VerifyReport", "verify_bundle"]


@dataclass(slots=True)
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Bundle:
    """The members of a zip or of an unzipped folder, by their path inside the bundle."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path) if path.is_file() else None

    def names(self) -> list[str]:
        if self.zip is not None:
            return [n for n in self.zip.namelist() if not n.endswith("/")]
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file())

    def open(self, name: str) -> IO[bytes]:
        if self.zip is not None:
            return self.zip.open(name)
        return open(self.path / name, "rb")

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def digest(self, name: str) -> tuple[str, int]:
        h, n = hashlib.sha256(), 0
        with self.open(name) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                n += len(chunk)
        return h.hexdigest(), n


def _sums(text: bytes) -> Iterator[tuple[str, str]]:
    for line in text.decode("utf-8").splitlines():
        sha, sep, name = line.partition("  ")
        if not sep or len(sha) != 64:
            raise ValueError(f"SHA256SUMS: malformed line {line[:80]!r}")
        yield sha, name


def verify_bundle(path: Path, *, trusted: list[str] | None = None, catalog: Catalog | None = None,
                  say: Callable[[str], None] | None = None) -> VerifyReport:
    """Check everything; `trusted` = PEM public keys the verifier already trusts (`--key`);
    `catalog` = the service's catalog (any node's config), for its published keys and the audit
    log. With either, the key must be in one of them."""
    rep = VerifyReport()
    ok = rep.checked.append

    def bad(msg: str) -> None:
        rep.problems.append(msg)
        if say:
            say(f"FAIL {msg}")

    try:
        b = _Bundle(Path(path))
        names = set(b.names())
        raw = b.read("manifest.json")
        sig = b.read("manifest.sig")
        pem = b.read("signing-key.pem")
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        bad(f"not a readable bundle: {e}")
        return rep
    try:
        key = load_public_pem(pem)
    except ValueError as e:
        bad(f"signing-key.pem: {e}")
        return rep
    try:
        rep.manifest = m = json.loads(raw)
    except ValueError as e:
        bad(f"manifest.json is not JSON: {e}")
        m = {}
    fp = fingerprint(key)
    if m and m.get("signing_key", {}).get("fingerprint_sha256") != fp:
        bad("signing-key.pem is not the key manifest.json names")
    if trusted is not None or catalog is not None:
        _check_key(fp, trusted, catalog, m, ok, bad)
    try:
        key.verify(sig, raw)
        ok("signature over manifest.json")
    except InvalidSignature:
        bad("manifest.sig is not a valid signature of manifest.json by signing-key.pem")
    if not m:
        return rep
    listed = {f["path"]: f for f in m.get("files", [])}
    try:
        sums_raw = b.read("SHA256SUMS")
        if hashlib.sha256(sums_raw).hexdigest() != m.get("checksums", {}).get("sha256"):
            bad("SHA256SUMS differs from the list the manifest signs")
        sums = dict((n, s) for s, n in _sums(sums_raw))
        if sums != {p: f["sha256"] for p, f in listed.items()}:
            bad("SHA256SUMS does not list exactly the manifest's files and digests")
    except (KeyError, ValueError, UnicodeDecodeError) as e:
        bad(f"SHA256SUMS: {e}")
    for name, f in listed.items():
        if name not in names:
            bad(f"{name}: missing")
            continue
        try:
            sha, size = b.digest(name)
        except (zipfile.BadZipFile, OSError) as e:
            bad(f"{name}: unreadable ({e})")
            continue
        if sha != f["sha256"] or size != f["bytes"]:
            bad(f"{name}: SHA-256 or size differs from the manifest")
        else:
            ok(f"{name}: {sha}")
    extra = names - set(listed) - set(FIXED_FILES)
    for name in sorted(extra):
        bad(f"{name}: not in the manifest")
    if catalog is not None:
        _check_audit(catalog, m, hashlib.sha256(raw).hexdigest(), ok, bad)
    return rep


def _check_key(fp: str, trusted: list[str] | None, catalog: Catalog | None, m: dict[str, Any],
               ok: Callable[[str], None], bad: Callable[[str], None]) -> None:
    """The key is one given to trust (`--key`) or one the catalog publishes (any node's)."""
    given = trusted is not None and fp in {fingerprint(load_public_pem(p.encode())) for p in trusted}
    if given:
        ok("signing key: the key given to trust")
    published, why = None, "is not one the service published"
    if catalog is not None:
        try:
            published = catalog.signing_key(fp)
        except sa.exc.DBAPIError:  # a catalog no node of this version has started on yet
            why = "cannot be checked: the catalog publishes no keys (its schema predates migration 0014)"
    if published is not None:
        _check_published(published, m, ok, bad)
    elif not given:
        bad(f"the signing key {fp[:16]}… {why}")


def _iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_published(k: PublishedKey, m: dict[str, Any], ok: Callable[[str], None], bad: Callable[[str], None]) -> None:
    """Which node published the key, and whether it was that node's key in use when the bundle was
    signed (`export.exported_at_us`, taken by the signing node's clock as it loaded the key): one
    retired before then was signed with by someone still holding a replaced private key."""
    node = m.get("export", {}).get("node_id")
    who = f"node {k.node_id!r}" if k.node_id else "the unnamed node"
    life = f"made {_iso(k.created_us)}" + (f", retired {_iso(k.retired_us)}" if k.retired_us is not None else ", in use")
    also = f" (the manifest names node {node!r}: a shared key file)" if node is not None and node != k.node_id else ""
    ok(f"signing key published in the catalog by {who}{also}; {life}")
    at = m.get("export", {}).get("exported_at_us")
    if not isinstance(at, int):
        bad("manifest.json has no export time (export.exported_at_us) to check the key's life against")
    elif k.current_at(at):
        ok(f"the key was in use by {who} when the bundle was signed ({_iso(at)})")
    else:
        bad(f"the key was not in use by {who} when the bundle was signed ({_iso(at)}; key {life})")


def _check_audit(catalog: Catalog, m: dict[str, Any], manifest_sha: str, ok: Callable[[str], None],
                 bad: Callable[[str], None]) -> None:
    eid = m.get("export", {}).get("id")
    with catalog.engine.connect() as c:
        rows = c.execute(sa.select(audit).where(audit.c.action == "export.complete", audit.c.sha256 == manifest_sha)).all()
        anchor = m.get("audit_chain_head", {})
        head = c.execute(sa.select(audit.c.row_sha256).where(audit.c.id == anchor.get("row_id"))).scalar_one_or_none()
    if not any((r.detail or {}).get("export_id") == eid for r in rows):
        bad(f"the audit log holds no completed export {eid} with this manifest")
    else:
        ok(f"audit log: export {eid} recorded")
    if anchor.get("row_id") and head != anchor.get("row_sha256"):
        bad(f"audit row {anchor.get('row_id')}, which the manifest anchors to, is gone or changed")
