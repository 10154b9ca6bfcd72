"""The drift verdict rule by rule, on small exact data: a test alone at small samples, the test
and the effect size together above them, Bonferroni across features, and what is not judged."""

from __future__ import annotations

import polars as pl
import pytest

from aidlc.core.config import DriftConfig
from aidlc.data.profile import ColumnProfile, DatasetProfile, profile_frame
from aidlc.monitor.drift import compare_column, compare_profiles

# 500 reference rows over 100 distinct values; the shifted side moves them by 30 (about one std)
BASE = [float(i % 100) for i in range(500)]
SHIFTED = [v + 30 for v in BASE]
MIX_BEFORE = ["a"] * 200 + ["b"] * 150 + ["c"] * 100 + ["d"] * 50
MIX_AFTER = ["a"] * 50 + ["b"] * 100 + ["c"] * 150 + ["d"] * 200


def _numeric(values: list[float]) -> ColumnProfile:
    return profile_frame(pl.DataFrame({"x": values}), categorical=[]).columns["x"]


def _categorical(values: list[str]) -> ColumnProfile:
    return profile_frame(pl.DataFrame({"x": values}), categorical=["x"]).columns["x"]


def _dataset(**columns: list[float]) -> DatasetProfile:
    return profile_frame(pl.DataFrame(columns), categorical=[])


def test_a_large_numeric_shift_is_drift_under_both_rules() -> None:
    for small_sample in (10, 1000):
        result = compare_column(
            _numeric(BASE), _numeric(SHIFTED), DriftConfig(small_sample=small_sample)
        )
        assert result.drifted and result.kind == "numeric" and result.test == "ks"
        assert (result.name, result.effect) == ("x", "wasserstein")
        assert result.statistic == pytest.approx(0.3)  # KS distance of a 30-of-100 shift
        rule = "KS p=" if small_sample == 1000 else "normalised Wasserstein 1."
        assert result.rule.startswith(rule)
        assert result.reference_rows == result.current_rows == 500
        assert result.p_value < 1e-10 and result.score == pytest.approx(30 / 29.0, rel=0.05)
        assert result.wasserstein == result.score
        assert result.psi > 0.25 and result.jensenshannon > 0.1  # PSI's "significant" band


def test_the_effect_size_does_not_depend_on_the_unit() -> None:
    """Wasserstein distance over the reference std: the same shift in metres or kilometres."""
    unit = compare_column(_numeric(BASE), _numeric(SHIFTED), DriftConfig(small_sample=10))
    for scale in (0.001, 1000.0):
        scaled = compare_column(
            _numeric([v * scale for v in BASE]),
            _numeric([v * scale for v in SHIFTED]),
            DriftConfig(small_sample=10),
        )
        assert scaled.score == pytest.approx(unit.score, rel=0.02) and scaled.drifted


def test_above_the_small_sample_cut_an_effect_below_its_threshold_is_not_drift() -> None:
    """The same significant shift: drift for the test alone (small samples), not when the
    normalised Wasserstein distance must also reach a threshold it does not reach."""
    small = DriftConfig(small_sample=1000, wasserstein_threshold=5.0)
    large = DriftConfig(small_sample=499, wasserstein_threshold=5.0)
    assert compare_column(_numeric(BASE), _numeric(SHIFTED), small).drifted
    verdict = compare_column(_numeric(BASE), _numeric(SHIFTED), large)
    assert verdict.p_value < 1e-10 and not verdict.drifted
    assert "Wasserstein" in verdict.rule


def test_the_small_sample_cut_counts_the_smaller_side_inclusively() -> None:
    strict = {"wasserstein_threshold": 5.0}
    at_cut = compare_column(
        _numeric(BASE * 2), _numeric(SHIFTED), DriftConfig(small_sample=500, **strict)
    )
    assert at_cut.drifted  # 500 rows on the smaller side: the test alone decides
    assert at_cut.rule.startswith("KS p=") and at_cut.rule.endswith("(500 rows)")
    above = compare_column(
        _numeric(BASE * 2), _numeric(SHIFTED), DriftConfig(small_sample=499, **strict)
    )
    assert not above.drifted


