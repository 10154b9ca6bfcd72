"""The served model: request validation against the version's schema, OOD flags, the predict path.

A request's records are checked field by field against the input schema the version was
registered with (the data contract's column specs), so a bad request is refused with the row, the
field and the reason before any of it reaches the estimator. Rows that pass are flagged when they
lie outside what the model saw in training (the baseline profile): a numeric value beyond the
training range or further than `ood_z` standard deviations from the training mean, or a category
training never saw.

Speed comes from doing the same work on matrices: a schema of plain numbers is checked a column
at a time (any doubt falls back to the field-by-field pass, which names the problem), numeric OOD
flags are screened at once and only flagged rows explained, and a LogisticRegression predicts with
its own formula instead of scikit-learn's per-call input checks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from aidlc.errors import InvalidInput
from aidlc.registry.model import LoadedModel

MAX_PROBLEMS = 20
MAX_TEXT = 10_000
_NUMERIC = ("int", "float")
_PLAIN_TYPES = frozenset({int, float, type(None)})
# Integers beyond 2**53 do not convert to float64 exactly; their range checks stay in Python.
_EXACT = 2.0**53


class InvalidRecords(InvalidInput):
    """Records that do not match the model's input schema; `problems` says where and why."""

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class _Field:
    name: str
    dtype: str
    nullable: bool
    low: Any = None
    high: Any = None
    allowed: frozenset[Any] | None = None
    regex: re.Pattern[str] | None = None


def _bound(value: Any, dtype: str) -> Any:
    if value is None:
        return None
    if dtype == "date":
        return date.fromisoformat(str(value)[:10])
    if dtype == "datetime":
        return datetime.fromisoformat(str(value))
    return float(value)


def _fields(schema: list[dict[str, Any]]) -> list[_Field]:
    out = []
    for spec in schema:
        dtype = str(spec.get("dtype", "float"))
        allowed = spec.get("allowed")
        out.append(
            _Field(
                name=spec["name"],
                dtype=dtype,
                nullable=bool(spec.get("nullable", True)),
                low=_bound(spec.get("min"), dtype),
                high=_bound(spec.get("max"), dtype),
                allowed=frozenset(allowed) if isinstance(allowed, list) else None,
                regex=re.compile(spec["regex"]) if spec.get("regex") else None,
            )
        )
    return out


def _typed(f: _Field, value: Any) -> tuple[Any, str | None]:
    """The value as the schema's type, or a reason it is not one."""
    kind = f.dtype
    if kind in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"must be a number ({kind}), not {_type_name(value)}"
        if kind == "int" and isinstance(value, float) and not value.is_integer():
            return None, "must be a whole number"
        if not math.isfinite(value):
            return None, "must be finite"
        return value, None
    if kind == "bool":
        if not isinstance(value, bool):
            return None, f"must be true or false, not {_type_name(value)}"
        return value, None
    if not isinstance(value, str):
        return None, f"must be a string ({kind}), not {_type_name(value)}"
    if len(value) > MAX_TEXT:
        return None, f"is longer than {MAX_TEXT} characters"
    if kind in ("date", "datetime"):
        try:
            parsed: Any = (
                date.fromisoformat(value) if kind == "date" else datetime.fromisoformat(value)
            )
        except ValueError:
            return None, f"must be an ISO 8601 {kind}"
        return parsed, None
    return value, None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _rule(f: _Field, value: Any) -> str | None:
    """Which of the column's value rules `value` breaks, if any."""
    if f.low is not None and value < f.low:
        return f"is below the minimum {f.low}"
    if f.high is not None and value > f.high:
        return f"is above the maximum {f.high}"
    if f.allowed is not None and value not in f.allowed:
        return "is not one of the allowed values"
    if f.regex is not None and not f.regex.search(value):
        return "does not match the required pattern"
    return None


def _cell(value: Any, text: bool) -> Any:
    if value is None:
        return None
    return str(value) if text else float(value)


@dataclass(frozen=True)
class _Reference:
    """What training saw of one feature, for OOD flags."""

    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    categories: frozenset[str] | None = None


