"""Secrets at rest: camera passwords and the URL-signing secret are sealed in the catalog with a
key kept outside it.

Why: whoever reads `catalog.db` (a backup, a copied file, a PostgreSQL dump) must not get the
cameras' passwords, nor the secret from which playback URLs are signed. Fernet (AES-128-CBC +
HMAC-SHA256, from the `cryptography` package) seals each value; a sealed value is stored as
`fernet:<token>`.

The key, in order: `security.key` (or the environment variable `VIGIL_SECURITY__KEY`), else the
file `security.key_file` (default `<data_dir>/secret.key`, made 0600 on first start). Several keys
separated by commas or lines: the first seals, every one unseals — rotation is "put a new key
first, run `vigil secrets rotate`, drop the old key" (docs/design/security.md).
"""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.settings import Settings

__all__ = ["PREFIX", "SealError", "Sealer", "key_file_sealer", "load_sealer", "new_key"]

log = logging.getLogger("vigil.sealing")

PREFIX = "fernet:"
ENV_KEY = "VIGIL_SECURITY__KEY"


class SealError(Exception):
    """A value cannot be sealed or unsealed: no key, or not the key it was sealed with."""


def new_key() -> str:
    return Fernet.generate_key().decode()


class Sealer:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SealError("no key given")
        try:
            fernets = [Fernet(k.encode()) for k in keys]
            self._fernet, self._first = MultiFernet(fernets), fernets[0]
        except (ValueError, TypeError):
            raise SealError("a secrets key must be 32 url-safe base64-encoded bytes (make one: vigil secrets new-key)") from None
        self.key_count = len(keys)

    @classmethod
    def from_text(cls, text: str) -> "Sealer":
        return cls([k for k in re.split(r"[\s,]+", text.strip()) if k])

    @classmethod
    def from_env(cls) -> "Sealer | None":
        text = os.environ.get(ENV_KEY, "")
        return cls.from_text(text) if text.strip() else None

    def seal(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def unseal(self, stored: str) -> str:
        """The value of a sealed string; a string without the prefix is legacy plain text."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SealError("sealed with a key this node does not have (see security.key_file)") from None

    def is_current(self, stored: str) -> bool:
        """Sealed with the first key (nothing to reseal after a rotation)."""
        if not stored.startswith(PREFIX):
            return False
        try:
            self._first.decrypt(stored[len(PREFIX) :].encode())
        except InvalidToken:
            return False
        return True

    def reseal(self, stored: str) -> str:
        """Sealed again with the first key (after a rotation)."""
        return self.seal(self.unseal(stored))


def _read_key_file(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("secrets key file %s is readable by others (mode %o): chmod 600 it", path, mode)
    return path.read_text()


def load_sealer(settings: Settings, *, create: bool = True) -> Sealer:
    """The node's sealer from its settings (see the module docstring); with `create`, a missing
    key file is made (0600) with a new key."""
    sec = settings.security
    if sec.key:
        return Sealer.from_text(sec.key)
    return key_file_sealer(Path(sec.key_file) if sec.key_file else Path(settings.data_dir) / "secret.key", create=create)


def key_file_sealer(path: Path, *, create: bool = True) -> Sealer:
    """The sealer of a key file; with `create`, a missing file is made (0600) with a new key."""
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "w") as f:
                f.write(new_key() + "\n")
            log.info("made a new secrets key in %s: back it up, the catalog's credentials need it", path)
    try:
        return Sealer.from_text(_read_key_file(path))
    except FileNotFoundError:
        raise SealError(f"no secrets key: {path} does not exist (set security.key_file or {ENV_KEY})") from None
