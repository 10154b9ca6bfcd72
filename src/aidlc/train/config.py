"""Training configs: the YAML that says what to train on what, how to judge it and where it goes.

A config is parsed into pydantic models that refuse anything unclear (unknown keys, repeated
keys, unknown metrics, malformed gates), each problem named by its key path, before a run starts.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import operator
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from aidlc.core.problems import describe, summary
from aidlc.errors import ConfigError, InvalidInput, UsageError

MAX_CONFIG_BYTES = 1 << 20

METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    "regression": ("mae", "rmse", "r2"),
}
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse"})
_ALL_METRICS = frozenset(m for names in METRICS.values() for m in names)
_TASK_OF = {m: task for task, names in METRICS.items() for m in names}

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_PARAM = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_DATASET = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}(@([1-9][0-9]{0,8}|latest))?")
_MODEL_TYPE = re.compile(r"xgboost|lightgbm|sklearn\.[A-Za-z][A-Za-z0-9]*")
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_GATE = re.compile(
    r"\s*(?P<metric>[a-z][a-z0-9_]{0,63})\s*(?P<op>>=|<=|>|<)\s*"
    rf"(?:(?P<production>production)(?:\s*(?P<sign>[+-])\s*(?P<delta>{_NUMBER}))?"
    rf"|(?P<number>[+-]?{_NUMBER}))\s*"
)
_GATE_FORMS = (
    "write METRIC OP NUMBER or METRIC OP production [+|-] NUMBER, with OP one of >=, >, <=, <, "
    "like `roc_auc >= 0.85` or `roc_auc >= production - 0.01`"
)
_MAX_GATE_CHARS = 200
_MAX_TEXT = 200
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
Selector = Literal["numeric", "categorical", "all"]
GateOp = Literal[">=", ">", "<=", "<"]
SELECTORS: tuple[str, ...] = ("numeric", "categorical", "all")
STEP_KINDS: tuple[str, ...] = ("impute", "scale", "encode", "derive")
UNARY_OPS = frozenset({"log1p", "sqrt", "square", "abs", "clip"})
BINARY_OPS = frozenset({"ratio", "product", "difference"})


def default_metrics(task: str) -> list[str]:
    """Every metric of `task`: what a run computes when its config lists none.

    >>> default_metrics("regression")
    ['mae', 'rmse', 'r2']
    """
    if task not in METRICS:
        raise ConfigError(f"unknown task {task!r:.40}; use classification or regression")
    return list(METRICS[task])


def _fullmatch(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"{value!r:.80} is not {what}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    """A value a model parameter may take: finite number, short text, boolean or null."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str):
        return len(value) <= _MAX_TEXT
    return _is_number(value)


def _known_metric(value: str) -> str:
    if value not in _ALL_METRICS:
        raise ValueError(f"unknown metric {value!r:.60}; use {_metric_list()}")
    return value


