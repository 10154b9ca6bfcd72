"""Partitioned validation: the local and Ray engines report exactly what `validate` reports on the
concatenated partitions, and merge profiles into the profile of the whole."""

from __future__ import annotations

import itertools
import json
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aidlc.data.contract import Contract, parse_contract
from aidlc.data.engine import find_partitions, validate_dataset, validate_partitions
from aidlc.data.profile import DatasetProfile, profile_frame
from aidlc.data.validate import validate
from aidlc.errors import InvalidInput, PermissionDenied, UsageError
from tests.cli.test_cli import run

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
SIZES = (50, 120, 80, 0, 60)  # an empty partition too: it must change nothing

COLUMNS: list[dict[str, Any]] = [
    {"name": "id", "dtype": "int", "unique": True},
    {
        "name": "email",
        "dtype": "string",
        "regex": r"^[a-z0-9]+@example\.com$",
        "classification": "pii",
    },
    {"name": "plan", "dtype": "category", "nullable": False, "allowed": ["basic", "pro", "team"]},
    {"name": "age", "dtype": "int", "min": 18, "max": 99},
    {"name": "score", "dtype": "float"},
    {"name": "spend", "dtype": "float", "min": 0, "max": 1000},
    {"name": "signup", "dtype": "datetime", "min": "2020-01-01T00:00:00Z"},
    {"name": "day", "dtype": "date", "max": "2024-12-31"},
    {"name": "code", "dtype": "string", "regex": r"^[A-Z]{3}-[0-9]{4}$"},
    {"name": "salary", "dtype": "int", "classification": "sensitive", "max": 200_000},
]
TABLE: dict[str, Any] = {
    "min_rows": 10,
    "max_rows": 1_000_000,
    "max_null_fraction": 0.05,
    "no_duplicate_rows": True,
    "freshness": {"column": "signup", "max_age": "30d"},
    "drift": {"max_psi": 0.1, "columns": ["age", "plan", "spend"]},
}


def _contract(*, unique: bool = True, **table: Any) -> Contract:
    columns = [{**c, "unique": unique and c.get("unique", False)} for c in COLUMNS]
    return parse_contract({"columns": columns, "table": {**TABLE, **table}})


SCHEMA = {
    "id": pl.Int64,
    "email": pl.String,
    "plan": pl.String,
    "age": pl.Int64,
    "score": pl.String,  # text, as from a CSV export: the contract casts it
    "spend": pl.Float64,
    "signup": pl.Datetime("us", "UTC"),
    "day": pl.Date,
    "code": pl.String,
    "salary": pl.Int64,
    "note": pl.String,  # not in the contract
}


def _frame(rng: np.random.Generator, n: int, first_id: int) -> pl.DataFrame:
    ids = np.arange(first_id, first_id + n)
    ages = [timedelta(seconds=int(s)) for s in rng.integers(0, 86_400 * 20, n)]
    return pl.DataFrame(
        {
            "id": ids,
            "email": [f"user{i}@example.com" for i in ids],
            "plan": rng.choice(["basic", "pro", "team"], n).tolist(),
            "age": rng.integers(18, 90, n),
            "score": [f"{x:.3f}" for x in rng.normal(50, 10, n)],
            "spend": rng.gamma(2.0, 30.0, n),
            "signup": [NOW - timedelta(days=2) - age for age in ages],
            "day": [date(2024, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 150, n)],
            "code": [f"{a}-{b:04d}" for a, b in zip(rng.choice(["ABC", "XYZ"], n), range(n))],
            "salary": rng.integers(30_000, 150_000, n),
            "note": rng.choice(["x", "y"], n).tolist(),
        },
        schema=SCHEMA,
    )


def _set(df: pl.DataFrame, row: int, **values: Any) -> pl.DataFrame:
    """Replace values in one row (the frames are small, so clarity beats speed)."""
    rows = df.to_dicts()
    rows[row].update(values)
    return pl.DataFrame(rows, schema=df.schema)


