"""Speed, memory and findings of `aidlc.data.validate` against its peers on the same checks.

Run by hand (never as a timed test; the peers are benchmark-only, see benchmarks/README.md):

    .venv/bin/python benchmarks/bench_validate.py [--rows 10000000] [--ge-rows 1000000]
        [--tools aidlc,polars,pandera,ge] [--repeat 3] [--data DIR]

Generates (numpy, seeded) a Parquet file of `--rows` rows x 20 columns (12 float, 4 integer,
3 categorical, 1 unique string id) and a corrupted copy with known defects, then checks both
with each tool against the same contract of 59 checks: types, not-null, ranges, allowed values,
a regex, uniqueness of the id, no duplicate rows, row-count bounds and null fractions.

- aidlc: `validate(df, contract)` on the eager polars DataFrame.
- polars: a plain hand-written polars query computing the same checks.
- pandera: pandera's polars backend on an eager DataFrame, `lazy=True` to collect all failures.
- ge: Great Expectations 1.x on pandas (text as object and integers as pandas Int64, the types
  GE 1.x recognises). With `--ge-rows` smaller than `--rows` it runs on the first `--ge-rows`
  rows (with the same defects) and its time is scaled linearly, marked so.

Each run is a child process of its own: the file is read untimed, the peak RSS counter is reset
(`/proc/self/clear_refs`), and the child reports the validation time and its peak RSS (VmHWM,
so it includes the data held in memory). Each tool runs `--repeat` times per file (GE once, it
takes minutes); the table shows the median time and the largest peak. Findings are the failing
checks as `check@column`; on the corrupted copy every tool must find the same set as aidlc, and
the table says whether it did.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEED = 20240611
FLOATS = [f"f{i}" for i in range(12)]
INTS = [f"i{i}" for i in range(4)]
CATS = {
    "c0": ["basic", "pro", "enterprise", "trial"],
    "c1": ["north", "south", "east", "west", "central"],
    "c2": ["web", "store", "phone"],
}
ID_REGEX = r"^C-[0-9]{8}$"
NOT_NULL = ["id", *INTS, *CATS, "f0", "f1", "f2", "f3"]
NULLABLE = [f for f in FLOATS if f not in NOT_NULL]
INT_RANGES = {"i0": (0, 120), "i1": (0, 1_000_000), "i2": (-50, 50), "i3": (1, 7)}
FLOAT_RANGES = {"f0": (-10.0, 10.0), "f1": (0.0, 1000.0)}
MAX_NULL_FRACTION = 0.05
# The defects planted in the corrupted copy and the checks they must trip.
EXPECTED = {
    "not_null@f0",
    "not_null@i1",
    "min@i0",
    "max@f1",
    "allowed@c0",
    "regex@id",
    "unique@id",
    "duplicate_rows@*",
}


# --- data --------------------------------------------------------------------------------------


def generate(rows: int, directory: Path) -> tuple[Path, Path]:
    """The clean file and its corrupted copy (same seed, so any prefix is the same data)."""
    import numpy as np
    import polars as pl

    clean = directory / f"clean-{rows}.parquet"
    corrupt = directory / f"corrupt-{rows}.parquet"
    if clean.exists() and corrupt.exists():
        return clean, corrupt
    rng = np.random.default_rng(SEED)
    data: dict[str, Any] = {}
    for k, name in enumerate(FLOATS):
        if name in FLOAT_RANGES:
            low, high = FLOAT_RANGES[name]
            data[name] = rng.uniform(low, high, rows)
        else:
            data[name] = rng.normal(k, 1 + k, rows)
    for name, (low, high) in INT_RANGES.items():
        data[name] = rng.integers(low, high + 1, rows)
    for name, values in CATS.items():
        data[name] = np.array(values)[rng.integers(0, len(values), rows)]
    ids = rng.permutation(rows)
    df = pl.DataFrame(data).with_columns(
        pl.format("C-{}", pl.Series(ids).cast(pl.String).str.zfill(8)).alias("id")
    )
    # Nullable floats: about 1% nulls, under the 5% limit.
    df = df.with_columns(
        [
            pl.when(pl.Series(rng.random(rows) < 0.01)).then(None).otherwise(pl.col(c)).alias(c)
            for c in NULLABLE
        ]
    )
    df.write_parquet(clean)
    corrupted(df).write_parquet(corrupt)
    return clean, corrupt


def corrupted(df: Any) -> Any:
    """Plant the defects at fixed, spread-out rows (all within the first 1,000 rows, so a
    prefix used for a slow peer holds every defect)."""
    import polars as pl

    rows = df.height
    at = [r % rows for r in (11, 97, 203, 307, 401, 509, 613, 701, 809, 907)]
    idx = pl.int_range(0, rows, eager=True)

    def put(column: str, where: list[int], value: Any) -> pl.Expr:
        return pl.when(idx.is_in(where)).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)

    out = df.with_columns(
        put("f0", at[0:3], None),
        put("i1", at[3:5], None),
        put("i0", at[0:4], -5),
        put("f1", at[5:8], 5000.0),
        put("c0", at[1:6], "platinum"),
        put("id", at[8:10], "X-bad"),
    )
    # A repeated id (other values differ) and a repeated row (all values equal).
    first, second = df.row(at[2] + 1, named=True), df.row(at[6] + 1, named=True)
    out = out.with_columns(put("id", [at[7] + 2], first["id"]))
    copy = out.slice(at[6] + 1, 1)
    out = pl.concat([out.slice(0, at[9] + 3), copy, out.slice(at[9] + 4)])
    assert second["id"] == copy["id"][0]
    return out


# --- the contract, and each tool's version of it ------------------------------------------------


def contract_dict() -> dict[str, Any]:
    columns: list[dict[str, Any]] = []
    for name in FLOATS:
        col: dict[str, Any] = {"name": name, "dtype": "float", "nullable": name not in NOT_NULL}
        if name in FLOAT_RANGES:
            col["min"], col["max"] = FLOAT_RANGES[name]
        columns.append(col)
    for name, (low, high) in INT_RANGES.items():
        columns.append({"name": name, "dtype": "int", "nullable": False, "min": low, "max": high})
    for name, values in CATS.items():
        columns.append({"name": name, "dtype": "category", "nullable": False, "allowed": values})
    columns.append(
        {
            "name": "id",
            "dtype": "string",
            "nullable": False,
            "unique": True,
            "regex": ID_REGEX,
            "classification": "pii",
            "subject_id": True,
        }
    )
    return {
        "name": "bench",
        "format": 1,
        "columns": columns,
        "table": {
            "min_rows": 1,
            "max_rows": 100_000_000,
            "max_null_fraction": MAX_NULL_FRACTION,
            "no_duplicate_rows": True,
        },
    }


def run_aidlc(path: Path) -> tuple[Any, Any]:
    import polars as pl

    from aidlc.data.contract import parse_contract
    from aidlc.data.validate import validate

    contract = parse_contract(contract_dict())

    def check(df: pl.DataFrame) -> tuple[set[str], int]:
        report = validate(df, contract)
        failed = {f"{c.check}@{c.column or '*'}" for c in report.failed}
        return failed, len(report.checks)

    return pl.read_parquet(path), check


def run_polars(path: Path) -> tuple[Any, Any]:
    """What a careful engineer writes by hand: one select of counts, then the two scans."""
    import polars as pl

    def check(df: pl.DataFrame) -> tuple[set[str], int]:
        want = {
            **{c: pl.Float64 for c in FLOATS},
            **{c: pl.Int64 for c in INTS},
            **{c: pl.String for c in CATS},
            "id": pl.String,
        }
        found: dict[str, bool] = {}
        for name, dtype in want.items():
            found[f"type@{name}"] = df.schema.get(name) != dtype
        exprs = [pl.col(c).null_count().alias(f"not_null@{c}") for c in NOT_NULL]
        for name, (low, high) in {**INT_RANGES, **FLOAT_RANGES}.items():
            exprs.append((pl.col(name) < low).sum().alias(f"min@{name}"))
            exprs.append((pl.col(name) > high).sum().alias(f"max@{name}"))
        for name, values in CATS.items():
            exprs.append((~pl.col(name).is_in(values)).sum().alias(f"allowed@{name}"))
        exprs.append((~pl.col("id").str.contains(ID_REGEX)).sum().alias("regex@id"))
        exprs.append(pl.col("id").is_duplicated().sum().alias("unique@id"))
        exprs += [
            (pl.col(c).null_count() / pl.len() > MAX_NULL_FRACTION).alias(f"null_fraction@{c}")
            for c in NULLABLE
        ]
        exprs.append((~pl.len().is_between(1, 100_000_000)).alias("row_count@*"))
        counts = df.select(exprs).row(0, named=True)
        found.update({k: bool(v) for k, v in counts.items()})
        found["duplicate_rows@*"] = bool(df.is_duplicated().any())
        return {k for k, v in found.items() if v}, len(found)

    return pl.read_parquet(path), check


def run_pandera(path: Path) -> tuple[Any, Any]:
    import pandera.polars as pa
    import polars as pl
    from pandera.errors import SchemaErrors

    def null_fraction(data: Any) -> Any:
        return data.lazyframe.select(pl.col(data.key).is_null().mean() <= MAX_NULL_FRACTION)

    def row_count(data: Any) -> Any:
        return data.lazyframe.select(pl.len().is_between(1, 100_000_000))

    columns: dict[str, Any] = {}
    for name in FLOATS:
        checks = []
        if name in FLOAT_RANGES:
            low, high = FLOAT_RANGES[name]
            checks = [pa.Check.ge(low), pa.Check.le(high)]
        if name in NULLABLE:
            checks.append(pa.Check(null_fraction, name="null_fraction", ignore_na=False))
        columns[name] = pa.Column(pl.Float64, checks=checks, nullable=name in NULLABLE)
    for name, (low, high) in INT_RANGES.items():
        columns[name] = pa.Column(pl.Int64, checks=[pa.Check.ge(low), pa.Check.le(high)])
    for name, values in CATS.items():
        columns[name] = pa.Column(pl.String, checks=[pa.Check.isin(values)])
    columns["id"] = pa.Column(pl.String, checks=[pa.Check.str_matches(ID_REGEX)], unique=True)
    schema = pa.DataFrameSchema(
        columns,
        checks=[pa.Check(row_count, name="row_count")],
        unique=list(columns),
        report_duplicates="exclude_first",
    )
    names = {
        "not_nullable": "not_null",
        "greater_than_or_equal_to": "min",
        "less_than_or_equal_to": "max",
        "isin": "allowed",
        "str_matches": "regex",
        "field_uniqueness": "unique",
        "multiple_fields_uniqueness": "duplicate_rows",
        "null_fraction": "null_fraction",
        "row_count": "row_count",
        "dtype": "type",
    }

    def check(df: pl.DataFrame) -> tuple[set[str], int]:
        try:
            schema.validate(df, lazy=True)
        except SchemaErrors as exc:
            cases = exc.failure_cases
            found = set()
            for row in cases.select("check", "column", "schema_context").unique().iter_rows():
                kind = str(row[0]).split("(")[0]
                kind = names.get(kind, "type" if kind.startswith("dtype") else kind)
                column = "*" if row[2] == "DataFrameSchema" or kind == "duplicate_rows" else row[1]
                found.add(f"{kind}@{column}")
            return found, -1
        return set(), -1

    return pl.read_parquet(path), check


def run_ge(path: Path, rows: int | None) -> tuple[Any, Any]:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    frame = pd.read_parquet(path)
    if rows is not None:
        frame = frame.head(rows).copy()
    # GE 1.x does not recognise pandas 3's default string dtype; give it the classic object one.
    for name in [*CATS, "id"]:
        frame[name] = frame[name].astype(object)
    # NumPy integers cannot hold nulls (pandas would make them float64): use pandas' Int64.
    for name in INTS:
        frame[name] = frame[name].astype("Int64")
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas("bench")
    batch_definition = source.add_dataframe_asset("data").add_batch_definition_whole_dataframe(
        "all"
    )
    suite = context.suites.add(gx.ExpectationSuite(name="bench"))
    labels: list[str] = []

    def add(label: str, expectation: Any) -> None:
        labels.append(label)
        expectation.meta = {"label": label}
        suite.add_expectation(expectation)

    types = {
        **{c: ["float64", "Float64"] for c in FLOATS},
        **{c: ["Int64Dtype"] for c in INTS},
        **{c: ["str"] for c in [*CATS, "id"]},
    }
    for name, candidates in types.items():
        add(f"type@{name}", gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=candidates))
    for name in NOT_NULL:
        add(f"not_null@{name}", gxe.ExpectColumnValuesToNotBeNull(column=name))
    for name, (low, high) in {**INT_RANGES, **FLOAT_RANGES}.items():
        add(f"min@{name}", gxe.ExpectColumnValuesToBeBetween(column=name, min_value=low))
        add(f"max@{name}", gxe.ExpectColumnValuesToBeBetween(column=name, max_value=high))
    for name, values in CATS.items():
        add(f"allowed@{name}", gxe.ExpectColumnValuesToBeInSet(column=name, value_set=values))
    add("regex@id", gxe.ExpectColumnValuesToMatchRegex(column="id", regex=ID_REGEX))
    add("unique@id", gxe.ExpectColumnValuesToBeUnique(column="id"))
    add(
        "duplicate_rows@*",
        gxe.ExpectCompoundColumnsToBeUnique(column_list=list(frame.columns)),
    )
    add("row_count@*", gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=100_000_000))
    for name in NULLABLE:
        add(
            f"null_fraction@{name}",
            gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=1 - MAX_NULL_FRACTION),
        )

    def check(df: Any) -> tuple[set[str], int]:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite)
        found = {
            str(item.expectation_config.meta["label"])
            for item in result.results
            if not item.success
        }
        return found, len(labels)

    return frame, check


# --- children and the table --------------------------------------------------------------------


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def child(tool: str, path: Path, ge_rows: int | None) -> None:
    start = time.perf_counter()
    if tool == "ge":
        data, check = run_ge(path, ge_rows)
    else:
        data, check = {"aidlc": run_aidlc, "polars": run_polars, "pandera": run_pandera}[tool](path)
    loaded = time.perf_counter() - start
    rss_data = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: measure the validation alone
    start = time.perf_counter()
    failed, checks = check(data)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "tool": tool,
                "seconds": seconds,
                "load_seconds": loaded,
                "rss_data": rss_data,
                "peak_rss": _status("VmHWM"),
                "failed": sorted(failed),
                "checks": checks,
                "rows": len(data),
            }
        )
    )


def _run_child(tool: str, path: Path, ge_rows: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", tool, "--file", str(path)]
    if ge_rows is not None:
        cmd += ["--ge-rows", str(ge_rows)]
    os.sync()  # so writeback of the generated files does not slow the child
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed on {path.name}:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--ge-rows", type=int, default=None, help="run GE on this many rows")
    parser.add_argument("--tools", default="aidlc,polars,pandera,ge")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per tool and file (GE: always 1); median shown"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="keep (and reuse) the generated files here"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file, args.ge_rows)
        return
    tools = args.tools.split(",")
    if args.rows < 1000:
        parser.error("--rows must be at least 1000 (the defects sit in the first 1,000 rows)")
    with tempfile.TemporaryDirectory(prefix="aidlc-bench-") as tmp:
        start = time.perf_counter()
        clean, corrupt = generate(args.rows, args.data or Path(tmp))
        import polars as pl

        size = pl.read_parquet(clean).estimated_size()
        print(
            f"{args.rows:,} rows x 20 columns; {size / 2**30:.2f} GiB in memory "
            f"(polars), generated in {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
        )
        results: dict[tuple[str, str], dict[str, Any]] = {}
        for tool in tools:
            for label, path in (("clean", clean), ("corrupt", corrupt)):
                ge_rows = args.ge_rows if tool == "ge" and args.ge_rows else None
                runs = [
                    _run_child(tool, path, ge_rows)
                    for _ in range(1 if tool == "ge" else args.repeat)
                ]
                times = sorted(r["seconds"] for r in runs)
                result = {
                    **runs[0],
                    "seconds": statistics.median(times),
                    "peak_rss": max(r["peak_rss"] for r in runs),
                }
                if ge_rows is not None and ge_rows < args.rows:
                    result["seconds"] *= args.rows / result["rows"]
                    result["scaled"] = True
                results[tool, label] = result
                shown = ", ".join(f"{t:.2f}" for t in times)
                print(f"{tool} {label}: {shown} s", file=sys.stderr)
    _table(results, tools, size)


def _table(results: dict[tuple[str, str], dict[str, Any]], tools: list[str], size: int) -> None:
    base = results.get(("aidlc", "corrupt"), {}).get("failed")
    print(
        "| tool | clean: s | corrupted: s | vs aidlc (clean / corrupted) "
        "| peak RSS (clean / corrupted) | RSS with the data loaded "
        "| findings on the corrupted copy |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for tool in tools:
        c, k = results[tool, "clean"], results[tool, "corrupt"]
        ratio = " / ".join(
            f"{r['seconds'] / results['aidlc', label]['seconds']:.1f}x"
            if ("aidlc", label) in results
            else "-"
            for r, label in ((c, "clean"), (k, "corrupt"))
        )
        found = set(k["failed"])
        if c["failed"]:
            verdict = "false findings on the clean copy: " + ", ".join(c["failed"])
        elif base is None:
            verdict = ", ".join(sorted(found))
        elif found == set(base):
            verdict = f"same {len(found)} failing checks" + (
                "" if found == EXPECTED else " (but not the planted ones!)"
            )
        else:
            missed, extra = sorted(set(base) - found), sorted(found - set(base))
            verdict = "differs:" + (f" misses {missed}" if missed else "")
            verdict += f" also {extra}" if extra else ""
        scaled = " (scaled from a prefix)" if c.get("scaled") else ""
        print(
            f"| {tool}{scaled} | {c['seconds']:.2f} | {k['seconds']:.2f} | {ratio} "
            f"| {c['peak_rss'] / 2**30:.2f} / {k['peak_rss'] / 2**30:.2f} GiB "
            f"| {c['rss_data'] / 2**30:.2f} GiB | {verdict} |"
        )
    print(f"\nData in memory (polars): {size / 2**30:.2f} GiB. Planted: {sorted(EXPECTED)}")


if __name__ == "__main__":
    main()