MetricName = Annotated[str, AfterValidator(_known_metric)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ColumnName = Annotated[str, Field(min_length=1, max_length=256)]


def _model_name(value: Any) -> Any:
    if isinstance(value, str):
        _fullmatch(_NAME, value, "a name of 1-64 characters a-z, 0-9, '.', '_', '-'")
    return value  # anything else: pydantic says it is not text


_ModelName = Annotated[str, BeforeValidator(_model_name)]


# -- gates --------------------------------------------------------------------------------------


def _show(number: float) -> str:
    text = repr(float(number))
    return text.removesuffix(".0")


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate on one run's metrics."""

    text: str
    passed: bool
    actual: float | None
    threshold: float | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        """As a JSON-able dict; a NaN or infinite number becomes null (the detail says which)."""

        def finite(value: float | None) -> float | None:
            return value if value is not None and math.isfinite(value) else None

        return {
            "text": self.text,
            "passed": self.passed,
            "actual": finite(self.actual),
            "threshold": finite(self.threshold),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Gate:
    """A quality gate: `metric op value`, or `metric op production + value` when `relative`."""

    metric: str
    op: GateOp
    value: float
    relative: bool = False

    @property
    def text(self) -> str:
        """The gate as canonical text, which `parse_gate` reads back to an equal gate."""
        if not self.relative:
            return f"{self.metric} {self.op} {_show(self.value)}"
        if self.value == 0:
            return f"{self.metric} {self.op} production"
        sign = "-" if self.value < 0 else "+"
        return f"{self.metric} {self.op} production {sign} {_show(abs(self.value))}"

    def evaluate(
        self, metrics: Mapping[str, float], production: Mapping[str, float] | None = None
    ) -> GateResult:
        """Judge `metrics`; a relative gate compares with the production version's metrics.

        >>> g = parse_gate("roc_auc >= production - 0.25")
        >>> g.evaluate({"roc_auc": 0.5}, {"roc_auc": 0.75}).passed
        True
        >>> g.evaluate({"roc_auc": 0.5}, None).detail
        'no production version to compare with'
        """
        actual = _number(metrics.get(self.metric))
        if actual is None:
            return GateResult(self.text, False, None, None, f"{self.metric} was not computed")
        if math.isnan(actual):
            return GateResult(self.text, False, actual, None, f"{self.metric} is NaN")
        if not self.relative:
            threshold = self.value
        elif production is None:
            return GateResult(
                self.text, True, actual, None, "no production version to compare with"
            )
        else:
            base = _number(production.get(self.metric))
            if base is None or not math.isfinite(base):
                return GateResult(
                    self.text,
                    True,
                    actual,
                    None,
                    f"the production version has no {self.metric} to compare with",
                )
            threshold = base + self.value
        passed = _OPS[self.op](actual, threshold)
        verb = self.op if passed else f"is not {self.op}"
        detail = f"{actual:.6g} {verb} {threshold:.6g}"
        return GateResult(self.text, passed, actual, threshold, detail)


def _number(value: Any) -> float | None:
    """A metric as a float (numpy scalars included); None when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def parse_gate(text: str) -> Gate:
    """A gate from its text: `METRIC OP NUMBER` or `METRIC OP production [+|-] NUMBER`.

    >>> parse_gate("roc_auc>=production-0.01").text
    'roc_auc >= production - 0.01'
    >>> parse_gate("rmse < 4").evaluate({"rmse": 3.5}).detail
    '3.5 < 4'
    """
    if not isinstance(text, str):
        raise ConfigError(f"a gate is text, not {type(text).__name__}: {_GATE_FORMS}")
    shown = text if len(text) <= 60 else text[:60] + "..."
    if len(text) > _MAX_GATE_CHARS:
        raise ConfigError(f"gate {shown!r} is longer than {_MAX_GATE_CHARS} characters")
    found = _GATE.fullmatch(text)
    if not found:
        raise ConfigError(f"gate {shown!r} is not understood: {_GATE_FORMS}")
    if found["production"]:
        delta = float(found["delta"]) if found["delta"] else 0.0
        value = -delta if found["sign"] == "-" else delta
    else:
        value = float(found["number"])
    if not math.isfinite(value):
        raise ConfigError(f"gate {shown!r}: the number is too large")
    op = cast(GateOp, found["op"])  # the regex admits only the four operators
    return Gate(found["metric"], op, value + 0.0, bool(found["production"]))  # -0.0 → 0.0


def _gate(value: Any) -> Gate:
    if isinstance(value, Gate):
        return value
    try:
        return parse_gate(value)
    except ConfigError as exc:
        raise ValueError(exc.message) from None


GateField = Annotated[Gate, PlainValidator(_gate), PlainSerializer(lambda g: g.text)]


# -- the model and its tuning --------------------------------------------------------------------


class ModelSpec(_Model):
    """Which estimator, with which fixed parameters, for how many boosting rounds."""

    type: str = Field(max_length=100)
    params: dict[str, int | float | str | bool | None] = Field(default_factory=dict)
    rounds: int = Field(default=100, ge=1, le=100_000)
    checkpoint_every: int = Field(default=50, ge=1, le=100_000)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return _fullmatch(_MODEL_TYPE, value, "xgboost, lightgbm or sklearn.<EstimatorName>")

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        return _check_params(value)


def _check_params(value: Any) -> Any:
    if not isinstance(value, dict):
        return value  # pydantic says it is not a mapping
    if len(value) > 100:
        raise ValueError(f"has {len(value)} entries; at most 100 are allowed")
    for key, item in value.items():
        if not isinstance(key, str) or not _PARAM.fullmatch(key):
            raise ValueError(
                f"{str(key)[:40]!r} is not a parameter name (a-z, 0-9, '_'; at most 64)"
            )
        if not _is_scalar(item):
            raise ValueError(
                f"{key}: must be a finite number, text of at most {_MAX_TEXT} characters, "
                "true/false or null"
            )
    return value


class ParamSpec(_Model):
    """One tuned parameter: an int or float range, or a list of choices."""

    type: Literal["int", "float", "categorical"]
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: list[int | float | str | bool | None] | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("low", "high", "step"):
            value = data.get(key)
            if value is None:
                continue
            if not _is_number(value):
                raise ValueError(f"{key} must be a finite number, not {value!r:.40}")
            if data.get("type") == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(f"{key} of an int parameter must be a whole number")
                data[key] = int(value)
            elif data.get("type") == "float":
                data[key] = float(value)  # so `1` and `1.0` are the same config
        choices = data.get("choices")
        if choices is not None:
            if not isinstance(choices, list) or not 1 <= len(choices) <= 100:
                raise ValueError("choices must be a list of 1 to 100 values")
            for i, choice in enumerate(choices):
                if not _is_scalar(choice):
                    raise ValueError(
                        f"choices[{i}] must be a finite number, text of at most {_MAX_TEXT} "
                        "characters, true/false or null"
                    )
                # Optuna finds a choice by ==, so 1, 1.0 and true would be one choice.
                if any(choice == other for other in choices[:i]):
                    raise ValueError(
                        f"choices[{i}] repeats an earlier choice (1, 1.0 and true count as equal)"
                    )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "categorical":
            extra = [k for k in ("low", "high", "step") if getattr(self, k) is not None]
            if extra or self.log:
                raise ValueError(f"{(extra or ['log'])[0]} does not apply to a categorical")
            if self.choices is None:
                raise ValueError("a categorical needs choices")
            return self
        if self.choices is not None:
            raise ValueError(f"choices apply only to a categorical, not an {self.type}")
        if self.low is None or self.high is None:
            raise ValueError(f"an {self.type} parameter needs low and high")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be less than high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("log needs low > 0")
        if self.step is not None:
            if self.step <= 0:
                raise ValueError("step must be positive")
            if self.log:
                raise ValueError("log and step cannot be combined")
            steps = (self.high - self.low) / self.step
            if abs(steps - round(steps)) > 1e-8 * max(1.0, abs(steps)):
                raise ValueError("high - low must be a multiple of step")
        return self


class TuningSpec(_Model):
    """Hyperparameter search: how many trials, scored how, over which space."""

    trials: int = Field(ge=1, le=10_000)
    parallelism: int = Field(default=1, ge=1, le=64)
    objective: MetricName
    direction: Literal["maximize", "minimize"] | None = None
    folds: int = Field(default=3, ge=2, le=20)
    space: dict[str, ParamSpec] = Field(min_length=1, max_length=50)

    @field_validator("space", mode="before")
    @classmethod
    def _space_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str) or not _PARAM.fullmatch(key):
                    raise ValueError(
                        f"{str(key)[:40]!r} is not a parameter name (a-z, 0-9, '_'; at most 64)"
                    )
        return value

    def resolved_direction(self) -> Literal["maximize", "minimize"]:
        """`direction`, or the objective's natural one (log_loss, mae, rmse: minimize)."""
        if self.direction is not None:
            return self.direction
        return "minimize" if self.objective in LOWER_IS_BETTER else "maximize"


class Validation(_Model):
    """How the model is scored: a held-out share of rows, or k-fold cross-validation."""

    method: Literal["holdout", "cv"] = "holdout"
    test_size: float = Field(default=0.2, gt=0, lt=1)
    folds: int = Field(default=5, ge=2, le=20)
    stratify: bool = True


# -- preprocessing steps ------------------------------------------------------------------------


def _columns(value: Any) -> Any:
    if isinstance(value, str):
        if value not in SELECTORS:
            raise ValueError(
                f"{value!r:.60} is not a selector: use numeric, categorical, all or a list of "
                "column names"
            )
        return value
    if not isinstance(value, list):
        raise ValueError("must be numeric, categorical, all or a list of column names")
    if not 1 <= len(value) <= 10_000:
        raise ValueError("must list 1 to 10000 column names")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not 1 <= len(name) <= 256:
            raise ValueError(f"item {i} is not a column name (text of 1 to 256 characters)")
        if name in value[:i]:
            raise ValueError(f"lists {name!r:.60} twice")
    return value


Columns = Annotated[list[str] | Selector, BeforeValidator(_columns)]


class ImputeStep(_Model):
    """Fill nulls with a statistic of the training rows, or a constant."""

    kind: Literal["impute"] = "impute"
    columns: Columns
    strategy: Literal["mean", "median", "most_frequent", "constant"]
    value: float | str | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        if value is None or _is_number(value):
            return value
        if isinstance(value, str) and len(value) <= 256:
            return value
        raise ValueError("must be a finite number or text of at most 256 characters")

    @model_validator(mode="after")
    def _consistent(self) -> ImputeStep:
        if self.strategy == "constant" and self.value is None:
            raise ValueError("strategy constant needs a value")
        if self.strategy != "constant" and self.value is not None:
            raise ValueError(f"value applies only to strategy constant, not {self.strategy}")
        if self.columns == "categorical" and self.strategy in ("mean", "median"):
            raise ValueError(f"{self.strategy} applies to numeric columns only")
        if self.columns == "categorical" and _is_number(self.value):
            raise ValueError("a categorical column's constant must be text: quote it")
        if self.columns == "numeric" and isinstance(self.value, str):
            raise ValueError("a numeric column's constant must be a number")
        return self


class ScaleStep(_Model):
    """Center and scale numeric columns with statistics of the training rows."""

    kind: Literal["scale"] = "scale"
    columns: Columns
    method: Literal["standard", "minmax", "robust"] = "standard"

    @field_validator("columns")
    @classmethod
    def _numeric(cls, value: list[str] | str) -> list[str] | str:
        if value == "categorical":
            raise ValueError("scaling applies to numeric columns, not categorical ones")
        return value


class EncodeStep(_Model):
    """Turn categorical columns into numbers: one-hot columns or category indexes."""

    kind: Literal["encode"] = "encode"
    columns: Columns
    method: Literal["onehot", "ordinal"] = "onehot"
    max_categories: int = Field(default=50, ge=1, le=1000)

    @field_validator("columns")
    @classmethod
    def _categorical(cls, value: list[str] | str) -> list[str] | str:
        if value == "numeric":
            raise ValueError("encoding applies to categorical columns, not numeric ones")
        return value


class DeriveStep(_Model):
    """A new numeric column computed from existing ones, row by row."""

    kind: Literal["derive"] = "derive"
    name: ColumnName
    op: Literal["log1p", "sqrt", "square", "abs", "ratio", "product", "difference", "sum", "clip"]
    inputs: list[ColumnName] = Field(min_length=1, max_length=100)
    low: float | None = None
    high: float | None = None

    @field_validator("low", "high")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DeriveStep:
        n = len(self.inputs)
        if self.op in UNARY_OPS and n != 1:
            raise ValueError(f"{self.op} takes 1 input, not {n}")
        if self.op in BINARY_OPS and n != 2:
            raise ValueError(f"{self.op} takes 2 inputs, not {n}")
        if self.op == "sum" and n < 2:
            raise ValueError("sum takes at least 2 inputs")
        if self.op == "clip":
            if self.low is None and self.high is None:
                raise ValueError("clip needs low, high or both")
            if self.low is not None and self.high is not None and self.low > self.high:
                raise ValueError(f"low ({self.low}) is greater than high ({self.high})")
        elif self.low is not None or self.high is not None:
            raise ValueError(f"low and high apply only to clip, not {self.op}")
        return self


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind")
        return kind if isinstance(kind, str) else None
    return getattr(value, "kind", None)


def _unwrap_step(value: Any) -> Any:
    """`{impute: {...}}`, as written in YAML, to the tagged form the union dispatches on."""
    if isinstance(value, ImputeStep | ScaleStep | EncodeStep | DeriveStep):
        return value
    kinds = ", ".join(STEP_KINDS)
    if not isinstance(value, dict):
        raise ValueError(f"a step is a mapping with one key naming it ({kinds})")
    if len(value) != 1:
        keys = ", ".join(repr(str(k)[:40]) for k in list(value)[:5])
        raise ValueError(
            f"a step is a mapping with exactly one key naming it ({kinds}); this one has "
            f"{len(value)}: {keys}; put each step in its own list item"
        )
    ((name, body),) = value.items()
    if name not in STEP_KINDS:
        raise ValueError(f"unknown step {str(name)[:40]!r}; use {kinds}")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ValueError(f"{name} takes a mapping of settings, like {name}: {{columns: ...}}")
    if "kind" in body:
        raise ValueError(f"{name}.kind: unknown field")
    return {**body, "kind": name}


Step = Annotated[
    Annotated[ImputeStep, Tag("impute")]
    | Annotated[ScaleStep, Tag("scale")]
    | Annotated[EncodeStep, Tag("encode")]
    | Annotated[DeriveStep, Tag("derive")],
    Discriminator(_step_kind),
]
_StepItem = Annotated[Step, BeforeValidator(_unwrap_step)]


# -- registration and the card ------------------------------------------------------------------


class RegisterSpec(_Model):
    """Register the trained model as a new version of `model`."""

    model: _ModelName
    description: str = Field(default="", max_length=2000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=50)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or not _NAME.fullmatch(key):
                    raise ValueError(
                        f"{str(key)[:40]!r} is not a tag name (1-64 characters a-z, 0-9, '.', "
                        "'_', '-')"
                    )
                if not isinstance(item, str) or len(item) > 256:
                    raise ValueError(f"{key}: a tag value is text of at most 256 characters")
        return value


class CardSpec(_Model):
    """What the model card says about use, limits and ownership."""

    intended_use: str = Field(default="", max_length=4000)
    limitations: str = Field(default="", max_length=4000)
    owner: str = Field(default="", max_length=4000)


# -- the config ---------------------------------------------------------------------------------


# `register` is also ABCMeta.register on the model's metaclass, which instances never see.
warnings.filterwarnings(
    "ignore", message='Field name "register" in "TrainConfig" shadows', category=UserWarning
)


class TrainConfig(_Model):
    """A training config. Build one with `parse_train_config` or `load_train_config`."""

    format: Literal[1] = 1
    name: _ModelName | None = None
    dataset: str = Field(max_length=200)
    target: ColumnName
    features: list[ColumnName] | None = Field(default=None, min_length=1, max_length=10_000)
    exclude: list[ColumnName] = Field(default_factory=list, max_length=10_000)
    task: Literal["classification", "regression"] | None = None
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    model: ModelSpec
    preprocessing: list[_StepItem] = Field(default_factory=list, max_length=100)
    validation: Validation = Validation()
    metrics: list[MetricName] | None = Field(default=None, min_length=1, max_length=20)
    gates: list[GateField] = Field(default_factory=list, max_length=50)
    tuning: TuningSpec | None = None
    register: RegisterSpec | None = None
    card: CardSpec = CardSpec()

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        return _fullmatch(_DATASET, value, "a dataset reference: NAME, NAME@V or NAME@latest")

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str] | None) -> list[str] | None:
        for i, name in enumerate(value or []):
            if name in (value or [])[:i]:
                raise ValueError(f"{name} is listed twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.features is not None and self.exclude:
            raise ValueError("features and exclude: give one or the other, not both")
        for key in ("features", "exclude"):
            names = getattr(self, key) or []
            for i, name in enumerate(names):
                if name == self.target:
                    raise ValueError(
                        f"{key}[{i}]: {name!r:.60} is the target, which is never a feature; "
                        "remove it"
                    )
                if name in names[:i]:
                    raise ValueError(f"{key}[{i}]: {name!r:.60} is listed twice")
        self._check_metrics()
        derived: dict[str, int] = {}
        for i, step in enumerate(self.preprocessing):
            if isinstance(step, DeriveStep):
                if step.name in derived:
                    raise ValueError(
                        f"preprocessing[{i}].derive.name: {step.name!r:.60} is already derived "
                        f"by preprocessing[{derived[step.name]}]"
                    )
                if step.name == self.target:
                    raise ValueError(
                        f"preprocessing[{i}].derive.name: {step.name!r:.60} is the target"
                    )
                derived[step.name] = i
        return self

    def _check_metrics(self) -> None:
        used: list[tuple[str, str]] = [
            (f"metrics[{i}]", m) for i, m in enumerate(self.metrics or [])
        ]
        for i, gate in enumerate(self.gates):
            if gate.metric not in _ALL_METRICS:
                raise ValueError(
                    f"gates[{i}]: unknown metric {gate.metric!r}; use {_metric_list()}"
                )
            if self.metrics is not None and gate.metric not in self.metrics:
                raise ValueError(
                    f"gates[{i}]: {gate.metric} is not in metrics, so it would never be "
                    "computed; add it there"
                )
            used.append((f"gates[{i}]", gate.metric))
        if self.tuning is not None:
            used.append(("tuning.objective", self.tuning.objective))
        task: str | None = self.task
        first = ""
        for where, metric in used:
            if task is None:
                task, first = _TASK_OF[metric], where
            elif _TASK_OF[metric] != task:
                reason = f"the task is {task}" if not first else f"{first} is a {task} metric"
                raise ValueError(
                    f"{where}: {metric} is a {_TASK_OF[metric]} metric but {reason}; "
                    f"{task} metrics are {', '.join(METRICS[task])}"
                )

    def to_json(self) -> dict[str, Any]:
        """The config as a plain JSON-able dict (defaults included) that parses back to it.

        Preprocessing steps take their YAML shape (`{"impute": {...}}`), gates their text.
        """
        body = self.model_dump(mode="json")
        body["preprocessing"] = [
            {step["kind"]: {k: v for k, v in step.items() if k != "kind"}}
            for step in body["preprocessing"]
        ]
        return body


def _metric_list() -> str:
    return "; ".join(f"{task}: {', '.join(names)}" for task, names in METRICS.items())


def config_digest(cfg: TrainConfig) -> str:
    """SHA-256 (hex) of the config's canonical JSON: equal configs, equal digests.

    >>> a = parse_train_config("dataset: d\\ntarget: y\\nmodel: {type: xgboost}\\n")
    >>> b = parse_train_config('{"model": {"type": "xgboost", "rounds": 100}, "target": "y", '
    ...                        '"dataset": "d"}')
    >>> config_digest(a) == config_digest(b)
    True
    """
    canonical = json.dumps(
        cfg.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# -- reading ------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping repeating a key, and reads `1e-3` as a number."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # keys from `<<` merges may be overridden, as YAML intends
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found an unhashable key",
                    key_node.start_mark,
                ) from None
            if repeated:
                raise _DuplicateKey(str(key)[:60], key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, mark: yaml.Mark) -> None:
        super().__init__(key)
        self.key, self.mark = key, mark


# YAML 1.1 (PyYAML) reads `1e-3` as text; YAML 1.2 and JSON read it as a number, as people mean.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+\Z"),
    list("-+0123456789."),
)


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506  # nosec B506: a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(
            f"{source} repeats the key {exc.key!r} at line {exc.mark.line + 1}, column "
            f"{exc.mark.column + 1}: each key may appear once in a mapping"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(exc, yaml.reader.ReaderError):
            where = f" at line {text.count(chr(10), 0, exc.position) + 1}"
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "malformed"
        raise ConfigError(f"{source} is not valid YAML{where}: {str(problem)[:200]}") from None
    except ValueError as exc:  # PyYAML builds dates eagerly: `2024-13-01` raises here
        raise ConfigError(f"{source} is not valid YAML: {str(exc)[:200]}") from None
    except RecursionError:
        raise ConfigError(f"{source} is not valid YAML: nested too deeply") from None


