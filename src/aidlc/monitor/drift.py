"""Drift between a reference profile (the training baseline) and a current one (live traffic).

Both sides are mergeable profiles (`aidlc.data.profile`), so the statistics are computed from
sketch buckets and category counts, never from rows: the profile of a month of traffic is the
merge of its batches' profiles, and merged profiles give exactly the result of profiling the
concatenated data. Numeric features are compared on the union of their sketch buckets (values
rounded to within 1/129 of themselves), categorical ones on their category counts.

How a feature is judged (defaults in `DriftConfig`; sources in docs/monitoring.md):

- at most `small_sample` rows on the smaller side: a test decides, Kolmogorov-Smirnov for numeric
  features and chi-square for categorical ones, drifted when p < alpha, where alpha is `p_value`
  divided by the number of features judged together (Bonferroni): the chance that a run flags
  any feature of undrifted data is then at most `p_value`, however many features a model has;
- above it, p-values alone flag trivial differences, so an effect size must stand beside them:
  drifted when p < alpha and the normalised Wasserstein distance (numeric) or the
  Jensen-Shannon distance (categorical) reaches its threshold. This is Evidently's rule for large
  samples, with the p-value kept as a guard against noise.

A numeric feature with at most five distinct values in the reference is judged as categorical
(Evidently does the same). PSI over `psi_bins` quantile bins of the reference is reported beside,
with its customary bands (< 0.1 stable, 0.1-0.25 moderate, > 0.25 significant).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aidlc.core.config import DriftConfig
from aidlc.data.profile import ColumnProfile, DatasetProfile
from aidlc.monitor import stats

__all__ = ["DriftResult", "FeatureDrift", "compare_column", "compare_profiles"]

# A numeric feature with this few distinct reference values is judged as categorical.
FEW_VALUES = 5
OTHER = "(other)"


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature, with every statistic and the histograms behind it."""

    name: str
    kind: str  # "numeric" or "categorical" (as judged)
    reference_rows: int
    current_rows: int
    test: str  # "ks" or "chi2"
    statistic: float
    p_value: float
    effect: str  # "wasserstein" or "jensenshannon"
    score: float  # the effect size the threshold applies to
    psi: float
    jensenshannon: float
    wasserstein: float | None
    drifted: bool
    rule: str  # which rule decided, in words
    bins: list[str] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)  # share per bin
    current: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class DriftResult:
    """Per-feature verdicts and the data-set verdict (drifted share >= `dataset_share`)."""

    features: dict[str, FeatureDrift]
    dataset_share: float

    @property
    def drifted(self) -> list[str]:
        return [name for name, f in self.features.items() if f.drifted]

    @property
    def share(self) -> float:
        judged = [f for f in self.features.values() if f.current_rows > 0]
        return len([f for f in judged if f.drifted]) / len(judged) if judged else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.features) and self.share >= self.dataset_share

    @property
    def max_score(self) -> float:
        """The largest effect size among drifted features (0 when none drifted)."""
        return max((f.score for f in self.features.values() if f.drifted), default=0.0)

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features.values()), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "share": self.share,
            "dataset_drift": self.dataset_drift,
            "features": [f.to_json() for f in self.features.values()],
        }


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def compare_profiles(
    reference: DatasetProfile,
    current: DatasetProfile,
    config: DriftConfig | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> DriftResult:
    """Judge every column (or `columns`) present in both profiles.

    >>> import polars as pl
    >>> from aidlc.data.profile import profile_frame
    >>> ref = profile_frame(pl.DataFrame({"x": [float(i % 100) for i in range(5000)]}))
    >>> cur = profile_frame(pl.DataFrame({"x": [float(i % 100) + 30 for i in range(5000)]}))
    >>> compare_profiles(ref, cur).drifted
    ['x']
    """
    config = config or DriftConfig()
    names = list(columns) if columns is not None else list(reference.columns)
    out: dict[str, FeatureDrift] = {}
    for name in names:
        ref = reference.columns.get(name)
        cur = current.columns.get(name)
        if ref is None or cur is None or ref.kind == "other":
            continue
        out[name] = compare_column(ref, cur, config, alpha=config.p_value / len(names))
    return DriftResult(out, config.dataset_share)


def compare_column(
    reference: ColumnProfile,
    current: ColumnProfile,
    config: DriftConfig,
    *,
    alpha: float | None = None,
) -> FeatureDrift:
    """Judge one column; see the module docstring for the rules. `alpha` (default `p_value`) is
    the significance level of its test."""
    alpha = config.p_value if alpha is None else alpha
    if reference.kind == "numeric" and current.kind == "numeric":
        values_r, counts_r = _buckets(reference)
        values_c, counts_c = _buckets(current)
        if values_r.size > FEW_VALUES:
            return _numeric(
                reference.name, values_r, counts_r, values_c, counts_c, reference, config, alpha
            )
        labels = sorted({*values_r.tolist(), *values_c.tolist()})
        keys = [_number_label(v) for v in labels]
        ref_counts = dict(
            zip(map(_number_label, values_r.tolist()), counts_r.tolist(), strict=True)
        )
        cur_counts = dict(
            zip(map(_number_label, values_c.tolist()), counts_c.tolist(), strict=True)
        )
        return _categorical(reference.name, keys, ref_counts, cur_counts, config, alpha)
    ref_map = dict(reference.counts)
    cur_map = dict(current.counts)
    if reference.kind == "numeric" or current.kind == "numeric":
        # A live column of another type than in training: compare it as text categories, so
        # the mismatch itself shows as drift instead of an error.
        ref_map = _as_labels(reference)
        cur_map = _as_labels(current)
    if reference.other or current.other:
        ref_map[OTHER] = ref_map.get(OTHER, 0) + reference.other
        cur_map[OTHER] = cur_map.get(OTHER, 0) + current.other
    keys = sorted(set(ref_map) | set(cur_map), key=lambda k: (-ref_map.get(k, 0), k))
    return _categorical(reference.name, keys, ref_map, cur_map, config, alpha)


def _buckets(column: ColumnProfile) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    if column.sketch is None or column.count == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    values, counts = column.sketch.bucket_values()
    return values, counts.astype(np.int64)


def _number_label(value: float) -> str:
    return f"{value:.6g}"


def _as_labels(column: ColumnProfile) -> dict[str, int]:
    if column.kind == "categorical":
        return dict(column.counts)
    values, counts = _buckets(column)
    return {_number_label(v): int(c) for v, c in zip(values.tolist(), counts.tolist(), strict=True)}


def _empty(name: str, kind: str, ref_rows: int, test: str, effect: str) -> FeatureDrift:
    return FeatureDrift(
        name, kind, ref_rows, 0, test, 0.0, 1.0, effect, 0.0, 0.0, 0.0, None, False,
        "no current values",
    )  # fmt: skip


def _numeric(
    name: str,
    values_r: npt.NDArray[np.float64],
    counts_r: npt.NDArray[np.int64],
    values_c: npt.NDArray[np.float64],
    counts_c: npt.NDArray[np.int64],
    reference: ColumnProfile,
    config: DriftConfig,
    alpha: float,
) -> FeatureDrift:
    n_r, n_c = int(counts_r.sum()), int(counts_c.sum())
    if n_c == 0:
        return _empty(name, "numeric", n_r, "ks", "wasserstein")
    values, a, b = stats.align(values_r, counts_r, values_c, counts_c)
    d, p = stats.ks_2samp(values, a, values, b)
    distance = stats.wasserstein(values, a, values, b)
    # more than FEW_VALUES distinct reference values: the std is defined and positive
    score = distance / (reference.std() or math.inf)
    ref_bins, cur_bins, labels = _quantile_bins(values, a, b, config.psi_bins)
    psi = stats.psi(ref_bins, cur_bins)
    js = stats.jensenshannon(ref_bins, cur_bins)
    drifted, rule = _decide(
        min(n_r, n_c) <= config.small_sample, n_c, ("KS", p, alpha),
        ("normalised Wasserstein", score, config.wasserstein_threshold),
    )  # fmt: skip
    return FeatureDrift(
        name, "numeric", n_r, n_c, "ks", d, p, "wasserstein", score, psi, js, score, bool(drifted),
        rule, labels, _shares(ref_bins), _shares(cur_bins),
    )  # fmt: skip


def _decide(
    small: bool, rows: int, test: tuple[str, float, float], effect: tuple[str, float, float]
) -> tuple[bool, str]:
    """The verdict and its reason: the test alone for small samples, else the test and the
    effect size together."""
    test_name, p, alpha = test
    effect_name, score, threshold = effect
    significant = p < alpha
    if small:
        return significant, (
            f"{test_name} p={p:.3g} {'<' if significant else '>='} {alpha:.3g} ({rows} rows)"
        )
    large = score >= threshold
    return significant and large, (
        f"{effect_name} {score:.3g} {'>=' if large else '<'} {threshold} and {test_name} "
        f"p={p:.3g} {'<' if significant else '>='} {alpha:.3g}"
    )


def _quantile_bins(
    values: npt.NDArray[np.float64],
    ref: npt.NDArray[Any],
    cur: npt.NDArray[Any],
    bins: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[str]]:
    """Counts of both sides in `bins` quantile bins of the reference, bucket by bucket.

    A bucket goes to the bin of the reference share below it, so ties never split and values
    outside the reference range land in the first or last bin; bins left empty are dropped.
    """
    below = np.concatenate([[0], np.cumsum(ref)[:-1]]) / max(int(ref.sum()), 1)
    where = np.minimum((below * bins).astype(np.int64), bins - 1)
    ref_bins = np.bincount(where, weights=ref, minlength=bins).astype(np.int64)
    cur_bins = np.bincount(where, weights=cur, minlength=bins).astype(np.int64)
    used = np.flatnonzero((ref_bins + cur_bins) > 0)
    labels = []
    for i in used:
        inside = values[where == i]
        labels.append(f"{inside[0]:.4g} … {inside[-1]:.4g}")
    return ref_bins[used], cur_bins[used], labels


def _shares(counts: npt.NDArray[np.int64]) -> list[float]:
    total = int(counts.sum())
    return [float(c) / total if total else 0.0 for c in counts.tolist()]


def _categorical(
    name: str,
    keys: list[str],
    ref_map: dict[str, int],
    cur_map: dict[str, int],
    config: DriftConfig,
    alpha: float,
) -> FeatureDrift:
    a = np.array([ref_map.get(k, 0) for k in keys], dtype=np.int64)
    b = np.array([cur_map.get(k, 0) for k in keys], dtype=np.int64)
    n_r, n_c = int(a.sum()), int(b.sum())
    if n_c == 0 or n_r == 0:
        return _empty(name, "categorical", n_r, "chi2", "jensenshannon")
    chi2, p, _dof = stats.chi2_contingency(a, b)
    js = stats.jensenshannon(a, b)
    psi = stats.psi(a, b)
    drifted, rule = _decide(
        min(n_r, n_c) <= config.small_sample, n_c, ("chi-square", p, alpha),
        ("Jensen-Shannon", js, config.jensenshannon_threshold),
    )  # fmt: skip
    shown = keys[:50]  # a chart of the 50 most frequent reference categories
    return FeatureDrift(
        name, "categorical", n_r, n_c, "chi2", chi2, p, "jensenshannon", js, psi, js, None,
        bool(drifted), rule, shown, _shares(a)[:50], _shares(b)[:50],
    )  # fmt: skip
