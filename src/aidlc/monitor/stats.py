"""Drift statistics on weighted values (distinct values + counts).

The same functions serve raw samples (``np.unique(x, return_counts=True)``) and bucketed
sketches (bucket representative values + counts); ``*_sorted`` are fast paths for raw arrays.
Statistics are computed in numpy; scipy is used only for the p-value distributions.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy.stats import kstwo

from aidlc.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "align",
    "chi2_contingency",
    "chisquare",
    "jensenshannon",
    "ks_2samp",
    "ks_2samp_sorted",
    "normalized_wasserstein",
    "psi",
    "wasserstein",
    "wasserstein_sorted",
]


def align(
    values_a: npt.ArrayLike,
    counts_a: npt.ArrayLike,
    values_b: npt.ArrayLike,
    counts_b: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Put two weighted samples on one grid: the sorted union of their values.

    Inputs may be unsorted and may repeat a value (its counts are summed). Returns
    ``(values, counts_a, counts_b)``: values sorted and unique, counts 0 where a side lacks
    the value. Either side may be empty here; the statistics below reject empty sides.

    >>> v, a, b = align([3, 1, 3], [1, 2, 4], [2, 1], [5, 1])
    >>> v.tolist(), a.tolist(), b.tolist()
    ([1.0, 2.0, 3.0], [2.0, 0.0, 5.0], [1.0, 5.0, 0.0])
    """
    va, ca = _weighted(values_a, counts_a, "a")
    vb, cb = _weighted(values_b, counts_b, "b")
    values, inverse = np.unique(np.concatenate([va, vb]), return_inverse=True)
    k = values.size
    out_a = np.bincount(inverse[: va.size], weights=ca, minlength=k).astype(np.float64)
    out_b = np.bincount(inverse[va.size :], weights=cb, minlength=k).astype(np.float64)
    return values.astype(np.float64), out_a, out_b


