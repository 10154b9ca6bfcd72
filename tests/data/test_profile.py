"""Mergeable data profiles: the merge algebra, sketch accuracy, PSI, and the strict JSON form."""

from __future__ import annotations

import copy
import doctest
import json
import math
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aidlc.data import profile as profile_module
from aidlc.data.profile import (
    CATEGORY_CAP,
    MAX_BUCKETS,
    MAX_VALUE_CHARS,
    RELATIVE_ACCURACY,
    ColumnProfile,
    DatasetProfile,
    profile_frame,
    psi,
    psi_from_values,
)
from aidlc.errors import InvalidInput

MASK64 = 2**64 - 1


def column(values, dtype=None, *, categorical: bool = False) -> ColumnProfile:
    frame = pl.DataFrame({"x": pl.Series("x", values, dtype=dtype)})
    return profile_frame(frame, categorical=["x"] if categorical else None).columns["x"]


def close(a: float | None, b: float, scale: float) -> bool:
    # Subnormal values round differently in every summation order; below the smallest normal
    # double there is no relative precision to compare.
    floor = sys.float_info.min
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=max(1e-9 * scale, floor))


def assert_same_exact_parts(merged: ColumnProfile, whole: ColumnProfile) -> None:
    assert (merged.count, merged.nulls, merged.nonfinite) == (
        whole.count,
        whole.nulls,
        whole.nonfinite,
    )
    assert (merged.min, merged.max) == (whole.min, whole.max)
    assert merged.sketch == whole.sketch
    assert merged.hll == whole.hll
    assert (merged.counts, merged.other) == (whole.counts, whole.other)


# ---------------------------------------------------------------- the merge algebra

finite_floats = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_subnormal=True)
float_cells = st.one_of(
    finite_floats,
    st.none(),
    st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1e-300]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(float_cells, max_size=300), st.data())
def test_merged_float_profiles_equal_the_profile_of_the_whole(values, data):
    cut = data.draw(st.integers(0, len(values)))
    merged = column(values[:cut], pl.Float64).merge(column(values[cut:], pl.Float64))
    whole = column(values, pl.Float64)
    assert_same_exact_parts(merged, whole)
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    assert merged.count == finite.size
    assert merged.nonfinite == sum(1 for v in values if v is not None and not math.isfinite(v))
    if finite.size:
        scale = float(np.abs(finite).max())
        assert close(merged.mean, float(np.mean(finite)), scale)
        assert close(whole.mean, float(np.mean(finite)), scale)
        m2 = float(np.sum((finite - np.mean(finite)) ** 2))
        assert close(merged.m2, m2, scale * scale * finite.size)
        assert close(whole.m2, m2, scale * scale * finite.size)
    else:
        assert merged.mean is None and merged.variance() is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=200), st.data())
def test_merged_integer_profiles_equal_the_profile_of_the_whole(values, data):
    cut = data.draw(st.integers(0, len(values)))
    merged = column(values[:cut], pl.Int64).merge(column(values[cut:], pl.Int64))
    whole = column(values, pl.Int64)
    assert_same_exact_parts(merged, whole)
    present = [v for v in values if v is not None]
    if present:
        assert (merged.min, merged.max) == (min(present), max(present))  # exact, as integers
        assert type(merged.min) is int
        floats = np.array(present, dtype=float)
        scale = float(np.abs(floats).max())
        assert close(merged.mean, float(np.mean(floats)), scale)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.text(alphabet="abcé€😀 ", max_size=12)), max_size=300),
    st.data(),
)
def test_merged_categorical_profiles_equal_the_profile_of_the_whole(values, data):
    cut = data.draw(st.integers(0, len(values)))
    merged = column(values[:cut], pl.String).merge(column(values[cut:], pl.String))
    whole = column(values, pl.String)
    assert_same_exact_parts(merged, whole)
    present = [v for v in values if v is not None]
    expected = sorted(
        ((v, present.count(v)) for v in set(present)), key=lambda item: (-item[1], item[0])
    )
    assert list(merged.counts) == expected
    assert merged.other == 0 and not merged.approximate
    assert merged.distinct() == len(set(present))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-3, 3), max_size=100), st.lists(st.integers(-3, 3), max_size=100))
