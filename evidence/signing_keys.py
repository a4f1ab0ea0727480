"""The service's Ed25519 signing key: a file outside the catalog, rotatable, old public keys kept.

Why a file and not the catalog: a catalog dump (backups, a DBA's copy) must not carry the power to
sign evidence. The private key is PKCS#8 PEM, mode 0600, in a 0700 directory; every public key it
ever had stays published beside it (`published/{created_us}-{fingerprint}.pem`), so a bundle
signed before a rotation still verifies. The public keys are published in the catalog too
(`publish_in`: every node's, with its node and its creation and retirement times), so a bundle
made on any node of a cluster verifies against one place. The fingerprint is the SHA-256 of the
public key's DER SubjectPublicKeyInfo — what `openssl pkey -pubin -in key.pem -outform DER |
sha256sum` prints.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.settings import Settings
from storage.catalog import Catalog

__all__ = ["PublicKey", "SigningKey", "SigningKeys", "exports_path", "fingerprint", "key_path", "load_public_pem",
           "publish_in"]


def _spki(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(pub: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(_spki(pub)).hexdigest()


def load_public_pem(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError for anything else."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def _public_pem(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, slots=True)
class PublicKey:
    fingerprint: str
    pem: str
    created_us: int
    current: bool


@dataclass(frozen=True, slots=True)
class SigningKey:
    private: Ed25519PrivateKey
    fingerprint: str
    public_pem: str

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


class SigningKeys:
    """The key file at `path` and the published public keys in `path.parent / "published"`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.published = self.path.parent / "published"

    def _write_private(self, key: Ed25519PrivateKey, target: Path, *, exclusive: bool) -> None:
        data = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        fd = os.open(target, flags, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(target, 0o600)

    def _publish(self, pub: Ed25519PublicKey, now_us: int) -> None:
        self.published.mkdir(parents=True, exist_ok=True)
        fp = fingerprint(pub)
        if any(self.published.glob(f"*-{fp}.pem")):
            return
        tmp = self.published / f".{fp}.tmp"
        tmp.write_bytes(_public_pem(pub))
        tmp.rename(self.published / f"{now_us}-{fp}.pem")

    def ensure(self, now_us: int | None = None) -> bool:
        """Create the key if there is none (first start); True when one was made."""
        now_us = now_us if now_us is not None else int(time.time() * 1e6)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        made = False
        if not self.path.exists():
            try:
                self._write_private(Ed25519PrivateKey.generate(), self.path, exclusive=True)
                made = True
            except FileExistsError:  # another process made it first: use theirs
                pass
        self._publish(self.current().private.public_key(), now_us)
        return made

    def current(self) -> SigningKey:
        data = self.path.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{self.path}: not an Ed25519 private key")
        pub = key.public_key()
        return SigningKey(key, fingerprint(pub), _public_pem(pub).decode())

    def rotate(self, now_us: int | None = None) -> tuple[str, str]:
        """A new key replaces the current one; the old public key stays published.
        Returns (old fingerprint, new fingerprint)."""
        now_us = now_us if now_us is not None else int(time.time() * 1e6)
        self.ensure(now_us)
        old = self.current().fingerprint
        new = Ed25519PrivateKey.generate()
        tmp = self.path.with_name(self.path.name + ".new")
        tmp.unlink(missing_ok=True)
        self._write_private(new, tmp, exclusive=True)
        self._publish(new.public_key(), now_us + 1)
        os.replace(tmp, self.path)
        return old, fingerprint(new.public_key())

    def public_keys(self) -> list[PublicKey]:
        """Every key this service has signed with, oldest first; `current` marks the one in use."""
        cur = self.current().fingerprint if self.path.exists() else None
        out = []
        for p in sorted(self.published.glob("*.pem"), key=lambda p: int(p.name.split("-", 1)[0])):
            created, fp = p.stem.split("-", 1)
            out.append(PublicKey(fp, p.read_text(), int(created), fp == cur))
        return out


def key_path(settings: Settings) -> Path:
    """Where the configured service keeps its private signing key."""
    return settings.evidence.signing_key_path or Path(settings.data_dir) / "signing" / "signing-key.pem"


def exports_path(settings: Settings) -> Path:
    return settings.evidence.exports_path or Path(settings.data_dir) / "exports"


def publish_in(keys: SigningKeys, catalog: Catalog, node_id: str) -> int:
    """Publish every public key of this node's key directory in the catalog; returns how many were
    not there yet. Each key but the current one is retired at its successor's creation (the
    rotation that replaced it), so keys published in the directory before the catalog had them
    arrive with their history. Idempotent: every start of a node calls it."""
    cur = keys.current().fingerprint if keys.path.exists() else None
    listed = keys.public_keys()
    added = 0
    for i, k in enumerate(listed):
        retired = None if k.fingerprint == cur else (listed[i + 1].created_us if i + 1 < len(listed) else k.created_us)
        added += catalog.publish_signing_key(k.fingerprint, k.pem, node_id, k.created_us, retired)
    if cur is not None:
        catalog.retire_other_keys_of(node_id, cur, next(k.created_us for k in listed if k.fingerprint == cur))
    return added
