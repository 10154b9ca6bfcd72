"""Drift statistics agree with scipy to 1e-9, weighted equals repeated, bad input is refused."""

from __future__ import annotations

import doctest
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.spatial import distance

from aidlc.errors import InvalidInput
from aidlc.monitor import stats
from aidlc.monitor.stats import (
    align,
    chi2_contingency,
    chisquare,
    jensenshannon,
    ks_2samp,
    ks_2samp_sorted,
    normalized_wasserstein,
    psi,
    wasserstein,
    wasserstein_sorted,
)


def close(expected: float) -> object:
    return pytest.approx(float(expected), rel=1e-9, abs=1e-12)


def weighted(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, counts = np.unique(sample, return_counts=True)
    return values, counts


def scipy_ks(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    result = sps.ks_2samp(a, b, method="asymp")
    return float(result.statistic), float(result.pvalue)


# Small samples with many ties: integer values from a narrow range, 1 to 12 of them.
samples = st.lists(st.integers(-5, 5), min_size=1, max_size=12).map(
    lambda xs: np.array(xs, dtype=np.float64)
)
float_samples = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), min_size=1, max_size=12
).map(lambda xs: np.array(xs, dtype=np.float64))
count_vectors = st.integers(1, 8).flatmap(
    lambda k: st.tuples(
        st.lists(st.integers(0, 20), min_size=k, max_size=k),
        st.lists(st.integers(0, 20), min_size=k, max_size=k),
    )
)
FAST = settings(max_examples=60, deadline=None)


# --- align ---------------------------------------------------------------------------------


def test_align_unions_sorted_values_and_sums_repeated_counts() -> None:
    values, ca, cb = align([3, 1, 3], [1, 2, 4], [2, 1], [5, 1])
    assert values.tolist() == [1.0, 2.0, 3.0]
    assert ca.tolist() == [2.0, 0.0, 5.0]
    assert cb.tolist() == [1.0, 5.0, 0.0]
    assert values.dtype == ca.dtype == cb.dtype == np.float64


def test_align_accepts_an_empty_side() -> None:
    values, ca, cb = align([], [], [2.0, 1.0], [1, 1])
    assert values.tolist() == [1.0, 2.0]
    assert ca.tolist() == [0.0, 0.0]
    assert cb.tolist() == [1.0, 1.0]


@FAST
@given(float_samples, float_samples)
def test_align_is_sorted_unique_and_preserves_counts_per_value(
    a: np.ndarray, b: np.ndarray
) -> None:
    counts_a = np.arange(1, a.size + 1, dtype=np.float64)
    counts_b = np.arange(1, b.size + 1, dtype=np.float64) * 2
    values, ca, cb = align(a, counts_a, b, counts_b)
    assert np.all(np.diff(values) > 0)
    assert set(values.tolist()) == set(a.tolist()) | set(b.tolist())
    assert ca.sum() == counts_a.sum() and cb.sum() == counts_b.sum()
    for i, value in enumerate(values):
        assert ca[i] == counts_a[a == value].sum()
        assert cb[i] == counts_b[b == value].sum()


# --- Kolmogorov-Smirnov --------------------------------------------------------------------

KS_CASES = [
    ([1.0, 2.0, 3.0], [2.0, 3.0, 5.0]),
    ([0.0, 0.0, 1.0, 1.0, 1.0], [1.0, 2.0]),
    ([5.0], [1.0, 2.0, 3.0, 4.0, 6.0, 7.0]),
    (np.arange(50.0), np.arange(25.0, 90.0)),
    ([1.0, 1.0, 1.0], [1.0, 1.0]),
]


@pytest.mark.parametrize(("a", "b"), KS_CASES)
def test_ks_matches_scipy_asymp_on_fixed_cases(a: list[float], b: list[float]) -> None:
    a_arr, b_arr = np.sort(np.asarray(a)), np.sort(np.asarray(b))
    d, p = scipy_ks(a_arr, b_arr)
    assert ks_2samp(*weighted(a_arr), *weighted(b_arr)) == (close(d), close(p))
    assert ks_2samp_sorted(a_arr, b_arr) == (close(d), close(p))