def _partitions(root: Path, *, dirty: bool, seed: int = 7) -> list[Path]:
    """Write the partitions; the dirty set's defects cross partition boundaries."""
    rng = np.random.default_rng(seed)
    frames, first = [], 0
    for size in SIZES:
        frames.append(_frame(rng, size, first))
        first += size
    if dirty:
        p0, p1, p2, _, p4 = frames
        # A whole row repeated two partitions later (so its id repeats as well); partition 0 has
        # no other defect, so the first failing row fails only dataset-wide checks.
        p2 = _set(p2, 3, **p0.row(7, named=True))
        # An id repeated across partitions, in rows that differ otherwise.
        p1 = _set(p1, 10, id=int(p4["id"][2]))
        # Two rows without an id, equal otherwise: duplicates found through the null key.
        p1 = _set(p1, 30, id=None)
        p4 = _set(p4, 40, **{**p1.row(30, named=True)})
        # Row-level defects everywhere.
        p1 = _set(p1, 2, plan="gold")
        p1 = _set(p1, 4, age=12)
        p1 = _set(p1, 6, code="abc")
        p1 = _set(p1, 20, email="bad email")
        p1 = _set(p1, 21, salary=999_999)
        for row in range(60, 100):
            p1 = _set(p1, row, spend=None)
        p2 = _set(p2, 1, plan="Pro")
        p2 = _set(p2, 5, score="n/a")
        p2 = _set(p2, 9, age=150)
        p2 = _set(p2, 11, spend=float("nan"))
        p4 = _set(p4, 0, spend=-5.0)
        p4 = _set(p4, 1, score="")
        p4 = _set(p4, 5, plan=None)
        p4 = _set(p4, 8, plan="gold")
        p4 = _set(p4, 9, plan="vip")
        p4 = _set(p4, 12, code="ABC-12")
        p4 = _set(p4, 13, day=date(2025, 3, 1), signup=datetime(2019, 5, 1, tzinfo=UTC))
        frames = [p0, p1, p2, frames[3], p4]
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = root / f"part-{i:05d}.parquet"
        frame.write_parquet(path)
        paths.append(path)
    return paths


def _baseline() -> DatasetProfile:
    """An earlier version of the data, with older customers: drift on `age`."""
    rng = np.random.default_rng(99)
    old = _frame(rng, 400, 0).with_columns(pl.col("age") + 25)
    contract = _contract()
    return profile_frame(
        contract.opaque(validate(old, contract, now=NOW).clean), categorical=_categorical(contract)
    )


def _categorical(contract: Contract) -> list[str]:
    return [
        c.name
        for c in contract.columns
        if c.dtype in ("category", "string", "bool") and not c.identifying
    ]


def _whole(paths: list[Path], contract: Contract, baseline: DatasetProfile | None):
    """What `validate` and `profile_frame` say about the concatenated partitions."""
    report = validate(
        pl.concat([pl.read_parquet(p) for p in paths]), contract, baseline=baseline, now=NOW
    )
    return report.to_json(), profile_frame(
        contract.opaque(report.clean), categorical=_categorical(contract)
    )


def _assert_same_profile(merged: DatasetProfile, whole: DatasetProfile) -> None:
    assert merged.rows == whole.rows
    assert list(merged.columns) == list(whole.columns)
    for name, column in whole.columns.items():
        got = merged.columns[name]
        for field in ("dtype", "kind", "count", "nulls", "nonfinite", "min", "max"):
            assert getattr(got, field) == getattr(column, field), (name, field)
        assert got.sketch == column.sketch, name
        assert got.hll == column.hll, name
        assert got.counts == column.counts and got.other == column.other, name
        for field in ("mean", "m2"):
            want = getattr(column, field)
            assert getattr(got, field) == (want if want is None else pytest.approx(want, rel=1e-9))


def _assert_agree(result, whole_report: dict[str, Any]) -> None:
    """The correctness bar per check, then the whole report (messages and samples too)."""
    assert result.report["passed"] == whole_report["passed"]
    got = [(c["check"], c["column"]) for c in result.report["checks"]]
    assert got == [(c["check"], c["column"]) for c in whole_report["checks"]]
    for mine, theirs in zip(result.report["checks"], whole_report["checks"], strict=True):
        for field in ("passed", "failing_rows", "observed", "row_indices"):
            assert mine[field] == theirs[field], (mine, theirs)
    assert result.report == whole_report


# -- the merge, in process ----------------------------------------------------------------------


