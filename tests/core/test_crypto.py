"""Streaming AEAD: round trips, and every kind of tampering fails with IntegrityError."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import threading
from collections.abc import Iterator
from typing import BinaryIO

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aidlc.core import crypto
from aidlc.core.crypto import (
    HEADER_SIZE,
    StreamInfo,
    decrypt_bytes,
    decrypt_segments,
    decrypt_stream,
    encrypt_bytes,
    encrypt_stream,
    new_data_key,
)
from aidlc.errors import IntegrityError, UsageError

SEG = 64
SEALED_SEG = SEG + 16
KEY = bytes(range(32))
AAD = b"object:raw/abc@1"


def seal(data: bytes, *, key: bytes = KEY, aad: bytes = AAD, segment_size: int = SEG) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key=key, associated_data=aad, segment_size=segment_size)
    return out.getvalue()


def unseal(blob: bytes, *, key: bytes = KEY, aad: bytes = AAD) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, key=key, associated_data=aad)
    return out.getvalue()


def segment_offsets(blob: bytes) -> list[int]:
    """Start offsets of every sealed segment in a blob made with SEG-sized segments."""
    return list(range(HEADER_SIZE, len(blob), SEALED_SEG))


def sizes_near_segment_boundaries() -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(0, 5 * SEG),
        st.sampled_from([0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 3 * SEG - 1, 3 * SEG]),
    )


class ChunkyReader(io.RawIOBase):
    """A stream that returns at most `chunk` bytes per read, like a socket or pipe."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._data = io.BytesIO(data)
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        piece = self._data.read(min(self._chunk, len(buffer)))
        buffer[: len(piece)] = piece
        return len(piece)


# --- round trips -----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(size=sizes_near_segment_boundaries(), segment_size=st.sampled_from([16, 17, 64, 100]))
def test_any_plaintext_round_trips_with_size_and_digest(size: int, segment_size: int) -> None:
    data = os.urandom(size)
    sealed, out = io.BytesIO(), io.BytesIO()
    written = encrypt_stream(
        io.BytesIO(data), sealed, key=KEY, associated_data=AAD, segment_size=segment_size
    )
    read = decrypt_stream(io.BytesIO(sealed.getvalue()), out, key=KEY, associated_data=AAD)
    expected = StreamInfo(size, hashlib.sha256(data).hexdigest(), len(sealed.getvalue()))
    assert out.getvalue() == data
    assert written == read == expected


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=4 * SEG), chunk=st.integers(1, 50))
def test_streams_that_return_short_reads_round_trip(data: bytes, chunk: int) -> None:
    sealed = io.BytesIO()
    encrypt_stream(
        ChunkyReader(data, chunk), sealed, key=KEY, associated_data=AAD, segment_size=SEG
    )
    pieces = decrypt_segments(ChunkyReader(sealed.getvalue(), chunk), key=KEY, associated_data=AAD)
    assert b"".join(pieces) == data


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=3000))
def test_small_blobs_round_trip(data: bytes) -> None:
    sealed = encrypt_bytes(data, key=KEY, associated_data=AAD)
    assert decrypt_bytes(sealed, key=KEY, associated_data=AAD) == data


def test_multi_segment_stream_round_trips_with_default_segment_size() -> None:
    data = os.urandom(3 * crypto.SEGMENT_SIZE + 12345)
    sealed = seal(data, segment_size=crypto.SEGMENT_SIZE)
    out = io.BytesIO()
    info = decrypt_stream(io.BytesIO(sealed), out, key=KEY, associated_data=AAD)
    assert out.getvalue() == data
    assert info.plaintext_sha256 == hashlib.sha256(data).hexdigest()
    # Segments yielded one by one add up to the same plaintext.
    assert b"".join(decrypt_segments(io.BytesIO(sealed), key=KEY, associated_data=AAD)) == data


def test_empty_plaintext_is_one_empty_final_segment() -> None:
    sealed = seal(b"")
    assert len(sealed) == HEADER_SIZE + 16
    assert unseal(sealed) == b""


def test_every_encryption_of_the_same_plaintext_differs() -> None:
    assert seal(b"same rows") != seal(b"same rows")