def test_ks_on_random_samples_of_thousands_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    a = np.sort(np.round(rng.normal(size=3000), 2))
    b = np.sort(np.round(rng.normal(0.05, 1.0, size=5000), 2))
    d, p = scipy_ks(a, b)
    assert 1e-6 < p < 0.5  # a non-trivial p-value, not a clipped 0 or 1
    assert 2.2 <= 1875 * d * d < 370  # in scipy's exact Smirnov band (n_eff = 1875)
    assert ks_2samp_sorted(a, b) == (close(d), close(p))
    assert ks_2samp(*weighted(a), *weighted(b)) == (close(d), close(p))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_ks_with_one_observation_per_side_has_p_value_one() -> None:
    # scipy's asymptotic p-value is NaN here (round(0.5) = 0); the exact one is 1.
    assert np.isnan(scipy_ks(np.array([1.0]), np.array([2.0]))[1])
    assert ks_2samp([1.0], [1], [2.0], [1]) == (1.0, 1.0)
    assert ks_2samp_sorted([1.0], [2.0]) == (1.0, 1.0)
    assert sps.ks_2samp([1.0], [2.0], method="exact").pvalue == 1.0


@pytest.mark.parametrize(
    ("n", "shift"),
    [
        (300, 40),  # n_eff 150, d = 0.133, n_eff d^2 = 2.7
        (20_000, 900),  # n_eff 10_000, d = 0.045, n_eff d^2 = 20
        (200_000, 1_500),  # n_eff 100_000, d = 0.0075, n_eff d^2 = 5.6
        (1_000_000, 3_000),  # n_eff 500_000, n_eff d^2 = 4.5: scipy's slow exact Smirnov sum
        (50_000, 2_000),  # n_eff 25_000, d = 0.04, n_eff d^2 = 40
        (3_000_000, 6_000),  # n_eff 1.5e6 (n_eff d^2 = 6): beyond xsf's exact limit
    ],
)
def test_ks_p_value_in_the_smirnov_band_matches_scipy_kstwo(n: int, shift: int) -> None:
    # Two values only: the statistic is exactly shift/n and n_eff is exactly n/2, so the
    # p-value must equal kstwo.sf there, whichever internal branch computes it.
    half = n // 2
    d, p = ks_2samp([0.0, 1.0], [half, half], [0.0, 1.0], [half - shift, half + shift])
    assert d == close(shift / n)
    assert 2.2 <= half * d * d < 370
    assert p == close(sps.kstwo.sf(d, float(half)))
    assert 0 < p < 0.2


def test_ks_weighted_band_p_value_matches_full_scipy_ks_2samp() -> None:
    values = np.array([0.0, 1.0, 2.0])
    a = np.repeat(values, [4000, 4000, 4000])
    b = np.repeat(values, [3700, 4150, 4150])
    d, p = scipy_ks(a, b)
    assert 2.2 <= 6000 * d * d < 370  # scipy took its exact Smirnov branch
    assert ks_2samp(values, [4000, 4000, 4000], values, [3700, 4150, 4150]) == (
        close(d),
        close(p),
    )


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@FAST
@given(samples, samples)
def test_weighted_ks_equals_scipy_on_repeated_values(a: np.ndarray, b: np.ndarray) -> None:
    d, p = scipy_ks(a, b)
    got_d, got_p = ks_2samp(*weighted(a), *weighted(b))
    assert got_d == close(d)
    assert got_p == (1.0 if a.size == b.size == 1 else close(p))
    assert 0.0 <= got_p <= 1.0


@FAST
@given(float_samples, float_samples)
def test_sorted_ks_equals_scipy_and_the_weighted_form(a: np.ndarray, b: np.ndarray) -> None:
    a, b = np.sort(a), np.sort(b)
    assume(not (a.size == b.size == 1))
    d, p = scipy_ks(a, b)
    assert ks_2samp_sorted(a, b) == (close(d), close(p))
    assert ks_2samp(*weighted(a), *weighted(b)) == (close(d), close(p))


def test_ks_ignores_values_with_zero_counts() -> None:
    with_zeros = ks_2samp([0.0, 1.0, 2.0, 9.0], [0, 3, 1, 0], [-4.0, 1.0, 2.0], [0, 1, 3])
    assert with_zeros == ks_2samp([1.0, 2.0], [3, 1], [1.0, 2.0], [1, 3])


# --- chi-square ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [([10, 20, 30], [15, 15, 30]), ([1, 0, 5, 7], [0, 3, 2, 9]), ([100, 1], [90, 11])],
)
def test_chi2_contingency_matches_scipy_without_yates(a: list[int], b: list[int]) -> None:
    expected = sps.chi2_contingency(np.array([a, b]), correction=False)
    statistic, p, dof = chi2_contingency(a, b)
    assert (statistic, p) == (close(expected.statistic), close(expected.pvalue))
    assert dof == expected.dof == len(a) - 1


