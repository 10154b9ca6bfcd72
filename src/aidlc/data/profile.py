"""Mergeable data profiles: the baselines of drift checks, at the data gate and in monitoring.

A profile keeps, per column, counts, extremes, moments, a quantile sketch or category counts and a
distinct-count sketch; the profile of a union is the merge of the parts' profiles, so reference
data never has to be reloaded. The format and the guarantees are described in docs/profiles.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt

from aidlc.core.strictjson import reject_constant, unique_object
from aidlc.errors import InvalidInput

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

__all__ = [
    "CATEGORY_CAP",
    "FORMAT_VERSION",
    "HLL_PRECISION",
    "MAX_BUCKETS",
    "MAX_VALUE_CHARS",
    "RELATIVE_ACCURACY",
    "ColumnProfile",
    "DatasetProfile",
    "HyperLogLog",
    "Kind",
    "QuantileSketch",
    "profile_frame",
    "psi",
    "psi_from_values",
]

Kind = Literal["numeric", "categorical", "other"]
_T = TypeVar("_T")

FORMAT_VERSION = 1
# Guaranteed relative error of a quantile (see the bucket layout below).
RELATIVE_ACCURACY = 1 / 129
# Categories listed per column; the rest are summed in `other`.
CATEGORY_CAP = 10_000
# Longer values (free text, blobs) are not worth listing and would bloat the profile.
MAX_VALUE_CHARS = 256
HLL_PRECISION = 14

_KINDS = ("numeric", "categorical", "other")
_MAX_SAFE = 2**53 - 1
# Values per step of the vectorised loops: small enough for temporaries to stay in cache.
_CHUNK = 1 << 16
# Values per sketch histogram update: a bincount costs as much as its 2**18 codes.
_BLOCK = 1 << 20

# ---------------------------------------------------------------- quantile sketch layout
# DDSketch's linearly interpolated mapping: a value's bucket is the top 18 bits of its IEEE-754
# pattern (sign, exponent, 6 mantissa bits), so each power of two splits into 64 buckets
# [2**e * (1 + j/64), 2**e * (1 + (j+1)/64)): one shift per value, no logarithm, identical on
# every platform. The widest bucket's upper/lower ratio is 65/64, so its representative value
# 2*lo*hi / (lo+hi) is within 1/129 of anything inside it.
_SUB_BITS = 6
_OCTAVE = 1 << _SUB_BITS
_CODE_SHIFT = np.uint64(52 - _SUB_BITS)
_CODES = 1 << (12 + _SUB_BITS)
_NEGATIVE_CODES = _CODES // 2
_LOW = 1 + np.arange(_OCTAVE, dtype=np.float64) / _OCTAVE
_HIGH = _LOW + 1 / _OCTAVE
_REPRESENTATIVE = 2 * _LOW * _HIGH / (_LOW + _HIGH)
_KEY_BIAS = 1023 * _OCTAVE
_KEY_MIN = _OCTAVE - _KEY_BIAS  # exponent field 1: the smallest normal magnitude, 2**-1022
_KEY_MAX = 2047 * _OCTAVE - 1 - _KEY_BIAS  # exponent field 2046: the largest finite magnitude
# Beyond this many buckets per sign the smallest magnitudes are folded together: 4096 buckets
# span 64 powers of two, a ratio of 1.8e19 between the largest and smallest magnitude.
MAX_BUCKETS = 4096

# ---------------------------------------------------------------- hashing (stable, documented)
_M = 1 << HLL_PRECISION
_RANK_BITS = 64 - HLL_PRECISION
_RANK_MASK = np.uint64((1 << _RANK_BITS) - 1)
_FMIX1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_SEED_NUMBER = np.uint64(0x165667B19E3779F9)
_WORD_STEP = np.uint64(0x9E3779B97F4A7C15)
_LENGTH_STEP = np.uint64(0xC2B2AE3D27D4EB4F)
_SHIFT33 = np.uint64(33)
_TAIL_MASKS = np.array([0, *((1 << (8 * r)) - 1 for r in range(1, 8)), 2**64 - 1], dtype=np.uint64)
# The approximate cardinality above which a string column's categories are found through hash
# buckets instead of a full group-by (see `_heavy_hitters`).
_EXACT_GROUPING_LIMIT = 4 * CATEGORY_CAP
_HEAVY_BUCKET_BITS = 20

_U64 = npt.NDArray[np.uint64]
_I64 = npt.NDArray[np.int64]


def _fmix64(h: _U64, scratch: _U64 | None = None) -> _U64:
    """MurmurHash3's 64-bit finaliser, in place: a bijection whose output bits all avalanche."""
    scratch = np.empty_like(h) if scratch is None else scratch[: h.size]
    for multiplier in (_FMIX1, _FMIX2):
        h ^= np.right_shift(h, _SHIFT33, out=scratch)
        h *= multiplier
    h ^= np.right_shift(h, _SHIFT33, out=scratch)
    return h


def _hash_words(bits: _U64, out: _U64 | None = None, scratch: _U64 | None = None) -> _U64:
    """Hash 64-bit patterns (integers, or the bits of floats with -0.0 folded into 0.0)."""
    out = np.empty_like(bits) if out is None else out[: bits.size]
    return _fmix64(np.bitwise_xor(bits, _SEED_NUMBER, out=out), scratch)


def _hash_strings(array: pa.Array) -> _U64:
    """Hash each UTF-8 string (no nulls) of an Arrow array: a stable, vectorised 64-bit hash.

    Each string's bytes are read as little-endian 64-bit words w_j (the last zero-padded); the
    hash is fmix64(Σ fmix64(w_j ^ (j+1)·K1) + (len+1)·K2) modulo 2**64.
    """
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype="<i8", count=n + 1, offset=8 * array.offset)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else None
    size = 0 if data is None else data.size
    # Strings ending 7 bytes or more before the buffer's end are read in place, 8 bytes at a
    # time; the few after them from a zero-padded copy of the tail.
    safe = int(np.searchsorted(offsets[1:], size - 7, side="right"))
    out = np.empty(n, dtype=np.uint64)
    if safe and data is not None:
        _hash_string_words(offsets[: safe + 1], data, out[:safe])
    if safe < n:
        base = int(offsets[safe])
        tail = np.zeros(size - base + 8, dtype=np.uint8)
        if data is not None:
            tail[: size - base] = data[base:]
        _hash_string_words(offsets[safe:] - base, tail, out[safe:])
    return out