def _references(baseline: dict[str, Any], names: list[str]) -> dict[str, _Reference]:
    columns = {c.get("name"): c for c in baseline.get("features", {}).get("columns", [])}
    out: dict[str, _Reference] = {}
    for name in names:
        col = columns.get(name)
        if not isinstance(col, dict) or not col.get("count"):
            continue
        if col.get("kind") == "numeric":
            count, m2 = col["count"], col.get("m2") or 0.0
            std = math.sqrt(m2 / (count - 1)) if count > 1 else 0.0
            out[name] = _Reference(low=col["min"], high=col["max"], mean=col["mean"], std=std)
        elif col.get("kind") == "categorical" and not col.get("other"):
            out[name] = _Reference(categories=frozenset(str(v) for v, _ in col["counts"]))
    return out


class _Checked(list[dict[str, Any]]):
    """Rows that passed a plain-number schema, with their values as float64 in schema order, so
    the model's input and the OOD flags are taken from the matrix, not the dicts again."""

    def __init__(self, rows: list[dict[str, Any]], schema: _PlainSchema, grid: np.ndarray) -> None:
        super().__init__(rows)
        self.schema = schema
        self.grid = grid


def _grid(
    rows: list[dict[str, Any]],
    names: list[str],
    schema: _PlainSchema | None = None,
    columns: np.ndarray | None = None,
) -> np.ndarray:
    """The named values of typed rows as float64, NaN for null; from the checked matrix when
    the rows passed `schema` (not another version's) and `columns` locate the names in it."""
    if columns is not None and isinstance(rows, _Checked) and rows.schema is schema:
        return rows.grid[:, columns]
    grid = np.array([[row.get(n) for n in names] for row in rows], dtype=np.float64)
    return grid.reshape(len(rows), len(names))


@dataclass(frozen=True)
class _PlainSchema:
    """`check` for a schema of plain numbers, a column at a time instead of cell by cell."""

    names: list[str]
    known: frozenset[str]
    required: np.ndarray
    whole: np.ndarray
    low: np.ndarray
    high: np.ndarray
    values: Any  # itemgetter of every field: a tuple per complete record

    def columns(self, names: list[str]) -> np.ndarray | None:
        """Where `names` sit in the schema; None if one is not a field."""
        where = {n: i for i, n in enumerate(self.names)}
        if not all(n in where for n in names):
            return None
        return np.array([where[n] for n in names], dtype=np.intp)

    def rows(self, records: list[Any]) -> _Checked | None:
        """The typed rows when every record is clean, else None: the field-by-field pass then
        finds and names the problems."""
        known, names = self.known, self.names
        if not all(type(r) is dict and known.issuperset(r) for r in records):
            return None
        try:
            table: list[Any] = list(map(self.values, records))
        except KeyError:  # a null sent by leaving the field out
            table = [[r.get(n) for n in names] for r in records]
        if not _PLAIN_TYPES.issuperset(map(type, chain.from_iterable(table))):
            return None
        grid = np.array(table, dtype=np.float64).reshape(len(table), len(names))
        with np.errstate(invalid="ignore"):
            missing = np.isnan(grid)  # JSON has no NaN: these are nulls
            if (
                (missing & self.required).any()
                or (np.abs(grid) > _EXACT).any()
                or (grid < self.low).any()
                or (grid > self.high).any()
                or (self.whole & ~missing & (grid != np.floor(grid))).any()
            ):
                return None
        # A record with every field is already its typed row (only its key order may differ).
        size = len(names)
        typed = [r if len(r) == size else dict(zip(names, row, strict=True))
                 for r, row in zip(records, table, strict=True)]  # fmt: skip
        return _Checked(typed, self, grid)


def _plain_schema(fields: list[_Field]) -> _PlainSchema | None:
    if not fields or any(
        f.dtype not in _NUMERIC or f.allowed is not None or f.regex is not None for f in fields
    ):
        return None
    names = [f.name for f in fields]
    return _PlainSchema(
        names=names,
        known=frozenset(f.name for f in fields),
        required=np.array([not f.nullable for f in fields], dtype=bool),
        whole=np.array([f.dtype == "int" for f in fields], dtype=bool),
        low=np.array([-math.inf if f.low is None else f.low for f in fields], dtype=np.float64),
        high=np.array([math.inf if f.high is None else f.high for f in fields], dtype=np.float64),
        values=itemgetter(*names) if len(names) > 1 else lambda r: (r[names[0]],),
    )