def test_chi2_contingency_drops_categories_empty_on_both_sides() -> None:
    expected = sps.chi2_contingency(np.array([[10, 20], [20, 10]]), correction=False)
    statistic, p, dof = chi2_contingency([0, 10, 0, 20], [0, 20, 0, 10])
    assert (statistic, p, dof) == (close(expected.statistic), close(expected.pvalue), 1)


def test_chi2_contingency_with_one_category_is_no_evidence() -> None:
    assert chi2_contingency([5, 0], [7, 0]) == (0.0, 1.0, 0)
    assert chi2_contingency([5], [7]) == (0.0, 1.0, 0)


@FAST
@given(count_vectors)
def test_chi2_contingency_equals_scipy(tables: tuple[list[int], list[int]]) -> None:
    a, b = np.array(tables[0]), np.array(tables[1])
    assume(a.sum() > 0 and b.sum() > 0)
    keep = (a + b) > 0
    statistic, p, dof = chi2_contingency(a, b)
    if keep.sum() < 2:
        assert (statistic, p, dof) == (0.0, 1.0, 0)
        return
    expected = sps.chi2_contingency(np.array([a[keep], b[keep]]), correction=False)
    assert (statistic, p, dof) == (close(expected.statistic), close(expected.pvalue), expected.dof)


def test_chisquare_scales_proportions_to_the_observed_total() -> None:
    observed = [30, 14, 6]
    expected = sps.chisquare(observed, [25.0, 15.0, 10.0])
    assert chisquare(observed, [5, 3, 2]) == (close(expected.statistic), close(expected.pvalue))
    assert chisquare(observed, [0.5, 0.3, 0.2]) == (
        close(expected.statistic),
        close(expected.pvalue),
    )


def test_chisquare_drops_impossible_categories_without_observations() -> None:
    expected = sps.chisquare([30, 10], [20.0, 20.0])
    assert chisquare([30, 0, 10], [0.5, 0.0, 0.5]) == (
        close(expected.statistic),
        close(expected.pvalue),
    )
    assert chisquare([4, 0], [1.0, 0.0]) == (0.0, 1.0)


def test_chisquare_refuses_observations_in_a_zero_proportion_category() -> None:
    with pytest.raises(InvalidInput, match="expected_proportions is 0 for category 1"):
        chisquare([30, 2, 10], [0.5, 0.0, 0.5])


@FAST
@given(count_vectors)
def test_chisquare_equals_scipy(vectors: tuple[list[int], list[int]]) -> None:
    observed = np.array(vectors[0], dtype=np.float64)
    proportions = np.array(vectors[1], dtype=np.float64) + 1.0
    assume(observed.sum() > 0 and observed.size > 1)
    f_exp = proportions / proportions.sum() * observed.sum()
    expected = sps.chisquare(observed, f_exp)
    assert chisquare(observed, proportions) == (
        close(expected.statistic),
        close(expected.pvalue),
    )


# --- PSI -----------------------------------------------------------------------------------


def test_psi_hand_computed_without_empty_bins() -> None:
    # p = [0.5, 0.5], q = [0.25, 0.75]:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    #   = -0.25 ln(0.5) + 0.25 ln(1.5) = 0.25 (ln 2 + ln 1.5) = 0.25 ln 3
    assert psi([50, 50], [25, 75]) == close(0.25 * math.log(3.0))
    # p = [0.2, 0.3, 0.5], q = [0.4, 0.4, 0.2]:
    # 0.2 ln 2 + 0.1 ln(4/3) + (-0.3) ln(0.4) = 0.2 ln 2 + 0.1 ln(4/3) + 0.3 ln(2.5)
    hand = 0.2 * math.log(2.0) + 0.1 * math.log(4 / 3) + 0.3 * math.log(2.5)
    assert psi([2, 3, 5], [4, 4, 2]) == close(hand)


