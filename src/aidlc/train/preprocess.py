"""Declared preprocessing, fitted on the training rows and kept as plain JSON in the signed model.

Serving replays the fitted steps with `Preprocessor.transform`, so it applies exactly what training
did, without a pickled transformer: a model's preprocessing is data (numbers, category lists and
formulas), checked field by field when it is loaded.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from aidlc.errors import ConfigError, IntegrityError, InvalidInput, ValidationFailed
from aidlc.train.config import (
    BINARY_OPS,
    UNARY_OPS,
    DeriveStep,
    ImputeStep,
    ScaleStep,
    Step,
)

NUMERIC = "numeric"
CATEGORICAL = "categorical"
_FORMAT = 1
_MAX_COLUMNS = 100_000
_MAX_STEPS = 1000
_MAX_CATEGORIES = 1000
_TINY_SPREAD = 10 * float(np.finfo(np.float64).eps)
_DERIVE_OPS = UNARY_OPS | BINARY_OPS | {"sum"}
_STRATEGIES = ("mean", "median", "most_frequent", "constant")
_SCALE_METHODS = ("standard", "minmax", "robust")
_ENCODE_METHODS = ("onehot", "ordinal")
_TOP_KEYS = {"format", "input_features", "categorical", "steps", "output_features"}
_STEP_KEYS = {
    "impute": {"kind", "strategy", "columns"},
    "scale": {"kind", "method", "columns"},
    "encode": {"kind", "method", "columns"},
    "derive": {"kind", "name", "op", "inputs", "low", "high"},
}
_COLUMN_KEYS = {"impute": {"name", "value"}, "scale": {"name", "center", "scale"}}

Layout = dict[str, str]  # the columns at a point of the pipeline, in order: name → kind


@dataclass
class Preprocessor:
    """Fitted preprocessing: which raw columns it reads and how it turns them into numbers.

    `steps` are the fitted steps as JSON; `categorical` names the input features that are text
    or categories (every other input is numeric).
    """

    input_features: list[str]
    output_features: list[str]
    steps: list[dict[str, Any]]
    categorical: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, which `from_json` reads back to an equal preprocessor."""
        return {
            "format": _FORMAT,
            "input_features": list(self.input_features),
            "categorical": list(self.categorical),
            "steps": copy.deepcopy(self.steps),
            "output_features": list(self.output_features),
        }

    @classmethod
    def from_json(cls, obj: Any) -> Preprocessor:
        """Check every field of stored preprocessing and rebuild it (IntegrityError if bad).

        The steps are replayed over the input columns, so a step naming a column that does not
        exist at its point, or output features that the steps do not produce, are refused.
        """
        if not isinstance(obj, dict) or set(obj) != _TOP_KEYS or not _is_format(obj["format"]):
            raise _malformed(
                f"expected a format-{_FORMAT} object with {', '.join(sorted(_TOP_KEYS))}"
            )
        inputs = _names(obj["input_features"], "input_features", minimum=1)
        categorical = _names(obj["categorical"], "categorical", minimum=0)
        if not set(categorical) <= set(inputs):
            raise _malformed("categorical names a column that is not an input feature")
        steps = obj["steps"]
        if not isinstance(steps, list) or len(steps) > _MAX_STEPS:
            raise _malformed(f"steps must be a list of at most {_MAX_STEPS} steps")
        text = set(categorical)
        layout: Layout = {n: CATEGORICAL if n in text else NUMERIC for n in inputs}
        for i, step in enumerate(steps):
            try:
                _check_fitted(step, layout)
                layout = _advance(layout, step)
            except _Bad as exc:
                raise _malformed(f"steps[{i}]: {exc}") from None
        outputs = _names(obj["output_features"], "output_features", minimum=1)
        if outputs != list(layout) or CATEGORICAL in layout.values():
            raise _malformed("output_features are not the numeric columns the steps produce")
        return cls(inputs, outputs, copy.deepcopy(steps), categorical)

    def transform(self, df: pl.DataFrame) -> np.ndarray:
        """The estimator's float64 matrix: a row per row of `df`, a column per output feature.

        Columns beyond `input_features` are ignored. NaN and infinite inputs count as missing,
        and whatever is still missing after the steps is NaN in the matrix, which XGBoost and
        LightGBM treat as missing values (most scikit-learn estimators refuse NaN: impute first).

        >>> import polars as pl
        >>> from aidlc.train.config import ImputeStep
        >>> df = pl.DataFrame({"age": [30.0, None, 50.0], "id": ["a", "b", "c"]})
        >>> pre = fit_preprocessor([ImputeStep(columns="numeric", strategy="mean")], df, ["age"])
        >>> pre.transform(pl.DataFrame({"age": [None, 20.0]})).tolist()
        [[40.0], [20.0]]
        """
        frame = self._inputs(df).lazy()
        for step in self.steps:
            frame = frame.with_columns(_expressions(step))
        out = frame.select(self.output_features).collect()
        return out.to_numpy(order="c", writable=True).astype(np.float64, copy=False)

    def transform_numbers(self, X: np.ndarray) -> np.ndarray | None:
        """`transform` for a float64 matrix of the input features (NaN for missing), computed
        with numpy; None when a step needs text (categorical inputs or encoding).

        It is the serving path for small requests, where building a data frame costs more than
        the model; a property test holds it equal to `transform` for every numeric step (the
        same missing cells, numbers within 1e-12: polars may round an operation differently).

        >>> from aidlc.train.config import ImputeStep
        >>> pre = fit_preprocessor(
        ...     [ImputeStep(columns="numeric", strategy="mean")],
        ...     pl.DataFrame({"age": [30.0, None, 50.0]}),
        ...     ["age"],
        ... )
        >>> pre.transform_numbers(np.array([[np.nan], [20.0]])).tolist()
        [[40.0], [20.0]]
        """
        if self.categorical or any(s["kind"] == "encode" for s in self.steps):
            return None
        with np.errstate(all="ignore"):
            M = np.where(np.isfinite(X), X, np.nan).astype(np.float64, copy=False)
            at = {name: j for j, name in enumerate(self.input_features)}
            for step in self.steps:
                kind = step["kind"]
                if kind in ("impute", "scale"):
                    idx = [at[c["name"]] for c in step["columns"]]
                    block = M[:, idx]
                    if kind == "impute":
                        fill = np.array([float(c["value"]) for c in step["columns"]])
                        M[:, idx] = np.where(np.isnan(block), fill, block)
                    else:
                        center = np.array([float(c["center"]) for c in step["columns"]])
                        scale = np.array([float(c["scale"]) for c in step["columns"]])
                        block = (block - center) / scale
                        M[:, idx] = np.where(np.isfinite(block), block, np.nan)
                    continue
                x = _derive_numbers(step, [M[:, at[n]] for n in step["inputs"]])
                x = np.where(np.isfinite(x), x, np.nan)
                if step["name"] in at:
                    M[:, at[step["name"]]] = x
                else:
                    at[step["name"]] = M.shape[1]
                    M = np.column_stack([M, x])
            return np.ascontiguousarray(M[:, [at[n] for n in self.output_features]])

    def _inputs(self, df: Any) -> pl.DataFrame:
        """The input features cast to Float64 (numeric) or String (categorical)."""
        if not isinstance(df, pl.DataFrame):
            raise InvalidInput(f"preprocessing needs a polars DataFrame, not {type(df).__name__}")
        missing = [name for name in self.input_features if name not in df.columns]
        if missing:
            more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
            shown = ", ".join(repr(m[:80]) for m in missing[:5])
            raise InvalidInput(
                f"the input has no column {shown}{more}; the model reads "
                f"{len(self.input_features)} input features, all of them required"
            )
        categorical = set(self.categorical)
        exprs = []
        for name in self.input_features:
            dtype = df.schema[name]
            if name in categorical:
                if _kind_of(dtype) not in (CATEGORICAL, "null"):
                    raise InvalidInput(f"column {name!r:.80} must be text, not {dtype}")
                exprs.append(pl.col(name).cast(pl.String))
            else:
                if _kind_of(dtype) not in (NUMERIC, "null"):
                    raise InvalidInput(f"column {name!r:.80} must be numeric, not {dtype}")
                exprs.append(_finite(pl.col(name).cast(pl.Float64)).alias(name))
        return df.select(exprs)