def test_merge_is_commutative_and_forced_integer_codes_are_categorical(a, b):
    pa_, pb = column(a, pl.Int32, categorical=True), column(b, pl.Int32, categorical=True)
    assert pa_.kind == "categorical"
    assert pa_.merge(pb) == pb.merge(pa_) == column(a + b, pl.Int32, categorical=True)


def test_dataset_profiles_merge_only_with_the_same_columns():
    a = profile_frame(pl.DataFrame({"x": [1.0], "y": ["a"]}))
    b = profile_frame(pl.DataFrame({"x": [2.0], "y": ["b"]}))
    both = a.merge(b)
    assert both.rows == 2 and both.columns["y"].top() == [("a", 1), ("b", 1)]
    with pytest.raises(InvalidInput, match="different columns"):
        a.merge(profile_frame(pl.DataFrame({"x": [2.0]})))
    with pytest.raises(InvalidInput, match="same dtype"):
        a.columns["x"].merge(column([1], pl.Int64))


def test_sketches_spanning_more_than_max_buckets_collapse_and_still_merge_exactly():
    small, large = [1e-30, 2e-30, 1e-10, 1.0], [1e25, 1e30]
    whole = column(small + large)
    assert whole.sketch is not None and whole.sketch.positive.counts.size == MAX_BUCKETS
    assert column(small).merge(column(large)).sketch == whole.sketch
    assert whole.quantile(1.0) == 1e30 and whole.quantile(0.0) == 1e-30
    # 4096 buckets keep 64 powers of two below the largest value exactly ...
    assert math.isclose(whole.quantile(0.8), 1e25, rel_tol=RELATIVE_ACCURACY)
    # ... and smaller magnitudes fold into the lowest bucket kept, near 1e30 / 2**64.
    assert math.isclose(whole.quantile(0.5), 1e30 / 2**64, rel_tol=0.02)


# ---------------------------------------------------------------- accuracy


def test_bucket_layout_guarantees_the_relative_accuracy():
    low, high = profile_module._LOW, profile_module._HIGH
    representative = profile_module._REPRESENTATIVE
    assert np.all(representative / low - 1 <= RELATIVE_ACCURACY + 1e-15)
    assert np.all(1 - representative / high <= RELATIVE_ACCURACY + 1e-15)


@pytest.mark.parametrize(
    "name",
    ["normal", "lognormal", "negatives-and-zeros", "integers", "far-from-zero"],
)
def test_quantiles_are_within_the_relative_accuracy_of_numpy(name):
    rng = np.random.default_rng(7)
    values = {
        "normal": rng.normal(0, 1, 100_000),
        "lognormal": rng.lognormal(0, 3, 100_000),
        "negatives-and-zeros": np.concatenate(
            [-rng.lognormal(2, 2, 45_000), np.zeros(10_000), rng.exponential(5, 45_000)]
        ),
        "integers": rng.poisson(30, 100_000).astype(float),
        "far-from-zero": rng.normal(1e6, 1, 100_000),
    }[name]
    profile = column(values)
    for q in np.linspace(0, 1, 101):
        exact = float(np.quantile(values, q, method="lower"))
        estimate = profile.quantile(float(q))
        assert estimate is not None
        # (1 + 1e-12): a value on a bucket's lower edge is exactly 1/129 away, up to rounding
        assert abs(estimate - exact) <= RELATIVE_ACCURACY * abs(exact) * (1 + 1e-12), (q, exact)
    assert profile.quantile(0.0) == values.min() and profile.quantile(1.0) == values.max()