def test_above_the_cut_a_large_effect_without_significance_is_not_drift() -> None:
    config = DriftConfig(small_sample=10, p_value=1e-300)
    result = compare_column(_numeric(BASE), _numeric(SHIFTED), config)
    assert result.score > config.wasserstein_threshold and not result.drifted
    small = compare_column(
        _numeric(BASE), _numeric(SHIFTED), DriftConfig(small_sample=1000, p_value=1e-300)
    )
    assert not small.drifted


def test_the_effect_threshold_is_reached_at_equality() -> None:
    probe = compare_column(_numeric(BASE), _numeric(SHIFTED), DriftConfig(small_sample=10))
    at = DriftConfig(small_sample=10, wasserstein_threshold=probe.score)
    assert compare_column(_numeric(BASE), _numeric(SHIFTED), at).drifted
    above = DriftConfig(small_sample=10, wasserstein_threshold=probe.score * 1.000001)
    assert not compare_column(_numeric(BASE), _numeric(SHIFTED), above).drifted


def test_significance_is_strictly_below_alpha() -> None:
    probe = compare_column(_numeric(BASE), _numeric(SHIFTED), DriftConfig())
    for small_sample in (10, 1000):
        config = DriftConfig(small_sample=small_sample)
        assert not compare_column(
            _numeric(BASE), _numeric(SHIFTED), config, alpha=probe.p_value
        ).drifted
        assert compare_column(
            _numeric(BASE), _numeric(SHIFTED), config, alpha=probe.p_value * 1.01
        ).drifted


def test_undrifted_data_is_not_drift() -> None:
    for small_sample in (10, 1000):
        result = compare_column(
            _numeric(BASE), _numeric(BASE), DriftConfig(small_sample=small_sample)
        )
        assert not result.drifted and result.score == 0.0 and result.p_value == 1.0
        assert result.psi == 0.0 and result.jensenshannon == 0.0
        assert result.reference == result.current and len(result.bins) == 10
    uneven = BASE + [0.0] * 200  # the PSI bins are weighted by rows, not by distinct values
    same = compare_column(_numeric(uneven), _numeric(uneven), DriftConfig())
    assert same.psi == 0.0 and same.reference == same.current


def test_alpha_is_shared_among_the_features_judged_together() -> None:
    """Bonferroni: a p-value under `p_value` but not under `p_value / 2` flags a feature judged
    alone, not one of two features judged together."""
    near = [v + 12 for v in BASE]
    alone = compare_column(_numeric(BASE), _numeric(near), DriftConfig())
    config = DriftConfig(p_value=alone.p_value * 1.5)
    assert compare_column(_numeric(BASE), _numeric(near), config).drifted
    both = compare_profiles(_dataset(x=BASE, y=BASE), _dataset(x=near, y=near), config)
    assert both.drifted == [] and set(both.features) == {"x", "y"}
    one = compare_profiles(
        _dataset(x=BASE, y=BASE), _dataset(x=near, y=near), config, columns=["x"]
    )
    assert one.drifted == ["x"] and set(one.features) == {"x"}


def test_columns_missing_on_either_side_or_of_no_judged_type_are_not_judged() -> None:
    reference = _dataset(w=BASE, x=BASE, y=BASE)
    result = compare_profiles(reference, _dataset(x=SHIFTED, z=SHIFTED, y=BASE))
    assert set(result.features) == {"x", "y"} and result.drifted == ["x"]
    assert result.features["x"].p_value < 1e-10
    lists = pl.DataFrame({"l": [[1.0]] * 500, "x": BASE})
    other = profile_frame(lists, categorical=[])
    assert other.columns["l"].kind == "other"
    assert set(compare_profiles(other, other).features) == {"x"}