def fit_preprocessor(
    steps: Sequence[Step], df: pl.DataFrame, features: Sequence[str]
) -> Preprocessor:
    """Fit `steps`, in order, on the training rows `df`, reading the columns `features`.

    Selectors (`numeric`, `categorical`, `all`) resolve against the columns present at each
    step, so derived columns join later steps. Bad steps (a missing column, a statistic a
    column's type cannot have, a categorical column left unencoded) are ConfigErrors; a column
    without a single value to fit on is ValidationFailed.

    >>> import polars as pl
    >>> from aidlc.train.config import EncodeStep
    >>> df = pl.DataFrame({"plan": ["pro", "basic", "pro", None], "age": [30, 40, 50, 60]})
    >>> pre = fit_preprocessor([EncodeStep(columns=["plan"])], df, ["plan", "age"])
    >>> pre.output_features
    ['plan=pro', 'plan=basic', 'age']
    >>> pre.transform(df).tolist()
    [[1.0, 0.0, 30.0], [0.0, 1.0, 40.0], [1.0, 0.0, 50.0], [0.0, 0.0, 60.0]]
    """
    if not isinstance(df, pl.DataFrame):
        raise InvalidInput(f"preprocessing needs a polars DataFrame, not {type(df).__name__}")
    features = list(features)
    if not features:
        raise ConfigError("no features to preprocess")
    layout: Layout = {}
    for name in features:
        if not isinstance(name, str) or name not in df.columns:
            raise ConfigError(f"feature {str(name)[:80]!r} is not a column of the training data")
        if name in layout:
            raise ConfigError(f"feature {name!r:.80} is listed twice")
        kind = _kind_of(df.schema[name])
        if kind not in (NUMERIC, CATEGORICAL, "null"):
            raise ConfigError(
                f"feature {name!r:.80} has type {df.schema[name]}; a model reads numbers, "
                "booleans and categories only: exclude it"
            )
        layout[name] = CATEGORICAL if kind == CATEGORICAL else NUMERIC
    pre = Preprocessor(
        input_features=features,
        output_features=[],
        steps=[],
        categorical=[n for n, k in layout.items() if k == CATEGORICAL],
    )
    frame = pre._inputs(df)
    for i, step in enumerate(steps):
        fitted = _fit_step(i, step, frame, layout)
        frame = frame.with_columns(_expressions(fitted))
        layout = _advance(layout, fitted)
        pre.steps.append(fitted)
    left = [n for n, k in layout.items() if k == CATEGORICAL]
    if left:
        raise ConfigError(
            f"column {left[0]!r:.80} is categorical: add an encode step or exclude it"
        )
    if not layout:
        raise ConfigError("preprocessing leaves no columns to train on")
    pre.output_features = list(layout)
    return pre