def _hash_string_words(offsets: _I64, data: npt.NDArray[np.uint8], out: _U64) -> None:
    """`_hash_strings` for strings that all end at least 7 bytes before the end of `data`.

    Works word slot by word slot: slot j reads bytes 8j..8j+7 of every string that long, one
    vectorised pass per slot; the last few long strings are then finished one at a time.
    """
    windows = np.ndarray((data.size - 7,), dtype="<u8", buffer=data, strides=(1,))
    lengths = np.diff(offsets)
    for a in range(0, lengths.size, _CHUNK):
        lens = lengths[a : a + _CHUNK]
        starts = offsets[a : a + lens.size]
        sums = np.zeros(lens.size, dtype=np.uint64)
        going = np.flatnonzero(lens > 0)
        j = 0
        while going.size > 16:
            every = going.size == lens.size  # skip fancy indexing while all strings take part
            remaining = (lens if every else lens[going]) - 8 * j
            words = windows[(starts if every else starts[going]) + 8 * j]
            if remaining.min() < 8:
                words &= _TAIL_MASKS[np.minimum(remaining, 8)]
            words ^= np.uint64(((j + 1) * int(_WORD_STEP)) % 2**64)
            _fmix64(words)
            if every:
                sums += words
            else:
                sums[going] += words
            going = going[remaining > 8]
            j += 1
        if going.size:
            rest = [_word_sum(windows, int(starts[i]), int(lens[i]), j) for i in going]
            sums[going] += np.array(rest, dtype=np.uint64)
        sums += (lens + 1).view(np.uint64) * _LENGTH_STEP
        out[a : a + lens.size] = _fmix64(sums)


def _word_sum(windows: _U64, start: int, length: int, first: int) -> np.uint64:
    """Σ fmix64(w_j ^ (j+1)·K1) over the words of one string from slot `first` on."""
    slots = np.arange(first, (length + 7) // 8, dtype=np.int64)
    words = windows[start + 8 * slots]
    words[-1] &= _TAIL_MASKS[min(length - 8 * int(slots[-1]), 8)]
    words ^= (slots + 1).view(np.uint64) * _WORD_STEP
    return _fmix64(words).sum(dtype=np.uint64)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- quantile sketch


def _representatives(keys: _I64) -> npt.NDArray[np.float64]:
    exponent, within = np.divmod(keys, _OCTAVE)
    return np.ldexp(_REPRESENTATIVE[within], exponent.astype(np.int32))


def _key_of(value: float) -> int | None:
    """Bucket key of |value|, or None for zero and magnitudes below 2**-1022."""
    bits = int(np.array([abs(value)], dtype=np.float64).view(np.uint64)[0])
    if bits >> 52 == 0:
        return None
    return (bits >> int(_CODE_SHIFT)) - _KEY_BIAS


@dataclass(frozen=True, eq=False)
class _Buckets:
    """Counts of consecutive bucket keys from `offset`; trimmed so both ends are non-zero."""

    offset: int
    counts: _I64

    @classmethod
    def build(cls, offset: int, counts: _I64) -> _Buckets:
        nonzero = np.flatnonzero(counts)
        if nonzero.size == 0:
            return cls(0, np.zeros(0, dtype=np.int64))
        lo, hi = int(nonzero[0]), int(nonzero[-1]) + 1
        counts = counts[lo:hi].astype(np.int64, copy=True)
        offset += lo
        if counts.size > MAX_BUCKETS:
            # Collapse relative to the largest key: exactly mergeable, because every sketch
            # folds into key (its max - 4095) <= (the union's max - 4095).
            cut = counts.size - MAX_BUCKETS
            folded = counts[:cut].sum()
            counts = counts[cut:].copy()
            counts[0] += folded
            offset += cut
        counts.flags.writeable = False
        return cls(offset, counts)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def keys(self) -> _I64:
        return np.arange(self.offset, self.offset + self.counts.size, dtype=np.int64)

    def add(self, other: _Buckets) -> _Buckets:
        if other.counts.size == 0:
            return self
        if self.counts.size == 0:
            return other
        lo = min(self.offset, other.offset)
        hi = max(self.offset + self.counts.size, other.offset + other.counts.size)
        counts = np.zeros(hi - lo, dtype=np.int64)
        counts[self.offset - lo : self.offset - lo + self.counts.size] += self.counts
        counts[other.offset - lo : other.offset - lo + other.counts.size] += other.counts
        return _Buckets.build(lo, counts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Buckets):
            return NotImplemented
        return self.offset == other.offset and np.array_equal(self.counts, other.counts)

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "counts": self.counts.tolist()}

    @classmethod
    def from_json(cls, obj: object, what: str) -> _Buckets:
        doc = _object(obj, what)
        _expect_keys(doc, {"offset", "counts"}, what)
        offset = _int(doc, "offset", what, _KEY_MIN, _KEY_MAX)
        raw = doc["counts"]
        if not isinstance(raw, list) or len(raw) > MAX_BUCKETS:
            raise InvalidInput(f"{what}: counts must be a list of at most {MAX_BUCKETS} integers")
        if any(type(c) is not int or c < 0 for c in raw) or sum(raw) > _MAX_SAFE:
            raise InvalidInput(f"{what}: counts must be integers >= 0 adding up to < 2**53")
        if not raw:
            if offset != 0:
                raise InvalidInput(f"{what}: an empty bucket list has offset 0")
            return cls(0, np.zeros(0, dtype=np.int64))
        if raw[0] == 0 or raw[-1] == 0:
            raise InvalidInput(f"{what}: counts must not start or end with 0")
        if offset + len(raw) - 1 > _KEY_MAX:
            raise InvalidInput(f"{what}: bucket keys beyond {_KEY_MAX}")
        counts = np.array(raw, dtype=np.int64)
        counts.flags.writeable = False
        return cls(offset, counts)