@pytest.mark.parametrize("unique", [True, False], ids=["unique-key", "row-hashes"])
def test_local_engine_reports_exactly_what_validate_reports_on_the_whole(tmp_path, unique):
    paths = _partitions(tmp_path / "dirty", dirty=True)
    contract, baseline = _contract(unique=unique), _baseline()
    result = validate_partitions(paths, contract, baseline=baseline, now=NOW)
    whole, profile = _whole(paths, contract, baseline)
    _assert_agree(result, whole)
    _assert_same_profile(result.profile, profile)
    failed = {(c["check"], c["column"]) for c in whole["checks"] if c["passed"] is False}
    # Every kind of defect was planted and found, including those spanning partitions.
    assert failed >= {
        ("type", "score"),
        ("not_null", "plan"),
        ("min", "age"),
        ("max", "age"),
        ("min", "spend"),
        ("max", "salary"),
        ("allowed", "plan"),
        ("regex", "email"),
        ("regex", "code"),
        ("duplicate_rows", None),
        ("extra_column", "note"),
        ("null_fraction", "spend"),
        ("drift", "age"),
    }
    duplicates = next(c for c in whole["checks"] if c["check"] == "duplicate_rows")
    assert duplicates["row_indices"] == [50 + 120 + 3, 50 + 120 + 80 + 40]
    if unique:
        ids = next(c for c in whole["checks"] if c["check"] == "unique")
        assert ids["row_indices"] == [7, 50 + 10, 50 + 120 + 3, 50 + 120 + 80 + 2]
    # The first failing row fails only a dataset-wide check, in a partition with no other defect.
    assert whole["samples"][0]["row"] == (7 if unique else 50 + 2)
    assert result.partitions == len(SIZES)


def test_a_clean_partitioned_dataset_passes_every_check(tmp_path):
    paths = _partitions(tmp_path / "clean", dirty=False)
    contract = _contract(max_null_fraction=0.5)
    contract = contract.model_copy(update={"allow_extra_columns": True})
    baseline = profile_frame(
        contract.opaque(
            validate(pl.concat([pl.read_parquet(p) for p in paths]), contract, now=NOW).clean
        ),
        categorical=_categorical(contract),
    )
    result = validate_partitions(paths, contract, baseline=baseline, now=NOW)
    whole, profile = _whole(paths, contract, baseline)
    assert result.passed and whole["passed"]
    assert result.report["failing_rows"] == 0 and result.report["samples"] == []
    _assert_agree(result, whole)
    _assert_same_profile(result.profile, profile)
    notes = next(c["message"] for c in whole["checks"] if c["check"] == "duplicate_rows")
    assert "scan skipped" in notes


def test_missing_columns_fail_every_row_across_partitions(tmp_path):
    paths = []
    for i, n in enumerate((3, 0, 30)):
        paths.append(tmp_path / f"p{i}.parquet")
        frame = pl.DataFrame(
            {"a": range(n), "b": ["x"] * n}, schema={"a": pl.Int64, "b": pl.String}
        )
        frame.write_parquet(paths[-1])
    contract = parse_contract(
        {
            "columns": [
                {"name": "a", "dtype": "int", "unique": True},
                {"name": "region", "dtype": "string", "nullable": False},
            ],
            "table": {"no_duplicate_rows": True, "freshness": None},
        }
    )
    result = validate_partitions(paths, contract, now=NOW)
    whole, _ = _whole(paths, contract, None)
    _assert_agree(result, whole)
    missing = result.report["checks"][0]
    assert (missing["check"], missing["failing_rows"]) == ("missing_column", 33)
    assert missing["row_indices"] == list(range(20))


