"""Scale-out validation: a partitioned Parquet dataset checked one partition at a time, in this
process or as Ray tasks, and merged into the report and profile of the whole.

Each partition returns mergeable parts: per check its failing count and first failing rows, the
64-bit hashes that the dataset-wide checks need (values of `unique` columns, whole rows for
`no_duplicate_rows`), extremes, null counts and its profile. Only rows whose hashes repeat
somewhere in the dataset are fetched again and compared in full, so, as in
`aidlc.data.validate`, a hash collision can never produce a false finding.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from aidlc.core.compute import ray_session
from aidlc.data.contract import (
    ColumnSpec,
    Contract,
    TableChecks,
    parse_contract,
)
from aidlc.data.formats import read_table

# The merged report must read exactly like `validate`'s, so its formatting helpers are shared
# rather than copied; tests/data/test_engine.py compares whole reports to catch any drift.
from aidlc.data.validate import (
    MASK,
    MAX_INDICES,
    MAX_SAMPLES,
    CheckResult,
    _jsonable,
    _n,
    _plan_cast,
    _preview,
    _scalar,
    cast_column,
    table_checks,
    validate,
)
from aidlc.errors import AidlcError, InvalidInput, UsageError

if TYPE_CHECKING:
    import polars as pl

    from aidlc.core.config import DataConfig
    from aidlc.core.workspace import Workspace
    from aidlc.data.profile import DatasetProfile

ENGINES = ("local", "ray")
PARQUET_SUFFIXES = (".parquet", ".pq")
_BAD_VALUES = 5  # distinct values outside the allowed set shown in a report (as `validate`)

_Rows = npt.NDArray[np.int64]  # row numbers, sorted
Task = Callable[..., dict[str, Any]]
Runner = Callable[[Task, list[tuple[Any, ...]]], list[dict[str, Any]]]


@dataclass(frozen=True)
class PartitionedResult:
    """The report of a partitioned dataset, shaped exactly like `ValidationReport.to_json()`,
    and the merged profile of its clean (cast) data."""

    report: dict[str, Any]
    profile: DatasetProfile
    partitions: int

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])


def find_partitions(source: str | Path) -> list[Path]:
    """The Parquet files of a dataset, in sorted path order: every `*.parquet` or `*.pq` file
    under a folder (recursively), the files matching a glob, or one file.

    Files and folders whose names start with `.` or `_` (`_SUCCESS`, `_temporary/`) are skipped,
    as Spark and Arrow skip them. Rows are numbered through the partitions in this order, so
    name partitions with zero-padded numbers (`part-00002` sorts before `part-00010`).

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.parquet", "a.parquet", "_SUCCESS", "notes.txt"):
    ...     _ = (root / name).write_bytes(b"")
    >>> [p.name for p in find_partitions(root)]
    ['a.parquet', 'b.parquet']
    """
    import glob

    text = str(source)
    path = Path(text)
    if path.is_dir():
        found = [p for p in path.rglob("*") if p.is_file() and _visible(p.relative_to(path))]
    elif path.is_file():
        if path.suffix.lower() not in PARQUET_SUFFIXES:
            raise InvalidInput(
                f"{path.name[:100]} is not a Parquet file: partitioned validation reads "
                "*.parquet and *.pq files"
            )
        return [path]
    elif any(c in text for c in "*?["):
        pieces = path.parts
        literal = next(i for i, piece in enumerate(pieces) if any(c in piece for c in "*?["))
        base = Path(*pieces[:literal]) if literal else None
        found = [
            p
            for p in map(Path, glob.glob(text, recursive=True))
            if p.is_file() and _visible(p.relative_to(base) if base else p)
        ]
    else:
        raise InvalidInput(f"no file, folder or matching files at {text[:200]}")
    parts = sorted(p for p in found if p.suffix.lower() in PARQUET_SUFFIXES)
    if not parts:
        raise InvalidInput(f"no Parquet files (*.parquet, *.pq) in {text[:200]}")
    return parts


def _visible(relative: Path) -> bool:
    return not any(part.startswith((".", "_")) for part in relative.parts)


def validate_dataset(
    ws: Workspace,
    source: str | Path,
    contract: Contract,
    *,
    engine: str = "local",
    baseline_ref: str | None = None,
    ray_address: str | None = None,
    now: datetime | None = None,
) -> PartitionedResult:
    """The dry run for a partitioned Parquet dataset (a folder, a glob or one file): validate it
    as one dataset against a contract; stores nothing, changes nothing.

    Every partition is held to the workspace's `data` limits (file size, columns).
    """
    from aidlc.data import versions

    ws.authorize("data.validate", f"files:{Path(str(source)).name[:100]}")
    paths = find_partitions(source)
    baseline = versions.read_profile(ws, baseline_ref) if baseline_ref else None
    return validate_partitions(
        paths,
        contract,
        engine=engine,
        baseline=baseline,
        now=now,
        ray_address=ray_address,
        limits=ws.config.data,
    )


def validate_partitions(
    paths: Sequence[Path],
    contract: Contract,
    *,
    engine: str = "local",
    baseline: DatasetProfile | None = None,
    now: datetime | None = None,
    ray_address: str | None = None,
    limits: DataConfig | None = None,
) -> PartitionedResult:
    """Validate Parquet partitions as one dataset, their rows numbered in the order given.

    The report equals `validate(pl.concat(partitions), contract, ...).to_json()` and the profile
    equals `profile_frame` of the concatenated clean data (see docs/data-gate.md for the few
    statistics that merge only approximately). `engine="local"` examines the partitions one
    after another in this process; `engine="ray"` runs one task per partition on the Ray
    cluster already initialised in this process, else on the one at `ray_address` or
    `$RAY_ADDRESS`, else on a local one started (and shut down) for this call. Partitions must
    share one schema: the same columns, in the same order, with the same types.

    >>> import tempfile, pathlib, polars as pl
    >>> from aidlc.data.contract import parse_contract
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> pl.DataFrame({"id": [1, 2]}).write_parquet(root / "part-0.parquet")
    >>> pl.DataFrame({"id": [3, 1]}).write_parquet(root / "part-1.parquet")
    >>> contract = parse_contract({"columns": [{"name": "id", "dtype": "int", "unique": True}]})
    >>> result = validate_partitions(find_partitions(root), contract)
    >>> [(c["check"], c["row_indices"]) for c in result.report["checks"] if c["passed"] is False]
    [('unique', [0, 3])]
    """
    from aidlc.core.config import DataConfig

    if engine not in ENGINES:
        raise UsageError(f"unknown engine {str(engine)[:20]!r}; use one of {', '.join(ENGINES)}")
    if not isinstance(contract, Contract):
        raise InvalidInput("validate_partitions needs a Contract (see aidlc.data.contract)")
    paths = [Path(p) for p in paths]
    if not paths:
        raise InvalidInput("no partitions to validate")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    data = limits or DataConfig()
    job = {
        "contract": json.dumps(contract.model_dump(mode="json")),
        "max_file_bytes": data.max_file_bytes,
        "max_columns": data.max_columns,
    }
    with _runner(engine, ray_address) as run:
        return _Dataset(paths, contract, job, run, baseline, now).result()


# -- where the tasks run ------------------------------------------------------------------------


@contextmanager
def _runner(engine: str, address: str | None) -> Iterator[Runner]:
    if engine == "local":
        yield lambda task, calls: [task(*args) for args in calls]
        return
    with ray_session(address):  # raises ConfigError when Ray is missing or unreachable
        import ray

        def run(task: Task, calls: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
            remote = ray.remote(num_cpus=1)(task)
            return cast(list[dict[str, Any]], ray.get([remote.remote(*args) for args in calls]))

        yield run


# -- the work on one partition (pure functions: run in process or as Ray tasks) -----------------


def _examine_partition(path: str, job: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one partition and return its mergeable parts as plain values and bytes."""
    return _guarded(lambda: _examine(Path(path), job))