@dataclass(frozen=True, eq=False)
class QuantileSketch:
    """A DDSketch-style log-bucket quantile sketch with relative accuracy `RELATIVE_ACCURACY`.

    Exactly mergeable: the sketch of a union is the bucket-wise sum of the parts' sketches.
    """

    zeros: int
    positive: _Buckets
    negative: _Buckets

    @classmethod
    def _from_codes(cls, histogram: _I64) -> QuantileSketch:
        zeros = int(histogram[:_OCTAVE].sum() + histogram[_NEGATIVE_CODES:][:_OCTAVE].sum())
        # Exponent field 2047 (inf, NaN) never reaches here: callers pass finite values only.
        pos = histogram[_OCTAVE : 2047 * _OCTAVE]
        neg = histogram[_NEGATIVE_CODES + _OCTAVE : _NEGATIVE_CODES + 2047 * _OCTAVE]
        # Code c of a positive value is key c - _KEY_BIAS, so index 0 above is _KEY_MIN.
        return cls(zeros, _Buckets.build(_KEY_MIN, pos), _Buckets.build(_KEY_MIN, neg))

    @property
    def count(self) -> int:
        return self.zeros + self.positive.total + self.negative.total

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        return QuantileSketch(
            self.zeros + other.zeros,
            self.positive.add(other.positive),
            self.negative.add(other.negative),
        )

    def _ordered(self) -> tuple[npt.NDArray[np.float64], _I64]:
        """Bucket representatives in increasing order of value, and their counts."""
        values = [
            -_representatives(self.negative.keys())[::-1],
            np.array([0.0] if self.zeros else []),
            _representatives(self.positive.keys()),
        ]
        counts = [
            self.negative.counts[::-1],
            np.array([self.zeros] if self.zeros else [], dtype=np.int64),
            self.positive.counts,
        ]
        value_array, count_array = np.concatenate(values), np.concatenate(counts)
        keep = count_array > 0
        return value_array[keep], count_array[keep]

    def quantile(self, q: float) -> float | None:
        """The value at rank floor(q·(n-1)), within `RELATIVE_ACCURACY` of it; None if empty."""
        n = self.count
        if n == 0:
            return None
        values, counts = self._ordered()
        rank = math.floor(q * (n - 1))
        return float(values[int(np.searchsorted(np.cumsum(counts), rank, side="right"))])

    def count_at_most(self, edges: npt.NDArray[np.float64]) -> _I64:
        """Per edge, the values in buckets no higher than the edge's bucket (≈ values ≤ edge)."""
        values, counts = self._ordered()
        cumulative = np.concatenate([[0], np.cumsum(counts)])
        out = np.empty(len(edges), dtype=np.int64)
        for i, edge in enumerate(edges):
            key = _key_of(float(edge))
            at = 0.0 if key is None else float(_representatives(np.array([key]))[0])
            at = math.copysign(at, edge) if at else 0.0
            out[i] = cumulative[int(np.searchsorted(values, at, side="right"))]
        return out

    def bucket_values(self) -> tuple[npt.NDArray[np.float64], _I64]:
        """(representative value, count) of every non-empty bucket, in increasing order."""
        return self._ordered()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return (
            self.zeros == other.zeros
            and self.positive == other.positive
            and self.negative == other.negative
        )

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> dict[str, Any]:
        return {
            "zeros": self.zeros,
            "positive": self.positive.to_json(),
            "negative": self.negative.to_json(),
        }

    @classmethod
    def from_json(cls, obj: object) -> QuantileSketch:
        """Rebuild from `to_json()` output; InvalidInput if malformed."""
        what = "quantile sketch"
        doc = _object(obj, what)
        _expect_keys(doc, {"zeros", "positive", "negative"}, what)
        sketch = cls(
            _int(doc, "zeros", what, 0, _MAX_SAFE),
            _Buckets.from_json(doc["positive"], f"{what}: positive"),
            _Buckets.from_json(doc["negative"], f"{what}: negative"),
        )
        if sketch.count > _MAX_SAFE:
            raise InvalidInput(f"{what}: more than 2**53-1 values")
        return sketch


# ---------------------------------------------------------------- distinct counts


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3.0


@dataclass(frozen=True, eq=False)
class HyperLogLog:
    """A HyperLogLog distinct-count sketch: 2**14 registers, standard error about 0.81%.

    Mergeable by taking the register-wise maximum; estimated with Ertl's improved estimator,
    which needs no empirical bias tables and stays unbiased from 0 to billions.
    """

    registers: npt.NDArray[np.uint8]

    @classmethod
    def of_hashes(cls, hashes: _U64) -> HyperLogLog:
        lowest = _no_hashes()
        scratch = _Scratch(min(hashes.size, _CHUNK))
        for a in range(0, hashes.size, _CHUNK):
            _add_hashes(lowest, hashes[a : a + _CHUNK].copy(), scratch)
        return cls._of_lowest(lowest)

    @classmethod
    def _of_lowest(cls, lowest: _U64) -> HyperLogLog:
        """Registers from each register's smallest low-50-bit remainder (2**50: no hash)."""
        # rank = leading zeros of the 50-bit remainder + 1 = 51 - bit_length; integers below
        # 2**53 convert to float64 exactly, and the exponent field is bit_length + 1022 (0 for 0).
        exponent = lowest.astype(np.float64).view(np.uint64) >> np.uint64(52)
        rank = np.minimum(np.uint64(_RANK_BITS + 1023) - exponent, np.uint64(_RANK_BITS + 1))
        registers = np.where(lowest > _RANK_MASK, 0, rank).astype(np.uint8)
        registers.flags.writeable = False
        return cls(registers)

    def merge(self, other: HyperLogLog) -> HyperLogLog:
        registers = np.maximum(self.registers, other.registers)
        registers.flags.writeable = False
        return HyperLogLog(registers)

    def estimate(self) -> float:
        """Ertl (2017), "New cardinality estimation algorithms for HyperLogLog sketches", alg. 6."""
        histogram = np.bincount(self.registers, minlength=_RANK_BITS + 2)
        if histogram[0] == _M:
            return 0.0
        z = _M * _tau(1.0 - histogram[_RANK_BITS + 1] / _M)
        for k in range(_RANK_BITS, 0, -1):
            z = 0.5 * (z + int(histogram[k]))
        z += _M * _sigma(histogram[0] / _M)
        return _M * _M / (2.0 * math.log(2.0)) / z

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HyperLogLog):
            return NotImplemented
        return np.array_equal(self.registers, other.registers)

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> dict[str, Any]:
        return {
            "p": HLL_PRECISION,
            "registers": base64.b64encode(self.registers.tobytes()).decode("ascii"),
        }

    @classmethod
    def from_json(cls, obj: object) -> HyperLogLog:
        """Rebuild from `to_json()` output; InvalidInput if malformed."""
        what = "distinct sketch"
        doc = _object(obj, what)
        _expect_keys(doc, {"p", "registers"}, what)
        if type(doc["p"]) is not int or doc["p"] != HLL_PRECISION:
            raise InvalidInput(f"{what}: p must be {HLL_PRECISION}")
        text = doc["registers"]
        if not isinstance(text, str) or len(text) != 4 * math.ceil(_M / 3):
            raise InvalidInput(f"{what}: registers must be {_M} bytes in base64")
        try:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise InvalidInput(f"{what}: registers are not valid base64") from None
        if len(raw) != _M or base64.b64encode(raw).decode("ascii") != text:
            raise InvalidInput(f"{what}: registers must be {_M} bytes in canonical base64")
        registers = np.frombuffer(raw, dtype=np.uint8).copy()
        if int(registers.max()) > _RANK_BITS + 1:
            raise InvalidInput(f"{what}: a register exceeds {_RANK_BITS + 1}")
        registers.flags.writeable = False
        return cls(registers)