@dataclass(frozen=True)
class _Screen:
    """Numeric features whose OOD flags are computed as a matrix: range, mean and spread."""

    names: list[str]
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def _screen(refs: dict[str, _Reference], fields: dict[str, _Field]) -> _Screen | None:
    """None when a feature needs the row-by-row pass (categories, values that are not numbers)."""
    names, low, high, mean, std = [], [], [], [], []
    for name, ref in refs.items():
        spec = fields.get(name)
        if ref.categories is not None or (
            spec is not None and spec.dtype not in (*_NUMERIC, "bool")
        ):
            return None
        if ref.low is None or ref.high is None:
            continue  # no range, no flags: the row-by-row pass skips these too
        names.append(name)
        low.append(ref.low)
        high.append(ref.high)
        scored = bool(ref.std) and ref.mean is not None
        mean.append(ref.mean if scored else 0.0)
        std.append(ref.std if scored else math.inf)  # a |z| of 0, never the largest
    f64 = np.float64
    return _Screen(
        names, np.array(low, f64), np.array(high, f64), np.array(mean, f64), np.array(std, f64)
    )


@dataclass(frozen=True)
class _LinearClassifier:
    """A fitted LogisticRegression's `predict` as scikit-learn computes it (the decision function
    `X @ coef.T + intercept`, then its positive side or arg max, as a class) without the per-call
    input checks that cost ~0.3 ms, many times the product on a small request. A matrix that
    is not finite float64 of the right width goes to scikit-learn instead, which refuses it."""

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray | None:
        if not (
            isinstance(X, np.ndarray)
            and X.dtype == np.float64
            and X.ndim == 2
            and X.shape[1] == self.coef.shape[1]
            and np.isfinite(X).all()
        ):
            return None
        scores = X @ self.coef.T + self.intercept
        if scores.shape[1] == 1:
            indices = (scores[:, 0] > 0).astype(np.intp)
        else:
            indices = scores.argmax(axis=1)
        return np.asarray(self.classes[indices], dtype=np.int64)


def _linear(kind: str, estimator: Any) -> _LinearClassifier | None:
    if kind != "sklearn.LogisticRegression":
        return None
    from sklearn.linear_model import LogisticRegression

    if type(estimator) is not LogisticRegression:
        return None
    coef, intercept, classes = (
        getattr(estimator, a, None) for a in ("coef_", "intercept_", "classes_")
    )
    if not (
        isinstance(coef, np.ndarray)
        and isinstance(intercept, np.ndarray)
        and isinstance(classes, np.ndarray)
        and coef.ndim == 2
        and coef.dtype == np.float64
        and classes.dtype.kind in "iu"
    ):
        return None
    return _LinearClassifier(coef, intercept, classes)


def _tolerance(predictions: dict[str, Any]) -> float:
    """How far apart two regression outputs may be and still agree: a tenth of the standard
    deviation of the training predictions (1.0 when the profile has none)."""
    columns = predictions.get("columns") or [{}]
    column = columns[0] if isinstance(columns, list) and columns else {}
    count, m2 = column.get("count") or 0, column.get("m2") or 0.0
    spread = math.sqrt(m2 / (count - 1)) if count > 1 else 1.0
    return float(max(spread * 0.1, 1e-12))


@dataclass
class Prediction:
    """The outcome of one predict call: one entry per record in every list."""

    predictions: list[Any]
    probabilities: list[list[float]] | None
    ood: list[list[str]]
    anomaly: list[float]
    fields: list[dict[str, Any]] = field(default_factory=list)


