"""S3 over TLS against real SeaweedFS with a certificate made by the openssl CLI: the store
verifies the server (a private CA via `ca_file`), and refuses one it cannot verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.object_store import ObjectStoreError, S3Store
from harness.servers import SeaweedS3, self_signed_cert

pytestmark = pytest.mark.e2e  # real vigil processes / servers


def test_s3_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    server = SeaweedS3(tmp_path / "s3", tls=(cert, key))
    try:
        store = S3Store(server.https_endpoint, server.access_key, server.secret_key, server.bucket, secure=True, ca_file=cert)
        store.put_bytes("tls/probe.bin", b"over tls")
        assert store.get_range("tls/probe.bin") == b"over tls"
        untrusted = S3Store(server.https_endpoint, server.access_key, server.secret_key, server.bucket, secure=True)
        with pytest.raises(ObjectStoreError):
            untrusted.put_bytes("tls/other.bin", b"x")
    finally:
        server.stop()