# -- fitting ------------------------------------------------------------------------------------


def _fit_step(i: int, step: Step, frame: pl.DataFrame, layout: Layout) -> dict[str, Any]:
    where = f"preprocessing[{i}] ({step.kind})"
    if isinstance(step, DeriveStep):
        for name in step.inputs:
            _need(where, layout, name, NUMERIC)
        if step.name in layout:
            raise ConfigError(f"{where}: {step.name!r:.80} is already a column; pick a new name")
        return {
            "kind": "derive",
            "name": step.name,
            "op": step.op,
            "inputs": list(step.inputs),
            "low": step.low,
            "high": step.high,
        }
    columns = _select(where, layout, step.columns)
    if isinstance(step, ImputeStep):
        return _fit_impute(where, step, frame, layout, columns)
    if isinstance(step, ScaleStep):
        for name in columns:
            _need(where, layout, name, NUMERIC)
        return {
            "kind": "scale",
            "method": step.method,
            "columns": _fit_scale(where, step.method, frame, columns),
        }
    for name in columns:
        _need(where, layout, name, CATEGORICAL)
    fitted = {
        "kind": "encode",
        "method": step.method,
        "columns": [
            {"name": name, "categories": _ranked(frame[name]).head(step.max_categories).to_list()}
            for name in columns
        ],
    }
    try:
        _advance(layout, fitted)
    except _Bad as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return fitted


def _select(where: str, layout: Layout, columns: Sequence[str] | str) -> list[str]:
    if columns == "all":
        return list(layout)
    if columns in (NUMERIC, CATEGORICAL):
        return [n for n, k in layout.items() if k == columns]
    for name in columns:
        if name not in layout:
            raise ConfigError(
                f"{where}: no column {name!r:.80} at this step (it is not a feature, or an "
                "earlier step replaced it)"
            )
    return list(columns)


