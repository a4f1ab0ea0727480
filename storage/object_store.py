"""One object-store interface, two backends: a local directory (the embedded default) and
S3-compatible storage through the `minio` client (MinIO in production)."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Protocol

__all__ = [
    "LocalStore",
    "ObjectStore",
    "ObjectStoreError",
    "S3Store",
    "StoredObject",
    "open_store",
]


class ObjectStoreError(Exception):
    """The store could not do what was asked (down, refused, misconfigured); worth retrying."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path, content_type: str = "video/mp4") -> None: ...
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def get_range(self, key: str, offset: int = 0, length: int | None = None) -> bytes: ...
    def iter_range(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]: ...
    def stat(self, key: str) -> StoredObject | None: ...
    def delete(self, key: str) -> None: ...
    def delete_many(self, keys: Sequence[str]) -> None: ...
    def list(self, prefix: str = "") -> Iterator[StoredObject]: ...
    def presigned_get(self, key: str, expires_s: int = 300) -> str | None: ...
    def ping(self) -> None: ...


_CHUNK = 1 << 20


def _check_key(key: str) -> None:
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise ValueError(f"bad object key {key!r}")


class LocalStore:
    """Objects as files under a root; puts are atomic (temp file + fsync + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        _check_key(key)
        return self.root / key

    def _write(self, key: str, src: BinaryIO) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: Path, content_type: str = "video/mp4") -> None:
        try:
            with open(path, "rb") as src:
                self._write(key, src)
        except OSError as e:
            raise ObjectStoreError(f"local store: cannot write {key}: {e.strerror}") from e

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self._write(key, io.BytesIO(data))
        except OSError as e:
            raise ObjectStoreError(f"local store: cannot write {key}: {e.strerror}") from e

    def get_range(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return b"".join(self.iter_range(key, offset, length))

    def iter_range(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        try:
            f = open(self._path(key), "rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        with f:
            f.seek(offset)
            left = length if length is not None else -1
            while left != 0:
                chunk = f.read(_CHUNK if left < 0 else min(_CHUNK, left))
                if not chunk:
                    break
                if left > 0:
                    left -= len(chunk)
                yield chunk

    def stat(self, key: str) -> StoredObject | None:
        try:
            return StoredObject(key, self._path(key).stat().st_size)
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.delete(key)

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and not p.name.startswith(".put-"):
                key = p.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield StoredObject(key, p.stat().st_size)

    def presigned_get(self, key: str, expires_s: int = 300) -> str | None:
        return None

    def ping(self) -> None:
        if not self.root.is_dir():
            raise ObjectStoreError(f"local store root {self.root} is missing")


class S3Store:
    """S3-compatible storage via `minio`; every failure surfaces as `ObjectStoreError`."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str | None = "us-east-1",
        create_bucket: bool = True,
        ca_file: str | Path | None = None,
    ) -> None:
        import urllib3
        from minio import Minio

        # Short timeouts and no client-side retry storm: the uploader owns retries and backoff.
        # Over TLS the server's certificate is always verified: against `ca_file` when given (a
        # private CA), else the system's trust store.
        tls: dict[str, str] = {"cert_reqs": "CERT_REQUIRED"}
        if ca_file is not None:
            tls["ca_certs"] = str(ca_file)
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3.0, read=30.0),
            retries=urllib3.Retry(total=0, connect=0, read=0, redirect=0),
            maxsize=16,
            **(tls if secure else {}),
        )
        self.bucket = bucket
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region, http_client=http
        )
        self._create_bucket = create_bucket
        self._bucket_ready = False

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        if self._create_bucket and not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)
        self._bucket_ready = True

    def _call(self, what: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        from minio.error import S3Error

        try:
            self._ensure_bucket()
            return fn(*args, **kwargs)
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject"):
                raise KeyError(args[1] if len(args) > 1 else what) from None
            raise ObjectStoreError(f"s3 {what}: {e.code}: {e.message}") from e
        except KeyError:
            raise
        except Exception as e:  # urllib3 / socket errors: the store is down or unreachable
            raise ObjectStoreError(f"s3 {what}: {type(e).__name__}: {e}") from e

    def put_file(self, key: str, path: Path, content_type: str = "video/mp4") -> None:
        _check_key(key)
        self._call("put", self.client.fput_object, self.bucket, key, str(path), content_type=content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        _check_key(key)
        self._call(
            "put", self.client.put_object, self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
        )

    def get_range(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return b"".join(self.iter_range(key, offset, length))

    def iter_range(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        if length == 0:
            return
        resp = self._call("get", self.client.get_object, self.bucket, key, offset=offset, length=length or 0)
        try:
            yield from resp.stream(_CHUNK)
        except Exception as e:
            raise ObjectStoreError(f"s3 get: {type(e).__name__}: {e}") from e
        finally:
            resp.close()
            resp.release_conn()

    def stat(self, key: str) -> StoredObject | None:
        try:
            st = self._call("stat", self.client.stat_object, self.bucket, key)
        except KeyError:
            return None
        return StoredObject(key, int(st.size or 0))

    def delete(self, key: str) -> None:
        self._call("delete", self.client.remove_object, self.bucket, key)

    def delete_many(self, keys: Sequence[str]) -> None:
        """Up to 1,000 keys in one DeleteObjects request (retention drops a city-day: 6.4 M keys);
        raises if any key was not deleted. Missing keys count as deleted."""
        from minio.deleteobjects import DeleteObject

        def run() -> list[object]:
            return list(self.client.remove_objects(self.bucket, [DeleteObject(k) for k in keys]))

        errors = self._call("delete", run)
        if errors:
            first = errors[0]
            raise ObjectStoreError(f"s3 delete: {len(errors)} of {len(keys)} keys not deleted "
                                   f"({getattr(first, 'code', '')}: {getattr(first, 'message', '')})")

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        objs = self._call("list", self.client.list_objects, self.bucket, prefix=prefix, recursive=True)
        try:
            for o in objs:
                yield StoredObject(o.object_name, int(o.size or 0))
        except Exception as e:
            raise ObjectStoreError(f"s3 list: {type(e).__name__}: {e}") from e

    def presigned_get(self, key: str, expires_s: int = 300) -> str | None:
        return self._call(
            "presign", self.client.presigned_get_object, self.bucket, key, expires=timedelta(seconds=expires_s)
        )

    def ping(self) -> None:
        self._bucket_ready = False
        self._call("ping", lambda: None)


def open_store(storage: "object") -> ObjectStore:
    """Build the configured backend from `Settings.storage`."""
    backend = getattr(storage, "backend")
    if backend == "local":
        return LocalStore(Path(getattr(storage, "path")))
    s3 = getattr(storage, "s3")
    return S3Store(
        s3.endpoint, s3.access_key, s3.secret_key, s3.bucket, secure=s3.secure, region=s3.region, ca_file=s3.ca_file
    )
