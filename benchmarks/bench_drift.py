"""Drift detection: aidlc (from raw Parquet and from stored profiles) vs Evidently's data drift
preset vs plain scipy tests, on the same 1,000,000 + 1,000,000 rows, one run.

Goals (issue 6): from raw data under 2 s and at most 0.45 GB peak RSS; from stored profiles
under 0.2 s; exactly the 3 shifted columns flagged, no other.

Run by hand (never as a timed test; Evidently is benchmark-only, see benchmarks/README.md):

    .venv/bin/python benchmarks/bench_drift.py [--rows 1000000] [--repeat 3]
        [--evidently-repeat 1] [--contenders evidently,scipy,aidlc-raw,aidlc-profiles]
        [--chunk 250000] [--reader slice] [--parallel 1] [--sweep] [--cprofile]
        [--data DIR] [--evidently-venv /tmp/aidlc-bench-evidently]

Data (numpy `default_rng`, seeded, generated once, written with pyarrow in row groups of
`--row-group` rows): `reference.parquet` and `current.parquet`, `--rows` rows each, 19 features:
14 numeric (normal, lognormal, gamma, beta, uniform, integer counts, one with 5% nulls) and 5
categorical strings (2 to 50 levels). Every feature draws from its own stream, spawned from the
side's seed, so the current side is the same generators on other random numbers; exactly three
are shifted there: `score_b` (mean + 0.4 std), `monthly_spend` (x 1.3) and `region` (8 levels,
probabilities moved; PSI 0.16 between the two distributions).

Contenders, each in a fresh child process, timed from inside the child after its imports (import
time is reported apart), each reporting its peak RSS (VmHWM: the whole process, imports and data
included) and the columns it flags:

- evidently: Evidently 0.7 in its own venv; pandas reads both files, `Report([DataDriftPreset()])`
  with an explicit DataDefinition (14 numeric, 5 categorical); a column is flagged when its
  `ValueDrift` score passes the preset's threshold (at this size: normalised Wasserstein and
  Jensen-Shannon distance, >= 0.1).
- scipy: the same venv; pyarrow reads both files; `ks_2samp` per numeric column and
  `chi2_contingency` per categorical one, PSI over 10 quantile bins of the reference (categories
  for categorical columns); flagged when p < 0.05 and PSI >= 0.1. The columns p < 0.05 flags
  alone are reported too.
- aidlc-raw: aidlc's venv; both files read in `--chunk`-row batches (`--reader slice`:
  `pl.scan_parquet(f).slice(start, chunk).collect()`; `batches`:
  `pl.scan_parquet(f).collect_batches()`; `arrow`: pyarrow `iter_batches` + `pl.from_arrow`;
  chunk 0 reads a whole file with `pl.read_parquet`), `profile_frame` per batch merged into one
  profile per file (`--parallel 2` profiles the two files in two threads), then
  `compare_profiles` with the default DriftConfig. `--sweep` also runs every chunk / reader /
  parallel combination and shows them in a second table.
- aidlc-profiles: the two profiles written beforehand (`DatasetProfile.to_json()`) are read with
  `DatasetProfile.from_json` and compared.

`--cprofile` runs aidlc-raw once more under cProfile (per thread, including profile_frame's
column threads; times are summed over threads) and prints the hot spots to stderr.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = 20261127
EVIDENTLY_VENV = Path("/tmp/aidlc-bench-evidently")
CONTENDERS = ("evidently", "scipy", "aidlc-raw", "aidlc-profiles")
READERS = ("slice", "batches", "arrow")
SHIFTED = {"score_b", "monthly_spend", "region"}
CATEGORICAL = {
    "plan": (["monthly", "annual"], [0.7, 0.3]),
    "channel": (["web", "app", "store", "phone"], [0.45, 0.3, 0.15, 0.1]),
    "region": (
        ["north", "south", "east", "west", "central", "coast", "islands", "mountains"],
        [0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.04],
    ),
    "device": ([f"device-{i:02d}" for i in range(12)], None),  # Zipf-like, below
    "city": ([f"city-{i:02d}" for i in range(50)], None),
}
# The shifted region mix (PSI 0.16, Jensen-Shannon distance 0.14 nats / 0.17 bits vs the above).
REGION_SHIFTED = [0.13, 0.19, 0.15, 0.12, 0.1, 0.11, 0.11, 0.09]


def _numeric(rng: Any, n: int, name: str, shifted: bool) -> Any:
    """One numeric feature; `shifted` only changes the three SHIFTED ones."""
    import numpy as np

    if name == "tenure_months":
        return rng.poisson(24, n)
    if name == "monthly_spend":
        return rng.lognormal(3.5, 0.6, n) * (1.3 if shifted else 1.0)
    if name == "sessions_7d":
        return rng.poisson(4, n)
    if name == "avg_session_min":
        return rng.gamma(2.0, 6.0, n)
    if name == "latency_ms":
        return rng.lognormal(5.0, 0.3, n)
    if name == "score_a":
        return rng.normal(0.0, 1.0, n)
    if name == "score_b":
        return rng.normal(50.0 + (4.0 if shifted else 0.0), 10.0, n)  # +0.4 std
    if name == "score_c":
        return rng.normal(-3.0, 0.5, n)
    if name == "discount":
        return rng.uniform(0.0, 0.3, n)
    if name == "age":
        return rng.integers(18, 81, n)
    if name == "support_tickets":
        return rng.poisson(0.8, n)
    if name == "balance":  # 5% nulls (NaN here, nulls in the file)
        values = rng.normal(1000.0, 300.0, n)
        values[rng.random(n) < 0.05] = np.nan
        return values
    if name == "ratio":
        return rng.beta(2.0, 5.0, n)
    if name == "items_in_cart":
        return rng.geometric(0.2, n) - 1
    raise KeyError(name)


NUMERIC = [
    "tenure_months", "monthly_spend", "sessions_7d", "avg_session_min", "latency_ms", "score_a",
    "score_b", "score_c", "discount", "age", "support_tickets", "balance", "ratio",
    "items_in_cart",
]  # fmt: skip
FEATURES = [*NUMERIC, *CATEGORICAL]


def _categorical(rng: Any, n: int, name: str, shifted: bool) -> Any:
    import numpy as np

    levels, probs = CATEGORICAL[name]
    if probs is None:
        weights = 1.0 / np.arange(1, len(levels) + 1)
        probs = list(weights / weights.sum())
    if name == "region" and shifted:
        probs = REGION_SHIFTED
    return np.array(levels)[rng.choice(len(levels), size=n, p=probs)]


def generate(rows: int, row_group: int, directory: Path) -> tuple[Path, Path]:
    """reference.parquet and current.parquet (reused when already there for these rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = (directory / f"reference-{rows}.parquet", directory / f"current-{rows}.parquet")
    if all(p.exists() for p in paths):
        return paths
    for side, path in enumerate(paths):
        # One stream per feature, so no feature's draws depend on another's.
        streams = np.random.default_rng(SEED + side).spawn(len(FEATURES))
        shifted = side == 1
        columns: dict[str, Any] = {}
        for rng, name in zip(streams, FEATURES, strict=True):
            if name in CATEGORICAL:
                columns[name] = pa.array(_categorical(rng, rows, name, shifted and name in SHIFTED))
            else:
                values = _numeric(rng, rows, name, shifted and name in SHIFTED)
                columns[name] = pa.array(values, from_pandas=True)  # NaN -> null
        pq.write_table(pa.table(columns), path, row_group_size=row_group)
    return paths


# --- children ---------------------------------------------------------------------------------


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def run_evidently(ref_path: Path, cur_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    imported = time.perf_counter() - t0
    rss_imported = _status("VmRSS")
    start = time.perf_counter()
    ref = pd.read_parquet(ref_path)
    cur = pd.read_parquet(cur_path)
    read = time.perf_counter() - start
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=list(CATEGORICAL))
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    flagged, scores = set(), {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        score, threshold, method = float(metric["value"]), config["threshold"], config["method"]
        scores[config["column"]] = [method, score]
        # Distances drift at or above the threshold; p-value tests (small data) below it.
        distance = any(w in method for w in ("distance", "Wasserstein", "PSI", "Divergence"))
        if (score >= threshold) if distance else (score < threshold):
            flagged.add(config["column"])
    seconds = time.perf_counter() - start
    return {
        "import_seconds": imported,
        "rss_imported": rss_imported,
        "seconds": seconds,
        "parts": {"read": read, "report": seconds - read},
        "flagged": sorted(flagged),
        "scores": scores,
    }


def run_scipy(ref_path: Path, cur_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from scipy.stats import chi2_contingency, ks_2samp

    imported = time.perf_counter() - t0
    rss_imported = _status("VmRSS")
    start = time.perf_counter()
    ref = pq.read_table(ref_path)
    cur = pq.read_table(cur_path)
    read = time.perf_counter() - start

    def psi(r: Any, c: Any) -> float:
        r = np.clip(r / r.sum(), 1e-4, None)
        c = np.clip(c / c.sum(), 1e-4, None)
        return float(((c - r) * np.log(c / r)).sum())

    flagged, p_only, scores = set(), set(), {}
    for name in FEATURES:
        if name in CATEGORICAL:
            counts_r = pc.value_counts(ref[name]).to_pylist()
            counts_c = pc.value_counts(cur[name]).to_pylist()
            a = {d["values"]: d["counts"] for d in counts_r}
            b = {d["values"]: d["counts"] for d in counts_c}
            keys = sorted(set(a) | set(b))
            table = np.array([[a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys]])
            p = float(chi2_contingency(table).pvalue)
            index = psi(table[0].astype(float), table[1].astype(float))
        else:
            # Nulls dropped, as every tool here does.
            x = ref[name].drop_null().to_numpy().astype(np.float64)
            y = cur[name].drop_null().to_numpy().astype(np.float64)
            p = float(ks_2samp(x, y).pvalue)
            edges = np.unique(np.quantile(x, np.linspace(0.1, 0.9, 9)))
            bins_r = np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)
            bins_c = np.bincount(np.searchsorted(edges, y, side="right"), minlength=edges.size + 1)
            index = psi(bins_r.astype(float), bins_c.astype(float))
        scores[name] = [p, index]
        if p < 0.05:
            p_only.add(name)
            if index >= 0.1:
                flagged.add(name)
    seconds = time.perf_counter() - start
    return {
        "import_seconds": imported,
        "rss_imported": rss_imported,
        "seconds": seconds,
        "parts": {"read": read, "tests": seconds - read},
        "flagged": sorted(flagged),
        "p_only": sorted(p_only),
        "scores": scores,
    }


def profile_file(path: Path, chunk: int, reader: str, timing: dict[str, float]) -> Any:
    """The merged aidlc profile of one Parquet file, read `chunk` rows at a time."""
    import polars as pl
    import pyarrow.parquet as pq

    from aidlc.data.profile import profile_frame

    def frames() -> Any:
        if chunk <= 0:
            yield pl.read_parquet(path)
        elif reader == "arrow":
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk):
                yield pl.from_arrow(batch)
        elif reader == "batches":
            yield from pl.scan_parquet(path).collect_batches(chunk_size=chunk)
        else:
            rows = pq.ParquetFile(path).metadata.num_rows
            for start in range(0, rows, chunk):
                yield pl.scan_parquet(path).slice(start, chunk).collect()

    profile = None
    batches = frames()
    while True:
        t = time.perf_counter()
        df = next(batches, None)
        timing["read"] += time.perf_counter() - t
        if df is None:
            return profile
        t = time.perf_counter()
        part = profile_frame(df, categorical=list(CATEGORICAL))
        profile = part if profile is None else profile.merge(part)
        timing["profile"] += time.perf_counter() - t
        del df


def run_aidlc_raw(ref_path: Path, cur_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor

    import polars as pl  # noqa: F401  (imported here so its import is not timed below)
    import pyarrow.parquet  # noqa: F401

    from aidlc.monitor.drift import compare_profiles

    imported = time.perf_counter() - t0
    rss_imported = _status("VmRSS")
    profiler = _start_profiler() if args.cprofile_to else None
    timing = [{"read": 0.0, "profile": 0.0}, {"read": 0.0, "profile": 0.0}]
    start = time.perf_counter()
    paths = (ref_path, cur_path)
    if args.parallel > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [
                pool.submit(profile_file, p, args.chunk, args.reader, timing[i])
                for i, p in enumerate(paths)
            ]
            ref, cur = (j.result() for j in jobs)
    else:
        ref, cur = (
            profile_file(p, args.chunk, args.reader, timing[i]) for i, p in enumerate(paths)
        )
    profiled = time.perf_counter() - start
    result = compare_profiles(ref, cur)
    seconds = time.perf_counter() - start
    if profiler is not None:
        _stop_profiler(profiler, args.cprofile_to)
    return {
        "import_seconds": imported,
        "rss_imported": rss_imported,
        "seconds": seconds,
        "parts": {
            "read+profile (wall)": profiled,
            "read (sum)": timing[0]["read"] + timing[1]["read"],
            "profile (sum)": timing[0]["profile"] + timing[1]["profile"],
            "compare": seconds - profiled,
        },
        "flagged": sorted(result.drifted),
        "scores": {n: [f.p_value, f.score, f.psi] for n, f in result.features.items()},
    }


def run_aidlc_profiles(ref_path: Path, cur_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    from aidlc.data.profile import DatasetProfile
    from aidlc.monitor.drift import compare_profiles

    imported = time.perf_counter() - t0
    rss_imported = _status("VmRSS")
    start = time.perf_counter()
    ref = DatasetProfile.from_json(ref_path.read_text())
    cur = DatasetProfile.from_json(cur_path.read_text())
    loaded = time.perf_counter() - start
    result = compare_profiles(ref, cur)
    seconds = time.perf_counter() - start
    return {
        "import_seconds": imported,
        "rss_imported": rss_imported,
        "seconds": seconds,
        "parts": {"load": loaded, "compare": seconds - loaded},
        "flagged": sorted(result.drifted),
        "bytes": ref_path.stat().st_size + cur_path.stat().st_size,
    }


def _start_profiler() -> Any:
    """cProfile in this thread and in every thread profile_frame's column pool starts."""
    import cProfile
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import aidlc.data.profile as module

    profiles: list[Any] = []
    lock = threading.Lock()

    class ProfiledPool(ThreadPoolExecutor):
        def submit(self, fn: Callable[..., Any], /, *a: Any, **k: Any) -> Any:
            def run() -> Any:
                prof = cProfile.Profile()
                prof.enable()
                try:
                    return fn(*a, **k)
                finally:
                    prof.disable()
                    with lock:
                        profiles.append(prof)

            return super().submit(run)

    module.__dict__["ThreadPoolExecutor"] = ProfiledPool  # profile_frame looks it up per call
    main = cProfile.Profile()
    main.enable()
    return main, profiles


def _stop_profiler(profiler: Any, out: Path) -> None:
    import pstats

    main, profiles = profiler
    main.disable()
    stats = pstats.Stats(main)
    for prof in profiles:
        stats.add(prof)
    stats.dump_stats(out)


def child(name: str, ref: Path, cur: Path, args: argparse.Namespace) -> None:
    run = {
        "evidently": run_evidently,
        "scipy": run_scipy,
        "aidlc-raw": run_aidlc_raw,
        "aidlc-profiles": run_aidlc_profiles,
    }[name]
    out = run(ref, cur, args)
    out["peak_rss"] = _status("VmHWM")
    print(json.dumps(out))


# --- parent -----------------------------------------------------------------------------------


def evidently_venv(venv: Path) -> Path:
    """The benchmark-only venv with Evidently; created with pip when missing."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import evidently.presets, scipy, pyarrow"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing evidently into {venv} (benchmark only) ...", file=sys.stderr)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    # Evidently 0.7.23 imports a pandas internal that pandas 3 removed.
    pip = [str(venv / "bin" / "pip"), "install", "-q", "evidently==0.7.23", "pandas<3", "pyarrow"]
    subprocess.run(pip, check=True)
    return python


def write_profiles(ref: Path, cur: Path, directory: Path) -> tuple[Path, Path]:
    """The stored baselines: each file's aidlc profile as JSON (what `aidlc` keeps)."""
    out = []
    for path in (ref, cur):
        target = directory / (path.stem + ".profile.json")
        if not target.exists():
            timing = {"read": 0.0, "profile": 0.0}
            profile = profile_file(path, 100_000, "slice", timing)
            target.write_text(json.dumps(profile.to_json()))
        out.append(target)
    return out[0], out[1]


def run_child(
    python: Path, name: str, ref: Path, cur: Path, extra: list[str] | None = None
) -> dict[str, Any]:
    cmd = [str(python), __file__, "--child", name, "--ref", str(ref), "--cur", str(cur)]
    proc = subprocess.run(cmd + (extra or []), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _aidlc_args(chunk: int, reader: str, parallel: int) -> list[str]:
    return ["--chunk", str(chunk), "--reader", reader, "--parallel", str(parallel)]


def measure(
    python: Path, name: str, ref: Path, cur: Path, repeat: int, extra: list[str] | None = None
) -> dict[str, Any]:
    runs = [run_child(python, name, ref, cur, extra) for _ in range(repeat)]
    times = sorted(r["seconds"] for r in runs)
    best = min(runs, key=lambda r: r["seconds"])
    median = sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]
    shown = ", ".join(f"{t:.3f}" for t in times)
    label = name + (" " + " ".join(extra) if extra else "")
    print(
        f"{label}: {shown} s; peak {max(r['peak_rss'] for r in runs) / 1e6:.0f} MB", file=sys.stderr
    )
    flagged = {tuple(r["flagged"]) for r in runs}
    if len(flagged) != 1:
        raise SystemExit(f"{label} flagged different columns in different runs: {flagged}")
    return {
        **median,
        "best": times[0],
        "median": statistics.median(times),
        "runs": len(runs),
        "peak_rss": max(r["peak_rss"] for r in runs),
        "median_parts": median["parts"],
        "best_parts": best["parts"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per file")
    parser.add_argument("--row-group", type=int, default=100_000, help="Parquet row group rows")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast contenders")
    parser.add_argument("--evidently-repeat", type=int, default=1)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--chunk", type=int, default=250_000, help="aidlc-raw rows per batch")
    parser.add_argument("--reader", choices=READERS, default="slice")
    parser.add_argument("--parallel", type=int, choices=(1, 2), default=1)
    parser.add_argument("--sweep", action="store_true", help="try aidlc-raw variants too")
    parser.add_argument("--cprofile", action="store_true", help="hot spots of aidlc-raw")
    parser.add_argument("--data", type=Path, default=None, help="keep (and reuse) data here")
    parser.add_argument("--evidently-venv", type=Path, default=EVIDENTLY_VENV)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--ref", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cur", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cprofile-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.ref, args.cur, args)
        return
    names = [c for c in args.contenders.split(",") if c]
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {', '.join(CONTENDERS)}")
    peer_python = (
        evidently_venv(args.evidently_venv) if {"evidently", "scipy"} & set(names) else None
    )
    aidlc_python = Path(sys.executable)
    with tempfile.TemporaryDirectory(prefix="aidlc-bench-drift-") as tmp:
        directory = args.data or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        ref, cur = generate(args.rows, args.row_group, directory)
        ref_json, cur_json = write_profiles(ref, cur, directory)
        size = (ref.stat().st_size + cur.stat().st_size) / 1e6
        print(
            f"{args.rows:,} + {args.rows:,} rows x {len(FEATURES)} features, {size:.0f} MB of "
            f"Parquet, profiles {(ref_json.stat().st_size + cur_json.stat().st_size) / 1e3:.0f} kB;"
            f" ready in {time.perf_counter() - t:.0f} s",
            file=sys.stderr,
        )
        os.sync()
        load_before = os.getloadavg()[0]
        results: dict[str, dict[str, Any]] = {}
        extra = _aidlc_args(args.chunk, args.reader, args.parallel)
        for name in names:
            if name in ("evidently", "scipy"):
                assert peer_python is not None
                repeat = args.evidently_repeat if name == "evidently" else args.repeat
                results[name] = measure(peer_python, name, ref, cur, repeat)
            elif name == "aidlc-raw":
                results[name] = measure(aidlc_python, name, ref, cur, args.repeat, extra)
            else:
                results[name] = measure(aidlc_python, name, ref_json, cur_json, args.repeat)
        sweep: dict[str, dict[str, Any]] = {}
        if args.sweep:
            for chunk in (100_000, 250_000, 500_000, 0):
                for reader in READERS if chunk else ("read_parquet",):
                    for parallel in (1, 2):
                        variant = _aidlc_args(chunk, reader if chunk else "slice", parallel)
                        label = f"{f'{chunk:,} rows' if chunk else 'whole file'}, {reader}, "
                        label += f"{parallel} file{'s' if parallel > 1 else ''} at a time"
                        sweep[label] = measure(
                            aidlc_python, "aidlc-raw", ref, cur, args.repeat, variant
                        )
        if args.cprofile:
            out = directory / "aidlc-raw.pstats"
            run_child(aidlc_python, "aidlc-raw", ref, cur, [*extra, "--cprofile-to", str(out)])
            _print_hot_spots(out)
        load_after = os.getloadavg()[0]
    report(results, sweep, args, (load_before, load_after))


def _print_hot_spots(path: Path) -> None:
    import pstats

    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)


def report(
    results: dict[str, dict[str, Any]],
    sweep: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    load: tuple[float, float],
) -> None:
    base = results.get("evidently")
    print(
        "| contender | best s | median s | import s | peak RSS MB | RSS after imports MB "
        "| vs Evidently (median) | flagged | exactly the 3 shifted? |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name, r in results.items():
        ratio = (
            f"{base['median'] / r['median']:.0f}x faster" if base and name != "evidently" else "-"
        )
        flagged = set(r["flagged"])
        verdict = "yes" if flagged == SHIFTED else (
            f"no: misses {sorted(SHIFTED - flagged)}, extra {sorted(flagged - SHIFTED)}"
        )  # fmt: skip
        print(
            f"| {name} ({r['runs']} run{'s' if r['runs'] > 1 else ''}) | {r['best']:.3f} "
            f"| {r['median']:.3f} | {r['import_seconds']:.2f} | {r['peak_rss'] / 1e6:.0f} "
            f"| {r['rss_imported'] / 1e6:.0f} | {ratio} | {', '.join(r['flagged'])} | {verdict} |"
        )
    print()
    for name, r in results.items():
        parts = ", ".join(f"{k} {v:.3f} s" for k, v in r["median_parts"].items())
        print(f"- {name} (median run): {parts}")
        if name == "scipy":
            print(f"  - p < 0.05 alone flags: {', '.join(r['p_only'])}")
        print(f"  - on the 16 unshifted columns: {_unshifted(name, r.get('scores', {}))}")
        if name != "aidlc-profiles":
            print(f"  - on the 3 shifted: {_shifted(name, r.get('scores', {}))}")
    if sweep:
        print("\n| aidlc-raw variant | best s | median s | peak RSS MB | read+profile | compare |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, r in sweep.items():
            p = r["median_parts"]
            print(
                f"| {label} | {r['best']:.3f} | {r['median']:.3f} | {r['peak_rss'] / 1e6:.0f} "
                f"| {p['read+profile (wall)']:.3f} | {p['compare']:.3f} |"
            )
    print(f"\nLoad average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f}")
    raw, stored = results.get("aidlc-raw"), results.get("aidlc-profiles")
    goals = []
    if raw:
        goals.append(_goal("raw < 2 s", raw["median"], 2.0, "s"))
        goals.append(
            _goal("raw peak <= 0.45 GB", raw["peak_rss"] / 1e9, 0.45, "GB", inclusive=True)
        )
        if base:
            speedup = base["median"] / raw["median"]
            verdict = "met" if speedup >= 50 else f"MISSED ({speedup / 50:.2f} of the goal)"
            goals.append(f"- raw >= 50x faster than Evidently: {verdict} ({speedup:.0f}x)")
    if stored:
        goals.append(_goal("profiles < 0.2 s", stored["median"], 0.2, "s"))
    for name in ("aidlc-raw", "aidlc-profiles"):
        if name in results:
            same = set(results[name]["flagged"]) == SHIFTED
            goals.append(
                f"- {name} flags the 3 shifted columns and no other: {'met' if same else 'MISSED'}"
            )
    print("\n".join(goals))


def _unshifted(name: str, scores: dict[str, list[Any]]) -> str:
    """The closest call among columns that must not be flagged."""
    stable = {k: v for k, v in scores.items() if k not in SHIFTED}
    if not stable:
        return "(no per-column scores: the same profiles as aidlc-raw)"
    if name == "evidently":
        worst = max(stable, key=lambda k: stable[k][1])
        return f"largest score {stable[worst][1]:.4f} ({worst}, {stable[worst][0]}; threshold 0.1)"
    worst_p = min(stable, key=lambda k: stable[k][0])
    effect = 1
    worst_e = max(stable, key=lambda k: stable[k][effect])
    what = "PSI" if name == "scipy" else "normalised Wasserstein / Jensen-Shannon"
    return (
        f"smallest p {stable[worst_p][0]:.3g} ({worst_p}); "
        f"largest {what} {stable[worst_e][effect]:.4f} ({worst_e}; threshold 0.1)"
    )


def _shifted(name: str, scores: dict[str, list[Any]]) -> str:
    shown = []
    for column in sorted(SHIFTED):
        v = scores.get(column)
        if v is None:
            continue
        if name == "evidently":
            shown.append(f"{column} {v[1]:.3f}")
        elif name == "scipy":
            shown.append(f"{column} p={v[0]:.3g} PSI={v[1]:.3f}")
        else:
            shown.append(f"{column} p={v[0]:.3g} effect={v[1]:.3f} PSI={v[2]:.3f}")
    return "; ".join(shown)


def _goal(label: str, value: float, limit: float, unit: str, inclusive: bool = False) -> str:
    met = value <= limit if inclusive else value < limit
    if met:
        return f"- {label}: met ({value:.3g} vs {limit:.3g} {unit})"
    return f"- {label}: MISSED ({value:.3g} vs {limit:.3g} {unit}, {value / limit:.2f}x the limit)"


if __name__ == "__main__":
    main()