def _need(where: str, layout: Layout, name: str, kind: str) -> None:
    if name not in layout:
        raise ConfigError(
            f"{where}: no column {name!r:.80} at this step (it is not a feature, or an earlier "
            "step replaced it)"
        )
    if layout[name] != kind:
        raise ConfigError(
            f"{where}: column {name!r:.80} is {layout[name]}, but this step needs a {kind} column"
        )


def _fit_impute(
    where: str, step: ImputeStep, frame: pl.DataFrame, layout: Layout, columns: list[str]
) -> dict[str, Any]:
    if step.strategy in ("mean", "median"):
        for name in columns:
            _need(where, layout, name, NUMERIC)
        stats = frame.select(
            [getattr(pl.col(n), step.strategy)().alias(str(j)) for j, n in enumerate(columns)]
        ).row(0)
        values: list[float | str] = [
            _statistic(where, n, v) for n, v in zip(columns, stats, strict=True)
        ]
    elif step.strategy == "most_frequent":
        values = [_most_frequent(where, frame[n], layout[n]) for n in columns]
    else:
        values = [_constant(where, n, layout[n], step.value) for n in columns]
    return {
        "kind": "impute",
        "strategy": step.strategy,
        "columns": [{"name": n, "value": v} for n, v in zip(columns, values, strict=True)],
    }


def _most_frequent(where: str, series: pl.Series, kind: str) -> float | str:
    # Ties go to the smallest value, as scikit-learn's SimpleImputer does.
    top = _ranked(series).head(1).to_list()
    if kind == NUMERIC:
        return _statistic(where, series.name, top[0] if top else None)
    if not top:
        raise ValidationFailed(
            f"{where}: column {series.name!r:.80} has no values in the training rows to fit on"
        )
    return str(top[0])


def _constant(where: str, name: str, kind: str, value: float | str | None) -> float | str:
    if kind == NUMERIC and isinstance(value, int | float):
        return float(value)
    if kind == CATEGORICAL and isinstance(value, str):
        return value
    wanted = "a number" if kind == NUMERIC else "text (quote it)"
    raise ConfigError(f"{where}: column {name!r:.80} is {kind}, so the value must be {wanted}")


def _ranked(series: pl.Series) -> pl.Series:
    """The distinct non-null values, most frequent first, ties broken by the smaller value."""
    counts = series.rename("value").drop_nulls().value_counts(name="count")
    return counts.sort(["count", "value"], descending=[True, False])["value"]


def _fit_scale(
    where: str, method: str, frame: pl.DataFrame, columns: list[str]
) -> list[dict[str, Any]]:
    if not columns:
        return []
    exprs: list[pl.Expr] = []
    for j, name in enumerate(columns):
        col = pl.col(name)
        if method == "standard":
            pair = (col.mean(), col.std(ddof=0))  # population std, as StandardScaler
        elif method == "minmax":
            pair = (col.min(), col.max() - col.min())
        else:  # robust: median and interquartile range, as RobustScaler
            pair = (
                col.median(),
                col.quantile(0.75, interpolation="linear")
                - col.quantile(0.25, interpolation="linear"),
            )
        exprs += [pair[0].alias(f"c{j}"), pair[1].alias(f"s{j}")]
    row = frame.select(exprs).row(0)
    out = []
    for j, name in enumerate(columns):
        center = _statistic(where, name, row[2 * j])
        spread = _statistic(where, name, row[2 * j + 1])
        # A constant column (spread below 10 machine epsilons, scikit-learn's cut) is centred
        # but not scaled: dividing by a near-zero spread would only blow up rounding noise.
        scale = spread if spread >= _TINY_SPREAD else 1.0
        out.append({"name": name, "center": center, "scale": scale})
    return out