@pytest.mark.parametrize("n", [10_000, 100_000, 1_000_000])
def test_distinct_estimates_are_within_3_percent(n):
    rng = np.random.default_rng(n)
    numbers = rng.permutation(10 * n)[:n]
    repeated = np.concatenate([numbers, numbers[: n // 2]])
    assert abs(column(repeated).distinct() / n - 1) < 0.03
    assert abs(column(repeated.astype(float)).distinct() / n - 1) < 0.03
    if n <= 100_000:
        words = [f"user-{i}@example.org" for i in repeated]
        estimate = column(words).distinct()
        assert abs(estimate / n - 1) < 0.03


@pytest.mark.parametrize(
    ("mean", "std", "rel_tol"),
    [(0.0, 1.0, 1e-12), (1e3, 1.0, 1e-10), (1e9, 1e-3, 1e-6)],  # the last: std = 1e-12 * mean
)
def test_moments_agree_with_numpy_across_chunks_and_merges(mean, std, rel_tol):
    values = np.random.default_rng(3).normal(mean, std, 3_000_000)  # many internal chunks
    whole = column(values)
    halves = column(values[:1_234_567]).merge(column(values[1_234_567:]))
    for profile in (whole, halves):
        assert math.isclose(profile.mean, float(np.mean(values)), rel_tol=1e-12, abs_tol=1e-12)
        assert math.isclose(profile.variance(), float(np.var(values, ddof=1)), rel_tol=rel_tol)
        assert math.isclose(profile.std(), float(np.std(values, ddof=1)), rel_tol=rel_tol)


def test_histogram_counts_every_value_once():
    values = np.random.default_rng(1).normal(0, 1, 10_000)
    bins = column(values).histogram(bins=12)
    assert len(bins) == 12 and sum(n for _, _, n in bins) == 10_000
    assert bins[0][0] == values.min() and bins[-1][1] == values.max()
    assert column([3.0, 3.0]).histogram() == [(3.0, 3.0, 2)]
    assert column(["a"]).histogram() == []


# ---------------------------------------------------------------- hashing is stable


def _fmix(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    return h ^ (h >> 33)


def _reference_string_hash(text: str) -> int:
    data = text.encode()
    total = 0
    for j in range(0, len(data), 8):
        word = int.from_bytes(data[j : j + 8].ljust(8, b"\0"), "little")
        total = (total + _fmix(word ^ (((j // 8 + 1) * 0x9E3779B97F4A7C15) & MASK64))) & MASK64
    return _fmix((total + (len(data) + 1) * 0xC2B2AE3D27D4EB4F) & MASK64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=60), st.integers(0, 10))
def test_string_hash_matches_its_documented_definition(texts, skip):
    series = pl.Series(texts, dtype=pl.String).slice(min(skip, len(texts)))
    hashes = profile_module._hash_strings(series.to_arrow())
    assert hashes.tolist() == [_reference_string_hash(t) for t in series.to_list()]


def test_string_hash_handles_a_few_very_long_strings_among_short_ones():
    texts = ["é" * 5000, "", "x"] * 3 + [f"k{i}" for i in range(40)] + ["z" * 100_001]
    hashes = profile_module._hash_strings(pl.Series(texts).to_arrow())
    assert hashes.tolist() == [_reference_string_hash(t) for t in texts]
    assert (
        hashes.tolist()
        == profile_module._hash_strings(pl.Series(texts[::-1]).to_arrow()).tolist()[::-1]
    )


def test_hashes_are_pinned_so_profiles_merge_across_releases():
    strings = pl.Series(["", "a", "aidlc", "exactly8", "nine bytes", "é€😀"])
    assert [hex(h) for h in profile_module._hash_strings(strings.to_arrow()).tolist()] == [
        "0xff2e69699c4857e",
        "0x93e036f715d1c846",
        "0x74ede1cdcf024ecd",
        "0xcda13e74e7455884",
        "0xb8c3a2ad63109a51",
        "0x7a29cc93d1fdaec9",
    ]
    ints = np.array([0, 1, -1], dtype=np.int64).view(np.uint64)
    assert [_fmix(int(v) ^ 0x165667B19E3779F9) for v in ints] == [
        0xF490368ABA8BFEAC,
        0xA5B964E412570A04,
        0x940A46006555DDBE,
    ]
    assert profile_module._hash_words(ints.copy()).tolist() == [
        0xF490368ABA8BFEAC,
        0xA5B964E412570A04,
        0x940A46006555DDBE,
    ]


def test_hll_registers_follow_the_hash_bits():
    hashes = np.array([(5 << 50) | 1, (5 << 50) | (1 << 49), (7 << 50), 9 << 50], dtype=np.uint64)
    registers = profile_module.HyperLogLog.of_hashes(hashes).registers
    assert registers[5] == 50 and registers[7] == 51 and registers[9] == 51
    assert int(np.count_nonzero(registers)) == 3


# ---------------------------------------------------------------- categories


def test_categories_beyond_the_cap_fold_into_other():
    values = [f"v{i:05d}" for i in range(CATEGORY_CAP + 500)] + ["v00007"] * 3
    profile = column(values)
    assert len(profile.counts) == CATEGORY_CAP and profile.other == 500
    assert profile.approximate and profile.top(2) == [("v00007", 4), ("v00000", 1)]
    assert abs(profile.distinct() / (CATEGORY_CAP + 500) - 1) < 0.03
    merged = profile.merge(profile)
    assert len(merged.counts) == CATEGORY_CAP and merged.other == 1000


def test_high_cardinality_column_keeps_only_heavy_hitters_with_exact_counts():
    ids = [f"id-{i}" for i in range(150_000)]
    values = ids + ["unknown"] * 20_000 + ["n/a"] * 50
    profile = column(values)
    assert profile.approximate
    assert profile.top(5) == [("unknown", 20_000), ("n/a", 50)]
    assert profile.count == len(values) and profile.other == 150_000
    assert abs(profile.distinct() / 150_002 - 1) < 0.03


def test_long_values_are_counted_but_not_listed():
    profile = column(["x" * (MAX_VALUE_CHARS + 1)] * 3 + ["short"])
    assert profile.counts == (("short", 1),) and profile.other == 3


def test_booleans_enums_and_categoricals_are_categorical():
    frame = pl.DataFrame(
        {
            "b": pl.Series([True, False, True, None]),
            "e": pl.Series(["lo", "hi", "lo", "lo"], dtype=pl.Enum(["lo", "hi"])),
            "c": pl.Series(["x", "y", None, "x"], dtype=pl.Categorical),
            "f": pl.Series([1.5, 1.5, 2.0, None]),
        }
    )
    columns = profile_frame(frame, categorical=["f"]).columns
    assert columns["b"].top() == [("true", 2), ("false", 1)] and columns["b"].nulls == 1
    assert columns["e"].top() == [("lo", 3), ("hi", 1)] and columns["e"].dtype == "Enum"
    assert columns["c"].top() == [("x", 2), ("y", 1)]
    assert columns["f"].kind == "categorical" and columns["f"].top() == [("1.5", 2), ("2.0", 1)]


# ---------------------------------------------------------------- PSI


def psi_by_hand(r: list[float], c: list[float], epsilon: float = 1e-4) -> float:
    total = 0.0
    for ri, ci in zip(r, c, strict=True):
        ri, ci = ri or epsilon, ci or epsilon
        total += (ci - ri) * math.log(ci / ri)
    return total


def test_categorical_psi_matches_the_hand_computed_value():
    ref = column(["a"] * 50 + ["b"] * 50)
    cur = column(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    # bins a, b, c, other: reference 0.5, 0.5, 0, 0; current 0.5, 0.3, 0.2, 0
    expected = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert psi(ref, cur) == pytest.approx(expected, rel=1e-12)
    assert psi(ref, cur) == pytest.approx(psi_by_hand([0.5, 0.5, 0, 0], [0.5, 0.3, 0.2, 0]))
    swapped = column(["a"] * 40 + ["b"] * 60)
    assert psi(column(["a"] * 60 + ["b"] * 40), swapped) == pytest.approx(
        2 * 0.2 * math.log(1.5), rel=1e-12
    )
    assert psi(ref, column(["b", "a"] * 7)) == 0.0


def test_numeric_psi_bins_at_reference_deciles():
    reference = column(np.repeat(np.arange(10.0), 10))  # deciles end at 0, 1, ..., 8
    shifted = np.concatenate([np.zeros(20), np.repeat(np.arange(1.0, 9.0), 10)])
    expected = psi_by_hand([0.1] * 10, [0.2] + [0.1] * 8 + [0.0])
    assert psi(reference, column(shifted)) == pytest.approx(expected, rel=1e-12)
    assert psi_from_values(reference, shifted) == pytest.approx(expected, rel=1e-12)
    assert psi(reference, reference) == 0.0


def test_numeric_psi_separates_noise_from_a_real_shift():
    rng = np.random.default_rng(11)
    reference = column(rng.normal(0, 1, 100_000))
    same, moved = rng.normal(0, 1, 100_000), rng.normal(0.5, 1, 100_000)
    assert psi(reference, column(same)) < 0.02
    assert psi_from_values(reference, same) < 0.02
    assert psi(reference, column(moved)) > 0.1
    assert psi_from_values(reference, moved) > 0.1
    assert psi(reference, column(moved)) == pytest.approx(
        psi_from_values(reference, moved), abs=0.01
    )


def test_psi_refuses_what_it_cannot_compare():
    numbers, words = column([1.0, 2.0]), column(["a"])
    with pytest.raises(InvalidInput, match="cannot compare"):
        psi(numbers, words)
    with pytest.raises(InvalidInput, match="no values"):
        psi(column([None], pl.Float64), numbers)
    with pytest.raises(InvalidInput, match="no values"):
        psi(numbers, column([None], pl.Float64))
    with pytest.raises(InvalidInput, match="bins"):
        psi(numbers, numbers, bins=1)
    with pytest.raises(InvalidInput, match="not numeric"):
        psi_from_values(words, np.array([1.0]))
    other = column([[1], [2]])
    with pytest.raises(InvalidInput):
        psi(other, other)


# ---------------------------------------------------------------- every dtype, edge cases


def every_kind_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "i8": pl.Series([1, -2, None], dtype=pl.Int8),
            "u64": pl.Series([2**64 - 1, 0, 5], dtype=pl.UInt64),
            "f32": pl.Series([1.5, None, float("nan")], dtype=pl.Float32),
            "dec": pl.Series([Decimal("1.25"), Decimal("2.50"), None], dtype=pl.Decimal(10, 2)),
            "flag": [True, None, False],
            "text": ["a", "b", None],
            "cat": pl.Series(["a", "a", "b"], dtype=pl.Categorical),
            "day": [date(2024, 1, 1), date(2024, 1, 2), None],
            "at": pl.Series(
                [datetime(2024, 1, 1, 12), None, datetime(2024, 1, 1, 13)],
                dtype=pl.Datetime("ms", "UTC"),
            ),
            "took": [timedelta(seconds=90), None, timedelta(0)],
            "clock": [time(1, 0), time(2, 30), None],
            "tags": [[1, 2], None, []],
            "point": [{"x": 1}, {"x": 2}, None],
            "blob": [b"\x00", b"", None],
            "nothing": pl.Series([None, None, None], dtype=pl.Null),
            "empty_float": pl.Series([None, None, None], dtype=pl.Float64),
            "empty_text": pl.Series([None, None, None], dtype=pl.String),
        }
    )


def test_profile_frame_handles_every_dtype_kind():
    profile = profile_frame(every_kind_frame())
    kinds = {name: c.kind for name, c in profile.columns.items()}
    assert kinds == {
        **dict.fromkeys(["i8", "u64", "f32", "dec", "day", "at", "took", "clock"], "numeric"),
        **dict.fromkeys(["flag", "text", "cat", "empty_text"], "categorical"),
        **dict.fromkeys(["tags", "point", "blob", "nothing"], "other"),
        "empty_float": "numeric",
    }
    c = profile.columns
    assert (c["u64"].min, c["u64"].max) == (0, 2**64 - 1)
    assert (c["f32"].count, c["f32"].nulls, c["f32"].nonfinite) == (1, 1, 1)
    assert c["dec"].dtype.endswith("as Float64") and c["dec"].mean == pytest.approx(1.875)
    assert c["day"].dtype == "Date as epoch seconds" and c["day"].min == 1704067200
    assert c["at"].dtype.endswith("as epoch seconds") and c["at"].max == 1704114000.0
    assert c["took"].max == 90.0 and c["clock"].max == 9000.0
    assert (c["tags"].count, c["tags"].nulls, c["tags"].distinct()) == (2, 1, None)
    assert (c["nothing"].count, c["nothing"].nulls) == (0, 3)
    for name in ("empty_float", "empty_text"):
        assert c[name].count == 0 and c[name].nulls == 3 and c[name].distinct() == 0
    assert c["empty_float"].quantile(0.5) is None and c["empty_float"].variance() is None
    assert all(col.rows == 3 for col in c.values())
    assert DatasetProfile.from_json(json.dumps(profile.to_json())) == profile


def test_profile_of_zero_rows_is_empty_and_merges_as_identity():
    frame = every_kind_frame().clear()
    empty = profile_frame(frame)
    assert empty.rows == 0 and all(c.count == c.nulls == 0 for c in empty.columns.values())
    full = profile_frame(every_kind_frame())
    assert empty.merge(full) == full == full.merge(empty)


def test_profile_frame_rejects_bad_arguments():
    with pytest.raises(InvalidInput, match="not in the data"):
        profile_frame(pl.DataFrame({"x": [1]}), categorical=["y"])
    with pytest.raises(InvalidInput, match="as categorical"):
        profile_frame(pl.DataFrame({"x": [[1]]}), categorical=["x"])
    with pytest.raises(InvalidInput, match="polars DataFrame"):
        profile_frame({"x": [1]})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        column([1.0]).quantile(1.5)


# ---------------------------------------------------------------- JSON


def sample_profile() -> DatasetProfile:
    rng = np.random.default_rng(5)
    frame = pl.DataFrame(
        {
            "amount": rng.lognormal(3, 1, 2_000),
            "age": rng.integers(18, 90, 2_000),
            "plan": rng.choice(["basic", "plus", "pro"], 2_000),
        }
    )
    return profile_frame(frame)


def test_json_round_trip_is_exact_and_deterministic():
    profile = sample_profile()
    text = json.dumps(profile.to_json(), separators=(",", ":"))
    assert DatasetProfile.from_json(text) == profile
    assert DatasetProfile.from_json(text.encode()) == profile
    assert DatasetProfile.from_json(json.loads(text)) == profile
    assert json.dumps(sample_profile().to_json(), separators=(",", ":")) == text
    for name, col in profile.columns.items():
        assert ColumnProfile.from_json(col.to_json()) == col, name


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("v",), 2, "format version"),
        (("rows",), 1999, "accounts for"),
        (("columns", 0, "count"), 1999, "sketch holds"),
        (("columns", 0, "min"), 1e9, "min exceeds max"),
        (("columns", 0, "mean"), None, "both present"),
        (("columns", 0, "m2"), -1.0, "negative"),
        (("columns", 0, "sketch", "positive", "counts"), [0, 1], "start or end"),
        (("columns", 0, "distinct", "registers"), "AAAA", "base64"),
        (("columns", 2, "other"), 5, "add up"),
        (("columns", 2, "counts"), [["basic", 1], ["plus", 5]], "most frequent first"),
        (("columns", 2, "kind"), "text", "kind must be"),
        (("columns", 1, "surprise"), 1, "unknown field"),
    ],
)
def test_from_json_names_what_is_wrong(path, value, message):
    doc = sample_profile().to_json()
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidInput, match=message):
        DatasetProfile.from_json(doc)


def test_from_json_rejects_duplicate_keys_nan_and_repeated_columns():
    text = json.dumps(sample_profile().to_json())
    with pytest.raises(InvalidInput, match="repeats a key"):
        DatasetProfile.from_json('{"v": 1, "v": 1}')
    with pytest.raises(InvalidInput, match="NaN"):
        DatasetProfile.from_json(text.replace('"min": ', '"min": NaN, "x": ', 1))
    doc = json.loads(text)
    doc["columns"].append(doc["columns"][0])
    with pytest.raises(InvalidInput, match="twice"):
        DatasetProfile.from_json(doc)
    with pytest.raises(InvalidInput, match="UTF-8 JSON"):
        DatasetProfile.from_json(b"\xff")


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_from_json_of_random_json_raises_only_invalid_input(value):
    for parse in (DatasetProfile.from_json, ColumnProfile.from_json):
        with pytest.raises(InvalidInput):
            parse(value)
    with pytest.raises(InvalidInput):
        DatasetProfile.from_json(json.dumps(value))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node[:3]):
            yield from _paths(child, (*prefix, i))


SAMPLE_DOC = sample_profile().to_json()
SAMPLE_PATHS = [p for p in _paths(SAMPLE_DOC) if p]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLE_PATHS), json_values)
def test_from_json_of_a_mutated_profile_raises_only_invalid_input(path, value):
    doc = copy.deepcopy(SAMPLE_DOC)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        parsed = DatasetProfile.from_json(doc)
    except InvalidInput:
        return
    # Accepted mutations must still describe a consistent profile.
    assert all(c.rows == parsed.rows for c in parsed.columns.values())
    json.dumps(parsed.to_json(), allow_nan=False)


def test_examples_in_docstrings_run():
    result = doctest.testmod(profile_module)
    assert result.attempted > 0 and result.failed == 0
