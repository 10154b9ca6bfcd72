"""The validation engine: checks a polars DataFrame against a data contract in a few passes.

Every row-level check is one boolean polars expression; all of them run in one `select`, so
polars spreads them over its threads, and their counts come from a second, cheap one. Only checks
that fail pay for finding their rows. Expensive questions get cheap answers first: a column is
unique when its 64-bit hashes are all distinct; rows cannot repeat when a unique, never-null key
proves it; only rows whose hashes collide are ever compared in full, so a hash collision can
never produce a false finding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from aidlc.data.contract import ColumnSpec, Contract, Drift, Freshness
from aidlc.errors import InvalidInput

if TYPE_CHECKING:
    import polars as pl

    from aidlc.data.profile import DatasetProfile

MASK = "***"
MAX_INDICES = 20
MAX_SAMPLES = 5
_PREVIEW_CHARS = 40
_SAMPLE_CHARS = 100
ROW_CHECKS = frozenset(
    {
        "type",
        "not_null",
        "min",
        "max",
        "allowed",
        "regex",
        "unique",
        "duplicate_rows",
        "missing_column",
    }
)
BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
# ISO 8601 with `T` or a space, optional fraction, and an optional zone (Z, +02:00 or +0200).
_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of the contract."""

    check: str
    column: str | None
    passed: bool | None  # None: not applicable (e.g. drift without a baseline)
    observed: str | int | float | None
    threshold: str | int | float | None
    failing_rows: int
    row_indices: list[int]  # the first 20 failing rows, 0-based, in the input's order
    message: str


