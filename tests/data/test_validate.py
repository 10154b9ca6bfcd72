"""The validation engine: every check finds exactly the failing rows, and nothing hostile in the
data can make it raise or leak a protected value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aidlc.data.contract import Contract, parse_contract
from aidlc.data.validate import MASK, ROW_CHECKS, CheckResult, validate
from aidlc.errors import InvalidInput

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


def _contract(*columns: dict[str, Any], **top: Any) -> Contract:
    return parse_contract({"columns": list(columns), **top})


def _check(report, check: str, column: str | None = None) -> CheckResult:
    found = [c for c in report.checks if c.check == check and c.column == column]
    assert len(found) == 1, f"{check}@{column}: {report.checks}"
    return found[0]


def _fails(report, check: str, column: str | None, rows: list[int]) -> CheckResult:
    result = _check(report, check, column)
    assert result.passed is False, result
    assert (result.failing_rows, result.row_indices) == (len(rows), rows), result
    assert not report.passed
    return result


def _passes(report, check: str, column: str | None = None) -> CheckResult:
    result = _check(report, check, column)
    assert result.passed is True and result.failing_rows == 0, result
    return result


# -- types -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "good", "bad", "expected"),
    [
        ("int", [" 7", "-3", "+12"], ["1.5", "x", "9" * 30], [7, -3, 12]),
        ("float", ["1.5", " -2e3 ", "7"], ["1,5", "abc"], [1.5, -2000.0, 7.0]),
        ("bool", ["true", " No", "1", "YES"], ["maybe", "2"], [True, False, True, True]),
        ("date", ["2024-02-29", " 1999-12-31"], ["2023-02-29", "31/12/1999"], None),
        ("datetime", ["2024-01-02T03:04:05Z", "2024-01-02 03:04"], ["2024-01-02T25:00"], None),
        ("string", ["anything", " padded "], [], ["anything", " padded "]),
        ("category", ["a", "b"], [], ["a", "b"]),
    ],
)
def test_type_check_casts_text_and_reports_what_does_not_convert(dtype, good, bad, expected):
    df = pl.DataFrame({"v": [*good, None, *bad]}, schema={"v": pl.String})
    report = validate(df, _contract({"name": "v", "dtype": dtype}))
    if bad:
        _fails(report, "type", "v", list(range(len(good) + 1, len(good) + 1 + len(bad))))
    else:
        _passes(report, "type", "v")
    clean = report.clean.get_column("v")
    assert clean.null_count() == 1 + len(bad)  # failures become null in `clean`
    if expected is not None:
        assert clean.head(len(good)).to_list() == expected


def test_datetimes_with_zones_are_stored_as_utc():
    df = pl.DataFrame({"t": ["2024-01-02T03:04:05+02:00", "2024-01-02T03:04:05.25", "2024-01-02"]})
    report = validate(df, _contract({"name": "t", "dtype": "datetime"}))
    assert report.passed
    assert report.clean.schema["t"] == pl.Datetime("us", "UTC")
    assert report.clean.get_column("t").to_list() == [
        datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC),
        datetime(2024, 1, 2, tzinfo=UTC),
    ]


def test_real_dtypes_from_parquet_are_checked_without_text_parsing():
    df = pl.DataFrame(
        {
            "i": pl.Series([1, 2, 3], dtype=pl.Int32),
            "f_as_int": [1.0, 2.5, float("nan")],
            "big": pl.Series([1, 2**64 - 1, 3], dtype=pl.UInt64),
            "flag": [1, 0, 2],
            "when": [datetime(2024, 1, 1), datetime(2024, 1, 1, 6), None],
            "day": [datetime(2024, 1, 1), datetime(2024, 1, 1, 6), None],
            "cat": pl.Series(["a", "b", "a"], dtype=pl.Categorical),
        }
    )
    contract = _contract(
        {"name": "i", "dtype": "int"},
        {"name": "f_as_int", "dtype": "int"},
        {"name": "big", "dtype": "int"},
        {"name": "flag", "dtype": "bool"},
        {"name": "when", "dtype": "datetime"},
        {"name": "day", "dtype": "date"},
        {"name": "cat", "dtype": "category", "allowed": ["a", "b"]},
    )
    report = validate(df, contract)
    _passes(report, "type", "i")
    _fails(report, "type", "f_as_int", [1, 2])  # 2.5 and NaN are no integers
    _fails(report, "type", "big", [1])  # beyond int64
    _fails(report, "type", "flag", [2])
    _passes(report, "type", "when")
    _fails(report, "type", "day", [1])  # a time of day would be lost
    _passes(report, "allowed", "cat")
    assert report.clean.schema == pl.Schema(
        {
            "i": pl.Int64,
            "f_as_int": pl.Int64,
            "big": pl.Int64,
            "flag": pl.Boolean,
            "when": pl.Datetime("us", "UTC"),
            "day": pl.Date,
            "cat": pl.String,
        }
    )


def test_nested_and_binary_columns_fail_the_type_check_with_a_clear_message():
    df = pl.DataFrame({"l": [[1], None, [2, 3]], "s": [{"a": 1}] * 3, "b": [b"x", b"\xff", None]})
    contract = _contract(
        {"name": "l", "dtype": "int"},
        {"name": "s", "dtype": "string"},
        {"name": "b", "dtype": "string"},
    )
    report = validate(df, contract)
    assert (
        "has type List(Int64), and nested values cannot be int"
        in _fails(report, "type", "l", [0, 2]).message
    )
    assert "Struct" in _fails(report, "type", "s", [0, 1, 2]).message
    assert "Binary" in _fails(report, "type", "b", [0, 1]).message


# -- value checks ------------------------------------------------------------------------------


def test_not_null_counts_nulls_only():
    df = pl.DataFrame({"v": ["1", None, "x", None]})
    report = validate(df, _contract({"name": "v", "dtype": "int", "nullable": False}))
    _fails(report, "not_null", "v", [1, 3])
    _fails(report, "type", "v", [2])
    good = validate(
        pl.DataFrame({"v": ["1", "2"]}), _contract({"name": "v", "dtype": "int", "nullable": False})
    )
    _passes(good, "not_null", "v")


def test_min_and_max_on_numbers_dates_and_times():
    df = pl.DataFrame(
        {
            "n": [5, 17, 18, 120, 121, None],
            "f": [0.5, float("nan"), -0.1, 1.0, None, float("inf")],
            "d": ["2024-01-01", "2023-12-31", None, "2024-12-31", "2025-01-01", "2024-06-01"],
            "t": [datetime(2024, 1, 1, tzinfo=UTC)] * 5 + [datetime(2023, 1, 1, tzinfo=UTC)],
        }
    )
    contract = _contract(
        {"name": "n", "dtype": "int", "min": 18, "max": 120},
        {"name": "f", "dtype": "float", "min": 0, "max": 1},
        {"name": "d", "dtype": "date", "min": "2024-01-01", "max": "2024-12-31"},
        {"name": "t", "dtype": "datetime", "min": "2023-06-01T00:00:00Z"},
    )
    report = validate(df, contract)
    low = _fails(report, "min", "n", [0, 1])
    assert (low.observed, low.threshold) == (5, 18)
    assert _fails(report, "max", "n", [4]).observed == 121
    _fails(report, "min", "f", [1, 2])  # NaN is in no range
    _fails(report, "max", "f", [1, 5])
    _fails(report, "min", "d", [1])
    assert _fails(report, "max", "d", [4]).observed == "2025-01-01"
    _fails(report, "min", "t", [5])
    ok = validate(df.slice(2, 1).with_columns(f=pl.lit(0.5), d=pl.lit("2024-03-01")), contract)
    assert ok.passed


def test_allowed_values_for_categories_and_ints():
    df = pl.DataFrame({"plan": ["basic", "gold", None, "pro", "Basic"], "tier": [1, 2, 3, 1, 9]})
    contract = _contract(
        {"name": "plan", "dtype": "category", "allowed": ["basic", "pro"]},
        {"name": "tier", "dtype": "int", "allowed": [1, 2, 3]},
    )
    report = validate(df, contract)
    result = _fails(report, "allowed", "plan", [1, 4])
    assert result.observed == "'gold', 'Basic'"
    assert "outside the allowed set" in result.message
    _fails(report, "allowed", "tier", [4])


def test_regex_is_searched_and_anchors_make_it_a_full_match():
    df = pl.DataFrame({"id": ["C-000001", "C-00001", "xC-000001", None, "C-123456"]})
    report = validate(df, _contract({"name": "id", "dtype": "string", "regex": "^C-[0-9]{6}$"}))
    result = _fails(report, "regex", "id", [1, 2])
    assert "'C-00001'" in result.message  # an example, since the column is not protected
    loose = validate(df, _contract({"name": "id", "dtype": "string", "regex": "[0-9]{6}"}))
    _fails(loose, "regex", "id", [1])


def test_unique_flags_every_row_of_a_repeated_value_but_not_nulls():
    df = pl.DataFrame({"k": ["a", "b", "a", None, None, "c", "b", "a"]})
    report = validate(df, _contract({"name": "k", "dtype": "string", "unique": True}))
    _fails(report, "unique", "k", [0, 1, 2, 6, 7])
    _passes(
        validate(df.head(2), _contract({"name": "k", "dtype": "string", "unique": True})),
        "unique",
        "k",
    )


def test_unique_compares_values_not_spelling():
    df = pl.DataFrame({"k": ["1", " 1", "2"]})
    report = validate(df, _contract({"name": "k", "dtype": "int", "unique": True}))
    _fails(report, "unique", "k", [0, 1])


# -- duplicate rows ----------------------------------------------------------------------------


DUPES = pl.DataFrame(
    {
        "a": [1, 2, 1, 3, 1, 2],
        "b": ["x", "y", "x", "z", "x", "q"],
        "c": [0.5, None, 0.5, 1.0, 0.5, None],
    }
)


def test_duplicate_rows_reports_the_later_occurrences():
    contract = _contract(
        {"name": "a", "dtype": "int"},
        {"name": "b", "dtype": "string"},
        {"name": "c", "dtype": "float"},
        table={"no_duplicate_rows": True},
    )
    result = _fails(validate(DUPES, contract), "duplicate_rows", None, [2, 4])
    assert "compared in full" in result.message
    _passes(validate(DUPES.unique(maintain_order=True), contract), "duplicate_rows")


def test_a_unique_never_null_key_proves_no_duplicate_rows_without_a_scan():
    df = DUPES.with_row_index("id")
    contract = _contract(
        {"name": "id", "dtype": "int", "unique": True, "nullable": False},
        {"name": "a", "dtype": "int"},
        {"name": "b", "dtype": "string"},
        {"name": "c", "dtype": "float"},
        table={"no_duplicate_rows": True},
    )
    result = _passes(validate(df, contract), "duplicate_rows")
    assert "scan skipped: 'id' is unique and never null" in result.message


def test_with_a_repeated_key_only_rows_sharing_it_are_compared():
    df = pl.DataFrame({"id": [1, 2, 2, 3, 3, None, None], "v": ["a", "b", "b", "c", "d", "e", "e"]})
    contract = _contract(
        {"name": "id", "dtype": "int", "unique": True},
        {"name": "v", "dtype": "string"},
        table={"no_duplicate_rows": True},
    )
    report = validate(df, contract)
    _fails(report, "unique", "id", [1, 2, 3, 4])
    result = _fails(report, "duplicate_rows", None, [2, 6])
    assert "only the 6 rows sharing a 'id' value were compared" in result.message


def test_hash_collisions_never_become_findings(monkeypatch):
    """Force every hash to collide: the full comparison must still find exactly the truth."""
    contract = _contract(
        {"name": "a", "dtype": "int", "unique": True},
        {"name": "b", "dtype": "string"},
        {"name": "c", "dtype": "float"},
        table={"no_duplicate_rows": True},
    )
    honest = validate(DUPES, contract)
    monkeypatch.setattr(
        pl.DataFrame,
        "hash_rows",
        lambda self, *a, **k: pl.Series([0] * self.height, dtype=pl.UInt64),
    )
    monkeypatch.setattr(pl.Expr, "hash", lambda self, *a, **k: self.is_null().cast(pl.UInt64) * 0)
    colliding = validate(DUPES, contract)
    for check in ("unique", "duplicate_rows"):
        column = "a" if check == "unique" else None
        assert _check(colliding, check, column) == _check(honest, check, column)
    no_key = _contract(
        {"name": "a", "dtype": "int"},
        {"name": "b", "dtype": "string"},
        {"name": "c", "dtype": "float"},
        table={"no_duplicate_rows": True},
    )
    result = _fails(validate(DUPES, no_key), "duplicate_rows", None, [2, 4])
    assert "the 6 rows whose 64-bit hash repeats were compared in full" in result.message


# -- columns ----------------------------------------------------------------------------------


def test_missing_column_fails_every_row_and_extra_columns_depend_on_the_contract():
    df = pl.DataFrame({"a": [1, 2, 3], "surprise": ["x", "y", "z"]})
    contract = _contract({"name": "a", "dtype": "int"}, {"name": "b", "dtype": "float"})
    report = validate(df, contract)
    _fails(report, "missing_column", "b", [0, 1, 2])
    extra = _check(report, "extra_column", "surprise")
    assert extra.passed is False and "allow_extra_columns" in extra.message
    assert report.failing_mask is not None and report.failing_mask.all()
    assert report.clean.columns == ["a", "b", "surprise"]
    assert report.clean.schema["b"] == pl.Float64 and report.clean.get_column("b").null_count() == 3
    relaxed = validate(df, contract.model_copy(update={"allow_extra_columns": True}))
    assert _check(relaxed, "extra_column", "surprise").passed is True


# -- table checks ------------------------------------------------------------------------------


def test_row_count_bounds():
    contract = _contract({"name": "a", "dtype": "int"}, table={"min_rows": 2, "max_rows": 3})
    assert _check(validate(pl.DataFrame({"a": [1]}), contract), "row_count").passed is False
    assert _check(validate(pl.DataFrame({"a": [1, 2]}), contract), "row_count").passed is True
    big = _check(validate(pl.DataFrame({"a": [1, 2, 3, 4]}), contract), "row_count")
    assert (big.passed, big.observed, big.threshold) == (False, 4, "2..3")


def test_null_fraction_applies_to_each_nullable_column():
    df = pl.DataFrame({"a": [1, None, None, 4], "b": ["x", None, "y", "z"], "c": [1, 2, 3, 4]})
    contract = _contract(
        {"name": "a", "dtype": "int"},
        {"name": "b", "dtype": "string"},
        {"name": "c", "dtype": "int", "nullable": False},
        table={"max_null_fraction": 0.25},
    )
    report = validate(df, contract)
    a = _check(report, "null_fraction", "a")
    assert (a.passed, a.observed, a.threshold) == (False, 0.5, 0.25)
    assert _check(report, "null_fraction", "b").passed is True
    assert not [c for c in report.checks if c.check == "null_fraction" and c.column == "c"]
    assert report.failing_mask is None  # a table-level failure marks no row


@pytest.mark.parametrize(
    ("dtype", "newest", "fresh"),
    [
        ("datetime", "2024-05-20T00:00:00Z", True),
        ("datetime", "2024-05-01T00:00:00Z", False),
        ("date", "2024-05-02", True),
        ("date", "2024-05-01", False),
    ],
)
def test_freshness_measures_the_newest_value_against_now(dtype, newest, fresh):
    df = pl.DataFrame({"t": ["2020-01-01", newest, None]})
    contract = _contract(
        {"name": "t", "dtype": dtype}, table={"freshness": {"column": "t", "max_age": "30d"}}
    )
    result = _check(validate(df, contract, now=NOW), "freshness", "t")
    assert result.passed is fresh and result.threshold == "30d"
    assert newest[:10] in str(result.observed)


def test_freshness_fails_without_values():
    contract = _contract(
        {"name": "t", "dtype": "date"}, table={"freshness": {"column": "t", "max_age": "1d"}}
    )
    result = _check(
        validate(pl.DataFrame({"t": [None, None]}), contract, now=NOW), "freshness", "t"
    )
    assert result.passed is False and "no values" in result.message


def test_drift_needs_a_baseline_and_fails_on_a_shifted_column():
    from aidlc.data.profile import profile_frame

    rng = np.random.default_rng(7)
    base = pl.DataFrame({"age": rng.integers(20, 60, 4000), "plan": rng.choice(["a", "b"], 4000)})
    contract = _contract(
        {"name": "age", "dtype": "int"},
        {"name": "plan", "dtype": "category"},
        table={"drift": {"max_psi": 0.2}},
    )
    baseline = profile_frame(base, categorical=["plan"])
    first = _check(validate(base, contract), "drift")
    assert first.passed is None and "no baseline" in first.message
    same = _check(validate(base.sample(2000, seed=1), contract, baseline=baseline), "drift", "age")
    assert same.passed is True and isinstance(same.observed, float) and same.observed < 0.2
    shifted = base.with_columns(pl.col("age") + 25)
    result = _check(validate(shifted, contract, baseline=baseline), "drift", "age")
    assert result.passed is False and result.observed > 0.2 and "'age'" in result.message
    only_plan = _contract(
        {"name": "age", "dtype": "int"},
        {"name": "plan", "dtype": "category"},
        table={"drift": {"max_psi": 0.2, "columns": ["plan"]}},
    )
    assert _check(validate(shifted, only_plan, baseline=baseline), "drift", "plan").passed is True


# -- the report -------------------------------------------------------------------------------


def test_report_lists_rows_reasons_and_masked_samples():
    df = pl.DataFrame(
        {
            "email": ["a@x.io", "b@x.io", "b@x.io", "not-an-email"],
            "age": ["30", "x", "200", "40"],
        }
    )
    contract = _contract(
        {"name": "email", "dtype": "string", "unique": True, "regex": "@", "classification": "pii"},
        {"name": "age", "dtype": "int", "max": 120},
    )
    report = validate(df, contract)
    assert report.failing_mask is not None
    assert report.failing_mask.to_list() == [False, True, True, True]
    reasons = report.row_reasons
    assert reasons is not None and reasons.schema["row"] == pl.get_index_type()
    assert reasons.rows() == [
        (1, "unique@email; type@age"),
        (2, "unique@email; max@age"),
        (3, "regex@email"),
    ]
    assert [s["row"] for s in report.samples] == [1, 2, 3]
    assert report.samples[0] == {
        "row": 1,
        "reasons": ["unique@email", "type@age"],
        "values": {"email": MASK, "age": "x"},
    }
    # The ingest joins reasons onto rejected rows by index.
    joined = df.with_row_index("row").filter(report.failing_mask).join(reasons, on="row")
    assert joined.height == 3
    text = json.dumps(report.to_json(), allow_nan=False)
    assert "x.io" not in text and "not-an-email" not in text
    summary = report.to_json()
    assert summary["failing_rows"] == 3 and summary["checks_failed"] == 4
    assert len(summary["checks"]) == len(report.checks)


def test_protected_columns_never_show_values_in_observed_or_messages():
    df = pl.DataFrame(
        {
            "ssn": ["123-45-6789", "987-65-4321", "bad"],
            "salary": [10, 99999, 5],
            "born": ["1950-01-01", "2030-01-01", "oops"],
        }
    )
    contract = _contract(
        {"name": "ssn", "dtype": "category", "allowed": ["000-00-0000"], "classification": "pii"},
        {"name": "salary", "dtype": "int", "min": 6, "max": 50000, "classification": "sensitive"},
        {"name": "born", "dtype": "date", "max": "2020-01-01", "subject_id": True},
        table={"freshness": {"column": "born", "max_age": "1d"}},
    )
    report = validate(df, contract, now=NOW)
    text = json.dumps(report.to_json())
    for secret in ("123-45-6789", "987-65-4321", "bad", "99999", "2030", "oops", "1950"):
        assert secret not in text, secret
    assert _check(report, "max", "salary").observed == MASK
    assert _check(report, "allowed", "ssn").observed == MASK
    assert _check(report, "freshness", "born").observed == MASK


def test_a_clean_frame_passes_every_check_and_reports_each_one():
    df = pl.DataFrame(
        {"id": ["C-000001", "C-000002"], "age": ["30", "40"], "plan": ["pro", "basic"]}
    )
    contract = _contract(
        {
            "name": "id",
            "dtype": "string",
            "nullable": False,
            "unique": True,
            "regex": "^C-[0-9]{6}$",
        },
        {"name": "age", "dtype": "int", "min": 18, "max": 120},
        {"name": "plan", "dtype": "category", "allowed": ["basic", "pro"]},
        table={"min_rows": 1, "max_null_fraction": 0.1, "no_duplicate_rows": True},
    )
    report = validate(df, contract)
    assert report.passed and report.failing_mask is None and report.row_reasons is None
    assert report.samples == []
    assert [(c.check, c.column) for c in report.checks] == [
        ("type", "id"),
        ("not_null", "id"),
        ("regex", "id"),
        ("unique", "id"),
        ("type", "age"),
        ("min", "age"),
        ("max", "age"),
        ("type", "plan"),
        ("allowed", "plan"),
        ("duplicate_rows", None),
        ("row_count", None),
        ("null_fraction", "age"),
        ("null_fraction", "plan"),
    ]


# -- hostile input ----------------------------------------------------------------------------


HOSTILE = {
    "zero rows": pl.DataFrame(
        {"a": pl.Series([], dtype=pl.String), "b": pl.Series([], dtype=pl.Int64)}
    ),
    "null columns": pl.DataFrame({"a": [None, None], "b": [None, None]}),
    "no columns": pl.DataFrame(),
    "huge string": pl.DataFrame({"a": ["1", "x" * 100_000_000], "b": [1, 2]}),
    "nested": pl.DataFrame({"a": [[1], [1]], "b": [{"x": [1]}, {"x": [1]}]}),
    "odd types": pl.DataFrame({"a": [timedelta(1), None], "b": [b"\x00", b"\xff"]}),
    "all null strings": pl.DataFrame(
        {"a": [None, None], "b": [None, "2"]}, schema={"a": pl.String, "b": pl.String}
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_frames_are_reported_not_raised(name):
    contract = _contract(
        {"name": "a", "dtype": "string", "unique": True, "regex": "^[0-9]+$", "nullable": False},
        {"name": "b", "dtype": "int", "min": 0, "max": 1, "allowed": [1]},
        table={"min_rows": 1, "max_null_fraction": 0.5, "no_duplicate_rows": True},
    )
    report = validate(HOSTILE[name], contract, now=NOW)
    text = json.dumps(report.to_json(), allow_nan=False)
    assert len(text) < 100_000  # a huge value is never copied whole into the report
    assert not report.passed


def test_wrong_arguments_are_invalid_input():
    contract = _contract({"name": "a", "dtype": "int"})
    with pytest.raises(InvalidInput, match="polars DataFrame"):
        validate(pl.DataFrame({"a": [1]}).lazy(), contract)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="needs a Contract"):
        validate(pl.DataFrame({"a": [1]}), {"columns": []})  # type: ignore[arg-type]


# -- properties -------------------------------------------------------------------------------

_SECRET = st.from_regex(r"SECRET[a-z]{6}", fullmatch=True)
_values = {
    "int": st.one_of(st.none(), st.integers(-5, 5).map(str), st.sampled_from(["x", " 3 ", "1.5"])),
    "float": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True).map(str)),
    "string": st.one_of(st.none(), st.sampled_from(["a", "b", "ab", "", " "])),
    "bool": st.one_of(st.none(), st.sampled_from(["true", "no", "1", "maybe"])),
    "date": st.one_of(st.none(), st.sampled_from(["2024-01-01", "2024-02-30", "x"])),
    "datetime": st.one_of(
        st.none(), st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01 10:00", "?"])
    ),
    "category": st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
}


@st.composite
def _cases(draw: st.DrawFn) -> tuple[pl.DataFrame, Contract, set[str]]:
    rows = draw(st.integers(0, 12))
    columns: list[dict[str, Any]] = []
    data: dict[str, list[Any]] = {}
    secrets: set[str] = set()
    for i in range(draw(st.integers(1, 4))):
        dtype = draw(st.sampled_from(sorted(_values)))
        spec: dict[str, Any] = {"name": f"c{i}", "dtype": dtype, "nullable": draw(st.booleans())}
        if dtype in ("int", "float") and draw(st.booleans()):
            spec["min"], spec["max"] = -2, 2
        if dtype == "category" and draw(st.booleans()):
            spec["allowed"] = ["a", "b"]
        if dtype == "string" and draw(st.booleans()):
            spec["regex"] = "^a"
        spec["unique"] = draw(st.booleans())
        columns.append(spec)
        data[spec["name"]] = draw(st.lists(_values[dtype], min_size=rows, max_size=rows))
    # A protected column whose values must never reach the report.
    pii = draw(st.lists(st.one_of(st.none(), _SECRET), min_size=rows, max_size=rows))
    secrets |= {v for v in pii if v}
    data["who"] = pii
    columns.append(
        {
            "name": "who",
            "dtype": "string",
            "classification": "pii",
            "unique": draw(st.booleans()),
            "regex": "^SECRETa",
            "nullable": False,
        }
    )
    if draw(st.booleans()):
        data.pop(draw(st.sampled_from(sorted(data))))
    if draw(st.booleans()):
        data["extra"] = [None] * rows
    table = {
        "min_rows": draw(st.integers(0, 3)),
        "max_null_fraction": 0.5,
        "no_duplicate_rows": draw(st.booleans()),
    }
    df = pl.DataFrame(data, schema={k: pl.String for k in data})
    return df, parse_contract({"columns": columns, "table": table}), secrets


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_validate_never_raises_and_its_mask_is_the_union_of_row_failures(case):
    df, contract, secrets = case
    report = validate(df, contract, now=NOW)
    failing = set()
    for check in report.checks:
        assert isinstance(check.failing_rows, int)
        if check.check in ROW_CHECKS:
            assert check.failing_rows == len(check.row_indices)  # at most 12 rows: all listed
            failing |= set(check.row_indices)
        else:
            assert check.failing_rows == 0 and check.row_indices == []
    mask = report.failing_mask
    assert (set(mask.arg_true().to_list()) if mask is not None else set()) == failing
    if report.row_reasons is not None:
        assert set(report.row_reasons.get_column("row").to_list()) == failing
    assert report.passed == all(c.passed is not False for c in report.checks)
    assert report.clean.height == df.height
    text = json.dumps(report.to_json(), allow_nan=False)
    leaked = [s for s in secrets if s in text]
    assert not leaked


_typed = {
    pl.Int64: st.integers(-(2**63), 2**63 - 1),
    pl.UInt64: st.integers(0, 2**64 - 1),
    pl.Float64: st.floats(allow_nan=True, allow_infinity=True),
    pl.Boolean: st.booleans(),
    pl.Date: st.dates(),
    pl.Datetime("ns"): st.datetimes(datetime(1700, 1, 1), datetime(2200, 1, 1)),
    pl.Datetime("us", "Europe/Paris"): st.datetimes(
        datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    pl.List(pl.Int64): st.lists(st.integers(0, 3), max_size=2),
    pl.String: st.text(max_size=5),
    pl.Null: st.none(),
}


@st.composite
def _typed_cases(draw: st.DrawFn) -> tuple[pl.DataFrame, Contract]:
    rows = draw(st.integers(0, 8))
    series, columns = [], []
    for i in range(draw(st.integers(1, 3))):
        dtype = draw(st.sampled_from(list(_typed)))
        values = draw(st.lists(st.one_of(st.none(), _typed[dtype]), min_size=rows, max_size=rows))
        series.append(pl.Series(f"c{i}", values, dtype=dtype))
        target = draw(
            st.sampled_from(["int", "float", "string", "bool", "date", "datetime", "category"])
        )
        spec: dict[str, Any] = {"name": f"c{i}", "dtype": target, "unique": draw(st.booleans())}
        spec["nullable"] = draw(st.booleans())
        if target in ("int", "float"):
            spec["min"] = 0
        columns.append(spec)
    table = {"no_duplicate_rows": True, "max_null_fraction": 0.5, "min_rows": 1}
    return pl.DataFrame(series), parse_contract({"columns": columns, "table": table})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_typed_cases())
def test_validate_never_raises_on_real_dtypes(case):
    df, contract = case
    report = validate(df, contract, now=NOW)
    for spec in contract.columns:
        assert (
            report.clean.schema[spec.name]
            == {
                "int": pl.Int64,
                "float": pl.Float64,
                "string": pl.String,
                "category": pl.String,
                "bool": pl.Boolean,
                "date": pl.Date,
                "datetime": pl.Datetime("us", "UTC"),
            }[spec.dtype]
        )
    failing = {i for c in report.checks if c.check in ROW_CHECKS for i in c.row_indices}
    mask = report.failing_mask
    assert (set(mask.arg_true().to_list()) if mask is not None else set()) == failing
    json.dumps(report.to_json(), allow_nan=False)