def _fetch_rows(path: str, job: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """Rows of one partition, by 0-based index: `values` of some columns cast to the
    contract's types (for `unique`), and whole original `rows` (duplicates, samples)."""
    return _guarded(lambda: _fetch(Path(path), job, request))


def _guarded(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Bad data becomes an `error` entry, so it crosses process boundaries without a traceback."""
    import polars as pl

    try:
        return work()
    except AidlcError as exc:
        return {"error": exc.message, "hint": exc.hint}
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return {"error": f"cannot validate this data: {first[:200]}", "hint": None}


def _examine(path: Path, job: Mapping[str, Any]) -> dict[str, Any]:
    import polars as pl

    from aidlc.data.profile import profile_frame

    contract = _contract(job)
    stamp = _stamp(path, job)
    df = read_table(
        path,
        "parquet",
        gz=False,
        max_decompressed=job["max_file_bytes"],
        max_columns=job["max_columns"],
    )
    report = validate(df, _partition_contract(contract))
    clean = report.clean
    examples: dict[int, str] = {}
    bad_values: dict[int, list[Any]] = {}
    for k, check in enumerate(report.checks):
        if check.passed is not False or check.check not in ("type", "regex", "allowed"):
            continue
        spec = contract.column(cast(str, check.column))
        if spec.masked:
            continue
        if check.check == "allowed":
            value = pl.col(spec.name)
            outside = value.filter((~value.is_in(spec.allowed or [])).fill_null(False))
            distinct = clean.select(outside.unique(maintain_order=True).head(_BAD_VALUES))
            bad_values[k] = distinct.to_series().to_list()
        elif check.row_indices:
            examples[k] = _preview(df.get_column(spec.name)[check.row_indices[0]])
    present = [(j, spec) for j, spec in enumerate(contract.columns) if spec.name in df.schema]
    extremes = [
        agg
        for j, spec in present
        if spec.min is not None or spec.max is not None
        for agg in (
            pl.col(spec.name).min().alias(f"min{j}"),
            pl.col(spec.name).max().alias(f"max{j}"),
        )
    ]
    fresh = contract.table.freshness
    if fresh is not None and fresh.column in df.schema:
        extremes.append(pl.col(fresh.column).max().alias("newest"))
    hashes = [
        pl.when(pl.col(spec.name).is_not_null()).then(pl.col(spec.name).hash()).alias(f"v{j}")
        for j, spec in present
        if spec.unique
    ]
    hash_frame = clean.select(hashes) if hashes else pl.DataFrame()
    if contract.table.no_duplicate_rows and not hashes and df.width:
        hash_frame = pl.DataFrame({"r": df.hash_rows()})
    mask = report.failing_mask
    categorical = [
        c.name
        for c in contract.columns
        if c.dtype in ("category", "string", "bool") and not c.identifying
    ]
    return {
        "rows": df.height,
        "stamp": stamp,
        "schema": _ipc(df.head(0)),
        "checks": [asdict(c) for c in report.checks],
        "examples": examples,
        "bad_values": bad_values,
        "extremes": _ipc(clean.select(extremes)) if extremes else None,
        "nulls": {spec.name: df.get_column(spec.name).null_count() for _, spec in present},
        "hashes": _ipc(hash_frame) if hash_frame.width else None,
        "failing": np.packbits(mask.to_numpy()).tobytes() if mask is not None else None,
        "samples": report.samples,
        "profile": profile_frame(contract.opaque(clean), categorical=categorical).to_json(),
    }


def _fetch(path: Path, job: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    import polars as pl

    contract = _contract(job)
    if _stamp(path, job) != request["stamp"]:
        raise InvalidInput(f"{path.name[:100]} changed while it was being validated; run again")
    values: dict[str, list[int]] = request.get("values") or {}
    rows: list[int] | None = request.get("rows")
    df = pl.read_parquet(path, columns=None if rows is not None else list(values))
    out: dict[str, Any] = {"values": {}}
    for name, indices in values.items():
        picked = df.select(name)[indices]
        spec = contract.column(name)
        out["values"][name] = _ipc(
            picked.select(cast_column(name, picked.schema[name], spec.dtype, picked.height))
        )
    if rows is not None:
        out["rows"] = _ipc(df[rows])
    return out


def _contract(job: Mapping[str, Any]) -> Contract:
    return parse_contract(json.loads(job["contract"]), source="the contract sent to a partition")


def _partition_contract(contract: Contract) -> Contract:
    """The checks one partition can decide alone: every row-level check but `unique`; no table
    checks (the merge decides those, and uniqueness, for the whole dataset)."""
    columns = [c.model_copy(update={"unique": False}) if c.unique else c for c in contract.columns]
    return contract.model_copy(update={"columns": columns, "table": TableChecks()})


def _stamp(path: Path, job: Mapping[str, Any]) -> list[int]:
    """Size and modification time, to notice a partition replaced between two reads."""
    try:
        info = path.stat()
    except OSError:
        raise InvalidInput(f"cannot read {path.name[:100]}: no such file") from None
    if info.st_size > job["max_file_bytes"]:
        raise InvalidInput(f"{path.name[:100]} exceeds data.max_file_bytes")
    return [info.st_size, info.st_mtime_ns]


def _ipc(df: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    df.write_ipc(buffer, compression="uncompressed")
    return buffer.getvalue()


def _frame(data: bytes) -> pl.DataFrame:
    import polars as pl

    return pl.read_ipc(io.BytesIO(data))


# -- the merge ----------------------------------------------------------------------------------


class _Dataset:
    """One partitioned validation: the partitions' parts, merged as `validate` decides on the
    whole (see `aidlc.data.validate._Run`, whose order of checks and messages this mirrors)."""

    def __init__(
        self,
        paths: list[Path],
        contract: Contract,
        job: dict[str, Any],
        run: Runner,
        baseline: DatasetProfile | None,
        now: datetime,
    ) -> None:
        self.paths = paths
        self.contract = contract
        self.job = job
        self.run = run
        self.baseline = baseline
        self.now = now
        self.hidden = {c.name for c in contract.columns if c.masked}
        self.position = {c.name: j for j, c in enumerate(contract.columns)}

    def result(self) -> PartitionedResult:
        import polars as pl

        self.parts = self._tasks(_examine_partition, [(str(p), self.job) for p in self.paths])
        try:
            return self._merge()
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InvalidInput(f"cannot validate this data: {first[:200]}") from None

    def _tasks(self, task: Task, calls: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        results = self.run(task, calls)
        for args, result in zip(calls, results, strict=True):
            if "error" in result:
                raise InvalidInput(
                    f"partition {str(args[0])[:200]}: {result['error']}", hint=result["hint"]
                )
        return results

    def _merge(self) -> PartitionedResult:
        from aidlc.data.profile import DatasetProfile

        self.schema = self._schema()
        self.sizes = np.array([p["rows"] for p in self.parts], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.n = int(self.sizes.sum())
        self.present = [c for c in self.contract.columns if c.name in self.schema]
        self.extremes = self._gather("extremes")
        self.hashes = self._gather("hashes")
        self.profile = reduce(
            DatasetProfile.merge, (DatasetProfile.from_json(p["profile"]) for p in self.parts)
        )
        found, note = self._dataset_checks()
        checks = self._checks(found, note)
        failing_rows, samples = self._failures(found, checks)
        report = {
            "passed": all(c.passed is not False for c in checks),
            "rows": self.n,
            "columns": list(self.schema),
            "failing_rows": failing_rows,
            "checks_run": sum(c.passed is not None for c in checks),
            "checks_failed": sum(c.passed is False for c in checks),
            "checks": [asdict(c) for c in checks],
            "samples": samples,
        }
        return PartitionedResult(report, self.profile, len(self.parts))

    def _schema(self) -> pl.Schema:
        schemas = [_frame(p["schema"]).schema for p in self.parts]
        first = schemas[0]
        for path, schema in zip(self.paths[1:], schemas[1:], strict=True):
            if schema == first:
                continue
            if list(schema) != list(first):
                why = f"its columns differ from those of {self.paths[0].name[:100]}"
            else:
                name = next(c for c in first if schema[c] != first[c])
                why = (
                    f"column {name[:100]!r} is {str(schema[name])[:60]} here but "
                    f"{str(first[name])[:60]} in {self.paths[0].name[:100]}"
                )
            raise InvalidInput(
                f"partition {str(path)[:200]}: {why}",
                hint="the partitions of one dataset need the same columns with the same types",
            )
        return first

    def _gather(self, key: str) -> pl.DataFrame:
        """One frame of every partition's `key` frame (no columns when no check needs any)."""
        import polars as pl

        frames = [_frame(p[key]) for p in self.parts if p[key] is not None]
        return pl.concat(frames) if frames else pl.DataFrame()

    def _local(self, rows: _Rows) -> list[tuple[int, _Rows]]:
        """Sorted global row numbers split into (partition, its local row numbers)."""
        ends = self.offsets + self.sizes
        starts = np.searchsorted(rows, self.offsets)
        stops = np.searchsorted(rows, ends)
        return [
            (p, rows[a:b] - self.offsets[p])
            for p, (a, b) in enumerate(zip(starts, stops, strict=True))
            if b > a
        ]

    # -- unique and duplicate rows, decided over the whole dataset ----------------------------

    def _dataset_checks(self) -> tuple[dict[str, _Rows], str]:
        """Failing rows (global, sorted) of every `unique` check and of duplicate rows, and
        how duplicates were searched for."""
        keys = [s for s in self.present if s.unique]
        hashes = {s.name: self.hashes.get_column(f"v{self.position[s.name]}") for s in keys}
        candidates = {name: _repeats(column) for name, column in hashes.items()}
        key, nulls, compared = self._duplicate_candidates(keys, hashes, candidates)
        wanted: dict[int, dict[str, Any]] = {}
        for name, rows in candidates.items():
            for p, local in self._local(rows):
                wanted.setdefault(p, {}).setdefault("values", {})[name] = local.tolist()
        for p, local in self._local(compared):
            wanted.setdefault(p, {})["rows"] = local.tolist()
        fetched = self._read_again(wanted)
        found = {
            f"unique@{name}": self._repeated_values(name, rows, fetched)
            for name, rows in candidates.items()
        }
        duplicates, note = self._repeated_rows(key, nulls, compared, found, fetched)
        found["duplicate_rows@*"] = duplicates
        return found, note

    @property
    def _scan(self) -> bool:
        return self.contract.table.no_duplicate_rows and self.n >= 2 and len(self.schema) > 0

    def _duplicate_candidates(
        self, keys: list[ColumnSpec], hashes: dict[str, pl.Series], candidates: dict[str, _Rows]
    ) -> tuple[ColumnSpec | None, _Rows, _Rows]:
        """Rows that may repeat an earlier row. As in `validate`: equal rows have equal keys, so
        with a unique key only rows sharing a value of the one with the fewest nulls (or a null)
        can; without one, rows whose 64-bit row hash repeats."""
        none = np.zeros(0, dtype=np.int64)
        if not self._scan:
            return None, none, none
        if not keys:
            return None, none, _repeats(self.hashes.get_column("r"))
        key = min(keys, key=lambda s: hashes[s.name].null_count())
        nulls = none
        if hashes[key.name].null_count() > 1:
            nulls = hashes[key.name].is_null().arg_true().to_numpy().astype(np.int64)
        return key, nulls, np.union1d(candidates[key.name], nulls)

    def _read_again(self, wanted: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Fetch rows from the partitions that hold them (partition -> its request)."""
        order = sorted(wanted)
        calls = [
            (str(self.paths[p]), self.job, {**wanted[p], "stamp": self.parts[p]["stamp"]})
            for p in order
        ]
        return dict(zip(order, self._tasks(_fetch_rows, calls), strict=True)) if calls else {}

    def _repeated_values(self, name: str, rows: _Rows, fetched: dict[int, dict[str, Any]]) -> _Rows:
        """The candidates whose value really repeats: hashes may collide, values do not."""
        import polars as pl

        if not rows.size:
            return rows
        parts = [_frame(fetched[p]["values"][name]) for p, _ in self._local(rows)]
        repeated: npt.NDArray[np.bool_] = pl.concat(parts).to_series().is_duplicated().to_numpy()
        return rows[repeated]

    def _repeated_rows(
        self,
        key: ColumnSpec | None,
        nulls: _Rows,
        compared: _Rows,
        found: dict[str, _Rows],
        fetched: dict[int, dict[str, Any]],
    ) -> tuple[_Rows, str]:
        """Rows equal to an earlier row (the later occurrences), with `validate`'s note."""
        import polars as pl

        if not self._scan:
            return compared, ""
        keep = np.ones(compared.size, dtype=bool)
        if key is not None:
            # Only now is the key's uniqueness exact: drop candidates that merely collided.
            rows = np.union1d(found[f"unique@{key.name}"], nulls)
            keep = np.isin(compared, rows)
            name = repr(key.name[:100])
            note = (
                f"only the {rows.size} rows sharing a {name} value were compared"
                if rows.size
                else f"scan skipped: {name} is unique and never null, so no two rows can be equal"
            )
        elif compared.size:
            note = (
                f"the {compared.size} rows whose 64-bit hash repeats were compared in full, "
                "so hash collisions cannot cause false findings"
            )
        else:
            note = "no two rows have the same 64-bit hash"
        if not keep.any():
            return compared[keep], note
        frame = pl.concat([_frame(fetched[p]["rows"]) for p, _ in self._local(compared)])
        frame, compared = frame.filter(pl.Series(keep)), compared[keep]
        repeat = ~pl.struct(pl.all()).is_first_distinct()
        later: npt.NDArray[np.bool_] = frame.select(repeat).to_series().to_numpy()
        return compared[later], note

    # -- the checks, in `validate`'s order ----------------------------------------------------

    def _checks(self, found: dict[str, _Rows], note: str) -> list[CheckResult]:
        first = self.parts[0]["checks"]
        merged = [self._row_check(k) for k in range(len(first))]
        head = [c for c in merged if c.check in ("missing_column", "extra_column")]
        by_column: dict[str | None, list[CheckResult]] = {}
        for c in merged:
            if c.check not in ("missing_column", "extra_column"):
                by_column.setdefault(c.column, []).append(c)
        body: list[CheckResult] = []
        for spec in self.present:
            body += by_column.get(spec.name, [])
            if spec.unique:
                body.append(self._unique(spec, found[f"unique@{spec.name}"]))
        if self.contract.table.no_duplicate_rows:
            body.append(self._duplicates(found["duplicate_rows@*"], note))
        return head + body + self._table_checks()

    def _row_check(self, k: int) -> CheckResult:
        """Check k of every partition's report, merged: counts add, rows become global."""
        checks = [p["checks"][k] for p in self.parts]
        first = checks[0]
        count = sum(int(c["failing_rows"]) for c in checks)
        indices: list[int] = []
        for c, offset in zip(checks, self.offsets, strict=True):
            indices += [int(offset) + i for i in c["row_indices"][: MAX_INDICES - len(indices)]]
        kind = first["check"]
        if kind == "extra_column":
            return CheckResult(**first)
        if kind == "missing_column":
            return CheckResult(**{**first, "failing_rows": count, "row_indices": indices})
        spec = self.contract.column(first["column"])
        name, hidden, passed = repr(spec.name[:100]), spec.masked, count == 0
        observed: str | int | float | None = count
        threshold: str | int | float | None = 0
        if kind == "type":
            observed, threshold = first["observed"], spec.dtype
            refusal = _plan_cast(spec.name, self.schema[spec.name], spec.dtype, 0).refusal
            if passed:
                message = f"{name}: every value is a {spec.dtype}"
            elif refusal:
                message = f"{name} {refusal}"
            else:
                example = self._example(k, indices, hidden)
                message = f"{name}: {_n(count, 'value')} not {spec.dtype}{example}"
        elif kind == "not_null":
            message = f"{name}: " + (
                "no nulls" if passed else f"{_n(count, 'null')}, but the column must not be null"
            )
        elif kind in ("min", "max"):
            low = kind == "min"
            threshold = _scalar(spec.min if low else spec.max)
            observed = MASK if hidden else _scalar(self._extreme(kind, spec))
            word = "below the minimum" if low else "above the maximum"
            nan = " or NaN" if spec.dtype == "float" else ""
            message = f"{name}: " + (
                f"no values {word} {threshold}"
                if passed
                else f"{_n(count, 'value')} {word} {threshold}{nan}; "
                + ("smallest" if low else "largest")
                + (" value masked" if hidden else f" {observed}")
            )
        elif kind == "allowed":
            threshold = _preview(", ".join(str(v) for v in spec.allowed or []), 200, quote=False)
            if passed:
                message = f"{name}: every value is allowed"
            else:
                observed = MASK if hidden else self._bad_values(k)
                shown = "" if hidden else f" (e.g. {observed})"
                message = f"{name}: {_n(count, 'value')} outside the allowed set{shown}"
        elif kind == "regex":
            threshold = spec.regex
            message = f"{name}: " + (
                "every value matches the pattern"
                if passed
                else f"{_n(count, 'value')} not matching the pattern"
                + self._example(k, indices, hidden)
            )
        else:
            # Row-level kinds are a closed set fixed by validate.py; reaching here is a bug.
            raise ValueError(f"unknown row-level check {kind!r}")
        return CheckResult(kind, spec.name, passed, observed, threshold, count, indices, message)

    def _example(self, k: int, indices: list[int], hidden: bool) -> str:
        if not indices or hidden:
            return ""
        # The partition holding the first failing row saw it as its own first failing row.
        holder = next(p for p in self.parts if p["checks"][k]["failing_rows"])
        return f" (e.g. row {indices[0]}: {holder['examples'][k]})"

    def _bad_values(self, k: int) -> str:
        # The dataset's first distinct bad values are among each partition's first ones.
        distinct: list[Any] = []
        for p in self.parts:
            for value in p["bad_values"].get(k, []):
                if value not in distinct:
                    distinct.append(value)
        shown = distinct[:_BAD_VALUES]
        return _preview(", ".join(_preview(v) for v in shown), 200, quote=False)

    def _extreme(self, kind: str, spec: ColumnSpec) -> Any:
        import polars as pl

        column = pl.col(f"{kind}{self.position[spec.name]}")
        return self.extremes.select(column.min() if kind == "min" else column.max()).item()

    def _unique(self, spec: ColumnSpec, rows: _Rows) -> CheckResult:
        count = int(rows.size)
        passed = count == 0
        message = f"{spec.name[:100]!r}: " + (
            "every value is unique"
            if passed
            else f"{_n(count, 'row')} sharing a value with another row"
        )
        first = [int(i) for i in rows[:MAX_INDICES]]
        return CheckResult("unique", spec.name, passed, count, 0, count, first, message)

    def _duplicates(self, rows: _Rows, note: str) -> CheckResult:
        count = int(rows.size)
        passed = count == 0
        message = (
            "no duplicate rows" if passed else f"{_n(count, 'row')} repeating an earlier row"
        ) + (f" ({note})" if note else "")
        first = [int(i) for i in rows[:MAX_INDICES]]
        return CheckResult("duplicate_rows", None, passed, count, 0, count, first, message)

    # -- table-level, from the merged totals --------------------------------------------------

    def _table_checks(self) -> list[CheckResult]:
        import polars as pl

        return table_checks(
            self.contract,
            rows=self.n,
            present=self.present,
            nulls=lambda name: sum(int(p["nulls"][name]) for p in self.parts),
            newest=lambda _name: self.extremes.select(pl.col("newest").max()).item(),
            current_profile=lambda _columns, _categorical: self.profile,
            baseline=self.baseline,
            now=self.now,
        )

    # -- failing rows and samples ---------------------------------------------------------------

    def _failures(
        self, found: dict[str, _Rows], checks: list[CheckResult]
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many rows fail any row-level check, and the first few of them with reasons."""
        failed = {label: rows for label, rows in found.items() if rows.size}
        extra = (
            np.unique(np.concatenate(list(failed.values())))
            if failed
            else np.zeros(0, dtype=np.int64)
        )
        total = 0
        chosen: list[tuple[int, int, dict[str, Any] | None]] = []
        by_partition = dict(self._local(extra))
        for p, part in enumerate(self.parts):
            size = int(self.sizes[p])
            local = by_partition.get(p, np.zeros(0, dtype=np.int64))
            if part["failing"] is not None:
                bits = np.unpackbits(np.frombuffer(part["failing"], dtype=np.uint8), count=size)
                total += int(bits.sum()) + int((bits[local] == 0).sum())
            else:
                total += int(local.size)
            if len(chosen) < MAX_SAMPLES:
                samples = {int(s["row"]): s for s in part["samples"]}
                rows = sorted(set(samples) | {int(r) for r in local[:MAX_SAMPLES]})
                chosen += [(p, r, samples.get(r)) for r in rows[: MAX_SAMPLES - len(chosen)]]
        values = self._sample_values([(p, r) for p, r, s in chosen if s is None])
        rank = {
            f"{c.check}@{c.column if c.column is not None else '*'}": i
            for i, c in enumerate(checks)
        }
        out = []
        for p, r, sample in chosen:
            row = int(self.offsets[p]) + r
            reasons = list(sample["reasons"]) if sample else []
            reasons += [label for label, rows in failed.items() if _contains(rows, row)]
            out.append(
                {
                    "row": row,
                    "reasons": sorted(reasons, key=lambda label: rank[label]),
                    "values": sample["values"] if sample else values[(p, r)],
                }
            )
        return total, out

    def _sample_values(self, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], Any]:
        """Values of rows failing only dataset-wide checks, fetched and masked as `validate`."""
        rows: dict[int, list[int]] = {}
        for p, r in wanted:
            rows.setdefault(p, []).append(r)
        out: dict[tuple[int, int], Any] = {}
        for p, fetched in self._read_again({p: {"rows": r} for p, r in rows.items()}).items():
            picked = _frame(fetched["rows"])
            for k, r in enumerate(rows[p]):
                out[(p, r)] = {
                    name: MASK if name in self.hidden else _jsonable(picked.get_column(name)[k])
                    for name in picked.columns
                }
        return out


def _repeats(hashes: pl.Series) -> _Rows:
    """Rows (sorted) whose non-null hash occurs more than once."""
    ordered = hashes.drop_nulls().sort()
    repeated = ordered.filter(ordered == ordered.shift(1)).unique()
    rows = hashes.is_in(repeated.implode()).fill_null(False).arg_true()
    return rows.to_numpy().astype(np.int64)


def _contains(rows: _Rows, row: int) -> bool:
    at = int(np.searchsorted(rows, row))
    return at < rows.size and int(rows[at]) == row
