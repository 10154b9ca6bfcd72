"""Data contracts: the YAML that says what a dataset's columns and rows must look like.

A contract is parsed into pydantic models that refuse anything unclear, so the validation
engine (`aidlc.data.validate`) never has to second-guess it. `infer_contract` drafts one from a
sample for a person to review.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from aidlc.core.problems import describe, summary
from aidlc.errors import InvalidInput

if TYPE_CHECKING:
    import polars as pl

MAX_CONTRACT_BYTES = 1 << 20
MAX_REGEX_CHARS = 1000
MAX_ALLOWED_VALUES = 10_000

Dtype = Literal["int", "float", "string", "bool", "date", "datetime", "category"]
Classification = Literal["public", "internal", "pii", "sensitive"]
RANGE_DTYPES = frozenset({"int", "float", "date", "datetime"})
ALLOWED_DTYPES = frozenset({"string", "category", "int"})
MASKED = frozenset({"pii", "sensitive"})

# "$" for the published JSON Schema (ECMA-262 has no \Z); fullmatch in Python, so no trailing "\n"
_DURATION = re.compile(r"^([1-9][0-9]{0,8})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m` or `45s` as a timedelta.

    >>> parse_duration("36h")
    datetime.timedelta(days=1, seconds=43200)
    """
    found = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if not found:
        raise ValueError(
            f"{str(text)[:40]!r} is not a duration: use a whole number and a unit, "
            "like 30d, 12h, 90m or 45s"
        )
    return timedelta(seconds=int(found.group(1)) * _UNIT_SECONDS[found.group(2)])


def _check_regex(pattern: str) -> None:
    """Compile with the engine that will run it (Rust `regex` inside polars: linear time)."""
    import polars as pl

    try:
        pl.Series("probe", [""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.PolarsError as exc:
        detail = " ".join(str(exc).split("This error occurred")[0].split())
        raise ValueError(f"does not compile: {detail[:300]}") from None


def _bound(value: Any, dtype: str) -> int | float | date | datetime:
    """A min/max from YAML or JSON, as the Python value matching the column's dtype."""
    if isinstance(value, bool):
        raise ValueError(f"must be a {dtype} value, not a boolean")
    if dtype == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int):
            raise ValueError(f"must be a whole number, not {value!r:.60}")
        return value
    if dtype == "float":
        if (
            not isinstance(value, int | float)
            or value != value
            or value
            in (
                float("inf"),
                float("-inf"),
            )
        ):
            raise ValueError(f"must be a finite number, not {value!r:.60}")
        return float(value)  # so `1` and `1.0` are the same contract
    if dtype == "date":
        if isinstance(value, datetime):
            raise ValueError("must be a date like 2024-01-31, not a date and time")
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise ValueError(f"must be a date like 2024-01-31, not {value!r:.60}")
    # datetime
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"must be an ISO 8601 date and time like 2024-01-31T12:00:00Z, not {value!r:.60}"
            ) from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise ValueError(f"must be an ISO 8601 date and time, not {value!r:.60}")
    # Naive times are UTC, as in the data.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Model):
    """One column: its type, its value rules, and how sensitive it is."""

    name: str = Field(min_length=1, max_length=256)
    dtype: Dtype
    nullable: bool = True
    unique: bool = False
    min: int | float | datetime | date | None = None
    max: int | float | datetime | date | None = None
    allowed: list[str] | list[int] | None = None
    regex: str | None = None
    classification: Classification = "internal"
    subject_id: bool = False

    @field_validator("min", "max", mode="before")
    @classmethod
    def _range_fits_dtype(cls, value: Any, info: ValidationInfo) -> Any:
        dtype = info.data.get("dtype")
        if value is None or dtype is None:
            return value
        if dtype not in RANGE_DTYPES:
            raise ValueError(f"applies only to int, float, date and datetime columns, not {dtype}")
        bound = _bound(value, dtype)
        low = info.data.get("min")
        if info.field_name == "max" and low is not None and low > bound:
            raise ValueError(f"{_show(bound)} is less than min {_show(low)}")
        return bound

    @field_validator("allowed", mode="before")
    @classmethod
    def _allowed_fits_dtype(cls, value: Any, info: ValidationInfo) -> Any:
        dtype = info.data.get("dtype")
        if value is None or dtype is None:
            return value
        if dtype not in ALLOWED_DTYPES:
            raise ValueError(f"applies only to string, category and int columns, not {dtype}")
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list of values")
        if len(value) > MAX_ALLOWED_VALUES:
            raise ValueError(f"lists {len(value)} values; at most {MAX_ALLOWED_VALUES} are allowed")
        for i, item in enumerate(value):
            if dtype == "int":
                if isinstance(item, bool) or not isinstance(item, int):
                    raise ValueError(f"item {i} ({item!r:.40}) is not a whole number")
            elif isinstance(item, bool):
                raise ValueError(
                    f"item {i} is the boolean {item}: YAML reads unquoted yes/no/true/false/on/off "
                    "as booleans, so quote it"
                )
            elif not isinstance(item, str):
                raise ValueError(f"item {i} ({item!r:.40}) is not text: quote it")
        if len(set(value)) != len(value):
            twice = next(v for i, v in enumerate(value) if v in value[:i])
            raise ValueError(f"lists {twice!r:.60} more than once")
        return value

    @field_validator("regex")
    @classmethod
    def _regex_fits_dtype(cls, value: str | None, info: ValidationInfo) -> str | None:
        dtype = info.data.get("dtype")
        if value is None or dtype is None:
            return value
        if dtype != "string":
            raise ValueError(f"applies only to string columns, not {dtype}")
        if len(value) > MAX_REGEX_CHARS:
            raise ValueError(f"is {len(value)} characters long; at most {MAX_REGEX_CHARS} allowed")
        _check_regex(value)
        return value

    @property
    def masked(self) -> bool:
        """Whether values of this column must never appear in reports or messages."""
        return self.classification in MASKED or self.subject_id

    @property
    def identifying(self) -> bool:
        """Whether the column identifies people (pii, the subject id): its profile keeps counts
        only, never values. Sensitive measurements keep aggregate statistics, which drift checks
        need, but their individual values are still masked in reports."""
        return self.classification == "pii" or self.subject_id


