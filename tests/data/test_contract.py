"""Data contracts: parsing with clear errors, round trips, fingerprints, schema, and drafting."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aidlc.data.contract import (
    Contract,
    classify_name,
    contract_json_schema,
    infer_contract,
    load_contract,
    parse_contract,
    parse_duration,
)
from aidlc.data.validate import validate
from aidlc.errors import InvalidInput

ROOT = Path(__file__).parents[2]

EXAMPLE = """\
name: churn            # optional label
format: 1
on_failure: reject_file
allow_extra_columns: false
columns:
  - name: customer_id
    dtype: string
    nullable: false
    unique: true
    regex: "^C-[0-9]{6}$"
    classification: pii
    subject_id: true
  - name: age
    dtype: int
    min: 18
    max: 120
  - name: plan
    dtype: category
    allowed: [basic, pro, enterprise]
  - name: signup_time
    dtype: datetime
table:
  min_rows: 100
  max_rows: 10000000
  max_null_fraction: 0.05
  no_duplicate_rows: true
  freshness: {column: signup_time, max_age: 30d}
  drift: {max_psi: 0.2, columns: [age, plan]}
"""


def _write(tmp_path: Path, text: str | bytes, name: str = "contract.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_example_contract_loads_with_every_field(tmp_path):
    contract = load_contract(_write(tmp_path, EXAMPLE))
    assert contract.name == "churn"
    cid, age, plan, _ = contract.columns
    assert (cid.dtype, cid.nullable, cid.unique, cid.subject_id) == ("string", False, True, True)
    assert cid.classification == "pii" and cid.masked
    assert (age.min, age.max, age.nullable, age.classification) == (18, 120, True, "internal")
    assert plan.allowed == ["basic", "pro", "enterprise"]
    assert contract.table.freshness is not None
    assert contract.table.freshness.max_age_delta == timedelta(days=30)
    assert contract.table.drift is not None and contract.table.drift.columns == ["age", "plan"]


def _columns(*cols: str) -> str:
    return "columns:\n" + "".join(f"  - {c}\n" for c in cols)


BAD_CONTRACTS = [
    (
        _columns("{name: a, dtype: int}", "{name: a, dtype: float}"),
        "columns[1].name: 'a' is already the name of columns[0]",
    ),
    (_columns("{name: a, dtype: int, min: 10, max: 5}"), "columns[0].max: 5 is less than min 10"),
    (
        _columns("{name: a, dtype: string, min: 1}"),
        "columns[0].min: applies only to int, float, date and datetime columns, not string",
    ),
    (
        _columns("{name: a, dtype: bool, max: 1}"),
        "columns[0].max: applies only to int, float, date and datetime columns, not bool",
    ),
    (
        _columns("{name: a, dtype: int, regex: '^1'}"),
        "columns[0].regex: applies only to string columns, not int",
    ),
    (
        _columns("{name: a, dtype: category, regex: '^1'}"),
        "columns[0].regex: applies only to string columns, not category",
    ),
    (
        _columns("{name: a, dtype: float, allowed: [1.5]}"),
        "columns[0].allowed: applies only to string, category and int columns, not float",
    ),
    (
        _columns("{name: a, dtype: string, regex: '(unclosed'}"),
        "columns[0].regex: does not compile",
    ),
    (
        _columns("{name: a, dtype: string, regex: '(?=lookahead)'}"),
        "columns[0].regex: does not compile",
    ),
    (
        _columns("{name: a, dtype: string, regex: '" + "a" * 1001 + "'}"),
        "columns[0].regex: is 1001 characters long; at most 1000 allowed",
    ),
    (
        _columns(
            "{name: a, dtype: string, subject_id: true}",
            "{name: b, dtype: string, subject_id: true}",
        ),
        "columns[1].subject_id: only one column may identify a person",
    ),
    (
        _columns("{name: a, dtype: date}") + "table: {freshness: {column: b, max_age: 1d}}",
        "table.freshness.column: no column named 'b'",
    ),
    (
        _columns("{name: a, dtype: int}") + "table: {freshness: {column: a, max_age: 1d}}",
        "table.freshness.column: 'a' has dtype int; freshness needs a date or datetime column",
    ),
    (
        _columns("{name: a, dtype: date}") + "table: {freshness: {column: a, max_age: 30x}}",
        "table.freshness.max_age: '30x' is not a duration",
    ),
    (
        _columns("{name: a, dtype: int}") + "table: {drift: {max_psi: 0.2, columns: [a, z]}}",
        "table.drift.columns[1]: no column named 'z'",
    ),
    (
        _columns("{name: a, dtype: int}") + "table: {drift: {max_psi: 0}}",
        "table.drift.max_psi: Input should be greater than 0",
    ),
    (_columns("{name: a, dtype: int, colour: red}"), "columns[0].colour: unknown field"),
    (_columns("{name: a, dtype: integer}"), "columns[0].dtype: Input should be 'int', 'float'"),
    ("name: x\n", "columns: is required"),
    ("columns: []\n", "columns: List should have at least 1 item"),
    (
        _columns("{name: a, dtype: category, allowed: [yes, no]}"),
        "columns[0].allowed: item 0 is the boolean True: YAML reads unquoted yes/no",
    ),
    (
        _columns("{name: a, dtype: category, allowed: [x, y, x]}"),
        "columns[0].allowed: lists 'x' more than once",
    ),
    (
        _columns("{name: a, dtype: int, allowed: [1, '2']}"),
        "columns[0].allowed: item 1 ('2') is not a whole number",
    ),
    (
        _columns("{name: a, dtype: string, allowed: []}"),
        "columns[0].allowed: must be a non-empty list",
    ),
    (
        _columns("{name: a, dtype: int}") + "table: {min_rows: 10, max_rows: 5}",
        "table.max_rows: 5 is less than min_rows 10",
    ),
    (
        _columns("{name: a, dtype: int}") + "table: {max_null_fraction: 1.5}",
        "table.max_null_fraction: Input should be less than or equal to 1",
    ),
    ("format: 2\n" + _columns("{name: a, dtype: int}"), "format: Input should be 1"),
    (
        "on_failure: drop\n" + _columns("{name: a, dtype: int}"),
        "on_failure: Input should be 'reject_file' or 'quarantine_rows'",
    ),
    (
        _columns("{name: a, dtype: date, min: '2024-13-01'}"),
        "columns[0].min: must be a date like 2024-01-31",
    ),
    (_columns("{name: a, dtype: date, min: 2024-13-01}"), "is not valid YAML: month must be in"),
    ("columns: " + "[" * 5000 + "]" * 5000, "is not valid YAML"),
    (
        _columns("{name: a, dtype: date, min: '2024-01-01T10:00:00'}"),
        "columns[0].min: must be a date like 2024-01-31",
    ),
    (_columns("{name: a, dtype: int, min: 1.5}"), "columns[0].min: must be a whole number"),
    (
        _columns("{name: a, dtype: int, min: true}"),
        "columns[0].min: must be a int value, not a boolean",
    ),
    (_columns("{name: a, dtype: float, max: .nan}"), "columns[0].max: must be a finite number"),
    (
        _columns("{name: a, dtype: datetime, max: yesterday}"),
        "columns[0].max: must be an ISO 8601 date and time",
    ),
    (
        _columns("{name: '', dtype: int}"),
        "columns[0].name: String should have at least 1 character",
    ),
    ("- just\n- a list\n", "must be a mapping with a `columns` list, not list"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONTRACTS)
def test_invalid_contract_is_refused_naming_the_field(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(InvalidInput) as caught:
        load_contract(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = _write(tmp_path, "columns:\n  - {name: a, dtype: int\n")
    with pytest.raises(InvalidInput, match=r"is not valid YAML at line 3, column 1"):
        load_contract(path)


def test_contract_over_one_mebibyte_is_refused_before_parsing(tmp_path):
    path = _write(tmp_path, "# " + "x" * (1 << 20) + "\n" + _columns("{name: a, dtype: int}"))
    with pytest.raises(InvalidInput, match="at most 1 MiB"):
        load_contract(path)


def test_missing_and_non_utf8_files_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="no contract file"):
        load_contract(tmp_path / "absent.yaml")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        load_contract(_write(tmp_path, b"columns: \xff\xfe\n"))


def test_many_problems_are_reported_together():
    with pytest.raises(InvalidInput) as caught:
        parse_contract(
            {"columns": [{"name": "a", "dtype": "int", "x": 1}, {"name": "b", "dtype": "nope"}]},
            source="mine",
        )
    text = str(caught.value)
    assert text.startswith("mine is invalid: ")
    assert "columns[0].x: unknown field" in text and "columns[1].dtype:" in text


def test_bounds_take_the_columns_type():
    contract = parse_contract(
        {
            "columns": [
                {"name": "d", "dtype": "date", "min": "2024-01-01", "max": date(2024, 12, 31)},
                {"name": "t", "dtype": "datetime", "min": "2024-01-01T02:00:00+02:00"},
                {"name": "n", "dtype": "datetime", "max": datetime(2024, 1, 1, 12)},
                {"name": "f", "dtype": "float", "min": 0, "max": 2.5},
                {"name": "i", "dtype": "int", "min": 3.0},
            ]
        }
    )
    d, t, n, f, i = contract.columns
    assert (d.min, d.max) == (date(2024, 1, 1), date(2024, 12, 31))
    assert t.min == datetime(2024, 1, 1, tzinfo=UTC)  # converted to UTC
    assert n.max == datetime(2024, 1, 1, 12, tzinfo=UTC)  # naive means UTC
    assert (f.min, f.max, i.min) == (0, 2.5, 3)
    assert isinstance(i.min, int)


@pytest.mark.parametrize(
    ("text", "delta"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90))],
)
def test_durations_parse(text, delta):
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["0d", "30", "d", "1.5h", "2w", "-1d", " 1d", 30])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_yaml_round_trip_keeps_contract_and_fingerprint(tmp_path):
    contract = load_contract(_write(tmp_path, EXAMPLE))
    text = contract.to_yaml()
    again = parse_contract(yaml.safe_load(text))
    assert again == contract
    assert again.fingerprint() == contract.fingerprint()
    assert text.startswith("name: churn\nformat: 1\n")
    assert "nullable: true" not in text  # defaults are left out


def test_fingerprint_ignores_spelling_and_changes_with_meaning():
    a = parse_contract({"columns": [{"name": "x", "dtype": "int", "min": 1}]})
    b = parse_contract(
        {
            "table": {"no_duplicate_rows": False},
            "columns": [{"min": 1.0, "dtype": "int", "name": "x", "nullable": True}],
            "format": 1,
        }
    )
    c = parse_contract({"columns": [{"name": "x", "dtype": "int", "min": 2}]})
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    assert len(a.fingerprint()) == 64 and int(a.fingerprint(), 16) >= 0


def test_published_json_schema_is_current():
    published = json.loads((ROOT / "docs" / "contract.schema.json").read_text())
    assert published == contract_json_schema(), (
        "docs/contract.schema.json is stale: regenerate it with "
        "python -c 'import json; from aidlc.data.contract import contract_json_schema as s; "
        "print(json.dumps(s(), indent=2))' > docs/contract.schema.json"
    )


def test_json_schema_accepts_the_example_and_refuses_unknown_fields():
    jsonschema = pytest.importorskip("jsonschema")
    schema = contract_json_schema()
    jsonschema.validate(json.loads(json.dumps(yaml.safe_load(EXAMPLE), default=str)), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"columns": [{"name": "a", "dtype": "int", "oops": 1}]}, schema)


def test_contract_models_are_immutable():
    contract = parse_contract({"columns": [{"name": "x", "dtype": "int"}]})
    with pytest.raises(ValueError):
        contract.columns[0].min = 3  # type: ignore[misc]
    assert isinstance(contract, Contract)


# -- infer_contract ------------------------------------------------------------------------------


def test_infer_contract_drafts_types_ranges_categories_and_classifications():
    n = 200
    df = pl.DataFrame(
        {
            "customer_id": [f"C-{i:06d}" for i in range(n)],
            "email": [f"u{i}@example.com" for i in range(n)],
            "age": [str(18 + i % 60) for i in range(n)],
            "score": [f"{i / 7:.3f}" for i in range(n)],
            "plan": ["basic", "pro", "enterprise", "basic"] * (n // 4),
            "active": ["yes", "no"] * (n // 2),
            "born": ["1990-01-02", "1985-12-31"] * (n // 2),
            "seen": ["2024-01-02T03:04:05Z", "2024-01-02 05:00:00"] * (n // 2),
            "zip": [f"{i * 37:05d}" for i in range(n)],
            "note": [None if i % 10 == 0 else f"free text {i}" for i in range(n)],
        }
    )
    contract = infer_contract(df, name="churn")
    got = {c.name: c for c in contract.columns}
    assert {k: c.dtype for k, c in got.items()} == {
        "customer_id": "string",
        "email": "string",
        "age": "int",
        "score": "float",
        "plan": "category",
        "active": "bool",
        "born": "date",
        "seen": "datetime",
        "zip": "string",  # a leading zero: a code, not a number
        "note": "string",
    }
    assert got["plan"].allowed == ["basic", "enterprise", "pro"]
    assert (got["age"].min, got["age"].max) == (18, 77)
    assert got["born"].min == date(1985, 12, 31)
    assert got["seen"].max == datetime(2024, 1, 2, 5, tzinfo=UTC)
    assert got["customer_id"].unique and got["customer_id"].subject_id
    assert not got["email"].unique  # distinct, but not an id by name
    assert got["note"].nullable and not got["age"].nullable
    assert {c.name for c in contract.columns if c.classification == "pii"} == {
        "customer_id",
        "email",
        "born",
        "zip",
    }
    assert contract.table.min_rows == 1 and contract.table.no_duplicate_rows
    assert validate(df, contract).passed


def test_infer_contract_keeps_real_dtypes_and_refuses_nested_columns():
    df = pl.DataFrame(
        {
            "n": [1, 2, 3],
            "x": [0.5, None, 2.0],
            "d": [date(2024, 1, 1)] * 3,
            "c": pl.Series(["a", "b", "a"], dtype=pl.Categorical),
            "b": [True, False, True],
        }
    )
    contract = infer_contract(df)
    assert [c.dtype for c in contract.columns] == ["int", "float", "date", "category", "bool"]
    assert validate(df, contract).passed
    with pytest.raises(InvalidInput, match="has type List"):
        infer_contract(pl.DataFrame({"l": [[1]]}))
    with pytest.raises(InvalidInput, match="without columns"):
        infer_contract(pl.DataFrame())


def test_infer_contract_turns_off_duplicate_check_when_the_sample_has_duplicates():
    df = pl.DataFrame({"a": [1, 1, 2], "b": ["x", "x", "y"]})
    contract = infer_contract(df)
    assert not contract.table.no_duplicate_rows
    assert validate(df, contract).passed


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("email", "pii"),
        ("Phone_Number", "pii"),
        ("first_name", "pii"),
        ("ssn", "pii"),
        ("home_address", "pii"),
        ("date_of_birth", "pii"),
        ("customer_id", "pii"),
        ("patientId", "pii"),
        ("diagnosis", "sensitive"),
        ("annual_income", "sensitive"),
        ("amount", "internal"),
        ("plan", "internal"),
    ],
)
def test_classification_guess_from_name(name, expected):
    assert classify_name(name) == expected


_cells = {
    "int": st.integers(-(10**6), 10**6).map(str),
    "float": st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f:.4f}"),
    "word": st.sampled_from(["red", "green", "blue", " padded ", ""]),
    "text": st.text(max_size=8),
    "date": st.dates(date(1900, 1, 1), date(2100, 1, 1)).map(str),
}


@st.composite
def _frames(draw: st.DrawFn) -> pl.DataFrame:
    rows = draw(st.integers(0, 30))
    kinds = draw(st.lists(st.sampled_from(sorted(_cells)), min_size=1, max_size=4))
    data = {}
    for i, kind in enumerate(kinds):
        cell = st.one_of(st.none(), _cells[kind]) if draw(st.booleans()) else _cells[kind]
        data[f"{kind}{i}"] = draw(st.lists(cell, min_size=rows, max_size=rows))
    return pl.DataFrame(data, schema={k: pl.String for k in data})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_frames())
def test_a_drafted_contract_accepts_the_sample_it_came_from(df):
    contract = infer_contract(df)
    report = validate(df, contract)
    assert report.passed, [c.message for c in report.failed]
    assert parse_contract(yaml.safe_load(contract.to_yaml())) == contract