def test_ciphertext_does_not_contain_the_plaintext() -> None:
    data = b"patient_id,diagnosis\n" * 20
    assert b"patient_id" not in seal(data)


def test_data_keys_are_random_and_256_bit() -> None:
    keys = {new_data_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(len(k) == 32 for k in keys)


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(UsageError):
        seal(b"x", key=b"short")
    with pytest.raises(UsageError):
        unseal(seal(b"x"), key=bytes(16))


def test_segment_size_out_of_range_is_refused() -> None:
    with pytest.raises(UsageError):
        seal(b"x", segment_size=8)
    with pytest.raises(UsageError):
        seal(b"x", segment_size=(1 << 24) + 1)


# --- tampering -------------------------------------------------------------------------------

THREE_AND_A_BIT = os.urandom(3 * SEG + 10)  # four segments, the last partial
SEALED = seal(THREE_AND_A_BIT)


def test_the_fixture_stream_has_four_segments() -> None:
    assert len(segment_offsets(SEALED)) == 4
    assert unseal(SEALED) == THREE_AND_A_BIT


@pytest.mark.parametrize("position", range(len(SEALED)))
def test_a_byte_flipped_anywhere_fails_to_decrypt(position: int) -> None:
    tampered = bytearray(SEALED)
    tampered[position] ^= 0x01
    with pytest.raises(IntegrityError):
        unseal(bytes(tampered))


@pytest.mark.parametrize("length", range(len(SEALED)))
def test_truncation_at_any_length_fails_to_decrypt(length: int) -> None:
    # Covers every segment boundary (dropping whole final segments) and every mid-segment cut.
    with pytest.raises(IntegrityError):
        unseal(SEALED[:length])


def test_dropping_the_final_segment_of_a_full_segment_stream_fails() -> None:
    data = os.urandom(3 * SEG)  # all segments full: the cut lands exactly on a boundary
    sealed = seal(data)
    for cut in segment_offsets(sealed)[1:]:
        with pytest.raises(IntegrityError):
            unseal(sealed[:cut])


def split(blob: bytes) -> tuple[bytes, list[bytes]]:
    offsets = segment_offsets(blob)
    return blob[:HEADER_SIZE], [blob[o : o + SEALED_SEG] for o in offsets]


def test_reordered_segments_fail_to_decrypt() -> None:
    header, segments = split(SEALED)
    swapped = header + segments[1] + segments[0] + b"".join(segments[2:])
    with pytest.raises(IntegrityError):
        unseal(swapped)


def test_a_duplicated_segment_fails_to_decrypt() -> None:
    header, segments = split(SEALED)
    with pytest.raises(IntegrityError):
        unseal(header + segments[0] + b"".join(segments))


def test_segments_spliced_from_another_object_under_the_same_key_fail() -> None:
    other = seal(os.urandom(len(THREE_AND_A_BIT)))
    header, segments = split(SEALED)
    _, foreign = split(other)
    with pytest.raises(IntegrityError):
        unseal(header + segments[0] + foreign[1] + b"".join(segments[2:]))
    # Even the other object's header with our segments fails: the header is in every AAD.
    with pytest.raises(IntegrityError):
        unseal(other[:HEADER_SIZE] + SEALED[HEADER_SIZE:])


def test_an_object_decrypted_under_another_id_or_version_fails() -> None:
    with pytest.raises(IntegrityError):
        unseal(SEALED, aad=b"object:raw/abc@2")
    with pytest.raises(IntegrityError):
        unseal(SEALED, aad=b"object:raw/xyz@1")


def test_swapped_ciphertexts_of_two_objects_fail_to_decrypt() -> None:
    key_a, key_b = new_data_key(), new_data_key()
    sealed_a = seal(b"object a", key=key_a, aad=b"object:a@1")
    sealed_b = seal(b"object b", key=key_b, aad=b"object:b@1")
    for blob, key, aad in [(sealed_b, key_a, b"object:a@1"), (sealed_a, key_b, b"object:b@1")]:
        with pytest.raises(IntegrityError):
            unseal(blob, key=key, aad=aad)
    # Same key, different associated data: still refused.
    sealed_c = seal(b"object c", key=key_a, aad=b"object:c@1")
    with pytest.raises(IntegrityError):
        unseal(sealed_c, key=key_a, aad=b"object:a@1")


def test_wrong_key_fails_to_decrypt() -> None:
    with pytest.raises(IntegrityError):
        unseal(SEALED, key=new_data_key())


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"x" * 15, b"y" * 16, bytes(range(256)) * (SEALED_SEG // 256 + 1)],
    ids=["one-byte", "short", "tag-sized", "segment-sized"],
)
def test_trailing_garbage_fails_to_decrypt(garbage: bytes) -> None:
    with pytest.raises(IntegrityError):
        unseal(SEALED + garbage)
    full = seal(os.urandom(2 * SEG))  # final segment is full-sized
    with pytest.raises(IntegrityError):
        unseal(full + garbage)


def test_a_valid_stream_appended_to_another_fails_to_decrypt() -> None:
    with pytest.raises(IntegrityError):
        unseal(SEALED + seal(b"more"))


def test_a_header_claiming_a_huge_segment_size_is_refused_before_allocating() -> None:
    forged = bytearray(SEALED)
    forged[8:12] = (1 << 30).to_bytes(4, "big")
    with pytest.raises(IntegrityError, match="segment size"):
        unseal(bytes(forged))


def test_not_an_encrypted_object_is_refused() -> None:
    with pytest.raises(IntegrityError, match="not an aidlc encrypted object"):
        unseal(b"plain text that is long enough to fill a header")


def test_integrity_errors_never_contain_key_material() -> None:
    key = new_data_key()
    sealed = bytearray(seal(b"secret rows", key=key))
    sealed[-1] ^= 1
    with pytest.raises(IntegrityError) as caught:
        unseal(bytes(sealed), key=key)
    message = str(caught.value)
    assert key.hex() not in message
    assert repr(key) not in message
    assert caught.value.__cause__ is None


def test_decrypt_segments_yields_only_verified_segments() -> None:
    tampered = bytearray(SEALED)
    tampered[segment_offsets(SEALED)[2] + 5] ^= 1
    received = []
    with pytest.raises(IntegrityError):
        for chunk in decrypt_segments(io.BytesIO(bytes(tampered)), key=KEY, associated_data=AAD):
            received.append(chunk)
    assert b"".join(received) == THREE_AND_A_BIT[: 2 * SEG]


# --- memory ----------------------------------------------------------------------------------


class GeneratedReader(io.RawIOBase):
    """`size` deterministic bytes produced on the fly, never held in memory at once."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._block = random.Random(size).randbytes(1 << 16)
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        count = min(len(view), self._left, len(self._block) - self._offset)
        view[:count] = self._block[self._offset : self._offset + count]
        self._offset = (self._offset + count) % len(self._block)
        self._left -= count
        return count


class Sink(io.RawIOBase):
    """A /dev/null that counts what it swallowed."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.size += len(data)
        return len(data)


class PeakRss:
    """Samples this process's RSS on a thread; `growth` is the peak over the starting value."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.start = self.peak = self._process.memory_info().rss

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.start


@contextlib.contextmanager
def sealed_pipe(size: int) -> Iterator[BinaryIO]:
    """The ciphertext of `size` generated bytes, produced on the fly through an OS pipe."""
    read_fd, write_fd = os.pipe()

    def produce() -> None:
        with open(write_fd, "wb") as pipe:
            encrypt_stream(GeneratedReader(size), pipe, key=KEY, associated_data=AAD)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    with open(read_fd, "rb") as pipe:
        yield pipe
    producer.join()


MIB = 1 << 20


def test_encrypting_and_decrypting_256_mib_keeps_memory_flat() -> None:
    size = 256 * MIB
    sink = Sink()
    with PeakRss() as encrypting:
        info = encrypt_stream(GeneratedReader(size), sink, key=KEY, associated_data=AAD)
    assert info.plaintext_size == size
    assert sink.size == info.ciphertext_size
    assert encrypting.growth < 50 * MIB

    sink = Sink()
    with sealed_pipe(size) as sealed, PeakRss() as decrypting:
        decrypted = decrypt_stream(sealed, sink, key=KEY, associated_data=AAD)
    assert decrypted.plaintext_size == size
    assert decrypted.plaintext_sha256 == info.plaintext_sha256
    assert decrypting.growth < 50 * MIB