def ks_2samp(
    values_a: npt.ArrayLike,
    counts_a: npt.ArrayLike,
    values_b: npt.ArrayLike,
    counts_b: npt.ArrayLike,
) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov test: ``(statistic, p_value)``.

    Equals ``scipy.stats.ks_2samp(np.repeat(va, ca), np.repeat(vb, cb), method="asymp")``,
    except where scipy's p-value is NaN (both sides hold a single observation, so the
    effective size ``round(n*m/(n+m))`` is 0): there the p-value is 1.0, which is also the
    exact p-value (nothing can be rejected from one observation per side).

    >>> ks_2samp([1, 2, 3], [1, 1, 1], [2, 3, 5], [1, 1, 1])[0]
    0.33333333333333337
    """
    _, ca, cb = _aligned_sides(values_a, counts_a, values_b, counts_b)
    cum_a = np.cumsum(ca)
    cum_b = np.cumsum(cb)
    # Dividing by the last cumulative sum (not a separate sum) makes both CDFs end at exactly 1.
    n_a, n_b = float(cum_a[-1]), float(cum_b[-1])
    return _ks_result(cum_a / n_a - cum_b / n_b, n_a, n_b)


def ks_2samp_sorted(a_sorted: npt.ArrayLike, b_sorted: npt.ArrayLike) -> tuple[float, float]:
    """`ks_2samp` for two raw samples already sorted ascending (no counts, no copies by repeat).

    Ties are handled as scipy does: each empirical CDF is evaluated with ``side="right"`` at
    every observation of either sample.

    >>> ks_2samp_sorted([1.0, 2.0, 3.0], [2.0, 3.0, 5.0])[0]
    0.33333333333333337
    """
    a = _sorted_sample(a_sorted, "a_sorted")
    b = _sorted_sample(b_sorted, "b_sorted")
    merged, cum_a, cum_b = _merge_sorted(a, b)
    # scipy evaluates both CDFs at every observation with side="right"; within a run of tied
    # values that is the value at the run's last position, so evaluating only there is equal.
    run_end = np.empty(merged.size, dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=run_end[:-1])
    run_end[-1] = True
    diffs = cum_a[run_end] / a.size - cum_b[run_end] / b.size
    return _ks_result(diffs, float(a.size), float(b.size))


def chi2_contingency(counts_a: npt.ArrayLike, counts_b: npt.ArrayLike) -> tuple[float, float, int]:
    """Pearson chi-square test of homogeneity of two count vectors: ``(statistic, p, dof)``.

    The 2 x k table has ``counts_a`` and ``counts_b`` as rows; categories empty in both rows
    are dropped first, and no Yates correction is applied, so the result equals
    ``scipy.stats.chi2_contingency(table, correction=False)``. Fewer than two non-empty
    categories give ``(0.0, 1.0, 0)``.

    >>> chi2_contingency([10, 20, 0], [20, 10, 0])
    (6.666666666666667, 0.009823274507519235, 1)
    """
    ca, cb = _paired_counts(counts_a, counts_b, "counts_a", "counts_b")
    _require_nonempty(ca, "counts_a")
    _require_nonempty(cb, "counts_b")
    keep = (ca + cb) > 0
    table = np.vstack([ca[keep], cb[keep]])
    dof = int(table.shape[1]) - 1
    if dof < 1:
        return 0.0, 1.0, 0
    rows = table.sum(axis=1, keepdims=True)
    cols = table.sum(axis=0, keepdims=True)
    expected = rows * cols / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, float(special.chdtrc(dof, statistic)), dof


def chisquare(observed: npt.ArrayLike, expected_proportions: npt.ArrayLike) -> tuple[float, float]:
    """Pearson goodness of fit of observed counts to expected proportions: ``(statistic, p)``.

    Proportions need not sum to 1: they are scaled to the observed total, then the result
    equals ``scipy.stats.chisquare(observed, f_exp)``. A category with proportion 0 and no
    observations is dropped (it counts for no degree of freedom); one with proportion 0 but
    observations makes the hypothesis impossible and raises `InvalidInput`. A single
    remaining category gives ``(0.0, 1.0)``.

    >>> chisquare([30, 10], [0.5, 0.5])
    (10.0, 0.001565402258002549)
    """
    obs, props = _paired_counts(observed, expected_proportions, "observed", "expected_proportions")
    _require_nonempty(obs, "observed")
    _require_nonempty(props, "expected_proportions")
    impossible = np.flatnonzero((props == 0) & (obs > 0))
    if impossible.size:
        raise InvalidInput(
            f"expected_proportions is 0 for category {int(impossible[0])} but observed has "
            f"{obs[impossible[0]]:g} there; give every observed category a positive proportion"
        )
    keep = props > 0
    obs = obs[keep]
    expected = props[keep] / props.sum() * obs.sum()
    dof = obs.size - 1
    if dof < 1:
        return 0.0, 1.0
    statistic = float(((obs - expected) ** 2 / expected).sum())
    return statistic, float(special.chdtrc(dof, statistic))


def psi(counts_ref: npt.ArrayLike, counts_cur: npt.ArrayLike, epsilon: float = 1e-4) -> float:
    """Population stability index of two count vectors over the same bins.

    With proportions ``p = counts_ref / sum(counts_ref)`` and ``q = counts_cur / sum(counts_cur)``,
    every proportion that is exactly 0 (in p or in q) is replaced by ``epsilon``; the other
    proportions are left as they are (no renormalisation). Then
    ``PSI = sum((q - p) * ln(q / p))``. A bin empty on both sides contributes 0. PSI is
    symmetric in its arguments, >= 0, and 0 for identical proportions.

    >>> round(psi([50, 50], [25, 75]), 12)  # 0.25 * ln(3)
    0.274653072167
    """
    if not (isinstance(epsilon, int | float) and math.isfinite(epsilon) and 0 < epsilon < 1):
        raise InvalidInput(f"epsilon must be a number in (0, 1), got {epsilon!r}")
    ref, cur = _paired_counts(counts_ref, counts_cur, "counts_ref", "counts_cur")
    p = _proportions(ref, "counts_ref")
    q = _proportions(cur, "counts_cur")
    p[p == 0] = epsilon
    q[q == 0] = epsilon
    return float(np.sum((q - p) * np.log(q / p)))


def jensenshannon(counts_a: npt.ArrayLike, counts_b: npt.ArrayLike, base: float = 2.0) -> float:
    """Jensen-Shannon distance (square root of the divergence) of two normalised count vectors.

    Equals ``scipy.spatial.distance.jensenshannon(counts_a, counts_b, base=base)``; lies in
    [0, 1] for base 2.

    >>> jensenshannon([1, 0], [0, 1])
    1.0
    """
    if not (isinstance(base, int | float) and math.isfinite(base) and base > 0 and base != 1):
        raise InvalidInput(f"base must be a positive number other than 1, got {base!r}")
    ca, cb = _paired_counts(counts_a, counts_b, "counts_a", "counts_b")
    p = _proportions(ca, "counts_a")
    q = _proportions(cb, "counts_b")
    m = (p + q) / 2.0
    divergence = (_rel_entr(p, m).sum() + _rel_entr(q, m).sum()) / math.log(base)
    # Rounding can leave a divergence of -1e-17 for identical inputs; the distance is then 0.
    return math.sqrt(max(float(divergence), 0.0) / 2.0)


def wasserstein(
    values_a: npt.ArrayLike,
    counts_a: npt.ArrayLike,
    values_b: npt.ArrayLike,
    counts_b: npt.ArrayLike,
) -> float:
    """1-D Wasserstein-1 (earth mover's) distance between two weighted samples.

    Integral of ``|F_a - F_b|`` over the merged values; equals
    ``scipy.stats.wasserstein_distance(va, vb, ca, cb)``.

    >>> wasserstein([0, 1], [1, 1], [1, 2], [1, 1])
    1.0
    """
    values, ca, cb = _aligned_sides(values_a, counts_a, values_b, counts_b)
    return _wasserstein_aligned(values, ca, cb)


def wasserstein_sorted(a_sorted: npt.ArrayLike, b_sorted: npt.ArrayLike) -> float:
    """`wasserstein` for two raw samples already sorted ascending, every value weighing 1.

    >>> wasserstein_sorted([0.0, 1.0], [1.0, 2.0])
    1.0
    """
    a = _sorted_sample(a_sorted, "a_sorted")
    b = _sorted_sample(b_sorted, "b_sorted")
    merged, cum_a, cum_b = _merge_sorted(a, b)
    # Between tied neighbours the gap is 0, so counting "a's so far" needs no side="right" search.
    cdf_gap = np.abs(cum_a[:-1] / a.size - cum_b[:-1] / b.size)
    return float(np.dot(cdf_gap, np.diff(merged)))


def normalized_wasserstein(
    values_a: npt.ArrayLike,
    counts_a: npt.ArrayLike,
    values_b: npt.ArrayLike,
    counts_b: npt.ArrayLike,
) -> float:
    """`wasserstein` divided by the weighted population standard deviation (ddof=0) of side a.

    Side a is the reference. The divisor is ``max(std_a, 1e-12 * max(1, |mean_a|))``: a
    constant reference (std 0, or rounding noise far below its magnitude) gives 0.0 when the
    distance is 0 and a very large but finite value otherwise, so thresholds still fire and
    reports stay JSON-safe. (Evidently floors the std at an absolute 0.001 instead, which
    depends on the feature's units.)

    >>> normalized_wasserstein([0, 2], [1, 1], [1, 3], [1, 1])
    1.0
    """
    values, ca, cb = _aligned_sides(values_a, counts_a, values_b, counts_b)
    distance = _wasserstein_aligned(values, ca, cb)
    weights = ca / ca.sum()
    mean = float(weights @ values)
    std = math.sqrt(float(weights @ (values - mean) ** 2))
    return distance / max(std, 1e-12 * max(1.0, abs(mean)))


def _ks_result(cdf_diffs: FloatArray, n_a: float, n_b: float) -> tuple[float, float]:
    # Mirrors scipy.stats.ks_2samp (two-sided, method="asymp") step by step.
    min_s = float(np.clip(-cdf_diffs.min(), 0.0, 1.0))
    max_s = float(cdf_diffs.max())
    d = min_s if min_s > max_s else max_s
    m, n = max(n_a, n_b), min(n_a, n_b)
    en = float(np.round(m * n / (m + n)))
    return d, _kstwo_sf(d, en)


def _kstwo_sf(d: float, n: float) -> float:
    """``scipy.stats.kstwo.sf(d, n)``, with scipy's slowest branch evaluated ~10x faster."""
    if n < 1:
        return 1.0
    # In this band scipy 1.17 (stats._ksstats._kolmogn) returns 2 * special.smirnov(n, d), an
    # exact Birnbaum-Tingey sum that xsf evaluates term by term in double-double arithmetic
    # (0.7 s at n = 500_000). `_smirnov_sf` evaluates the same sum vectorised; above
    # 1_000_000 xsf switches to a closed-form approximation, which scipy then does quickly.
    t = n * d
    if 140 < n <= _SMIRNOV_MAX_COMPUTE_N and 1 < t < n - 1 and d < 0.5 and 2.2 <= t * d < 370:
        return float(np.clip(2.0 * _smirnov_sf(int(n), d), 0.0, 1.0))
    return float(np.clip(kstwo.sf(d, n), 0.0, 1.0))


_SMIRNOV_MAX_COMPUTE_N = 1_000_000
_STIRLING_TABLE_SIZE = 16
_z = np.arange(1, _STIRLING_TABLE_SIZE, dtype=np.float64)
# ln(z!) - (z ln z - z + ln(2 pi z) / 2) for small z, where the asymptotic series is not exact.
_STIRLING_TABLE = np.concatenate(
    [[np.inf], special.gammaln(_z + 1) - (_z * np.log(_z) - _z + 0.5 * np.log(2 * np.pi * _z))]
)
del _z


def _stirling_error(z: FloatArray) -> FloatArray:
    out = np.empty_like(z)
    small = z < _STIRLING_TABLE_SIZE
    out[small] = _STIRLING_TABLE[z[small].astype(np.int64)]
    r = 1.0 / z[~small]
    r2 = r * r
    out[~small] = r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 * (1 / 1680 - r2 / 1188))))
    return out