def _statistic(where: str, name: str, value: Any) -> float:
    if value is None:
        raise ValidationFailed(
            f"{where}: column {name!r:.80} has no values in the training rows to fit on"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValidationFailed(
            f"{where}: a statistic of column {name!r:.80} is not finite; its values are too large"
        )
    return number


# -- applying -----------------------------------------------------------------------------------


def _finite(expr: pl.Expr) -> pl.Expr:
    """NaN and ±inf become null: one notion of missing for every later step."""
    return pl.when(expr.is_finite()).then(expr)


def _expressions(step: Mapping[str, Any]) -> list[pl.Expr]:
    kind = step["kind"]
    if kind == "impute":
        return [pl.col(c["name"]).fill_null(_literal(c["value"])) for c in step["columns"]]
    if kind == "scale":
        return [
            _finite((pl.col(c["name"]) - float(c["center"])) / float(c["scale"])).alias(c["name"])
            for c in step["columns"]
        ]
    if kind == "encode" and step["method"] == "onehot":
        return [
            (pl.col(c["name"]) == _literal(category))
            .fill_null(False)
            .cast(pl.Float64)
            .alias(_onehot_name(c["name"], category))
            for c in step["columns"]
            for category in c["categories"]
        ]
    if kind == "encode":
        return [
            pl.col(c["name"]).replace_strict(
                c["categories"],
                [float(k) for k in range(len(c["categories"]))],
                default=-1.0,
                return_dtype=pl.Float64,
            )
            for c in step["columns"]
        ]
    return [_derive(step).alias(step["name"])]


def _literal(value: Any) -> pl.Expr:
    if isinstance(value, str):
        return pl.lit(value, dtype=pl.String)
    return pl.lit(float(value), dtype=pl.Float64)


def _derive(step: Mapping[str, Any]) -> pl.Expr:
    cols = [pl.col(name) for name in step["inputs"]]
    op, x = step["op"], cols[0]
    result: pl.Expr
    if op == "log1p":
        result = pl.when(x > -1).then(x.log1p())
    elif op == "sqrt":
        result = pl.when(x >= 0).then(x.sqrt())
    elif op == "square":
        result = x * x
    elif op == "abs":
        result = x.abs()
    elif op == "clip":
        result = x.clip(step["low"], step["high"])
    elif op == "ratio":
        result = pl.when(cols[1] != 0).then(x / cols[1])
    elif op == "product":
        result = x * cols[1]
    elif op == "difference":
        result = x - cols[1]
    else:  # sum: null when any input is null, like the other operations
        result = x
        for col in cols[1:]:
            result = result + col
    return _finite(result)


def _derive_numbers(step: Mapping[str, Any], cols: list[np.ndarray]) -> Any:
    """`_derive` over numpy arrays, NaN standing for null (the caller maps non-finite to NaN)."""
    op, x = step["op"], cols[0]
    nan = np.nan
    if op == "log1p":
        return np.where(x > -1, np.log1p(np.where(x > -1, x, 0.0)), nan)
    if op == "sqrt":
        return np.where(x >= 0, np.sqrt(np.where(x >= 0, x, 0.0)), nan)
    if op == "square":
        return x * x
    if op == "abs":
        return np.abs(x)
    if op == "clip":
        low = -np.inf if step.get("low") is None else float(step["low"])
        high = np.inf if step.get("high") is None else float(step["high"])
        return np.clip(x, low, high)
    if op == "ratio":
        return np.where(cols[1] != 0, x / np.where(cols[1] != 0, cols[1], 1.0), nan)
    if op == "product":
        return x * cols[1]
    if op == "difference":
        return x - cols[1]
    total = x
    for col in cols[1:]:
        total = total + col
    return total


def _onehot_name(column: str, category: str) -> str:
    return f"{column}={category}"


# -- stored form --------------------------------------------------------------------------------


class _Bad(Exception):
    """A stored step that does not fit the columns at its point."""


def _malformed(detail: str) -> IntegrityError:
    return IntegrityError(
        f"model preprocessing is malformed: {detail}",
        hint="the model's files may have been altered; re-register it from a training run",
    )


def _names(value: Any, what: str, *, minimum: int) -> list[str]:
    if not isinstance(value, list) or not minimum <= len(value) <= _MAX_COLUMNS:
        raise _malformed(f"{what} must be a list of {minimum} to {_MAX_COLUMNS} names")
    if not all(isinstance(v, str) and v for v in value):
        raise _malformed(f"{what} must hold non-empty names")
    if len(set(value)) != len(value):
        raise _malformed(f"{what} repeats a name")
    return list(value)


def _is_format(value: Any) -> bool:
    return type(value) is int and value == _FORMAT


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_fitted(step: Any, layout: Layout) -> None:
    """Check one stored step's fields against the columns present at its point."""
    if not isinstance(step, dict) or not isinstance(step.get("kind"), str):
        raise _Bad("is not an impute, scale, encode or derive step")
    if step["kind"] not in _STEP_KEYS:
        raise _Bad("is not an impute, scale, encode or derive step")
    kind = step["kind"]
    if set(step) != _STEP_KEYS[kind]:
        raise _Bad(f"a {kind} step has exactly the fields {', '.join(sorted(_STEP_KEYS[kind]))}")
    if kind == "derive":
        _check_derive(step, layout)
        return
    allowed = {"impute": _STRATEGIES, "scale": _SCALE_METHODS, "encode": _ENCODE_METHODS}[kind]
    setting = step["strategy" if kind == "impute" else "method"]
    if setting not in allowed:
        raise _Bad(f"unknown {kind} setting {str(setting)[:40]!r}")
    columns = step["columns"]
    if not isinstance(columns, list) or len(columns) > _MAX_COLUMNS:
        raise _Bad("columns must be a list")
    keys = _COLUMN_KEYS.get(kind, {"name", "categories"})
    seen: set[str] = set()
    for entry in columns:
        if not isinstance(entry, dict) or set(entry) != keys:
            raise _Bad(f"each column has exactly the fields {', '.join(sorted(keys))}")
        name = entry["name"]
        if not isinstance(name, str) or name not in layout or name in seen:
            raise _Bad("names a column that is absent at this step, or names it twice")
        seen.add(name)
        column_kind = layout[name]
        if kind == "impute":
            value = entry["value"]
            ok = isinstance(value, str) if column_kind == CATEGORICAL else _is_number(value)
            if not ok:
                raise _Bad(f"the value for {name!r:.80} does not fit a {column_kind} column")
        elif kind == "scale":
            center, scale = entry["center"], entry["scale"]
            if column_kind != NUMERIC or not _is_number(center) or not _is_number(scale):
                raise _Bad(f"scaling of {name!r:.80} needs a numeric column and finite numbers")
            if scale <= 0:
                raise _Bad(f"the scale of {name!r:.80} must be positive")
        else:
            categories = entry["categories"]
            if (
                column_kind != CATEGORICAL
                or not isinstance(categories, list)
                or len(categories) > _MAX_CATEGORIES
                or not all(isinstance(c, str) for c in categories)
                or len(set(categories)) != len(categories)
            ):
                raise _Bad(f"categories of {name!r:.80} must be distinct text, at most 1000")


def _check_derive(step: Mapping[str, Any], layout: Layout) -> None:
    op, inputs, name = step["op"], step["inputs"], step["name"]
    low, high = step["low"], step["high"]
    if not isinstance(op, str) or op not in _DERIVE_OPS:
        raise _Bad(f"unknown derive operation {str(op)[:40]!r}")
    if not isinstance(name, str) or not name or name in layout:
        raise _Bad("a derived column needs a new name")
    if not isinstance(inputs, list) or not all(
        isinstance(c, str) and layout.get(c) == NUMERIC for c in inputs
    ):
        raise _Bad("derive inputs must be numeric columns present at this step")
    n = len(inputs)
    arity_ok = n == 1 if op in UNARY_OPS else n == 2 if op in BINARY_OPS else 2 <= n <= 100
    if not arity_ok:
        raise _Bad(f"{op} cannot take {n} inputs")
    for bound in (low, high):
        if bound is not None and not _is_number(bound):
            raise _Bad("low and high must be finite numbers or null")
    if op == "clip":
        if (low is None and high is None) or (low is not None and high is not None and low > high):
            raise _Bad("clip needs low <= high, at least one of them")
    elif low is not None or high is not None:
        raise _Bad("low and high apply only to clip")


def _advance(layout: Layout, step: Mapping[str, Any]) -> Layout:
    """The columns after `step`, in order (onehot columns replace their source in place)."""
    kind = step["kind"]
    if kind == "derive":
        return {**layout, step["name"]: NUMERIC}
    if kind != "encode":
        return layout
    replaced = {c["name"]: c["categories"] for c in step["columns"]}
    out: Layout = {}
    for name, column_kind in layout.items():
        if name not in replaced:
            out[name] = column_kind
        elif step["method"] == "ordinal":
            out[name] = NUMERIC
        else:
            for category in replaced[name]:
                new = _onehot_name(name, category)
                if new in out or (new in layout and new not in replaced):
                    raise _Bad(f"one-hot column {new!r:.80} would repeat an existing column name")
                out[new] = NUMERIC
    return out


def _kind_of(dtype: pl.DataType) -> str:
    if dtype == pl.Null:
        return "null"
    if dtype == pl.Boolean or dtype.is_numeric():
        return NUMERIC
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return CATEGORICAL
    return "other"