class ServedModel:
    """A verified model version ready to answer requests.

    >>> # built by the server from `registry.load_model(..., require_approved=True)`
    """

    def __init__(
        self,
        name: str,
        version: int,
        digest: str,
        model: LoadedModel,
        baseline: dict[str, Any],
        *,
        ood_z: float = 6.0,
    ) -> None:
        self.name = name
        self.version = version
        self.digest = digest
        self.model = model
        self.ood_z = ood_z
        self.schema = model.bundle.input_schema
        self._fields = _fields(self.schema)
        self._by_name = {f.name: f for f in self._fields}
        # Imported models run in their own runtime (scikit-learn object, ONNX Runtime) on the
        # feature columns; models aidlc trained run its preprocessing and estimator code.
        self._runtime = model.runtime
        # Numeric pipelines run in numpy: a data frame costs more than the model on small requests.
        self._numeric_inputs = (
            self._runtime is None
            and not model.preprocessor.categorical
            and all(
                self._by_name.get(n) is None or self._by_name[n].dtype in (*_NUMERIC, "bool")
                for n in model.preprocessor.input_features
            )
        )
        self._refs = _references(baseline, model.features)
        self._plain = _plain_schema(self._fields)
        self._screen = _screen(self._refs, self._by_name)
        plain, inputs = self._plain, model.preprocessor.input_features
        self._input_columns = plain.columns(inputs) if plain is not None else None
        self._screen_columns = (
            plain.columns(self._screen.names) if plain is not None and self._screen else None
        )
        self._linear = (
            _linear(model.bundle.kind, model.estimator) if self._runtime is None else None
        )
        self.divergence_tolerance = _tolerance(baseline.get("predictions") or {})

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def task(self) -> str:
        return self.model.bundle.task

    @property
    def classes(self) -> list[Any] | None:
        return self.model.bundle.classes

    # -- validation --------------------------------------------------------------------------

    def check(self, records: Any, max_rows: int) -> list[dict[str, Any]]:
        """Typed records, or `InvalidRecords` naming each bad row and field (the first 20)."""
        if not isinstance(records, list):
            raise InvalidRecords(
                "records must be an array of objects",
                [{"row": None, "field": None, "problem": "not an array"}],
            )
        if not records:
            raise InvalidRecords(
                "records is empty", [{"row": None, "field": None, "problem": "no records"}]
            )
        if len(records) > max_rows:
            raise InvalidRecords(
                f"{len(records)} records in one request; at most {max_rows} are allowed",
                [{"row": None, "field": None, "problem": f"more than {max_rows} records"}],
            )
        if self._plain is not None and len(records) > 1:  # one row is quicker cell by cell
            clean = self._plain.rows(records)
            if clean is not None:
                return clean
        problems: list[dict[str, Any]] = []
        out: list[dict[str, Any]] = []
        fields = self._fields
        by_name = self._by_name
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                problems.append({"row": i, "field": None, "problem": "must be an object"})
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue
            typed: dict[str, Any] = {}
            for key in record:
                if key not in by_name:
                    problems.append(
                        {
                            "row": i,
                            "field": str(key)[:100],
                            "problem": "is not an input of the model",
                        }
                    )
            for f in fields:
                value = record.get(f.name)
                if value is None:
                    if not f.nullable:
                        problems.append({"row": i, "field": f.name, "problem": "is required"})
                    typed[f.name] = None
                    continue
                value, why = _typed(f, value)
                if why is None:
                    why = _rule(f, value)
                if why is not None:
                    problems.append({"row": i, "field": f.name, "problem": why})
                typed[f.name] = value
            if len(problems) >= MAX_PROBLEMS:
                break
            out.append(typed)
        if problems:
            problems = problems[:MAX_PROBLEMS]
            first = problems[0]
            where = f"record {first['row']}" if first["row"] is not None else "the request"
            what = f" field {first['field']!r}" if first["field"] else ""
            raise InvalidRecords(
                f"{where}{what} {first['problem']}"
                + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""),
                problems,
            )
        return out

    # -- prediction --------------------------------------------------------------------------

    def matrix(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """The estimator's input for typed rows: numpy for numeric pipelines, else polars."""
        pre = self.model.preprocessor
        features = pre.input_features
        if self._numeric_inputs:
            out = pre.transform_numbers(_grid(rows, features, self._plain, self._input_columns))
            if out is not None:
                return out
        import polars as pl

        categorical = set(pre.categorical)
        schema = {n: (pl.String if n in categorical else pl.Float64) for n in features}
        columns = {n: [_cell(r.get(n), n in categorical) for r in rows] for n in features}
        return pre.transform(pl.DataFrame(columns, schema=schema))

    def out_of_distribution(
        self, rows: list[dict[str, Any]]
    ) -> tuple[list[list[str]], list[float]]:
        """Per row: the reasons it lies outside training data, and its largest |z| score.

        Numeric features are screened as one matrix; only flagged rows are explained, by the
        same row-by-row pass that handles every row when a feature is categorical."""
        if self._screen is None:
            return self._explain(rows)
        screen = self._screen
        grid = _grid(rows, screen.names, self._plain, self._screen_columns)
        with np.errstate(invalid="ignore", over="ignore"):
            z = np.abs(grid - screen.mean) / screen.std
            z[np.isnan(z)] = 0.0  # a null value has no score
            flagged = ((grid < screen.low) | (grid > screen.high) | (z > self.ood_z)).any(axis=1)
            anomaly = z.max(axis=1, initial=0.0)
        reasons: list[list[str]] = [[] for _ in rows]
        hits = np.flatnonzero(flagged).tolist()
        if hits:
            explained, _ = self._explain([rows[i] for i in hits])
            for i, why in zip(hits, explained, strict=True):
                reasons[i] = why
        return reasons, anomaly.tolist()

    def _explain(self, rows: list[dict[str, Any]]) -> tuple[list[list[str]], list[float]]:
        reasons: list[list[str]] = [[] for _ in rows]
        anomaly = [0.0] * len(rows)
        for name, ref in self._refs.items():
            for i, row in enumerate(rows):
                value = row.get(name)
                if value is None:
                    continue
                if ref.categories is not None:
                    if str(value) not in ref.categories:
                        reasons[i].append(f"{name}: a category training never saw")
                    continue
                if ref.low is None or ref.high is None or not isinstance(value, int | float):
                    continue
                x = float(value)
                if x < ref.low:
                    reasons[i].append(f"{name}: below the training minimum {ref.low:g}")
                elif x > ref.high:
                    reasons[i].append(f"{name}: above the training maximum {ref.high:g}")
                if ref.std and ref.mean is not None:
                    z = abs(x - ref.mean) / ref.std
                    anomaly[i] = max(anomaly[i], z)
                    if z > self.ood_z:
                        reasons[i].append(f"{name}: {z:.1f} standard deviations from the mean")
        return reasons, anomaly

    def predict(self, rows: list[dict[str, Any]], *, probabilities: bool = False) -> Prediction:
        """Predict typed rows (from `check`)."""
        from aidlc.train import estimators

        kind = self.model.bundle.kind
        proba = None
        if self._runtime is not None:
            wanted = probabilities and self.task == "classification"
            columns = {f: [r.get(f) for r in rows] for f in self.model.features}
            out, raw = self._runtime.run(columns, probabilities=wanted)
            proba = raw.tolist() if wanted and raw is not None else None
        else:
            X = self.matrix(rows)
            fast = self._linear.predict(X) if self._linear is not None else None
            out = fast if fast is not None else estimators.predict(kind, self.model.estimator, X)
            if probabilities and self.task == "classification":
                p = estimators.predict_proba(kind, self.model.estimator, X)
                proba = None if p is None else p.tolist()
        if self.task == "classification":
            classes = self.classes or []
            labels: list[Any] = [classes[int(i)] for i in out]
        else:
            labels = [float(v) for v in out]
        ood, anomaly = self.out_of_distribution(rows)
        return Prediction(labels, proba, ood, anomaly)

    def describe(self) -> dict[str, Any]:
        """The V2 protocol's model metadata, with aidlc's schema beside it."""
        dtypes = {"int": "INT64", "float": "FP64", "bool": "BOOL"}
        inputs = [
            {"name": f.name, "datatype": dtypes.get(f.dtype, "BYTES"), "shape": [-1]}
            for f in self._fields
        ]
        out_type = "BYTES" if self.task == "classification" else "FP64"
        return {
            "name": self.name,
            "versions": [str(self.version)],
            "platform": f"aidlc-{self.model.bundle.flavor}",
            "inputs": inputs,
            "outputs": [{"name": "predict", "datatype": out_type, "shape": [-1]}],
        }