@dataclass
class ValidationReport:
    """Everything `validate` found, and the input cast to the contract's types."""

    passed: bool
    rows: int
    columns: list[str]
    checks: list[CheckResult]
    failing_mask: pl.Series | None  # True for rows failing a row-level check; None if none do
    row_reasons: pl.DataFrame | None  # `row`, `reasons` ("check@column; ...") of failing rows
    samples: list[dict[str, Any]]  # up to 5 failing rows, masked
    clean: pl.DataFrame = field(repr=False)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.passed is False]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary: every check, the samples, no DataFrames."""
        failing_rows = int(self.failing_mask.sum()) if self.failing_mask is not None else 0
        return {
            "passed": self.passed,
            "rows": self.rows,
            "columns": list(self.columns),
            "failing_rows": failing_rows,
            "checks_run": sum(c.passed is not None for c in self.checks),
            "checks_failed": len(self.failed),
            "checks": [asdict(c) for c in self.checks],
            "samples": self.samples,
        }


# -- casting ------------------------------------------------------------------------------------


def target_dtype(dtype: str) -> pl.DataType:
    """The polars type a contract dtype is stored as (`category` is stored as text)."""
    import polars as pl

    targets: dict[str, pl.DataType] = {
        "int": pl.Int64(),
        "float": pl.Float64(),
        "string": pl.String(),
        "category": pl.String(),
        "bool": pl.Boolean(),
        "date": pl.Date(),
        "datetime": pl.Datetime("us", "UTC"),
    }
    return targets[dtype]


def parse_date(text: pl.Expr) -> pl.Expr:
    """ISO 8601 dates (YYYY-MM-DD); anything else becomes null."""
    return text.str.to_date("%Y-%m-%d", strict=False)


def parse_datetime(text: pl.Expr) -> pl.Expr:
    """ISO 8601 date-times with or without a zone, as UTC; anything else becomes null."""
    import polars as pl

    return text.map_batches(
        _parse_datetimes, return_dtype=pl.Datetime("us", "UTC"), is_elementwise=True
    )


def _parse_datetimes(text: pl.Series) -> pl.Series:
    """Try the format of the first value on every row, then each other format only on the rows
    still unparsed: one parse for a column in one format, instead of one per format. The formats
    exclude one another, so the order cannot change a result."""

    def parse(values: pl.Series, fmt: str) -> pl.Series:
        return values.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")

    first = text.drop_nulls().head(1)
    formats = sorted(_DATETIME_FORMATS, key=lambda f: parse(first, f).null_count())
    out = parse(text, formats[0])
    for fmt in formats[1:]:
        todo = (out.is_null() & text.is_not_null()).arg_true()
        if todo.len() == 0:
            break
        out = out.scatter(todo, parse(text.gather(todo), fmt))
    return out


@dataclass(frozen=True)
class _Cast:
    expr: pl.Expr  # the value as the contract's type
    can_fail: bool  # whether a non-null input can become null
    refusal: str | None = None  # why no value of this column can be cast (nested types, ...)


def _plan_cast(name: str, source: pl.DataType, dtype: str, rows: int) -> _Cast:
    import polars as pl

    col = pl.col(name)
    target = target_dtype(dtype)
    if source == pl.Null:
        return _Cast(col.cast(target), False)
    if isinstance(source, pl.Categorical | pl.Enum):
        col, source = col.cast(pl.String), pl.String()
    nothing = _Cast(pl.repeat(None, rows, dtype=target), True)
    if source.is_nested() or source.is_object() or source == pl.Binary:
        kind = "nested" if source.is_nested() else "binary or object"
        return _Cast(
            nothing.expr, True, f"has type {str(source)[:80]}, and {kind} values cannot be {dtype}"
        )
    text = source == pl.String
    if dtype in ("string", "category"):
        if text:
            return _Cast(col, False)
        if (
            source.is_numeric()
            or source in (pl.Boolean, pl.Date, pl.Time)
            or isinstance(source, pl.Datetime)
        ):
            return _Cast(col.cast(pl.String), False)
        return _Cast(nothing.expr, True, f"has type {str(source)[:80]}, which is not {dtype}")
    if text:
        stripped = col.str.strip_chars()
        if dtype == "bool":
            expr = stripped.str.to_lowercase().replace_strict(
                BOOL_TEXT, default=None, return_dtype=pl.Boolean
            )
        elif dtype == "date":
            expr = parse_date(stripped)
        elif dtype == "datetime":
            expr = parse_datetime(stripped)
        else:
            expr = stripped.cast(target, strict=False)
        return _Cast(expr, True)
    numeric = source.is_numeric()
    if dtype == "float" and numeric:
        return _Cast(col.cast(pl.Float64), False)
    if dtype == "int" and source.is_integer():
        fits = source in (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)
        return _Cast(col.cast(pl.Int64, strict=False), not fits)
    if dtype == "int" and numeric:
        real = col.cast(pl.Float64)
        return _Cast(pl.when(real == real.floor()).then(real.cast(pl.Int64, strict=False)), True)
    if dtype == "bool" and source == pl.Boolean:
        return _Cast(col, False)
    if dtype == "bool" and source.is_integer():
        return _Cast(pl.when(col == 1).then(True).when(col == 0).then(False), True)
    if dtype == "date" and source == pl.Date:
        return _Cast(col, False)
    if dtype in ("date", "datetime") and isinstance(source, pl.Datetime):
        utc = (
            col.dt.replace_time_zone("UTC")
            if source.time_zone is None
            else col.dt.convert_time_zone("UTC")
        ).dt.cast_time_unit("us")
        if dtype == "datetime":
            return _Cast(utc, False)
        return _Cast(pl.when(utc.dt.truncate("1d") == utc).then(utc.dt.date()), True)
    if dtype == "datetime" and source == pl.Date:
        return _Cast(col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), False)
    return _Cast(
        nothing.expr, True, f"has type {str(source)[:80]}, which cannot hold {dtype} values"
    )


def cast_column(name: str, source: pl.DataType, dtype: str, rows: int) -> pl.Expr:
    """The expression that turns column `name` of type `source` into the contract `dtype`.

    Values that do not convert become null; `validate` reports them as type failures.
    """
    return _plan_cast(name, source, dtype, rows).expr.alias(name)


# -- the engine ---------------------------------------------------------------------------------


@dataclass
class _RowCheck:
    """A row-level check waiting for its counts: either a flag column or a list of rows."""

    check: str
    spec: ColumnSpec | None  # None for duplicate_rows
    flag: str | None = None  # its column in the flags frame (one boolean per row)
    rows: pl.Series | None = None  # or its failing row indices, computed apart
    note: str = ""
    result: CheckResult | None = None


def validate(
    df: pl.DataFrame,
    contract: Contract,
    *,
    baseline: DatasetProfile | None = None,
    now: datetime | None = None,
) -> ValidationReport:
    """Check `df` against `contract`; bad data is reported, never raised.

    `baseline` is the profile of an earlier version, for the drift check; `now` (default: the
    current time) is what freshness is measured against. Only input that cannot be examined at
    all raises `InvalidInput`.

    >>> import polars as pl
    >>> from aidlc.data.contract import parse_contract
    >>> contract = parse_contract({"columns": [{"name": "age", "dtype": "int", "min": 18}]})
    >>> report = validate(pl.DataFrame({"age": ["34", "x", "12"]}), contract)
    >>> report.passed, [(c.check, c.failing_rows, c.row_indices) for c in report.failed]
    (False, [('type', 1, [1]), ('min', 1, [2])])
    >>> report.clean.get_column("age").to_list()
    [34, None, 12]
    """
    import polars as pl

    if not isinstance(df, pl.DataFrame):
        raise InvalidInput(f"validate needs a polars DataFrame, not {type(df).__name__}")
    if not isinstance(contract, Contract):
        raise InvalidInput("validate needs a Contract (see aidlc.data.contract.load_contract)")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        return _Run(df, contract, baseline, now).report()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        # Polars refused something about this data that no check anticipated: the input is the
        # problem, so say so instead of failing with a traceback.
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidInput(f"cannot validate this data: {first[:200]}") from None


class _Run:
    """One validation: the plan, its passes over the data, and the report."""

    def __init__(
        self, df: pl.DataFrame, contract: Contract, baseline: DatasetProfile | None, now: datetime
    ) -> None:
        import polars as pl

        self.df = df
        self.contract = contract
        self.baseline = baseline
        self.now = now
        self.n = df.height
        self.present = [c for c in contract.columns if c.name in df.schema]
        self.position = {c.name: i for i, c in enumerate(self.present)}
        self.casts = {
            c.name: _plan_cast(c.name, df.schema[c.name], c.dtype, self.n) for c in self.present
        }
        self.flags = pl.DataFrame()
        self.stats: dict[str, Any] = {}
        self.row_checks: list[_RowCheck] = []
        self.no_rows = pl.Series("rows", [], dtype=pl.get_index_type())

    def report(self) -> ValidationReport:
        clean = self._clean()
        work = self._work_frame(clean)
        self._run_row_checks(work)
        if self.contract.table.no_duplicate_rows:
            check = _RowCheck("duplicate_rows", None)
            check.rows, check.note = self._duplicate_rows(clean)
            self.row_checks.append(check)
        self._describe_row_checks(clean)
        extra = self._extra_columns()
        table = self._table_checks(clean)
        checks = (
            [c.result for c in self.row_checks if c.check == "missing_column" and c.result]
            + extra
            + [c.result for c in self.row_checks if c.check != "missing_column" and c.result]
            + table
        )
        return self._assemble(clean, checks)

    def _clean(self) -> pl.DataFrame:
        """The input cast to the contract's types; missing columns are all null, extras kept."""
        import polars as pl

        names = {c.name for c in self.contract.columns}
        return self.df.select(
            [
                self.casts[c.name].expr.alias(c.name)
                if c.name in self.casts
                else pl.repeat(None, self.n, dtype=target_dtype(c.dtype)).alias(c.name)
                for c in self.contract.columns
            ]
            + [pl.col(c) for c in self.df.columns if c not in names]
        )

    def _work_frame(self, clean: pl.DataFrame) -> pl.DataFrame:
        """Cast values (c0, c1, ...) beside originals that a cast may have nulled (o0, ...).

        Internal names, so no column name in the data can collide with ours; no data is copied.
        """
        import polars as pl

        return pl.DataFrame(
            [clean.get_column(c.name).alias(f"c{i}") for i, c in enumerate(self.present)]
            + [
                self.df.get_column(c.name).alias(f"o{i}")
                for i, c in enumerate(self.present)
                if self.casts[c.name].can_fail
            ]
        )

    def _run_row_checks(self, work: pl.DataFrame) -> None:
        """Pass 1 evaluates every row-level check into a boolean column; pass 2 counts them and
        gathers the column statistics the messages need."""
        import polars as pl

        for spec in self.contract.columns:
            if spec.name not in self.position:
                check = _RowCheck("missing_column", spec)
                check.rows = pl.int_range(0, self.n, eager=True, dtype=pl.get_index_type())
                self.row_checks.append(check)
        flag_exprs: list[pl.Expr] = []
        aggs: list[pl.Expr] = []
        for i, spec in enumerate(self.present):
            cast = self.casts[spec.name]
            value = pl.col(f"c{i}")
            original = pl.col(f"o{i}") if cast.can_fail else value
            aggs.append(original.null_count().alias(f"nulls{i}"))
            if spec.min is not None or spec.max is not None:
                aggs += [value.min().alias(f"min{i}"), value.max().alias(f"max{i}")]
            # NaN is no number in any range.
            nan = value.is_nan() if spec.dtype == "float" else pl.lit(False)
            rules: list[tuple[str, pl.Expr | None]] = [
                ("type", (original.is_not_null() & value.is_null()) if cast.can_fail else None)
            ]
            if not spec.nullable:
                rules.append(("not_null", original.is_null()))
            if spec.min is not None:
                rules.append(("min", (value < spec.min) | nan))
            if spec.max is not None:
                rules.append(("max", (value > spec.max) | nan))
            if spec.allowed:
                rules.append(("allowed", ~value.is_in(spec.allowed)))
            if spec.regex:
                rules.append(("regex", ~value.str.contains(spec.regex)))
            for name, expr in rules:
                check = _RowCheck(name, spec)
                if expr is not None:
                    check.flag = f"b{len(flag_exprs)}"
                    flag_exprs.append(expr.fill_null(False).alias(check.flag))
                    aggs.append(pl.col(check.flag).sum().alias(f"n{check.flag}"))
                self.row_checks.append(check)
            if spec.unique:
                self.row_checks.append(_RowCheck("unique", spec))
                # Equal values hash equally, so as many distinct hashes as values proves the
                # values distinct, with a table of 64-bit numbers instead of one of the values.
                aggs.append(value.hash().n_unique().alias(f"hashes{i}"))
        if work.width == 0:
            return
        self.flags = work.select(flag_exprs) if flag_exprs else pl.DataFrame()
        both = pl.concat([work, self.flags], how="horizontal") if flag_exprs else work
        self.stats = both.select(aggs).row(0, named=True)
        for check in self.row_checks:
            if check.check == "unique" and check.spec is not None:
                i = self.position[check.spec.name]
                values = work.get_column(f"c{i}")
                nulls = values.null_count()
                if self.stats[f"hashes{i}"] == self.n - nulls + (1 if nulls else 0):
                    check.rows = self.no_rows
                else:
                    check.rows = _repeated_values(values)

    def _duplicate_rows(self, clean: pl.DataFrame) -> tuple[pl.Series, str]:
        """Rows equal to an earlier row (the later occurrences), without a full scan whenever a
        unique key or the row hashes rule it out."""
        import polars as pl

        df, n = self.df, self.n
        if n < 2 or df.width == 0:
            return self.no_rows, ""
        keys = {
            c.spec.name: c.rows
            for c in self.row_checks
            if c.spec and c.check == "unique" and c.rows is not None
        }
        if keys:
            # Equal rows have equal keys, so only rows sharing a key (or a null key) can repeat.
            key = min(keys, key=lambda name: clean.get_column(name).null_count())
            values = clean.get_column(key)
            candidates = keys[key]
            if values.null_count() > 1:
                nulls = values.is_null().arg_true().cast(pl.get_index_type())
                candidates = pl.concat([candidates, nulls]).unique().sort()
            name = repr(key[:100])
            if candidates.len() == 0:
                return self.no_rows, (
                    f"scan skipped: {name} is unique and never null, so no two rows can be equal"
                )
            how = f"only the {candidates.len()} rows sharing a {name} value were compared"
        else:
            hashes = df.hash_rows()
            ordered = hashes.sort()
            repeated = ordered.filter(ordered == ordered.shift(1)).unique()
            if repeated.len() == 0:
                return self.no_rows, "no two rows have the same 64-bit hash"
            candidates = hashes.is_in(repeated.implode()).arg_true().cast(pl.get_index_type())
            how = (
                f"the {candidates.len()} rows whose 64-bit hash repeats were compared in full, "
                "so hash collisions cannot cause false findings"
            )
        later = df[candidates].select(~pl.struct(pl.all()).is_first_distinct()).to_series()
        return candidates.filter(later), how

    def _describe_row_checks(self, clean: pl.DataFrame) -> None:
        import polars as pl

        failing = [c.flag for c in self.row_checks if c.flag and self.stats[f"n{c.flag}"]]
        firsts: dict[str, list[int]] = {}
        if failing:
            firsts = self.flags.select(
                [pl.col(f).arg_true().head(MAX_INDICES).implode() for f in failing]
            ).row(0, named=True)
        for check in self.row_checks:
            if check.flag is not None:
                count = int(self.stats[f"n{check.flag}"])
                indices = [int(i) for i in firsts.get(check.flag, [])]
            else:
                rows = check.rows if check.rows is not None else self.no_rows
                count = rows.len()
                indices = [int(i) for i in rows.head(MAX_INDICES).to_list()]
            check.result = self._describe(check, count, indices, clean)

    def _describe(
        self, check: _RowCheck, count: int, indices: list[int], clean: pl.DataFrame
    ) -> CheckResult:
        spec = check.spec
        passed = count == 0
        if spec is None:
            message = (
                "no duplicate rows" if passed else f"{_n(count, 'row')} repeating an earlier row"
            ) + (f" ({check.note})" if check.note else "")
            return CheckResult("duplicate_rows", None, passed, count, 0, count, indices, message)
        name = repr(spec.name[:100])
        hidden = spec.masked
        observed: str | int | float | None = count
        threshold: str | int | float | None = 0
        if check.check == "missing_column":
            return CheckResult(
                "missing_column",
                spec.name,
                False,
                None,
                spec.dtype,
                count,
                indices,
                f"column {name} is required by the contract but missing from the data",
            )
        if check.check == "type":
            cast = self.casts[spec.name]
            observed, threshold = str(self.df.schema[spec.name])[:80], spec.dtype
            if passed:
                message = f"{name}: every value is a {spec.dtype}"
            elif cast.refusal:
                message = f"{name} {cast.refusal}"
            else:
                example = self._example(spec.name, indices, hidden)
                message = f"{name}: {_n(count, 'value')} not {spec.dtype}{example}"
        elif check.check == "not_null":
            message = f"{name}: " + (
                "no nulls" if passed else f"{_n(count, 'null')}, but the column must not be null"
            )
        elif check.check in ("min", "max"):
            low = check.check == "min"
            threshold = _scalar(spec.min if low else spec.max)
            seen = self.stats.get(f"{check.check}{self.position[spec.name]}")
            observed = MASK if hidden else _scalar(seen)
            word = "below the minimum" if low else "above the maximum"
            nan = " or NaN" if spec.dtype == "float" else ""
            message = f"{name}: " + (
                f"no values {word} {threshold}"
                if passed
                else f"{_n(count, 'value')} {word} {threshold}{nan}; "
                + ("smallest" if low else "largest")
                + (" value masked" if hidden else f" {observed}")
            )
        elif check.check == "allowed":
            threshold = _preview(", ".join(str(v) for v in spec.allowed or []), 200, quote=False)
            if passed:
                message = f"{name}: every value is allowed"
            else:
                observed = MASK if hidden else self._bad_values(spec.name, check.flag, clean)
                shown = "" if hidden else f" (e.g. {observed})"
                message = f"{name}: {_n(count, 'value')} outside the allowed set{shown}"
        elif check.check == "regex":
            threshold = spec.regex
            message = f"{name}: " + (
                "every value matches the pattern"
                if passed
                else f"{_n(count, 'value')} not matching the pattern"
                + self._example(spec.name, indices, hidden)
            )
        else:  # unique
            message = f"{name}: " + (
                "every value is unique"
                if passed
                else f"{_n(count, 'row')} sharing a value with another row"
            )
        return CheckResult(
            check.check, spec.name, passed, observed, threshold, count, indices, message
        )

    def _example(self, column: str, indices: list[int], hidden: bool) -> str:
        if not indices or hidden:
            return ""
        value = self.df.get_column(column)[indices[0]]
        return f" (e.g. row {indices[0]}: {_preview(value)})"

    def _bad_values(self, column: str, flag: str | None, clean: pl.DataFrame) -> str:
        if flag is None:
            return ""
        values = clean.get_column(column).filter(self.flags.get_column(flag))
        distinct = values.unique(maintain_order=True).head(5).to_list()
        return _preview(", ".join(_preview(v) for v in distinct), 200, quote=False)

    def _extra_columns(self) -> list[CheckResult]:
        names = {c.name for c in self.contract.columns}
        allowed = self.contract.allow_extra_columns
        return [
            CheckResult(
                "extra_column",
                extra,
                allowed,
                extra[:100],
                "allowed" if allowed else "not allowed",
                0,
                [],
                f"column {extra[:100]!r} is not in the contract"
                + ("" if allowed else " (set allow_extra_columns: true to accept it)"),
            )
            for extra in self.df.columns
            if extra not in names
        ]

    # -- table-level ---------------------------------------------------------------------------

    def _table_checks(self, clean: pl.DataFrame) -> list[CheckResult]:
        def current(columns: list[str], categorical: list[str]) -> DatasetProfile:
            from aidlc.data.profile import profile_frame

            return profile_frame(
                self.contract.opaque(clean.select(columns)), categorical=categorical
            )

        return table_checks(
            self.contract,
            rows=self.n,
            present=self.present,
            nulls=lambda name: int(self.stats.get(f"nulls{self.position[name]}", 0)),
            newest=lambda name: clean.get_column(name).max(),
            current_profile=current,
            baseline=self.baseline,
            now=self.now,
        )

    # -- the report ----------------------------------------------------------------------------

    def _assemble(self, clean: pl.DataFrame, checks: list[CheckResult]) -> ValidationReport:
        import polars as pl

        failures: list[tuple[str, pl.Series]] = []
        for check in self.row_checks:
            if check.result is None or not check.result.failing_rows:
                continue
            label = f"{check.check}@{check.spec.name if check.spec else '*'}"
            if check.flag is not None:
                failures.append((label, self.flags.get_column(check.flag)))
            elif check.rows is not None:
                rows = pl.repeat(False, self.n, eager=True).scatter(check.rows, True)
                failures.append((label, rows))
        failing_mask = row_reasons = None
        samples: list[dict[str, Any]] = []
        if failures:
            frame = pl.DataFrame([s.alias(f"f{i}") for i, (_, s) in enumerate(failures)])
            failing_mask = frame.select(pl.any_horizontal(pl.all()).alias("failing")).to_series()
            reasons = pl.concat_str(
                [
                    pl.when(pl.col(f"f{i}")).then(pl.lit(label))
                    for i, (label, _) in enumerate(failures)
                ],
                separator="; ",
                ignore_nulls=True,
            )
            row_reasons = (
                frame.with_row_index("row")
                .filter(failing_mask)
                .select(pl.col("row"), reasons.alias("reasons"))
            )
            samples = self._samples(row_reasons.head(MAX_SAMPLES))
        return ValidationReport(
            passed=all(c.passed is not False for c in checks),
            rows=self.n,
            columns=list(self.df.columns),
            checks=checks,
            failing_mask=failing_mask,
            row_reasons=row_reasons,
            samples=samples,
            clean=clean,
        )

    def _samples(self, head: pl.DataFrame) -> list[dict[str, Any]]:
        hidden = {c.name for c in self.contract.columns if c.masked}
        rows = [int(r) for r in head.get_column("row").to_list()]
        picked = self.df[rows] if rows else self.df.head(0)
        reasons = head.get_column("reasons").to_list()
        return [
            {
                "row": row,
                "reasons": str(reasons[k]).split("; "),
                "values": {
                    name: MASK if name in hidden else _jsonable(picked.get_column(name)[k])
                    for name in picked.columns
                },
            }
            for k, row in enumerate(rows)
        ]