def test_psi_replaces_zero_proportions_with_epsilon() -> None:
    # p = [1, 0] -> [1, 1e-4] (no renormalisation), q = [0.5, 0.5]:
    # (0.5 - 1) ln(0.5 / 1) + (0.5 - 1e-4) ln(0.5 / 1e-4) = 0.5 ln 2 + 0.4999 ln 5000
    assert psi([10, 0], [5, 5]) == close(0.5 * math.log(2.0) + 0.4999 * math.log(5000.0))
    # Same with epsilon = 0.01: 0.5 ln 2 + 0.49 ln 50
    assert psi([10, 0], [5, 5], epsilon=0.01) == close(0.5 * math.log(2.0) + 0.49 * math.log(50.0))
    # A bin empty on both sides contributes nothing.
    assert psi([50, 0, 50], [25, 0, 75]) == close(0.25 * math.log(3.0))


def test_psi_of_identical_proportions_is_zero() -> None:
    assert psi([1, 2, 3, 0], [10, 20, 30, 0]) == 0.0


@FAST
@given(count_vectors)
def test_psi_is_symmetric_and_non_negative(vectors: tuple[list[int], list[int]]) -> None:
    a, b = vectors
    assume(sum(a) > 0 and sum(b) > 0)
    forward = psi(a, b)
    assert forward >= 0.0
    assert psi(b, a) == close(forward)


@pytest.mark.parametrize("epsilon", [0.0, -1e-4, 1.0, float("nan"), "0.1"])
def test_psi_refuses_a_bad_epsilon(epsilon: object) -> None:
    with pytest.raises(InvalidInput, match=r"epsilon must be a number in \(0, 1\)"):
        psi([1, 1], [1, 1], epsilon=epsilon)  # type: ignore[arg-type]


# --- Jensen-Shannon ------------------------------------------------------------------------


def test_jensenshannon_fixed_cases() -> None:
    assert jensenshannon([1, 0], [0, 1]) == 1.0
    assert jensenshannon([3, 1, 0], [6, 2, 0]) == 0.0
    p, q = [10, 20, 30, 0], [5, 5, 20, 10]
    assert jensenshannon(p, q) == close(distance.jensenshannon(p, q, base=2))
    assert jensenshannon(p, q, base=math.e) == close(distance.jensenshannon(p, q))


@FAST
@given(count_vectors)
def test_jensenshannon_equals_scipy_and_lies_in_unit_interval(
    vectors: tuple[list[int], list[int]],
) -> None:
    a, b = vectors
    assume(sum(a) > 0 and sum(b) > 0)
    got = jensenshannon(a, b)
    assert got == close(np.nan_to_num(distance.jensenshannon(a, b, base=2)))
    assert 0.0 <= got <= 1.0
    assert jensenshannon(b, a) == close(got)


@pytest.mark.parametrize("base", [1.0, 0.0, -2.0, float("inf")])
def test_jensenshannon_refuses_a_bad_base(base: float) -> None:
    with pytest.raises(InvalidInput, match="base must be a positive number other than 1"):
        jensenshannon([1, 1], [1, 2], base=base)


# --- Wasserstein ---------------------------------------------------------------------------


def test_wasserstein_matches_scipy_with_weights() -> None:
    va, ca = [0.0, 1.0, 3.0, 3.0], [1.0, 2.5, 0.5, 1.0]
    vb, cb = [5.0, 1.0, 2.0], [0.25, 3.0, 1.0]
    assert wasserstein(va, ca, vb, cb) == close(sps.wasserstein_distance(va, vb, ca, cb))
    assert wasserstein([0, 1], [1, 1], [1, 2], [1, 1]) == 1.0
    assert wasserstein([4.0], [3], [4.0], [9]) == 0.0


def test_wasserstein_sorted_matches_scipy_on_thousands_with_ties() -> None:
    rng = np.random.default_rng(3)
    a = np.sort(np.round(rng.exponential(size=4000), 1))
    b = np.sort(np.round(rng.exponential(1.2, size=2500), 1))
    assert wasserstein_sorted(a, b) == close(sps.wasserstein_distance(a, b))
    assert wasserstein(*weighted(a), *weighted(b)) == close(sps.wasserstein_distance(a, b))


@FAST
@given(float_samples, float_samples, st.data())
def test_wasserstein_equals_scipy_weighted_and_repeated(
    a: np.ndarray, b: np.ndarray, data: st.DataObject
) -> None:
    ca = np.array(data.draw(st.lists(st.integers(0, 4), min_size=a.size, max_size=a.size)))
    cb = np.array(data.draw(st.lists(st.integers(0, 4), min_size=b.size, max_size=b.size)))
    assume(ca.sum() > 0 and cb.sum() > 0)
    expected = sps.wasserstein_distance(a, b, ca, cb)
    assert wasserstein(a, ca, b, cb) == close(expected)
    repeated_a, repeated_b = np.sort(np.repeat(a, ca)), np.sort(np.repeat(b, cb))
    assert wasserstein_sorted(repeated_a, repeated_b) == close(expected)


