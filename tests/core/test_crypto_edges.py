"""The stream format at its edges: data written by earlier releases, the limits of the format,
streams that read or write little at a time, and what an integrity error tells the reader."""

from __future__ import annotations

import io

import pytest

from aidlc.core import crypto
from aidlc.core.crypto import (
    HEADER_SIZE,
    MAX_SEGMENT_SIZE,
    decrypt_bytes,
    decrypt_segments,
    decrypt_stream,
    encrypt_bytes,
    encrypt_stream,
)
from aidlc.errors import IntegrityError, UsageError

KEY = bytes(range(32))
AAD = b"object:raw/abc@1"
SEG = 16

# Three 16-byte segments, the last partial, as the first release of the format wrote them:
# data at rest must keep decrypting (this pins the header, key derivation, nonces and AAD).
PLAINTEXT = b"patient_id,diagnosis\nP-000417,stage-2\n!!"
FIRST_RELEASE = bytes.fromhex(
    "4149444c432d533100000010a1e63270100846b6e0162cba666f2c13a6b50d106aac9b10e5c5c218dede905bfa"
    "2027832fc35b1efc7f78615c14b4ae7a4007eb5552e3a0121f50c79e741f3287e8537a27425c261d79de2e27a6"
    "9eeda61d74a2227f1ebb9878107d306dd3beba3087dabb1f147c5a7a4c8aa2c72e"
)


def seal(data: bytes, segment_size: int = SEG) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key=KEY, associated_data=AAD, segment_size=segment_size)
    return out.getvalue()


def unseal(blob: bytes) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, key=KEY, associated_data=AAD)
    return out.getvalue()


# --- compatibility ---------------------------------------------------------------------------


def test_a_stream_written_by_the_first_release_still_decrypts() -> None:
    assert unseal(FIRST_RELEASE) == PLAINTEXT
    assert decrypt_bytes(FIRST_RELEASE, key=KEY, associated_data=AAD) == PLAINTEXT
    assert b"".join(decrypt_segments(io.BytesIO(FIRST_RELEASE), key=KEY, associated_data=AAD)) == (
        PLAINTEXT
    )


def test_a_new_stream_has_the_documented_layout() -> None:
    sealed = seal(PLAINTEXT)
    assert sealed[:8] == b"AIDLC-S1"
    assert int.from_bytes(sealed[8:12], "big") == SEG
    assert len(sealed) == len(FIRST_RELEASE) == HEADER_SIZE + len(PLAINTEXT) + 3 * 16


def test_small_blobs_are_sealed_in_one_segment_sized_to_the_blob() -> None:
    for size, segment in [(0, 16), (5, 16), (100, 100), (crypto.SEGMENT_SIZE + 1, 1 << 20)]:
        sealed = encrypt_bytes(bytes(size), key=KEY, associated_data=AAD)
        assert int.from_bytes(sealed[8:12], "big") == segment


# --- limits ----------------------------------------------------------------------------------


def test_the_largest_segment_size_is_accepted() -> None:
    sealed = seal(b"rows", segment_size=MAX_SEGMENT_SIZE)
    assert unseal(sealed) == b"rows"


@pytest.mark.parametrize("segment_size", [15, MAX_SEGMENT_SIZE + 1])
def test_a_segment_size_out_of_range_names_the_range(segment_size: int) -> None:
    with pytest.raises(UsageError, match=r"^segment_size must be between 16 and 16777216 bytes$"):
        seal(b"rows", segment_size=segment_size)


def test_a_stream_longer_than_its_segment_counter_allows_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The counter is 4 bytes: segment 2**32 would reuse segment 0's nonce. Shown with a
    # limit of 3 segments instead of 2**32.
    four_segments = seal(bytes(3 * SEG + 1))
    three_segments = seal(bytes(3 * SEG))
    monkeypatch.setattr(crypto, "_MAX_SEGMENTS", 3)
    assert seal(bytes(3 * SEG)) != b""
    with pytest.raises(UsageError, match=r"^stream too long for its segment size$"):
        seal(bytes(3 * SEG + 1))
    assert unseal(three_segments) == bytes(3 * SEG)
    with pytest.raises(
        IntegrityError, match=r"^encrypted object has more segments than its format allows$"
    ):
        unseal(four_segments)