def test_partitions_with_different_schemas_are_refused_by_name(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pl.DataFrame({"x": [1, 2]}).write_parquet(a)
    pl.DataFrame({"x": [1.5]}).write_parquet(b)
    contract = parse_contract({"columns": [{"name": "x", "dtype": "float"}]})
    with pytest.raises(InvalidInput, match=r"b\.parquet.*'x' is Float64 here but Int64"):
        validate_partitions([a, b], contract)
    pl.DataFrame({"y": [1]}).write_parquet(b)
    with pytest.raises(InvalidInput, match="columns differ"):
        validate_partitions([a, b], contract)


def test_an_unreadable_partition_is_invalid_input_naming_it(tmp_path):
    good, bad = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(good)
    bad.write_bytes(b"PAR1 this is not parquet")
    contract = parse_contract({"columns": [{"name": "x", "dtype": "int"}]})
    with pytest.raises(InvalidInput, match=r"partition .*b\.parquet: cannot read the file"):
        validate_partitions([good, bad], contract)
    with pytest.raises(InvalidInput, match="no partitions"):
        validate_partitions([], contract)
    with pytest.raises(UsageError, match="unknown engine"):
        validate_partitions([good], contract, engine="spark")


def test_find_partitions_takes_folders_globs_and_files_in_sorted_order(tmp_path):
    root = tmp_path / "sales"
    for name in (
        "year=2024/part-00001.parquet",
        "year=2023/part-00000.parquet",
        "year=2024/part-00000.pq",
        "_temporary/part-00000.parquet",
        ".hidden.parquet",
        "_SUCCESS",
        "notes.txt",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    assert [str(p.relative_to(root)) for p in find_partitions(root)] == [
        "year=2023/part-00000.parquet",
        "year=2024/part-00000.pq",
        "year=2024/part-00001.parquet",
    ]
    assert [p.name for p in find_partitions(f"{root}/year=2024/*.parquet")] == [
        "part-00001.parquet"
    ]
    assert len(find_partitions(f"{root}/**/*.parquet")) == 2
    assert (
        find_partitions(root / "year=2023" / "part-00000.parquet")[0].name == "part-00000.parquet"
    )
    with pytest.raises(InvalidInput, match="not a Parquet file"):
        find_partitions(root / "notes.txt")
    with pytest.raises(InvalidInput, match="no Parquet files"):
        find_partitions(f"{root}/*.csv")
    with pytest.raises(InvalidInput, match="no file, folder"):
        find_partitions(tmp_path / "nowhere")


# -- any data, any split ------------------------------------------------------------------------

_cells = st.one_of(st.none(), st.integers(-3, 3))
_texts = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "ab", "1", "x y"]))


@st.composite
def _split_frames(draw: st.DrawFn) -> tuple[pl.DataFrame, list[int], dict[str, Any]]:
    n = draw(st.integers(0, 40))
    df = pl.DataFrame(
        {
            "k": draw(st.lists(_cells, min_size=n, max_size=n)),
            "t": draw(st.lists(_texts, min_size=n, max_size=n)),
            "f": draw(
                st.lists(
                    st.one_of(st.none(), st.sampled_from([0.5, -1.0, float("nan"), 2.0])),
                    min_size=n,
                    max_size=n,
                )
            ),
        },
        schema={"k": pl.Int64, "t": pl.String, "f": pl.Float64},
    )
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    text = draw(st.sampled_from(["string", "int", "category"]))
    contract = {
        "columns": [
            {
                "name": "k",
                "dtype": "int",
                "unique": draw(st.booleans()),
                "nullable": draw(st.booleans()),
                "min": -2,
            },
            {
                "name": "t",
                "dtype": text,
                "unique": draw(st.booleans()),
                "classification": draw(st.sampled_from(["internal", "pii"])),
                **({"regex": "^a"} if text == "string" else {}),
                **({"allowed": ["a", "ab"]} if text == "category" else {}),
            },
            {"name": "f", "dtype": "float", "max": 1.0},
        ],
        "table": {
            "no_duplicate_rows": draw(st.booleans()),
            "max_null_fraction": 0.3,
            "min_rows": 5,
        },
    }
    return df, cuts, contract


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=_split_frames())
def test_any_split_of_any_frame_merges_to_the_report_of_the_whole(case):
    df, cuts, spec = case
    contract = parse_contract(spec)
    bounds = [0, *cuts, df.height]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            paths.append(Path(tmp) / f"part-{i}.parquet")
            df.slice(a, b - a).write_parquet(paths[-1])
        result = validate_partitions(paths, contract, now=NOW)
        whole, profile = _whole(paths, contract, None)
    _assert_agree(result, whole)
    _assert_same_profile(result.profile, profile)


# -- on a real Ray cluster ----------------------------------------------------------------------


@pytest.fixture
def ray_cluster(ray_local):
    """The shared local Ray cluster's address."""
    return ray_local.get_runtime_context().gcs_address