def parse_train_config(text: str | bytes, source: str = "config") -> TrainConfig:
    """Parse and validate a training config (YAML or JSON, at most 1 MiB).

    Too large or not UTF-8: InvalidInput. Anything else wrong (YAML syntax, a repeated key, an
    unknown or invalid field): ConfigError naming `source` and the key path.

    >>> cfg = parse_train_config('''
    ... dataset: churn@3
    ... target: churned
    ... model: {type: lightgbm, params: {num_leaves: 15}}
    ... gates: [roc_auc >= 0.8]
    ... ''')
    >>> cfg.model.rounds, cfg.gates[0].text
    (100, 'roc_auc >= 0.8')
    """
    if isinstance(text, bytes):
        if len(text) > MAX_CONFIG_BYTES:
            raise InvalidInput(f"{source} is larger than 1 MiB; a training config is small")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"{source} is not UTF-8 text (byte {exc.start} is not valid UTF-8)"
            ) from None
    elif not isinstance(text, str):
        raise UsageError(f"a training config is text, not {type(text).__name__}")
    elif len(text) > MAX_CONFIG_BYTES or len(text.encode("utf-8", "surrogatepass")) > (
        MAX_CONFIG_BYTES
    ):
        raise InvalidInput(f"{source} is larger than 1 MiB; a training config is small")
    obj = _load_yaml(text, source)
    if not isinstance(obj, dict):
        kind = "empty" if obj is None else f"a {type(obj).__name__}"
        raise ConfigError(
            f"{source} must be a mapping of settings (dataset, target, model, ...), not {kind}"
        )
    try:
        return TrainConfig.model_validate(obj)
    except ValidationError as exc:
        problems = describe(exc)
        raise ConfigError(summary(source, problems)) from None


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate the training config at `path`.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "train.yaml"
    >>> _ = p.write_text("dataset: churn\\ntarget: churned\\nmodel: {type: xgboost}\\n")
    >>> load_train_config(p).dataset
    'churn'
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give the path of a training config file")
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"no training config at {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read the training config {path}: {exc.strerror}") from None
    return parse_train_config(raw, str(path))
