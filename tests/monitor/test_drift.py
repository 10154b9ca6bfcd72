"""Drift verdicts from profiles: the false alarm rate on undrifted data, power against a half
standard deviation shift, merged profiles equal to the whole, and closeness to raw-data scipy."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp

from aidlc.core.config import DriftConfig
from aidlc.data.profile import DatasetProfile, profile_frame
from aidlc.monitor.drift import compare_column, compare_profiles

FEATURES = 10
LEVELS = ["a", "b", "c", "d"]
SHARES = [0.4, 0.3, 0.2, 0.1]


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pl.DataFrame:
    data: dict[str, object] = {
        f"x{i}": rng.normal(shift if i == 3 else 0.0, 1.0, n) for i in range(FEATURES)
    }
    data["skewed"] = rng.lognormal(0.0, 1.0, n)
    data["plan"] = rng.choice(LEVELS, n, p=SHARES)
    return pl.DataFrame(data)


def _profile(frame: pl.DataFrame) -> DatasetProfile:
    return profile_frame(frame, categorical=["plan"])


@pytest.fixture(scope="module")
def reference() -> DatasetProfile:
    return _profile(_frame(np.random.default_rng(12345), 50_000))


@pytest.mark.parametrize("rows", [300, 1000])
def test_undrifted_small_samples_stay_within_the_documented_rate(
    reference: DatasetProfile, rows: int
) -> None:
    """Bonferroni over 12 features: at most p_value (5%) of runs flag anything; allow noise."""
    runs = 60
    flagged = sum(
        bool(compare_profiles(reference, _profile(_frame(np.random.default_rng(s), rows))).drifted)
        for s in range(runs)
    )
    assert flagged <= 6  # 10% of 60; the expected count is at most 3


def test_undrifted_large_samples_never_alarm(reference: DatasetProfile) -> None:
    for seed in range(10):
        result = compare_profiles(reference, _profile(_frame(np.random.default_rng(seed), 10_000)))
        assert result.drifted == []
        assert result.max_score == 0.0 and not result.dataset_drift


def test_half_a_standard_deviation_is_caught_at_10000_rows(reference: DatasetProfile) -> None:
    for seed in range(5):
        current = _profile(_frame(np.random.default_rng(100 + seed), 10_000, shift=0.5))
        result = compare_profiles(reference, current)
        assert result.drifted == ["x3"]
        x3 = result.features["x3"]
        assert x3.score == pytest.approx(0.5, abs=0.05)  # Wasserstein / sigma of a 0.5 sigma shift
        assert x3.p_value < 1e-50 and x3.psi > 0.1
        assert result.share == pytest.approx(1 / 12) and not result.dataset_drift


def test_a_significant_but_trivial_shift_is_not_drift_at_large_samples() -> None:
    """Above the small-sample cut the verdict needs the effect size too: a 0.05 sigma shift at
    100,000 rows is overwhelmingly significant (p about 1e-17) but its normalised Wasserstein
    distance (about 0.05) is under the 0.1 threshold, so nothing drifted; the same goes for a
    category mix moved by two points."""
    rng = np.random.default_rng(2024)
    config = DriftConfig()
    ref = profile_frame(pl.DataFrame({"x": rng.normal(0.0, 1.0, 100_000)}), categorical=[]).columns[
        "x"
    ]
    cur = profile_frame(
        pl.DataFrame({"x": rng.normal(0.05, 1.0, 100_000)}), categorical=[]
    ).columns["x"]
    numeric = compare_column(ref, cur, config)
    assert numeric.p_value < 1e-10 < config.p_value  # significant...
    assert 0.03 < numeric.score < config.wasserstein_threshold  # ...but small
    assert not numeric.drifted
    assert "normalised Wasserstein" in numeric.rule and "<" in numeric.rule
    levels = np.array(["a", "b", "c", "d"])
    before = rng.choice(levels, 100_000, p=[0.40, 0.30, 0.20, 0.10])
    after = rng.choice(levels, 100_000, p=[0.38, 0.32, 0.20, 0.10])
    cat_ref = profile_frame(pl.DataFrame({"c": before}), categorical=["c"]).columns["c"]
    cat_cur = profile_frame(pl.DataFrame({"c": after}), categorical=["c"]).columns["c"]
    categorical = compare_column(cat_ref, cat_cur, config)
    assert categorical.p_value < 1e-10
    assert categorical.score < config.jensenshannon_threshold and not categorical.drifted


def test_a_shifted_category_mix_is_caught(reference: DatasetProfile) -> None:
    rng = np.random.default_rng(7)
    frame = _frame(rng, 10_000).with_columns(
        pl.Series("plan", rng.choice(LEVELS, 10_000, p=[0.1, 0.2, 0.3, 0.4]))
    )
    result = compare_profiles(reference, _profile(frame))
    assert result.drifted == ["plan"]
    plan = result.features["plan"]
    assert plan.kind == "categorical" and plan.test == "chi2" and plan.score >= 0.1


@pytest.mark.parametrize("small_sample", [1000, 10])
def test_merged_profiles_judge_exactly_like_the_whole(
    reference: DatasetProfile, small_sample: int
) -> None:
    frame = _frame(np.random.default_rng(3), 8000, shift=0.2)
    whole = _profile(frame)
    merged = _profile(frame.slice(0, 1000))
    for start in range(1000, 8000, 1750):
        merged = merged.merge(_profile(frame.slice(start, 1750)))
    config = DriftConfig(small_sample=small_sample)
    assert (
        compare_profiles(reference, merged, config).to_json()
        == compare_profiles(reference, whole, config).to_json()
    )


def test_profile_statistics_are_close_to_raw_data_scipy() -> None:
    """Bucket rounding (1/129 relative) moves KS and Wasserstein only slightly from the exact
    statistics of the raw values; on integer data (exact buckets) they are equal."""
    rng = np.random.default_rng(11)
    a, b = rng.normal(10, 2, 20_000), rng.normal(10.3, 2.2, 15_000)
    pa, pb = profile_frame(pl.DataFrame({"v": a})), profile_frame(pl.DataFrame({"v": b}))
    got = compare_column(pa.columns["v"], pb.columns["v"], DriftConfig())
    exact = sp.ks_2samp(a, b)
    assert got.statistic == pytest.approx(exact.statistic, abs=0.01)
    distance = sp.wasserstein_distance(a, b) / np.std(a, ddof=1)
    assert got.score == pytest.approx(distance, rel=0.02)

    ia, ib = rng.integers(0, 60, 5000).astype(float), rng.integers(5, 70, 4000).astype(float)
    pa, pb = profile_frame(pl.DataFrame({"v": ia})), profile_frame(pl.DataFrame({"v": ib}))
    got = compare_column(pa.columns["v"], pb.columns["v"], DriftConfig())
    assert got.statistic == pytest.approx(sp.ks_2samp(ia, ib, method="asymp").statistic, abs=1e-12)
    assert got.p_value == pytest.approx(sp.ks_2samp(ia, ib, method="asymp").pvalue, rel=1e-9)


def test_a_column_of_another_type_in_production_shows_as_drift(reference: DatasetProfile) -> None:
    current = _profile(_frame(np.random.default_rng(5), 2000).with_columns(
        pl.col("x1").cast(pl.String)))  # fmt: skip
    result = compare_profiles(reference, current)
    assert "x1" in result.drifted and result.features["x1"].kind == "categorical"


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.integers(-50, 50).map(float), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=2,
        max_size=300,
    ),
    cuts=st.lists(st.integers(1, 299), max_size=4),
    small=st.sampled_from([10, 1000]),
)
def test_any_split_merges_to_the_verdict_of_the_whole(
    values: list[float], cuts: list[int], small: int
) -> None:
    frame = pl.DataFrame({"v": values, "c": [str(int(abs(v)) % 7) for v in values]})
    reference = profile_frame(
        pl.DataFrame({"v": [float(i % 40) for i in range(500)],
                      "c": [str(i % 5) for i in range(500)]}),
        categorical=["c"],
    )  # fmt: skip
    bounds = sorted({0, len(values), *(c for c in cuts if c < len(values))})
    parts = [frame.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    merged = profile_frame(parts[0], categorical=["c"])
    for part in parts[1:]:
        merged = merged.merge(profile_frame(part, categorical=["c"]))
    whole = profile_frame(frame, categorical=["c"])
    config = DriftConfig(small_sample=small)
    assert (
        compare_profiles(reference, merged, config).to_json()
        == compare_profiles(reference, whole, config).to_json()
    )