class _Scratch:
    """Chunk-sized buffers reused by every step, so temporaries stay in cache."""

    def __init__(self, size: int) -> None:
        self.u1 = np.empty(size, dtype=np.uint64)
        self.u2 = np.empty(size, dtype=np.uint64)
        self.u3 = np.empty(size, dtype=np.uint64)
        self.f1 = np.empty(size, dtype=np.float64)
        self.f2 = np.empty(size, dtype=np.float64)


def _no_hashes() -> _U64:
    return np.full(_M, np.uint64(1 << _RANK_BITS), dtype=np.uint64)


def _add_hashes(lowest: _U64, hashes: _U64, scratch: _Scratch) -> None:
    """Keep, per register (top 14 bits), the smallest remainder (low 50 bits); overwrites hashes.

    A register's rank falls as its remainder grows, so the smallest remainder gives the highest
    rank, and ranks are computed once per register instead of once per value.
    """
    index = np.right_shift(hashes, np.uint64(_RANK_BITS), out=scratch.u3[: hashes.size])
    np.minimum.at(lowest, index.view(np.int64), np.bitwise_and(hashes, _RANK_MASK, out=hashes))


# ---------------------------------------------------------------- column and dataset profiles


@dataclass(frozen=True)
class ColumnProfile:
    """What is known about one column; `merge` gives the profile of the union of two parts.

    `count` counts usable values: not null and, for numeric columns, finite. Numeric columns
    also count NaN and ±inf in `nonfinite`, keep min, max, mean and `m2` (the sum of squared
    deviations from the mean) and a quantile sketch; categorical columns keep the counts of up to
    `CATEGORY_CAP` values, most frequent first, and the count of all others in `other`. Every
    numeric and categorical column keeps a HyperLogLog sketch of its distinct values.

    >>> import polars as pl
    >>> column = profile_frame(pl.DataFrame({"x": [1.0, 2.0, None, 4.0]})).columns["x"]
    >>> column.count, column.nulls, column.min, column.max, column.mean
    (3, 1, 1.0, 4.0, 2.3333333333333335)
    """

    name: str
    dtype: str
    kind: Kind
    count: int
    nulls: int
    nonfinite: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    m2: float | None = None
    sketch: QuantileSketch | None = None
    counts: tuple[tuple[str, int], ...] = ()
    other: int = 0
    hll: HyperLogLog | None = None

    @property
    def rows(self) -> int:
        return self.count + self.nulls + self.nonfinite

    @property
    def approximate(self) -> bool:
        """True when some categories were folded into `other` (only listed counts are exact)."""
        return self.other > 0

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """The profile of both parts together; InvalidInput unless name, dtype and kind agree."""
        if (self.name, self.dtype, self.kind) != (other.name, other.dtype, other.kind):
            raise InvalidInput(
                f"cannot merge the profile of {other.name!r} ({other.dtype}, {other.kind}) "
                f"into that of {self.name!r} ({self.dtype}, {self.kind})",
                hint="profiles merge only for the same column with the same dtype",
            )
        count, nulls = self.count + other.count, self.nulls + other.nulls
        if self.kind == "other":
            return replace(self, count=count, nulls=nulls)
        hll = _require(self.hll).merge(_require(other.hll))
        if self.kind == "categorical":
            merged: dict[str, int] = dict(self.counts)
            for value, n in other.counts:
                merged[value] = merged.get(value, 0) + n
            counts, folded = _canonical_counts(merged.items())
            other_count = self.other + other.other + folded
            return replace(
                self, count=count, nulls=nulls, counts=counts, other=other_count, hll=hll
            )
        mean, m2 = _merge_moments(
            (self.count, self.mean, self.m2), (other.count, other.mean, other.m2)
        )
        return replace(
            self,
            count=count,
            nulls=nulls,
            nonfinite=self.nonfinite + other.nonfinite,
            min=_pick(min, self.min, other.min),
            max=_pick(max, self.max, other.max),
            mean=mean,
            m2=m2,
            sketch=_require(self.sketch).merge(_require(other.sketch)),
            hll=hll,
        )

    def quantile(self, q: float) -> float | None:
        """Approximate q-quantile of a numeric column (None if not numeric or empty).

        The answer is within `RELATIVE_ACCURACY` (1/129) of the exact value at rank floor(q·(n-1))
        — numpy's `method="lower"` — and never outside [min, max].
        """
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
            raise InvalidInput("quantile: q must be a number in [0, 1]")
        if self.sketch is None or self.count == 0 or self.min is None or self.max is None:
            return None
        rank = math.floor(q * (self.count - 1))
        if rank in (0, self.count - 1):  # the extremes are known exactly
            return float(self.min if rank == 0 else self.max)
        value = _require(self.sketch.quantile(q))
        return float(min(max(value, self.min), self.max))

    def variance(self) -> float | None:
        """Sample variance (m2 / (count - 1)); None below two values or for non-numeric columns."""
        if self.m2 is None or self.count < 2:
            return None
        return self.m2 / (self.count - 1)

    def std(self) -> float | None:
        variance = self.variance()
        return None if variance is None else math.sqrt(variance)

    def histogram(self, bins: int = 20) -> list[tuple[float, float, int]]:
        """Equal-width bins from min to max as (low, high, count), counted from the sketch.

        A value is counted in the bin of its sketch bucket's representative, so counts near a bin
        edge may fall one bin over; fine for a chart, not for a test statistic.
        """
        if type(bins) is not int or not 1 <= bins <= 10_000:
            raise InvalidInput("histogram: bins must be an integer in 1..10000")
        if self.sketch is None or self.count == 0 or self.min is None or self.max is None:
            return []
        lo, hi = float(self.min), float(self.max)
        if lo == hi:
            return [(lo, hi, self.count)]
        values, counts = self.sketch.bucket_values()
        width = (hi - lo) / bins
        where = np.clip(((np.clip(values, lo, hi) - lo) / width).astype(np.int64), 0, bins - 1)
        per_bin = np.bincount(where, weights=counts, minlength=bins)
        edges = [lo + i * width for i in range(bins)] + [hi]
        return [(edges[i], edges[i + 1], int(per_bin[i])) for i in range(bins)]

    def top(self, k: int = 10) -> list[tuple[str, int]]:
        """The k most frequent values of a categorical column with their counts."""
        if type(k) is not int or k < 0:
            raise InvalidInput("top: k must be a non-negative integer")
        return list(self.counts[:k])

    def distinct(self) -> int | None:
        """Number of distinct values: exact for a categorical column with nothing in `other`,
        else the HyperLogLog estimate (about 0.8% standard error); None for "other" columns."""
        if self.kind == "categorical" and self.other == 0:
            return len(self.counts)
        if self.hll is None:
            return None
        if self.count == 0:
            return 0
        estimate = round(self.hll.estimate())
        return int(min(max(estimate, len(self.counts), 1), self.count))

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
        }
        if self.kind == "numeric":
            doc.update(
                nonfinite=self.nonfinite,
                min=self.min,
                max=self.max,
                mean=self.mean,
                m2=self.m2,
                sketch=_require(self.sketch).to_json(),
            )
        elif self.kind == "categorical":
            doc.update(counts=[[value, n] for value, n in self.counts], other=self.other)
        if self.hll is not None:
            doc["distinct"] = self.hll.to_json()
        return doc

    @classmethod
    def from_json(cls, obj: object) -> ColumnProfile:
        """Rebuild from `to_json()` output (a dict or its JSON text); InvalidInput if malformed."""
        doc = _document(obj, "column profile")
        base = {"name", "dtype", "kind", "count", "nulls"}
        name = doc.get("name")
        what = f"column profile {name[:100]!r}" if isinstance(name, str) else "column profile"
        kind = doc.get("kind")
        if kind not in _KINDS:
            raise InvalidInput(f"{what}: kind must be one of {', '.join(_KINDS)}")
        extra = {
            "numeric": {"nonfinite", "min", "max", "mean", "m2", "sketch", "distinct"},
            "categorical": {"counts", "other", "distinct"},
            "other": set(),
        }[kind]
        _expect_keys(doc, base | extra, what)
        for key in ("name", "dtype"):
            if not isinstance(doc[key], str) or not 0 < len(doc[key]) <= 1000:
                raise InvalidInput(f"{what}: {key} must be a string of 1..1000 characters")
        count = _int(doc, "count", what, 0, _MAX_SAFE)
        nulls = _int(doc, "nulls", what, 0, _MAX_SAFE)
        fields: dict[str, Any] = {
            "name": doc["name"],
            "dtype": doc["dtype"],
            "kind": kind,
            "count": count,
            "nulls": nulls,
        }
        if kind == "other":
            return cls(**fields)
        fields["hll"] = _nested(HyperLogLog.from_json, doc["distinct"], what)
        if kind == "categorical":
            counts = _counts_field(doc["counts"], what)
            other = _int(doc, "other", what, 0, _MAX_SAFE)
            if sum(n for _, n in counts) + other != count:
                raise InvalidInput(f"{what}: listed counts and other do not add up to count")
            return cls(**fields, counts=counts, other=other)
        sketch = _nested(QuantileSketch.from_json, doc["sketch"], what)
        if sketch.count != count:
            raise InvalidInput(f"{what}: the sketch holds {sketch.count} values, not {count}")
        stats = {key: _number(doc, key, what) for key in ("min", "max", "mean", "m2")}
        if count == 0 and any(v is not None for v in stats.values()):
            raise InvalidInput(f"{what}: min, max, mean and m2 must be null without values")
        if count and (stats["min"] is None or stats["max"] is None):
            raise InvalidInput(f"{what}: min and max are required when there are values")
        if count and stats["min"] > stats["max"]:  # type: ignore[operator]
            raise InvalidInput(f"{what}: min exceeds max")
        if (stats["mean"] is None) != (stats["m2"] is None):
            raise InvalidInput(f"{what}: mean and m2 are both present or both null")
        if stats["m2"] is not None and stats["m2"] < 0:
            raise InvalidInput(f"{what}: m2 must not be negative")
        return cls(
            **fields,
            nonfinite=_int(doc, "nonfinite", what, 0, _MAX_SAFE),
            min=stats["min"],
            max=stats["max"],
            mean=stats["mean"],
            m2=stats["m2"],
            sketch=sketch,
        )


