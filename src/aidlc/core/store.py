"""Object stores: immutable blobs of ciphertext under relative keys, in a folder or in S3.

A store never sees plaintext or keys (`core.crypto` encrypts before a byte reaches it). Writes
are atomic and write-once: an object becomes visible complete or not at all, and a second write
to the same key is a `Conflict`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from aidlc.core.files import fsync_dir, make_private_dirs
from aidlc.errors import ConfigError, Conflict, InvalidInput, NotFound, UsageError

__all__ = ["LocalObjectStore", "ObjectStore", "S3ObjectStore", "check_key", "s3_client"]

_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
_PREFIX = re.compile(r"[A-Za-z0-9._/-]*")
MAX_KEY_LENGTH = 512


class ObjectStore(Protocol):
    """Write-once blob storage addressed by relative POSIX keys such as `raw/ab12/00000001`."""

    kind: str

    def writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A file to write the object into; it becomes visible only when the block exits cleanly.

        `Conflict` if the key exists; on an exception nothing becomes visible.
        """
        ...

    def reader(self, key: str) -> AbstractContextManager[BinaryIO]:
        """The object's bytes; `NotFound` if there is no such object."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""
        ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Keys of complete objects starting with `prefix`, in sorted order."""
        ...


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key, else raise `InvalidInput`.

    Segments use `[A-Za-z0-9._-]` and may not start with a dot, which rules out `.`, `..` and
    hidden names such as the local store's `.tmp`.

    >>> check_key("raw/ab12/00000001")
    'raw/ab12/00000001'
    """
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise InvalidInput(
            f"invalid object key {key!r}",
            hint="use relative segments of [A-Za-z0-9._-] that do not start with a dot",
        )
    return key


def _check_prefix(prefix: str) -> str:
    if (
        not isinstance(prefix, str)
        or len(prefix) > MAX_KEY_LENGTH
        or not _PREFIX.fullmatch(prefix)
        or prefix.startswith("/")
        or any(part.startswith(".") for part in prefix.split("/"))
    ):
        raise InvalidInput(f"invalid object key prefix {prefix!r}")
    return prefix


# ---------------------------------------------------------------------------------------------
# A local folder


class LocalObjectStore:
    """Objects as files under `root` (mode 0600, folders 0700).

    A write goes to `root/.tmp/<random>`, is fsynced, then hard-linked to its final name; the
    link fails if the name exists, so publication is atomic and write-once even between
    processes. A killed writer leaves only a temp file, which `keys()` never lists and
    `sweep_temp` removes.

    >>> import tempfile
    >>> store = LocalObjectStore(Path(tempfile.mkdtemp()))
    >>> with store.writer("raw/a/1") as out:
    ...     _ = out.write(b"ciphertext")
    >>> list(store.keys("raw/"))
    ['raw/a/1']
    """

    kind = "local"
    TEMP_DIR = ".tmp"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._temp = self.root / self.TEMP_DIR
        make_private_dirs(self._temp)

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        final = self._path(key)
        if os.path.lexists(final):
            raise Conflict(f"object {key} already exists; objects are immutable")
        temp = self._temp / f"{secrets.token_hex(16)}.part"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            try:
                make_private_dirs(final.parent)
                os.link(temp, final)
            except FileExistsError:
                raise Conflict(f"object {key} already exists; objects are immutable") from None
            except NotADirectoryError:
                raise Conflict(f"object key {key} runs through an existing object") from None
            fsync_dir(final.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    @contextlib.contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"object {key} does not exist") from None
        with os.fdopen(fd, "rb") as file:
            yield file

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        fsync_dir(path.parent)

    def exists(self, key: str) -> bool:
        try:
            return stat.S_ISREG(os.lstat(self._path(key)).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False

    def keys(self, prefix: str = "") -> Iterator[str]:
        _check_prefix(prefix)
        # Only walk the folder the prefix names; the rest of the prefix filters its entries.
        folder, _, _ = prefix.rpartition("/")
        start = self.root / folder if folder else self.root
        yield from (key for key in self._walk(start, folder) if key.startswith(prefix))

    def sweep_temp(self, older_than_seconds: float = 3600.0) -> int:
        """Delete temp files of writers that died more than `older_than_seconds` ago; count them."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        with os.scandir(self._temp) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed += 1
        return removed

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _walk(self, folder: Path, relative: str) -> Iterator[str]:
        try:
            with os.scandir(folder) as scan:
                entries = [e for e in scan if not e.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return
        # Sorting folders as "name/" yields keys in plain string order, as S3 lists them.
        entries.sort(key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name)
        for entry in entries:
            key = f"{relative}/{entry.name}" if relative else entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), key)
            elif entry.is_file(follow_symlinks=False):
                yield key


# ---------------------------------------------------------------------------------------------
# Amazon S3

S3_MIN_PART_SIZE = 5 << 20
S3_MAX_PARTS = 10_000