def _repeated_values(values: pl.Series) -> pl.Series:
    """Indices of rows whose non-null value occurs more than once. Only rows whose 64-bit hash
    repeats are compared in full, so the result is exact and costs one sort of the hashes."""
    import polars as pl

    hashes = (
        values.to_frame("v")
        .select(pl.when(pl.col("v").is_not_null()).then(pl.col("v").hash()))
        .to_series()
    )
    ordered = hashes.drop_nulls().sort()
    repeated = ordered.filter(ordered == ordered.shift(1)).unique()
    candidates = hashes.is_in(repeated.implode()).fill_null(False).arg_true()
    exact = values.gather(candidates).is_duplicated()
    return candidates.filter(exact).cast(pl.get_index_type())


def _scalar(value: Any) -> str | int | float | None:
    """A value fit for `observed`/`threshold`: JSON-ready, short."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, date):
        return value.isoformat()
    return _preview(value, quote=False)


def _preview(value: Any, limit: int = _PREVIEW_CHARS, *, quote: bool = True) -> str:
    """A value shortened for a message; strings quoted so blanks and spaces show."""
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit] + ("…" if len(text) > limit else "")
    return repr(cut) if quote and isinstance(value, str) else cut


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time | timedelta | Decimal):
        return str(value)
    text = value if isinstance(value, str) else repr(value)
    return text[:_SAMPLE_CHARS] + ("…" if len(text) > _SAMPLE_CHARS else "")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _age(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


# -- table-level checks, shared with the partitioned engine ---------------------------------------


def table_checks(
    contract: Contract,
    *,
    rows: int,
    present: Sequence[ColumnSpec],
    nulls: Callable[[str], int],
    newest: Callable[[str], Any],
    current_profile: Callable[[list[str], list[str]], DatasetProfile],
    baseline: DatasetProfile | None,
    now: datetime,
) -> list[CheckResult]:
    """Judge the file-level checks (row count, null fraction, freshness, drift) from totals.

    The whole-frame validator and the partitioned engine both call this, each supplying the
    totals its own way (`nulls(column)`, `newest(column)`, `current_profile(columns,
    categorical)`), so the two always agree on verdicts and wording.
    """
    table, n = contract.table, rows
    out = []
    if table.min_rows is not None or table.max_rows is not None:
        low = table.min_rows or 0
        high = table.max_rows
        ok = n >= low and (high is None or n <= high)
        bounds = f"{low}..{'' if high is None else high}"
        message = f"{n} rows" + ("" if ok else f", outside the allowed range {bounds}")
        out.append(CheckResult("row_count", None, ok, n, bounds, 0, [], message))
    if table.max_null_fraction is not None:
        limit = table.max_null_fraction
        for spec in present:
            if not spec.nullable:
                continue
            count = nulls(spec.name)
            fraction = count / n if n else 0.0
            ok = fraction <= limit
            message = f"{spec.name[:100]!r}: {_n(count, 'null')} ({fraction:.2%})" + (
                "" if ok else f", above the limit of {limit:.2%}"
            )
            out.append(
                CheckResult(
                    "null_fraction", spec.name, ok, round(fraction, 6), limit, 0, [], message
                )
            )
    names = {c.name for c in present}
    if table.freshness is not None:
        out.append(_freshness(contract, table.freshness, names, newest, now))
    if table.drift is not None:
        out.append(_drift(contract, table.drift, present, baseline, current_profile))
    return out


def _freshness(
    contract: Contract,
    fresh: Freshness,
    present: set[str],
    newest_of: Callable[[str], Any],
    now: datetime,
) -> CheckResult:
    spec = contract.column(fresh.column)
    name = repr(spec.name[:100])

    def result(passed: bool | None, observed: str | None, message: str) -> CheckResult:
        return CheckResult("freshness", spec.name, passed, observed, fresh.max_age, 0, [], message)

    if spec.name not in present:
        return result(None, None, f"{name} is missing, so freshness cannot be judged")
    newest = newest_of(spec.name)
    if newest is None:
        return result(False, None, f"{name} has no values, so the data may be stale")
    cutoff = now - fresh.max_age_delta
    if isinstance(newest, datetime):
        ok, age = newest >= cutoff, now - newest
    else:  # a date column: the contract allows no other type here
        day = cast(date, newest)
        ok, age = day >= cutoff.date(), now - datetime.combine(day, time(), UTC)
    shown = MASK if spec.masked else cast(date, newest).isoformat()
    when = "in the future" if age < timedelta(0) else f"{_age(age)} old"
    return result(
        ok,
        shown,
        f"{name}: the newest value ({'masked' if spec.masked else shown}) is {when}"
        + ("" if ok else f", older than the allowed {fresh.max_age}"),
    )


def _drift(
    contract: Contract,
    drift: Drift,
    present: Sequence[ColumnSpec],
    baseline: DatasetProfile | None,
    current_profile: Callable[[list[str], list[str]], DatasetProfile],
) -> CheckResult:
    def result(
        passed: bool | None, column: str | None, score: float | None, message: str
    ) -> CheckResult:
        return CheckResult("drift", column, passed, score, drift.max_psi, 0, [], message)

    if baseline is None:
        return result(None, None, None, "no baseline profile yet (the first version)")
    from aidlc.data.profile import psi

    names = {c.name for c in present}
    wanted = drift.columns or [c.name for c in contract.columns]
    columns = [c for c in wanted if c in names and c in baseline.columns]
    if not columns:
        return result(None, None, None, "no column of the baseline profile to compare")
    categorical = [
        c.name
        for c in present
        if c.name in columns and c.dtype in ("category", "string", "bool") and not c.identifying
    ]
    current = current_profile(columns, categorical)
    scores: dict[str, float] = {}
    for c in columns:
        try:
            scores[c] = float(psi(baseline.columns[c], current.columns[c]))
        except InvalidInput:  # e.g. the contract changed the column's kind since then
            continue
    if not scores:
        return result(None, None, None, "no column comparable with the baseline profile")
    columns = list(scores)
    worst = max(columns, key=lambda c: scores[c])
    over = [c for c in columns if scores[c] > drift.max_psi]
    listing = ", ".join(f"{c[:60]!r} {scores[c]:.3f}" for c in over[:10])
    return result(
        not over,
        worst,
        round(scores[worst], 6),
        f"largest PSI {scores[worst]:.3f} on {worst[:100]!r}"
        + (f"; above {drift.max_psi}: {listing}" if over else f", within {drift.max_psi}"),
    )