@dataclass(frozen=True)
class DatasetProfile:
    """The profiles of every column of a data set, in column order.

    >>> import polars as pl
    >>> a = profile_frame(pl.DataFrame({"x": [1, 2], "c": ["a", "b"]}), categorical=["c"])
    >>> b = profile_frame(pl.DataFrame({"x": [3], "c": ["a"]}), categorical=["c"])
    >>> both = a.merge(b)
    >>> both.rows, both.columns["x"].mean, both.columns["c"].top()
    (3, 2.0, [('a', 2), ('b', 1)])
    """

    rows: int
    columns: dict[str, ColumnProfile]

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """The profile of both data sets together; InvalidInput unless the columns match."""
        if set(self.columns) != set(other.columns):
            missing = sorted(set(self.columns) ^ set(other.columns))[:5]
            raise InvalidInput(
                "cannot merge profiles with different columns "
                f"({', '.join(repr(c[:100]) for c in missing)} in only one)"
            )
        return DatasetProfile(
            rows=self.rows + other.rows,
            columns={name: col.merge(other.columns[name]) for name, col in self.columns.items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "rows": self.rows,
            "columns": [column.to_json() for column in self.columns.values()],
        }

    @classmethod
    def from_json(cls, obj: object) -> DatasetProfile:
        """Rebuild from `to_json()` output (a dict or JSON text); InvalidInput if malformed."""
        what = "dataset profile"
        doc = _document(obj, what)
        _expect_keys(doc, {"v", "rows", "columns"}, what)
        if type(doc["v"]) is not int or doc["v"] != FORMAT_VERSION:
            raise InvalidInput(f"{what}: unsupported format version (expected v = 1)")
        rows = _int(doc, "rows", what, 0, _MAX_SAFE)
        raw = doc["columns"]
        if not isinstance(raw, list) or len(raw) > 100_000:
            raise InvalidInput(f"{what}: columns must be a list of at most 100000 profiles")
        columns: dict[str, ColumnProfile] = {}
        for item in raw:
            if not isinstance(item, dict):
                raise InvalidInput(f"{what}: every column must be a JSON object")
            column = ColumnProfile.from_json(item)
            if column.name in columns:
                raise InvalidInput(f"{what}: column {column.name[:100]!r} appears twice")
            if column.rows != rows:
                raise InvalidInput(
                    f"{what}: column {column.name[:100]!r} accounts for {column.rows} rows, "
                    f"not {rows}"
                )
            columns[column.name] = column
        return cls(rows=rows, columns=columns)


def _require(value: _T | None) -> _T:
    if value is None:
        raise InvalidInput("profile is missing a sketch its kind requires")
    return value


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return choose(a, b)  # type: ignore[no-any-return]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _merge_moments(
    a: tuple[int, float | None, float | None], b: tuple[int, float | None, float | None]
) -> tuple[float | None, float | None]:
    """Chan, Golub and LeVeque's pairwise update of (count, mean, m2): numerically stable."""
    (na, mean_a, m2_a), (nb, mean_b, m2_b) = a, b
    if na == 0:
        return mean_b, m2_b
    if nb == 0:
        return mean_a, m2_a
    if mean_a is None or mean_b is None or m2_a is None or m2_b is None:
        return None, None  # a part overflowed float64
    n = na + nb
    delta = mean_b - mean_a
    mean = mean_a + delta * (nb / n)
    m2 = m2_a + m2_b + delta * delta * (na / n) * nb
    if not (math.isfinite(mean) and math.isfinite(m2)):
        return None, None
    return mean, m2