@pytest.mark.slow
@pytest.mark.parametrize("unique", [True, False], ids=["unique-key", "row-hashes"])
def test_ray_local_and_whole_agree_on_every_check_and_statistic(ray_cluster, tmp_path, unique):
    paths = _partitions(tmp_path / "dirty", dirty=True)
    contract, baseline = _contract(unique=unique), _baseline()
    on_ray = validate_partitions(paths, contract, engine="ray", baseline=baseline, now=NOW)
    local = validate_partitions(paths, contract, engine="local", baseline=baseline, now=NOW)
    whole, profile = _whole(paths, contract, baseline)
    assert not whole["passed"]
    for result in (on_ray, local):
        _assert_agree(result, whole)
        _assert_same_profile(result.profile, profile)
    assert on_ray.profile.to_json() == local.profile.to_json()


@pytest.mark.slow
def test_a_clean_dataset_passes_on_ray_as_in_process(ray_cluster, tmp_path):
    paths = _partitions(tmp_path / "clean", dirty=False)
    contract = _contract(max_null_fraction=0.5).model_copy(update={"allow_extra_columns": True})
    on_ray = validate_partitions(paths, contract, engine="ray", now=NOW)
    whole, profile = _whole(paths, contract, None)
    assert on_ray.passed and whole["passed"]
    _assert_agree(on_ray, whole)
    _assert_same_profile(on_ray.profile, profile)


@pytest.mark.slow
def test_a_bad_partition_on_ray_is_one_clear_error(ray_cluster, tmp_path):
    paths = _partitions(tmp_path / "sales", dirty=False)
    paths[2].write_bytes(b"PAR1 truncated")
    with pytest.raises(
        InvalidInput, match=r"^partition .*part-00002\.parquet: cannot read"
    ) as info:
        validate_partitions(paths, _contract(), engine="ray", now=NOW)
    assert "Traceback" not in str(info.value)


# -- from the command line ----------------------------------------------------------------------


def _cli_contract(tmp_path: Path) -> tuple[Path, Contract]:
    """The test contract, without the checks that depend on the time of the run, in a file."""
    contract = _contract(freshness=None, drift=None)
    path = tmp_path / "contract.yaml"
    path.write_text(contract.to_yaml())
    return path, contract


def test_cli_validates_a_folder_or_a_glob_as_one_dataset(local_env, tmp_path):
    paths = _partitions(tmp_path / "sales", dirty=True)
    contract, parsed = _cli_contract(tmp_path)
    expected = validate_partitions(paths, parsed).report
    for source in (tmp_path / "sales", f"{tmp_path}/sales/part-*.parquet"):
        proc = run(
            "data",
            "validate",
            str(source),
            "--contract",
            str(contract),
            "--json",
            token=local_env.tokens["steward"],
            workspace=local_env.root,
        )
        assert proc.returncode == 1, proc.stderr
        assert json.loads(proc.stdout) == expected
    wrong = run(
        "data",
        "validate",
        str(tmp_path / "sales"),
        "--contract",
        str(contract),
        "--format",
        "csv",
        token=local_env.tokens["steward"],
        workspace=local_env.root,
    )
    assert wrong.returncode == 2 and "Parquet" in wrong.stderr


def test_validating_a_dataset_needs_the_data_validate_permission(local_env, tmp_path):
    paths = _partitions(tmp_path / "sales", dirty=False)
    with local_env.open("steward") as ws:
        result = validate_dataset(ws, tmp_path / "sales", _contract(), now=NOW)
    assert result.partitions == len(paths) and result.report["rows"] == sum(SIZES)
    with local_env.open("inference") as ws, pytest.raises(PermissionDenied):
        validate_dataset(ws, tmp_path / "sales", _contract(), now=NOW)


@pytest.mark.slow
@pytest.mark.parametrize("cluster", ["started", "given"])
def test_cli_validates_a_folder_on_ray(local_env, tmp_path, request, cluster):
    """Without an address the command starts a local cluster and stops it; with --ray-address it
    joins a running one (here the session's) and leaves it running."""
    paths = _partitions(tmp_path / "sales", dirty=True)
    contract, parsed = _cli_contract(tmp_path)
    expected = validate_partitions(paths, parsed).report
    where = ["--ray-address", request.getfixturevalue("ray_cluster")] if cluster == "given" else []
    proc = run(
        "data",
        "validate",
        str(tmp_path / "sales"),
        "--contract",
        str(contract),
        "--engine",
        "ray",
        *where,
        "--json",
        token=local_env.tokens["steward"],
        workspace=local_env.root,
        env={"RAY_ADDRESS": ""},  # whatever the environment says, this test picks the cluster
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout) == expected
    if cluster == "given":
        import ray

        assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2