def test_a_header_claiming_a_segment_size_below_the_minimum_is_refused() -> None:
    forged = bytearray(seal(b"rows"))
    forged[8:12] = (SEG - 1).to_bytes(4, "big")
    with pytest.raises(
        IntegrityError, match=r"^encrypted object header is damaged: impossible segment size$"
    ):
        unseal(bytes(forged))


@pytest.mark.parametrize(
    ("length", "message"),
    [
        (HEADER_SIZE - 1, "^encrypted object is truncated: its header is incomplete$"),
        (HEADER_SIZE + 15, "^encrypted object is truncated$"),
    ],
)
def test_truncation_is_named_as_such(length: int, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        unseal(seal(b"rows")[:length])


# --- keys ------------------------------------------------------------------------------------


def test_a_key_may_be_a_bytearray_but_must_be_32_bytes() -> None:
    sealed = encrypt_bytes(b"rows", key=bytearray(KEY), associated_data=AAD)
    assert decrypt_bytes(sealed, key=bytearray(KEY), associated_data=AAD) == b"rows"
    for wrong in (bytes(31), bytes(33), "k" * 32):
        with pytest.raises(UsageError, match=r"^a data key must be 32 bytes$"):
            encrypt_bytes(b"rows", key=wrong, associated_data=AAD)  # type: ignore[arg-type]


# --- streams that read or write little at a time ---------------------------------------------


class ReadOnly:
    """A file-like object with `read` only (no `readinto`) that returns at most `chunk` bytes."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._data = io.BytesIO(data)
        self._chunk = chunk

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, self._chunk))


class ShortWriter(io.RawIOBase):
    """Accepts at most `chunk` bytes per write, like a pipe or a socket."""

    def __init__(self, chunk: int) -> None:
        self.data = bytearray()
        self._chunk = chunk

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        piece = bytes(data[: self._chunk])
        self.data += piece
        return len(piece)


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_streams_with_only_read_and_short_writes_round_trip(chunk: int) -> None:
    data = bytes(range(256)) * 3
    sealed = ShortWriter(chunk)
    info = encrypt_stream(
        ReadOnly(data, chunk),  # type: ignore[arg-type]
        sealed,
        key=KEY,
        associated_data=AAD,
        segment_size=SEG * 4,
    )
    assert info.ciphertext_size == len(sealed.data)
    plain = ShortWriter(chunk)
    decrypt_stream(
        ReadOnly(bytes(sealed.data), chunk),  # type: ignore[arg-type]
        plain,
        key=KEY,
        associated_data=AAD,
    )
    assert bytes(plain.data) == data
    assert decrypt_bytes(bytes(sealed.data), key=KEY, associated_data=AAD) == data


class NonBlockingReader(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> None:  # type: ignore[override]
        return None


class NonBlockingWriter(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data) -> None:  # type: ignore[override]
        return None


def test_non_blocking_streams_are_refused() -> None:
    with pytest.raises(
        UsageError, match=r"^non-blocking streams cannot be encrypted or decrypted$"
    ):
        encrypt_stream(NonBlockingReader(), io.BytesIO(), key=KEY, associated_data=AAD)
    with pytest.raises(
        UsageError, match=r"^non-blocking streams cannot be encrypted or decrypted$"
    ):
        encrypt_stream(io.BytesIO(b"rows"), NonBlockingWriter(), key=KEY, associated_data=AAD)


# --- what an integrity error says ------------------------------------------------------------


def test_an_integrity_error_names_the_failing_segment_and_the_likely_causes() -> None:
    tampered = bytearray(seal(PLAINTEXT))
    tampered[HEADER_SIZE + 2 * (SEG + 16) + 3] ^= 1
    expected = (
        "encrypted object failed verification at segment 2: it was modified, truncated or "
        "reordered, or belongs to another object or version"
    )
    with pytest.raises(IntegrityError) as streamed:
        unseal(bytes(tampered))
    with pytest.raises(IntegrityError) as blob:
        decrypt_bytes(bytes(tampered), key=KEY, associated_data=AAD)
    assert str(streamed.value.message) == str(blob.value.message) == expected


def test_something_that_is_not_an_encrypted_object_is_named_as_such() -> None:
    with pytest.raises(
        IntegrityError, match=r"^not an aidlc encrypted object, or its header is damaged$"
    ):
        unseal(b"plain text that is long enough to fill a header")