def _canonical_counts(
    pairs: Iterable[tuple[str, int]],
) -> tuple[tuple[tuple[str, int], ...], int]:
    """Most frequent first (ties by value), capped at CATEGORY_CAP; returns (counts, folded)."""
    ordered = sorted(pairs, key=lambda item: (-item[1], item[0]))
    folded = sum(n for _, n in ordered[CATEGORY_CAP:])
    return tuple(ordered[:CATEGORY_CAP]), folded


# ---------------------------------------------------------------- profiling a frame


def profile_frame(
    df: pl.DataFrame, *, categorical: Collection[str] | None = None
) -> DatasetProfile:
    """Profile every column of a polars DataFrame.

    Numeric dtypes (and Decimal, as Float64) are numeric; String, Categorical, Enum and Boolean
    are categorical; Date, Datetime, Duration and Time are numeric over (epoch) seconds, which the
    profile's dtype says; anything else (lists, structs, binary, ...) is "other" and only counted.
    Columns named in `categorical` are profiled as categorical, e.g. integer codes.

    >>> import polars as pl
    >>> p = profile_frame(pl.DataFrame({"age": [31, 45, 27], "plan": ["a", "b", "a"]}))
    >>> p.columns["age"].kind, p.columns["plan"].top(1)
    ('numeric', [('a', 2)])
    """
    import polars as pl

    if not isinstance(df, pl.DataFrame):
        raise InvalidInput(f"profile_frame needs a polars DataFrame, not {type(df).__name__}")
    forced = set(categorical or ())
    unknown = sorted(forced - set(df.columns))
    if unknown:
        raise InvalidInput(
            f"categorical names column(s) not in the data: {', '.join(map(repr, unknown[:5]))}"
        )
    # Text columns take longest (hashing strings), so they start first and do not finish last.
    order = sorted(df.columns, key=lambda name: df.schema[name] != pl.String)
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        futures = {
            name: pool.submit(_profile_series, df.get_column(name), name in forced)
            for name in order
        }
        columns = {name: futures[name].result() for name in df.columns}
    return DatasetProfile(rows=df.height, columns=columns)


def _profile_series(series: pl.Series, forced: bool) -> ColumnProfile:
    import polars as pl

    dtype = series.dtype
    if forced or dtype in (pl.String, pl.Boolean) or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return _profile_categorical(series)
    if dtype.is_numeric() or dtype.is_temporal():
        return _profile_numeric(series)
    return ColumnProfile(
        name=series.name,
        dtype=str(dtype),
        kind="other",
        count=len(series) - series.null_count(),
        nulls=series.null_count(),
    )


_TIME_UNIT_SECONDS = {"ns": 1e9, "us": 1e6, "ms": 1e3}
_SMALL_INTEGERS = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32")


def _profile_numeric(series: pl.Series) -> ColumnProfile:
    import polars as pl

    dtype = series.dtype
    nulls = series.null_count()
    present = series.drop_nulls()
    nonfinite = 0
    label = str(dtype)
    hash_bits: _U64 | None = None
    values: npt.NDArray[Any]
    if dtype.is_float():
        finite = present.is_finite()
        nonfinite = len(present) - int(finite.sum())
        if nonfinite:
            present = present.filter(finite)
        values = present.cast(pl.Float64).to_numpy()
    elif dtype == pl.UInt64:
        values = present.to_numpy()
        hash_bits = values.view(np.uint64)
    elif str(dtype) in _SMALL_INTEGERS:
        values = present.cast(pl.Int64).to_numpy()
        hash_bits = values.view(np.uint64)
    elif not dtype.is_temporal():  # Decimal and 128-bit integers
        label = f"{dtype} as Float64"
        values = present.cast(pl.Float64).to_numpy()
    else:  # temporal: distinct counts use the exact physical integers
        physical = present.to_physical().cast(pl.Int64).to_numpy()
        hash_bits = physical.view(np.uint64)
        if dtype == pl.Date:
            label = f"{dtype} as epoch seconds"
            values = physical * 86_400
        elif dtype == pl.Time:
            label = f"{dtype} as seconds since midnight"
            values = physical / 1e9
        else:
            unit = getattr(dtype, "time_unit", None) or "us"
            since = "epoch seconds" if isinstance(dtype, pl.Datetime) else "seconds"
            label = f"{dtype} as {since}"
            values = physical / _TIME_UNIT_SECONDS[unit]
    stats = _numeric_stats(np.ascontiguousarray(values), hash_bits)
    return ColumnProfile(
        name=series.name,
        dtype=label,
        kind="numeric",
        count=int(values.size),
        nulls=nulls,
        nonfinite=nonfinite,
        **stats,
    )