def _smirnov_sf(n: int, x: float) -> float:
    """P(D+_n > x) = x * sum_v C(n, v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v), v = 0..n(1-x).

    Each term is taken in log space with ln C(n, v) written through Stirling's series, so the
    large parts (n ln n, ...) cancel analytically instead of in floating point; this keeps
    ~1e-13 relative accuracy where ``gammaln`` differences would lose ~1e-9 at n = 500_000.
    """
    nx = n * x
    v = np.arange(1.0, math.floor(n * (1.0 - x)) + 1.0)
    rest = n - v
    inside = rest > nx  # terms with 1 - x - v/n <= 0 are 0
    v, rest = v[inside], rest[inside]
    log_terms = (
        v * np.log1p(nx / v)
        + rest * np.log1p(-nx / rest)
        - np.log(x + v / n)
        + 0.5 * np.log(n / (2 * np.pi * v * rest))
        + _stirling_error(np.array([float(n)]))[0]
        - _stirling_error(v)
        - _stirling_error(rest)
    )
    log_terms = np.concatenate([[n * math.log1p(-x) - math.log(x)], log_terms])
    top = float(log_terms.max())
    return x * math.exp(top) * float(np.exp(log_terms - top).sum())


def _merge_sorted(
    a: FloatArray, b: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Merge two sorted arrays without a full sort: ``(merged, #a so far, #b so far)``."""
    total = a.size + b.size
    slot_a = np.arange(a.size) + np.searchsorted(b, a, side="left")
    from_a = np.zeros(total, dtype=bool)
    from_a[slot_a] = True
    merged = np.empty(total, dtype=np.float64)
    merged[slot_a] = a
    merged[~from_a] = b
    cum_a = np.cumsum(from_a, dtype=np.int64)
    return merged, cum_a, np.arange(1, total + 1, dtype=np.int64) - cum_a


def _wasserstein_aligned(values: FloatArray, ca: FloatArray, cb: FloatArray) -> float:
    cum_a = np.cumsum(ca)
    cum_b = np.cumsum(cb)
    cdf_a = cum_a[:-1] / cum_a[-1]
    cdf_b = cum_b[:-1] / cum_b[-1]
    return float(np.dot(np.abs(cdf_a - cdf_b), np.diff(values)))


def _rel_entr(x: FloatArray, y: FloatArray) -> FloatArray:
    # scipy.special.rel_entr for x >= 0 and y > 0 wherever x > 0 (true for y = (x + z) / 2).
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = x * np.log(x / y)
    return np.where(x > 0, terms, 0.0)


def _proportions(counts: FloatArray, name: str) -> FloatArray:
    total = _require_nonempty(counts, name)
    return counts / total


def _aligned_sides(
    values_a: npt.ArrayLike,
    counts_a: npt.ArrayLike,
    values_b: npt.ArrayLike,
    counts_b: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    values, ca, cb = align(values_a, counts_a, values_b, counts_b)
    _require_nonempty(ca, "counts_a")
    _require_nonempty(cb, "counts_b")
    return values, ca, cb


def _weighted(
    values: npt.ArrayLike, counts: npt.ArrayLike, side: str
) -> tuple[FloatArray, FloatArray]:
    v = _vector(values, f"values_{side}")
    c = _counts(counts, f"counts_{side}")
    if v.size != c.size:
        raise InvalidInput(
            f"values_{side} has {v.size} entries but counts_{side} has {c.size}; "
            "give one count per value"
        )
    if not np.isfinite(v).all():
        raise InvalidInput(
            f"values_{side} contains NaN or infinite values; drop or impute them first"
        )
    return v, c


def _paired_counts(
    first: npt.ArrayLike, second: npt.ArrayLike, first_name: str, second_name: str
) -> tuple[FloatArray, FloatArray]:
    a = _counts(first, first_name)
    b = _counts(second, second_name)
    if a.size != b.size:
        raise InvalidInput(
            f"{first_name} has {a.size} bins but {second_name} has {b.size}; "
            "align both over the same bins first"
        )
    return a, b


def _counts(counts: npt.ArrayLike, name: str) -> FloatArray:
    c = _vector(counts, name)
    if not np.isfinite(c).all():
        raise InvalidInput(f"{name} contains NaN or infinite counts; counts must be finite")
    if (c < 0).any():
        raise InvalidInput(f"{name} contains negative counts; counts must be >= 0")
    return c


def _require_nonempty(counts: FloatArray, name: str) -> float:
    total = float(counts.sum())
    if not total > 0:
        raise InvalidInput(f"{name} is empty (total count 0); drift needs data on both sides")
    if not math.isfinite(total):
        raise InvalidInput(f"{name} sums to infinity; scale the counts down")
    return total


def _sorted_sample(sample: npt.ArrayLike, name: str) -> FloatArray:
    x = _vector(sample, name)
    if x.size == 0:
        raise InvalidInput(f"{name} is empty; drift needs data on both sides")
    if not np.isfinite(x).all():
        raise InvalidInput(f"{name} contains NaN or infinite values; drop or impute them first")
    if (x[1:] < x[:-1]).any():
        raise InvalidInput(f"{name} is not sorted ascending; sort it first (np.sort)")
    return x


def _vector(data: npt.ArrayLike, name: str) -> FloatArray:
    try:
        x = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be a 1-D array of numbers: {exc}") from None
    if x.ndim != 1:
        raise InvalidInput(f"{name} must be a 1-D array of numbers, got {x.ndim} dimensions")
    return x