class S3ObjectStore:
    """Objects in an S3 bucket under `prefix`, stored with SSE-KMS on top of our own encryption.

    Small objects are one PutObject; larger ones a multipart upload of `part_size` parts, so
    memory stays at one part. Both ask S3 to refuse an existing key (`If-None-Match: *`).
    """

    kind = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any,
        sse_kms_key_id: str | None = None,
        part_size: int = 8 << 20,
    ) -> None:
        if part_size < S3_MIN_PART_SIZE:
            raise UsageError(f"S3 parts must be at least {S3_MIN_PART_SIZE} bytes")
        prefix = _check_prefix(prefix.strip("/"))
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.sse_kms_key_id = sse_kms_key_id
        self.part_size = part_size
        self._client = client

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        if self.exists(key):
            raise Conflict(f"object {key} already exists; objects are immutable")
        upload = _S3Upload(self, key)
        try:
            # _S3Upload writes every byte it is given, as a BinaryIO's write must.
            yield cast(BinaryIO, upload)
            upload.complete()
        except BaseException:
            upload.abort()
            raise
        finally:
            upload.close()

    @contextlib.contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        with _s3_errors(self.bucket, key):
            response = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
        body = response["Body"]
        try:
            yield io.BufferedReader(_S3Body(body), buffer_size=1 << 20)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        with _s3_errors(self.bucket, key):
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def exists(self, key: str) -> bool:
        full = self._full(key)
        try:
            with _s3_errors(self.bucket, key):
                self._client.head_object(Bucket=self.bucket, Key=full)
        except NotFound:
            return False
        return True

    def keys(self, prefix: str = "") -> Iterator[str]:
        full = self.prefix + _check_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        with _s3_errors(self.bucket, prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.bucket!r}, {self.prefix!r})"

    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _encryption(self) -> dict[str, str]:
        params = {"ServerSideEncryption": "aws:kms"}
        if self.sse_kms_key_id:
            params["SSEKMSKeyId"] = self.sse_kms_key_id
        return params


class _S3Upload(io.BufferedIOBase):
    """The file an S3 writer yields: fills one part in memory and uploads it when full."""

    def __init__(self, store: S3ObjectStore, key: str) -> None:
        super().__init__()
        self._store = store
        self._client = store._client
        self._key = key
        self._full = store._full(key)
        self._part = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a finished S3 object")
        view = memoryview(data).cast("B")
        written = len(view)
        size = self._store.part_size
        while view:
            room = size - len(self._part)
            self._part += view[:room]
            view = view[room:]
            if len(self._part) == size:
                self._upload_part()
        return written

    def complete(self) -> None:
        if self._upload_id is None:
            with _s3_errors(self._store.bucket, self._key):
                self._client.put_object(
                    Bucket=self._store.bucket,
                    Key=self._full,
                    Body=self._part,
                    IfNoneMatch="*",
                    **self._store._encryption(),
                )
            return
        if self._part:
            self._upload_part()
        with _s3_errors(self._store.bucket, self._key):
            self._client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self._full,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
                IfNoneMatch="*",
            )
        self._upload_id = None

    def abort(self) -> None:
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self._full, UploadId=upload_id
                )

    def close(self) -> None:
        self._part = bytearray()
        super().close()

    def _upload_part(self) -> None:
        with _s3_errors(self._store.bucket, self._key):
            if self._upload_id is None:
                response = self._client.create_multipart_upload(
                    Bucket=self._store.bucket, Key=self._full, **self._store._encryption()
                )
                self._upload_id = response["UploadId"]
            number = len(self._parts) + 1
            if number > S3_MAX_PARTS:
                raise UsageError(
                    f"object {self._key} needs more than {S3_MAX_PARTS} parts",
                    hint="raise store part_size",
                )
            response = self._client.upload_part(
                Bucket=self._store.bucket,
                Key=self._full,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=self._part,
            )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self._part = bytearray()


class _S3Body(io.RawIOBase):
    """A raw reader over botocore's StreamingBody, so it can sit under an io.BufferedReader."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk: bytes = self._body.read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)


def s3_client(region: str | None, endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client; credentials (and the region, if None) come from the usual AWS chain."""
    import boto3

    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url)


_S3_MISSING = {"404", "NoSuchKey", "NotFound"}
_S3_EXISTS = {"412", "PreconditionFailed", "ConditionalRequestConflict"}


@contextlib.contextmanager
def _s3_errors(bucket: str, key: str) -> Iterator[None]:
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _S3_MISSING:
            raise NotFound(f"object {key} does not exist") from None
        if code in _S3_EXISTS:
            raise Conflict(f"object {key} already exists; objects are immutable") from None
        if code == "NoSuchBucket":
            raise ConfigError(f"the S3 bucket {bucket} does not exist") from None
        if code in {"403", "AccessDenied"}:
            raise ConfigError(
                f"access to s3://{bucket} was denied ({code})",
                hint="check this role's s3 and kms permissions",
            ) from None
        raise