def _numeric_stats(values: npt.NDArray[Any], hash_bits: _U64 | None) -> dict[str, Any]:
    """Min, max, moments, sketch and distinct sketch of finite values, one chunk at a time."""
    histogram = np.zeros(_CODES, dtype=np.int64)
    lowest = _no_hashes()
    scratch = _Scratch(min(values.size, _CHUNK))
    codes = np.empty(min(values.size, _BLOCK), dtype=np.uint64)
    n = 0
    mean: float | None = None
    m2: float | None = None
    lo: Any = None
    hi: Any = None
    with np.errstate(over="ignore", invalid="ignore"):
        for a in range(0, values.size, _CHUNK):
            chunk = values[a : a + _CHUNK]
            size = chunk.size
            if chunk.dtype == np.float64:
                floats = chunk
            else:
                floats = scratch.f1[:size]
                floats[...] = chunk
            chunk_mean = float(floats.sum()) / size
            deviations = np.subtract(floats, chunk_mean, out=scratch.f2[:size])
            # Not np.dot: BLAS threads would spin on the cores the other columns need.
            chunk_m2 = float(np.square(deviations, out=deviations).sum())
            part: tuple[int, float | None, float | None] = (size, None, None)
            if math.isfinite(chunk_mean) and math.isfinite(chunk_m2):
                part = (size, chunk_mean, chunk_m2)
            mean, m2 = _merge_moments((n, mean, m2), part)
            n += size
            low, high = chunk.min().item(), chunk.max().item()
            lo = low if lo is None else min(lo, low)
            hi = high if hi is None else max(hi, high)
            bits = np.add(floats, 0.0, out=scratch.f2[:size]).view(np.uint64)  # -0.0 -> 0.0
            np.right_shift(bits, _CODE_SHIFT, out=codes[a % _BLOCK : a % _BLOCK + size])
            if (a + size) % _BLOCK == 0 or a + size == values.size:
                filled = codes[: (a % _BLOCK) + size].view(np.int64)
                histogram += np.bincount(filled, minlength=_CODES)
            words = bits if hash_bits is None else hash_bits[a : a + size]
            hashes = _hash_words(words, out=scratch.u1, scratch=scratch.u2)
            _add_hashes(lowest, hashes, scratch)
    return {
        "min": lo,
        "max": hi,
        "mean": mean,
        "m2": m2,
        "sketch": QuantileSketch._from_codes(histogram),
        "hll": HyperLogLog._of_lowest(lowest),
    }


def _profile_categorical(series: pl.Series) -> ColumnProfile:
    """Category counts and distinct sketch; values are identified by their text (numbers keep
    their own hash, of their 64-bit pattern, which the text would only slow down)."""
    import polars as pl

    dtype = series.dtype
    label = "Enum" if isinstance(dtype, pl.Enum) else str(dtype)
    numbers = dtype.is_integer() or dtype.is_float()
    if not (
        numbers or dtype in (pl.String, pl.Boolean) or isinstance(dtype, (pl.Categorical, pl.Enum))
    ):
        try:
            series = series.cast(pl.String)
        except pl.exceptions.PolarsError:
            raise InvalidInput(
                f"column {series.name!r}: cannot profile {dtype} as categorical",
                hint="only columns with a text form (numbers, strings, dates, ...) can be",
            ) from None
    nulls = series.null_count()
    present = series.drop_nulls().alias("value")
    count = len(present)
    high_cardinality = (
        (numbers or series.dtype == pl.String)
        and count > _EXACT_GROUPING_LIMIT
        and cast(int, present.approx_n_unique()) > _EXACT_GROUPING_LIMIT
    )
    if high_cardinality:
        hashes = _hash_values(present)
        hll = HyperLogLog.of_hashes(hashes)
        table = _heavy_hitters(present, hashes, count)
    else:
        table = present.value_counts(name="n")
        hll = HyperLogLog.of_hashes(_hash_values(table["value"]))
    keys = table["value"].cast(pl.String)
    listed = table.with_columns(keys).filter(keys.str.len_chars() <= MAX_VALUE_CHARS)
    if listed.height > CATEGORY_CAP:
        listed = listed.top_k(CATEGORY_CAP, by=["n", "value"], reverse=[False, True])
    counts, _ = _canonical_counts(
        zip(listed["value"].to_list(), listed["n"].to_list(), strict=True)
    )
    return ColumnProfile(
        name=series.name,
        dtype=label,
        kind="categorical",
        count=count,
        nulls=nulls,
        counts=counts,
        other=count - sum(n for _, n in counts),
        hll=hll,
    )


def _hash_values(values: pl.Series) -> _U64:
    """Stable hashes: of the 64-bit pattern of numbers, of the UTF-8 bytes of anything else."""
    import polars as pl

    dtype = values.dtype
    if not (dtype.is_integer() or dtype.is_float()):
        return _hash_strings(values.cast(pl.String).to_arrow())
    if dtype == pl.UInt64:
        bits = values.to_numpy().view(np.uint64)
    elif dtype.is_integer():
        bits = values.cast(pl.Int64).to_numpy().view(np.uint64)
    else:
        bits = (values.cast(pl.Float64).to_numpy() + 0.0).view(np.uint64)  # -0.0 -> 0.0
    out = np.empty(bits.size, dtype=np.uint64)
    scratch = np.empty(min(bits.size, _CHUNK), dtype=np.uint64)
    for a in range(0, bits.size, _CHUNK):
        _hash_words(bits[a : a + _CHUNK], out=out[a : a + _CHUNK], scratch=scratch)
    return out


def _heavy_hitters(values: pl.Series, hashes: _U64, count: int) -> pl.DataFrame:
    """Exact counts of every value occurring at least max(2, count / CATEGORY_CAP) times.

    At most CATEGORY_CAP values can reach that threshold. A value's bucket (by hash) counts at
    least as often as the value itself, so only rows in buckets reaching the threshold need to be
    grouped; in an id-like column that is almost none of them.
    """
    import polars as pl

    threshold = max(2, math.ceil(count / CATEGORY_CAP))
    buckets = (hashes & np.uint64((1 << _HEAVY_BUCKET_BITS) - 1)).view(np.int64)
    loads = np.bincount(buckets, minlength=1 << _HEAVY_BUCKET_BITS)
    candidates = values.filter(pl.Series(loads[buckets] >= threshold))
    table = candidates.value_counts(name="n")
    return table.filter(pl.col("n") >= threshold)


# ---------------------------------------------------------------- population stability index