class Freshness(_Model):
    """The newest value of `column` must lie within `max_age` of now."""

    column: str
    max_age: str = Field(json_schema_extra={"pattern": _DURATION.pattern})

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def max_age_delta(self) -> timedelta:
        return parse_duration(self.max_age)


class Drift(_Model):
    """Population stability index against the previous version's profile."""

    max_psi: float = Field(gt=0, le=100)
    columns: list[str] | None = Field(default=None, min_length=1)


class TableChecks(_Model):
    """Checks of the file as a whole; when one fails, the whole file fails."""

    min_rows: int | None = Field(default=None, ge=0)
    max_rows: int | None = Field(default=None, ge=0)
    max_null_fraction: float | None = Field(default=None, ge=0, le=1)
    no_duplicate_rows: bool = False
    freshness: Freshness | None = None
    drift: Drift | None = None

    @field_validator("max_rows")
    @classmethod
    def _max_above_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_rows")
        if value is not None and low is not None and value < low:
            raise ValueError(f"{value} is less than min_rows {low}")
        return value


class Contract(_Model):
    """A data contract. Build one with `load_contract`, `parse_contract` or `infer_contract`."""

    name: str | None = Field(default=None, max_length=200)
    format: Literal[1] = 1
    on_failure: Literal["reject_file", "quarantine_rows"] = "reject_file"
    allow_extra_columns: bool = False
    columns: list[ColumnSpec] = Field(min_length=1, max_length=100_000)
    table: TableChecks = TableChecks()

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        seen: dict[str, int] = {}
        for i, col in enumerate(self.columns):
            if col.name in seen:
                raise ValueError(
                    f"columns[{i}].name: {col.name!r:.80} is already the name of "
                    f"columns[{seen[col.name]}]"
                )
            seen[col.name] = i
        subjects = [i for i, c in enumerate(self.columns) if c.subject_id]
        if len(subjects) > 1:
            raise ValueError(
                f"columns[{subjects[1]}].subject_id: only one column may identify a person, "
                f"and columns[{subjects[0]}] already does"
            )
        fresh = self.table.freshness
        if fresh is not None:
            if fresh.column not in seen:
                raise ValueError(f"table.freshness.column: no column named {fresh.column!r:.80}")
            dtype = self.columns[seen[fresh.column]].dtype
            if dtype not in ("date", "datetime"):
                raise ValueError(
                    f"table.freshness.column: {fresh.column!r:.80} has dtype {dtype}; "
                    "freshness needs a date or datetime column"
                )
        drift = self.table.drift
        for j, name in enumerate(drift.columns or [] if drift else []):
            if name not in seen:
                raise ValueError(f"table.drift.columns[{j}]: no column named {name!r:.80}")
        return self

    def opaque(self, df: pl.DataFrame) -> pl.DataFrame:
        """`df` with the identifying columns (pii, the subject id) made opaque, so a profile counts
        them (rows, nulls) but lists none of their values: profiles travel into model baselines,
        reports and monitors, where a person's id must never appear."""
        import polars as pl

        hidden = [c.name for c in self.columns if c.identifying and c.name in df.columns]
        if not hidden:
            return df
        return df.with_columns(pl.col(c).cast(pl.String).cast(pl.Binary) for c in hidden)

    def column(self, name: str) -> ColumnSpec:
        """The column named `name` (KeyError when absent)."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_yaml(self) -> str:
        """The contract as YAML that `parse_contract` reads back to an equal contract."""
        body = self.model_dump(mode="json", exclude_defaults=True)
        ordered: dict[str, Any] = {}
        if self.name is not None:
            ordered["name"] = self.name
        ordered["format"] = self.format
        ordered.update({k: v for k, v in body.items() if k not in ("name", "format")})
        return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True)

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the contract, defaults included.

        Equal contracts have equal fingerprints however their YAML was written.
        """
        canonical = json.dumps(
            self.model_dump(mode="json"),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _show(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else repr(value)


def parse_contract(obj: Any, *, source: str = "contract") -> Contract:
    """Validate an already-parsed contract mapping; every problem names its field path.

    >>> parse_contract({"columns": [{"name": "age", "dtype": "int", "min": 0}]}).columns[0].min
    0
    """
    if not isinstance(obj, dict):
        raise InvalidInput(
            f"{source} must be a mapping with a `columns` list, not {type(obj).__name__}"
        )
    try:
        return Contract.model_validate(obj)
    except ValidationError as exc:
        problems = describe(exc)
        raise InvalidInput(summary(source, problems)) from None


def load_contract(path: str | Path) -> Contract:
    """Read and validate a YAML data contract (at most 1 MiB).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "churn.yaml"
    >>> _ = p.write_text("columns:\\n  - {name: plan, dtype: category, allowed: [basic, pro]}\\n")
    >>> load_contract(p).columns[0].allowed
    ['basic', 'pro']
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONTRACT_BYTES:
            raise InvalidInput(f"{path} is {size} bytes; a contract is at most 1 MiB")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"no contract file at {path}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    return parse_contract(_load_yaml(text, str(path)), source=str(path))


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise InvalidInput(f"{source} is not valid YAML{where}: {problem}") from None
    except ValueError as exc:  # PyYAML builds dates eagerly: `2024-13-01` raises here
        raise InvalidInput(f"{source} is not valid YAML: {str(exc)[:200]}") from None
    except RecursionError:
        raise InvalidInput(f"{source} is not valid YAML: nested too deeply") from None


def contract_json_schema() -> dict[str, Any]:
    """JSON Schema of a contract (as in docs/contract.schema.json), for editors and CI."""
    schema = Contract.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "aidlc data contract"
    return schema


# -- drafting a contract from a sample ----------------------------------------------------------

_PII_NAME = re.compile(
    r"e_?mail|phone|mobile|(^|_)fax|(^|_|first|last|full|middle|sur|given|user)name($|_)"
    r"|^name$|ssn|social_?sec|passport|national_?id|tax_?id|address|street|zip_?code|postcode"
    r"|postal|(^|_)zip($|_)|birth|(^|_)(dob|born)($|_)|(^|_)ip_?addr|iban|card_?num|credit_?card|licen[cs]e_?num"
    r"|(customer|user|patient|person|member|client|employee|subject|account|citizen)_?id",
    re.IGNORECASE,
)
_SENSITIVE_NAME = re.compile(
    r"diagnos|health|medical|religio|ethnic|(^|_)race($|_)|sexual|biometric|disabilit"
    r"|politic|trade_?union|genetic|salary|income|criminal",
    re.IGNORECASE,
)
_SUBJECT_NAME = re.compile(
    r"^(customer|user|patient|person|member|client|employee|subject|citizen)_?id$", re.IGNORECASE
)
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|code|number|no)$|id$", re.IGNORECASE)
_CATEGORY_MAX_DISTINCT = 20
_CATEGORY_MAX_SHARE = 0.05


def classify_name(name: str) -> Classification:
    """A first guess at a column's classification from its name (review it!).

    >>> classify_name("email"), classify_name("diagnosis_code"), classify_name("amount")
    ('pii', 'sensitive', 'internal')
    """
    if _PII_NAME.search(name):
        return "pii"
    if _SENSITIVE_NAME.search(name):
        return "sensitive"
    return "internal"


def infer_contract(df: pl.DataFrame, *, name: str | None = None) -> Contract:
    """Draft a contract from a sample; a person should review it before it guards a dataset.

    Types come from the data (text that always parses as a number, a date or a time becomes
    one); a column is nullable when the sample has nulls; min/max are the observed range; few
    distinct texts become a `category` with `allowed` values; an all-distinct, never-null column
    with an id-like name becomes `unique`; classifications are guessed from names.

    >>> import polars as pl
    >>> df = pl.DataFrame({"customer_id": ["C-1", "C-2", "C-3"], "age": ["34", "51", "29"]})
    >>> c = infer_contract(df, name="churn")
    >>> [(col.name, col.dtype, col.classification) for col in c.columns]
    [('customer_id', 'string', 'pii'), ('age', 'int', 'internal')]
    >>> c.columns[1].min, c.columns[1].max
    (29, 51)
    >>> from aidlc.data.validate import validate
    >>> validate(df, c).passed
    True
    """
    import polars as pl

    from aidlc.data.validate import cast_column

    if not isinstance(df, pl.DataFrame):
        raise InvalidInput("infer_contract needs a polars DataFrame")
    if df.width == 0:
        raise InvalidInput("cannot draft a contract from a table without columns")
    rows = df.height
    columns: list[ColumnSpec] = []
    for series in df.get_columns():
        dtype = _infer_dtype(series, rows)
        typed = df.select(cast_column(series.name, series.dtype, dtype, rows)).to_series()
        spec: dict[str, Any] = {
            "name": series.name,
            "dtype": dtype,
            "nullable": bool(series.null_count() > 0 or rows == 0),
            "classification": classify_name(series.name),
        }
        values = typed.drop_nulls()
        # NaN and infinities fail any range, so a sample holding them gets none.
        finite = dtype != "float" or bool(values.is_finite().all())
        if dtype in RANGE_DTYPES and values.len() and finite:
            spec["min"], spec["max"] = values.min(), values.max()
        if dtype == "category":
            distinct = sorted(values.unique().to_list())
            if distinct and len(distinct) <= MAX_ALLOWED_VALUES:
                spec["allowed"] = distinct
        if (
            dtype in ("string", "int")
            and rows > 1
            and not spec["nullable"]
            and _ID_NAME.search(series.name)
            and typed.n_unique() == rows
        ):
            spec["unique"] = True
        columns.append(ColumnSpec.model_validate(spec))
    subjects = [c for c in columns if c.unique and _SUBJECT_NAME.match(c.name)]
    if len(subjects) == 1:
        i = columns.index(subjects[0])
        columns[i] = columns[i].model_copy(update={"subject_id": True, "classification": "pii"})
    duplicates = rows > 1 and bool(df.is_duplicated().any())
    return Contract(
        name=name,
        columns=columns,
        table=TableChecks(min_rows=1 if rows else 0, no_duplicate_rows=not duplicates),
    )


def _infer_dtype(series: pl.Series, rows: int) -> str:
    import polars as pl

    from aidlc.data.validate import BOOL_TEXT, parse_date, parse_datetime

    dt = series.dtype
    if dt.is_nested() or dt.is_object() or dt == pl.Binary:
        raise InvalidInput(
            f"column {series.name!r:.80} has type {dt}; a contract describes only flat "
            "columns (int, float, string, bool, date, datetime, category)"
        )
    if dt == pl.Boolean:
        return "bool"
    if dt.is_integer():
        # Beyond the range of int64: keep the digits exact as text.
        if dt == pl.UInt64 and series.len() and series.max() > 2**63 - 1:  # type: ignore[operator]
            return "string"
        return "int"
    if dt.is_float() or dt.is_decimal():
        return "float"
    if dt == pl.Date:
        return "date"
    if isinstance(dt, pl.Datetime):
        return "datetime"
    if isinstance(dt, pl.Categorical | pl.Enum):
        return "category"
    if dt != pl.String:
        return "string"
    text = series.drop_nulls()
    if text.len() == 0:
        return "string"
    stripped = text.str.strip_chars()
    # Codes with leading zeros or very long digit runs (zip codes, account numbers) stay text.
    looks_like_code = bool(stripped.str.contains(r"^[+-]?0[0-9]|^[+-]?[0-9]{16,}$").any())
    if not looks_like_code:
        if stripped.cast(pl.Int64, strict=False).null_count() == 0:
            return "int"
        if stripped.cast(pl.Float64, strict=False).null_count() == 0:
            return "float"
    if stripped.str.to_lowercase().is_in(list(BOOL_TEXT)).all():
        return "bool"
    frame = stripped.to_frame("v")
    if frame.select(parse_date(pl.col("v"))).to_series().null_count() == 0:
        return "date"
    if frame.select(parse_datetime(pl.col("v"))).to_series().null_count() == 0:
        return "datetime"
    distinct = text.n_unique()
    if distinct <= _CATEGORY_MAX_DISTINCT and distinct <= _CATEGORY_MAX_SHARE * rows:
        return "category"
    return "string"
