"""Authenticated encryption of streams and small blobs: the only place aidlc touches nonces.

Callers see `encrypt_stream` / `decrypt_stream` (and `*_bytes` for small blobs); every failure to
verify is an `IntegrityError` whose message names no key material.

On-disk format (all integers big endian)::

    header   = magic "AIDLC-S1" (8) | segment_size uint32 (4) | salt (16) | nonce_prefix (7)
    segments = segment_0 | ... | segment_n      each = AES-256-GCM(plaintext_i) | tag (16)

- `segment_size` (16 B to 16 MiB) is the plaintext length of every segment but the last, which
  holds 1 to `segment_size` bytes; an empty plaintext is a single empty final segment.
- The segment key is HKDF-SHA256(data key, salt, info "aidlc-stream-v1") with a fresh random
  salt per stream, so even a data key reused by mistake does not repeat a (key, nonce) pair.
- STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015; as in Tink's streaming AEAD):
  nonce_i = nonce_prefix (7) | i uint32 (4), from 0 | 1 if last else 0 (1).
- Every segment's associated data is the header followed by the caller's associated data, so an
  edited header, a dropped final segment, reordered or spliced segments, trailing bytes and an
  object decrypted under another id or version all fail.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import struct
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from aidlc.errors import IntegrityError, UsageError

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "SEGMENT_SIZE",
    "StreamInfo",
    "decrypt_bytes",
    "decrypt_segments",
    "decrypt_stream",
    "encrypt_bytes",
    "encrypt_stream",
    "new_data_key",
]

MAGIC = b"AIDLC-S1"
SEGMENT_SIZE = 1 << 20
MIN_SEGMENT_SIZE = 16
# A header is only authenticated once its first segment decrypts, so a forged one must not be
# able to make us allocate more than this.
MAX_SEGMENT_SIZE = 1 << 24
KEY_SIZE = 32
TAG_SIZE = 16
_HEADER = struct.Struct(">8sI16s7s")
HEADER_SIZE = _HEADER.size
_MAX_SEGMENTS = 1 << 32
_HKDF_INFO = b"aidlc-stream-v1"
# Plaintext buffers in flight: the one being read, the one being encrypted, the one being hashed
# on the helper thread, and one of slack so the two threads rarely wait for each other.
_RING = 4


@dataclass(frozen=True)
class StreamInfo:
    """What a stream held: its plaintext length and SHA-256, and the ciphertext length."""

    plaintext_size: int
    plaintext_sha256: str
    ciphertext_size: int


def new_data_key() -> bytes:
    """Return a fresh random 256-bit data key.

    >>> len(new_data_key())
    32
    """
    return secrets.token_bytes(KEY_SIZE)


def encrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    *,
    key: bytes,
    associated_data: bytes,
    segment_size: int = SEGMENT_SIZE,
) -> StreamInfo:
    """Encrypt everything `src` yields into `dst`, one segment in memory at a time.

    `associated_data` (for example the object's id and version) must be given again to decrypt.

    >>> src, dst = io.BytesIO(b"rows"), io.BytesIO()
    >>> encrypt_stream(src, dst, key=bytes(32), associated_data=b"raw/1").plaintext_size
    4
    """
    _check_key(key)
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise UsageError(
            f"segment_size must be between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE} bytes"
        )
    salt, prefix = os.urandom(16), os.urandom(7)
    header = _HEADER.pack(MAGIC, segment_size, salt, prefix)
    aead = AESGCM(_segment_key(key, salt))
    aad = header + associated_data
    fill = _filler(src)
    ring = [bytearray(segment_size) for _ in range(_RING)]
    out = memoryview(bytearray(segment_size + TAG_SIZE))
    _write_all(dst, header)
    plaintext_size, ciphertext_size = 0, HEADER_SIZE
    with _Sha256Pipeline() as digest:
        index, size = 0, fill(memoryview(ring[0]))
        while True:
            if index >= _MAX_SEGMENTS:
                raise UsageError("stream too long for its segment size")
            segment = memoryview(ring[index % _RING])[:size]
            next_size = 0
            if size == segment_size:
                # Read one segment ahead: only an empty read proves this one is the last.
                digest.wait_until_pending(_RING - 2)
                next_size = fill(memoryview(ring[(index + 1) % _RING]))
            last = next_size == 0
            digest.update(segment)
            sealed = out[: size + TAG_SIZE]
            aead.encrypt_into(_nonce(prefix, index, last), segment, aad, sealed)
            _write_all(dst, sealed)
            plaintext_size += size
            ciphertext_size += size + TAG_SIZE
            if last:
                return StreamInfo(plaintext_size, digest.hexdigest(), ciphertext_size)
            index, size = index + 1, next_size


def decrypt_stream(
    src: BinaryIO, dst: BinaryIO, *, key: bytes, associated_data: bytes
) -> StreamInfo:
    """Decrypt `src` into `dst`, verifying each segment before writing it.

    On `IntegrityError` `dst` may already hold a verified prefix of the plaintext; the caller
    must discard it.

    >>> sealed = encrypt_bytes(b"rows", key=bytes(32), associated_data=b"raw/1")
    >>> out = io.BytesIO()
    >>> info = decrypt_stream(io.BytesIO(sealed), out, key=bytes(32), associated_data=b"raw/1")
    >>> out.getvalue()
    b'rows'
    """
    opened = _OpenedStream(src, key, associated_data)
    ring = [bytearray(opened.segment_size) for _ in range(_RING)]
    plaintext_size = 0
    with _Sha256Pipeline() as digest:
        for index, sealed, last in opened.segments():
            digest.wait_until_pending(_RING - 1)
            plain = memoryview(ring[index % _RING])[: len(sealed) - TAG_SIZE]
            opened.open_into(index, sealed, last, plain)
            digest.update(plain)
            _write_all(dst, plain)
            plaintext_size += len(plain)
        return StreamInfo(plaintext_size, digest.hexdigest(), opened.ciphertext_size)


def decrypt_segments(src: BinaryIO, *, key: bytes, associated_data: bytes) -> Iterator[bytes]:
    """Yield the plaintext of `src` segment by segment; each is verified before it is yielded.

    A consumer that stops at an `IntegrityError` must discard what it already received.

    >>> sealed = encrypt_bytes(b"rows", key=bytes(32), associated_data=b"raw/1")
    >>> b"".join(decrypt_segments(io.BytesIO(sealed), key=bytes(32), associated_data=b"raw/1"))
    b'rows'
    """
    opened = _OpenedStream(src, key, associated_data)
    for index, sealed, last in opened.segments():
        yield opened.open(index, sealed, last)


def encrypt_bytes(data: bytes, *, key: bytes, associated_data: bytes) -> bytes:
    """Encrypt a small blob in the stream format.

    >>> sealed = encrypt_bytes(b"token", key=bytes(32), associated_data=b"ctx")
    >>> decrypt_bytes(sealed, key=bytes(32), associated_data=b"ctx")
    b'token'
    """
    # A segment no larger than the blob keeps small blobs from allocating a full segment buffer.
    segment_size = min(max(len(data), MIN_SEGMENT_SIZE), SEGMENT_SIZE)
    out = io.BytesIO()
    encrypt_stream(
        io.BytesIO(data),
        out,
        key=key,
        associated_data=associated_data,
        segment_size=segment_size,
    )
    return out.getvalue()


def decrypt_bytes(data: bytes, *, key: bytes, associated_data: bytes) -> bytes:
    """Decrypt a blob made by `encrypt_bytes` (or any stream small enough to hold in memory)."""
    return b"".join(decrypt_segments(io.BytesIO(data), key=key, associated_data=associated_data))


class _OpenedStream:
    """A ciphertext stream whose header has been read: yields its sealed segments and opens them."""

    def __init__(self, src: BinaryIO, key: bytes, associated_data: bytes) -> None:
        _check_key(key)
        self._fill = _filler(src)
        header = bytearray(HEADER_SIZE)
        if self._fill(memoryview(header)) < HEADER_SIZE:
            raise IntegrityError("encrypted object is truncated: its header is incomplete")
        magic, segment_size, salt, prefix = _HEADER.unpack(header)
        if magic != MAGIC:
            raise IntegrityError("not an aidlc encrypted object, or its header is damaged")
        if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
            raise IntegrityError("encrypted object header is damaged: impossible segment size")
        self.segment_size: int = segment_size
        self.ciphertext_size = HEADER_SIZE
        self._prefix: bytes = prefix
        self._aead = AESGCM(_segment_key(key, salt))
        self._aad = bytes(header) + associated_data

    def segments(self) -> Iterator[tuple[int, memoryview, bool]]:
        """Yield (index, sealed segment, is last); a view is valid until the next is requested."""
        sealed_size = self.segment_size + TAG_SIZE
        buffers = (bytearray(sealed_size), bytearray(sealed_size))
        index, size = 0, self._fill(memoryview(buffers[0]))
        while True:
            if size < TAG_SIZE:
                raise IntegrityError("encrypted object is truncated")
            if index >= _MAX_SEGMENTS:
                raise IntegrityError("encrypted object has more segments than its format allows")
            next_size = 0
            if size == sealed_size:
                next_size = self._fill(memoryview(buffers[(index + 1) % 2]))
            last = next_size == 0
            self.ciphertext_size += size
            yield index, memoryview(buffers[index % 2])[:size], last
            if last:
                return
            index, size = index + 1, next_size

    def open(self, index: int, sealed: memoryview, last: bool) -> bytes:
        try:
            return self._aead.decrypt(_nonce(self._prefix, index, last), sealed, self._aad)
        except InvalidTag:
            raise _tampered(index) from None

    def open_into(self, index: int, sealed: memoryview, last: bool, plain: memoryview) -> None:
        try:
            self._aead.decrypt_into(_nonce(self._prefix, index, last), sealed, self._aad, plain)
        except InvalidTag:
            raise _tampered(index) from None


class _Sha256Pipeline:
    """SHA-256 over a sequence of buffers, hashed on a helper thread once a stream is long.

    hashlib and AES-GCM both release the GIL, so on two cores hashing one segment while the
    caller encrypts the next and does its I/O raises throughput (see benchmarks/bench_store.py).
    The thread starts only at the second segment, so small blobs cost no thread.
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        self._updates = 0

    def __enter__(self) -> _Sha256Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def update(self, data: memoryview) -> None:
        """Hash `data` in order; keep it unchanged until `wait_until_pending` says it is done."""
        self._updates += 1
        if self._updates == 1:
            self._sha.update(data)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aidlc-sha256")
        self._pending.append(self._pool.submit(self._sha.update, data))

    def wait_until_pending(self, count: int) -> None:
        """Block until at most `count` of the most recent buffers are still being hashed."""
        while len(self._pending) > count:
            self._pending.popleft().result()

    def hexdigest(self) -> str:
        self.wait_until_pending(0)
        return self._sha.hexdigest()


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise UsageError(f"a data key must be {KEY_SIZE} bytes")


def _segment_key(key: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=_HKDF_INFO).derive(
        bytes(key)
    )


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _tampered(index: int) -> IntegrityError:
    return IntegrityError(
        f"encrypted object failed verification at segment {index}: "
        "it was modified, truncated or reordered, or belongs to another object or version"
    )


def _filler(src: BinaryIO) -> Callable[[memoryview], int]:
    """Return a function that fills a buffer from `src` and returns how much it read.

    A short count means end of stream; streams that return short reads before that are fine.
    """
    readinto: Callable[[memoryview], int | None] | None = getattr(src, "readinto", None)

    def fill(buffer: memoryview) -> int:
        filled = 0
        while filled < len(buffer):
            if readinto is not None:
                count = readinto(buffer[filled:])
                if count is None:
                    raise UsageError("non-blocking streams cannot be encrypted or decrypted")
            else:
                chunk = src.read(len(buffer) - filled)
                count = len(chunk)
                buffer[filled : filled + count] = chunk
            if count == 0:
                break
            filled += count
        return filled

    return fill


def _write_all(dst: BinaryIO, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = dst.write(view)
        if written is None:
            raise UsageError("non-blocking streams cannot be encrypted or decrypted")
        view = view[written:]