def psi(
    reference: ColumnProfile,
    current: ColumnProfile,
    *,
    bins: int = 10,
    epsilon: float = 1e-4,
) -> float:
    """Population Stability Index of `current` against `reference`: Σ (c - r)·ln(c / r).

    Numeric columns: bins end at the reference's 1/bins, ..., (bins-1)/bins quantiles (equal
    edges merged), the last bin is open; both sides are counted from their sketches, so a value
    within 1% of an edge may land in the neighbouring bin. Categorical columns: one bin per value
    listed on either side plus one for `other`. Empty bins get proportion `epsilon`.

    >>> import polars as pl
    >>> ref = profile_frame(pl.DataFrame({"c": ["a"] * 6 + ["b"] * 4})).columns["c"]
    >>> cur = profile_frame(pl.DataFrame({"c": ["a"] * 4 + ["b"] * 6})).columns["c"]
    >>> round(psi(ref, cur), 6)  # 2 · 0.2 · ln(0.6 / 0.4)
    0.162186
    """
    _check_psi_args(bins, epsilon)
    if reference.kind != current.kind:
        raise InvalidInput(
            f"psi: cannot compare a {current.kind} profile with a {reference.kind} reference"
        )
    if reference.kind == "categorical":
        ref_counts, cur_counts = dict(reference.counts), dict(current.counts)
        keys = sorted(set(ref_counts) | set(cur_counts))
        r = np.array([ref_counts.get(k, 0) for k in keys] + [reference.other], dtype=np.float64)
        c = np.array([cur_counts.get(k, 0) for k in keys] + [current.other], dtype=np.float64)
        return _psi(r, c, epsilon, reference.name)
    if reference.kind != "numeric":
        raise InvalidInput(f"psi: column {reference.name!r} is neither numeric nor categorical")
    edges = _psi_edges(reference, bins)
    return _psi(_sketch_bins(reference, edges), _sketch_bins(current, edges), epsilon, current.name)


def psi_from_values(
    reference: ColumnProfile,
    values: npt.ArrayLike,
    *,
    bins: int = 10,
    epsilon: float = 1e-4,
) -> float:
    """PSI of raw numeric `values` against a numeric reference profile, exact on the current side.

    Values must be in the profile's units (epoch seconds for dates and times); nulls (NaN) and
    infinities are ignored, as the profile ignores them.

    >>> import numpy as np, polars as pl
    >>> ref = profile_frame(pl.DataFrame({"x": np.arange(1000.0)})).columns["x"]
    >>> psi_from_values(ref, np.arange(1000.0)) < 0.001
    True
    """
    _check_psi_args(bins, epsilon)
    if reference.kind != "numeric":
        raise InvalidInput(f"psi_from_values: column {reference.name!r} is not numeric")
    try:
        current = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidInput("psi_from_values: values must be numbers") from None
    current = current[np.isfinite(current)]
    edges = _psi_edges(reference, bins)
    cur = np.bincount(np.searchsorted(edges, current, side="left"), minlength=edges.size + 1)
    return _psi(_sketch_bins(reference, edges), cur.astype(np.float64), epsilon, reference.name)


def _check_psi_args(bins: object, epsilon: object) -> None:
    if type(bins) is not int or not 2 <= bins <= 1000:
        raise InvalidInput("psi: bins must be an integer in 2..1000")
    if type(epsilon) not in (int, float) or not 0.0 < epsilon < 1.0:  # type: ignore[operator]
        raise InvalidInput("psi: epsilon must be a number in (0, 1)")


def _psi_edges(reference: ColumnProfile, bins: int) -> npt.NDArray[np.float64]:
    if reference.count == 0:
        raise InvalidInput(f"psi: the reference profile of {reference.name!r} has no values")
    quantiles = [reference.quantile(i / bins) for i in range(1, bins)]
    return np.unique(np.array([q for q in quantiles if q is not None], dtype=np.float64))


def _sketch_bins(profile: ColumnProfile, edges: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    sketch = _require(profile.sketch)
    at_most = sketch.count_at_most(edges)
    return np.diff(np.concatenate([[0], at_most, [sketch.count]])).astype(np.float64)


def _psi(
    reference: npt.NDArray[Any], current: npt.NDArray[Any], epsilon: float, name: str
) -> float:
    for side, counts in (("reference", reference), ("current", current)):
        if counts.sum() <= 0:
            raise InvalidInput(f"psi: the {side} data of {name!r} has no values")
    r = reference / reference.sum()
    c = current / current.sum()
    r = np.where(r == 0, epsilon, r)
    c = np.where(c == 0, epsilon, c)
    return float(np.sum((c - r) * np.log(c / r)))


# ---------------------------------------------------------------- strict JSON readers

_MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


def _document(obj: object, what: str) -> dict[str, Any]:
    if isinstance(obj, (str, bytes, bytearray)):
        if len(obj) > _MAX_DOCUMENT_BYTES:
            raise InvalidInput(f"{what}: larger than {_MAX_DOCUMENT_BYTES} bytes")
        try:
            obj = json.loads(obj, parse_constant=reject_constant, object_pairs_hook=unique_object)
        except InvalidInput as exc:
            raise InvalidInput(f"{what}: {exc.message}") from None
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(f"{what}: not valid UTF-8 JSON ({type(exc).__name__})") from None
    return _object(obj, what)


def _object(obj: object, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise InvalidInput(f"{what}: expected a JSON object, not {type(obj).__name__}")
    return obj


def _expect_keys(doc: Mapping[str, Any], keys: set[str], what: str) -> None:
    missing = sorted(keys - set(doc))
    if missing:
        raise InvalidInput(f"{what}: missing field(s) {', '.join(missing)}")
    unknown = set(doc) - keys
    if unknown:
        names = ", ".join(sorted(repr(k)[:40] for k in unknown)[:5])
        raise InvalidInput(f"{what}: unknown field(s) {names}")


def _int(doc: Mapping[str, Any], key: str, what: str, lo: int, hi: int) -> int:
    value = doc[key]
    if type(value) is not int or not lo <= value <= hi:
        raise InvalidInput(f"{what}: {key} must be an integer in {lo}..{hi}")
    return value


def _number(doc: Mapping[str, Any], key: str, what: str) -> float | None:
    value = doc[key]
    if value is None:
        return None
    if type(value) is int and abs(value) <= 2**64:
        return value
    if type(value) is float and math.isfinite(value):
        return value
    raise InvalidInput(f"{what}: {key} must be a finite number or null")


def _counts_field(value: object, what: str) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, list) or len(value) > CATEGORY_CAP:
        raise InvalidInput(f"{what}: counts must be a list of at most {CATEGORY_CAP} pairs")
    pairs = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or len(item[0]) > MAX_VALUE_CHARS
            or type(item[1]) is not int
            or not 1 <= item[1] <= _MAX_SAFE
        ):
            raise InvalidInput(
                f"{what}: every count must be [value of at most {MAX_VALUE_CHARS} characters, "
                "positive integer]"
            )
        pairs.append((item[0], item[1]))
    ordered, _ = _canonical_counts(pairs)
    if len({value for value, _ in pairs}) != len(pairs) or list(ordered) != pairs:
        raise InvalidInput(f"{what}: counts must list distinct values, most frequent first")
    return tuple(pairs)


def _nested(parse: Callable[[object], _T], value: object, what: str) -> _T:
    try:
        return parse(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.message}") from None