def test_the_data_set_drifts_when_the_share_of_drifted_features_reaches_the_configured_one() -> (
    None
):
    reference = _dataset(x=BASE, y=BASE)
    current = _dataset(x=SHIFTED, y=BASE)
    assert compare_profiles(reference, current).dataset_drift  # 1 of 2 reaches the default 0.5
    assert not compare_profiles(reference, current, DriftConfig(dataset_share=0.6)).dataset_drift


def test_a_categorical_mix_change_needs_its_jensen_shannon_distance_above_the_cut() -> None:
    before, after = _categorical(MIX_BEFORE), _categorical(MIX_AFTER)
    drifted = compare_column(before, after, DriftConfig(small_sample=10))
    assert drifted.drifted and drifted.kind == "categorical" and drifted.test == "chi2"
    assert drifted.score == drifted.jensenshannon > 0.1 and drifted.wasserstein is None
    assert drifted.bins == ["a", "b", "c", "d"]
    strict = {"jensenshannon_threshold": 0.99}
    assert not compare_column(before, after, DriftConfig(small_sample=499, **strict)).drifted
    small = compare_column(before, after, DriftConfig(small_sample=500, **strict))
    assert small.drifted and small.rule.endswith("(500 rows)")
    at = DriftConfig(small_sample=10, jensenshannon_threshold=drifted.score)
    assert compare_column(before, after, at).drifted
    quiet = DriftConfig(small_sample=10, p_value=1e-300)
    assert not compare_column(before, after, quiet).drifted
    same = compare_column(before, _categorical(MIX_BEFORE), DriftConfig(small_sample=10))
    assert not same.drifted and same.score == 0.0


def test_a_numeric_feature_with_few_values_is_judged_as_categorical() -> None:
    five = [float(i % 5) for i in range(500)]
    result = compare_column(_numeric(five), _numeric([v + 1 for v in five]), DriftConfig())
    assert result.kind == "categorical" and result.test == "chi2" and result.drifted
    assert len(result.bins) == 6 and result.bins[0] == "0"  # values as labels, in order
    six = [float(i % 6) for i in range(600)]
    numeric = compare_column(_numeric(six), _numeric(six), DriftConfig())
    assert numeric.kind == "numeric" and not numeric.drifted


def test_no_current_values_is_no_drift() -> None:
    empty = profile_frame(
        pl.DataFrame({"x": pl.Series([None] * 5, dtype=pl.Float64)}), categorical=[]
    ).columns["x"]
    assert empty.kind == "numeric"
    for reference, kind in ((_numeric(BASE), "numeric"), (_numeric([1.0, 2.0] * 9), "categorical")):
        result = compare_column(reference, empty, DriftConfig())
        assert (result.name, result.kind, result.reference_rows) == ("x", kind, reference.count)
        assert not result.drifted and result.current_rows == 0
        assert result.rule == "no current values" and result.p_value == 1.0
    numeric = compare_column(_numeric(BASE), empty, DriftConfig())
    assert (numeric.test, numeric.effect) == ("ks", "wasserstein")
    none = _categorical([None] * 5)  # type: ignore[list-item]
    result = compare_column(_categorical(MIX_BEFORE), none, DriftConfig())
    assert not result.drifted and result.kind == "categorical" and result.current_rows == 0
    assert (result.test, result.effect) == ("chi2", "jensenshannon")


def test_a_single_current_value_is_judged() -> None:
    result = compare_column(_numeric(BASE), _numeric([500.0]), DriftConfig())
    assert result.current_rows == 1 and result.rule != "no current values"
    assert result.kind == "numeric" and result.p_value < 0.05 and result.drifted


def test_a_type_change_between_training_and_production_is_drift() -> None:
    changed = compare_column(_numeric(BASE), _categorical(["x"] * 500), DriftConfig())
    assert changed.drifted and changed.current_rows == 500
    back = compare_column(_categorical(["x"] * 500), _numeric(BASE), DriftConfig())
    assert back.drifted and back.kind == "categorical"