@FAST
@given(float_samples, float_samples, st.data())
def test_wasserstein_with_fractional_weights_equals_scipy(
    a: np.ndarray, b: np.ndarray, data: st.DataObject
) -> None:
    weight = st.floats(0.0, 10.0, allow_nan=False)
    ca = np.array(data.draw(st.lists(weight, min_size=a.size, max_size=a.size)))
    cb = np.array(data.draw(st.lists(weight, min_size=b.size, max_size=b.size)))
    assume(ca.sum() > 1e-6 and cb.sum() > 1e-6)
    expected = sps.wasserstein_distance(a, b, ca, cb)
    assert wasserstein(a, ca, b, cb) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_normalized_wasserstein_divides_by_reference_population_std() -> None:
    ref = np.array([1.0, 2.0, 2.0, 4.0, 7.0])
    cur = np.array([2.0, 3.0, 5.0, 9.0])
    expected = sps.wasserstein_distance(ref, cur) / np.std(ref)
    assert normalized_wasserstein(*weighted(ref), *weighted(cur)) == close(expected)
    assert normalized_wasserstein([0, 2], [1, 1], [1, 3], [1, 1]) == 1.0


def test_normalized_wasserstein_of_constant_reference_uses_the_tiny_floor() -> None:
    assert normalized_wasserstein([5.0], [10], [5.0], [3]) == 0.0
    # distance 1, std 0 -> divided by 1e-12 * max(1, |5|) = 5e-12
    assert normalized_wasserstein([5.0], [10], [6.0], [3]) == close(1.0 / 5e-12)
    assert normalized_wasserstein([0.0], [10], [0.5], [3]) == close(0.5 / 1e-12)


# --- invalid input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ks_2samp([1, 2], [1], [1], [1]), "values_a has 2 entries but counts_a has 1"),
        (lambda: wasserstein([1], [1], [1], [-1]), "counts_b contains negative counts"),
        (lambda: ks_2samp([1], [np.inf], [1], [1]), "counts_a contains NaN or infinite"),
        (lambda: ks_2samp([np.nan], [1], [1], [1]), "values_a contains NaN or infinite"),
        (lambda: wasserstein([1], [1], [np.inf], [1]), "values_b contains NaN or infinite"),
        (lambda: ks_2samp([1], [0], [1], [1]), "counts_a is empty"),
        (lambda: normalized_wasserstein([1], [1], [], []), "counts_b is empty"),
        (lambda: chi2_contingency([1, 2], [0, 0]), "counts_b is empty"),
        (lambda: chi2_contingency([1, 2], [1, 2, 3]), "counts_a has 2 bins but counts_b has 3"),
        (lambda: psi([1, 2, 3], [1, 2]), "counts_ref has 3 bins but counts_cur has 2"),
        (lambda: psi([0, 0], [1, 2]), "counts_ref is empty"),
        (lambda: jensenshannon([1, np.nan], [1, 2]), "counts_a contains NaN or infinite"),
        (lambda: chisquare([1, 2], [0, 1]), "expected_proportions is 0 for category 0"),
        (lambda: chisquare([1, 2], [0, 0]), "expected_proportions is empty"),
        (lambda: chisquare([0, 0], [1, 1]), "observed is empty"),
        (lambda: ks_2samp_sorted([2.0, 1.0], [1.0]), "a_sorted is not sorted ascending"),
        (lambda: wasserstein_sorted([1.0], []), "b_sorted is empty"),
        (lambda: wasserstein_sorted([1.0, np.nan], [1.0]), "a_sorted contains NaN"),
        (lambda: align([[1, 2]], [[1, 1]], [1], [1]), "values_a must be a 1-D array"),
        (lambda: align(["x"], [1], [1], [1]), "values_a must be a 1-D array of numbers"),
    ],
)
def test_invalid_input_is_refused_with_a_clear_message(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()


def test_docstring_examples_run() -> None:
    result = doctest.testmod(stats)
    assert result.failed == 0
    assert result.attempted >= 10
