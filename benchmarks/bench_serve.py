"""Serving throughput and latency: `aidlc serve` with every layer on vs a bare FastAPI endpoint
vs `mlflow models serve`, the same scikit-learn model, one run, `wrk` on loopback.

Goals (issue 5): aidlc's single-row throughput at least the bare endpoint's and at least 5x
MLflow's; at most 1 ms added p50 latency at one connection. Also granian vs uvicorn for aidlc's
app, and batch throughput in rows/s with 1,000-row requests.

One LogisticRegression is trained through aidlc (demo breast-cancer data through the gate,
`type: sklearn.LogisticRegression`, approved to production). Its fitted coefficients are copied,
not pickled, into the peers, so every server answers with the same estimator:

- aidlc, uvicorn: `aidlc serve` (1 worker) as an inference principal: bearer auth, rate limit
  (1,000,000/minute, so it is counted but never hit), schema validation, OOD flags, prediction
  logging at sample rate 1.0 (encrypted Parquet batches), Prometheus metrics, JSON access log;
- aidlc, granian: the same app factory under `granian --interface asgi` (1 worker);
- bare: FastAPI + uvicorn, a pydantic body, `model.predict` on a numpy matrix, nothing else;
- MLflow: `mlflow models serve --env-manager local` (1 worker) of `mlflow.sklearn.save_model`.

All servers stay up; each is loaded alone in turn (order shuffled per phase) by one `wrk`
thread: single-row requests at `--connections`, single-row at one connection (p50/p99), and
1,000-row requests at `--connections`. Needs `wrk` (`apt-get install -y wrk`). MLflow is a
benchmark-only peer: it goes into its own venv (`--mlflow-venv`, created with pip if missing),
never into aidlc's environment.

    .venv/bin/python benchmarks/bench_serve.py [--seconds 15] [--connections 10] [--repeat 1]
        [--servers aidlc,granian,bare,mlflow]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SERVERS = ("aidlc", "granian", "bare", "mlflow")
LABELS = {
    "aidlc": "aidlc serve (uvicorn)",
    "granian": "aidlc app on granian",
    "bare": "bare FastAPI + uvicorn",
    "mlflow": "mlflow models serve",
}
MLFLOW_VENV = Path("/tmp/aidlc-bench-mlflow")

TRAIN = """\
format: 1
name: bc
dataset: breast-cancer@latest
target: diagnosis
exclude: [patient_id]
seed: 1
model:
  type: sklearn.LogisticRegression
  params: {max_iter: 10000}
validation: {method: holdout, test_size: 0.25}
metrics: [roc_auc, accuracy]
register: {model: bc, description: serving benchmark}
card: {intended_use: benchmark, owner: bench}
"""

BARE_APP = '''\
"""The bare endpoint: FastAPI, a pydantic body, model.predict; no auth, checks or logs."""
import json
import os
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression

spec = json.loads(Path(os.environ["BENCH_MODEL"]).read_text())
FEATURES = spec["features"]
model = LogisticRegression()
model.coef_ = np.array(spec["coef"])
model.intercept_ = np.array(spec["intercept"])
model.classes_ = np.array(spec["labels"])
model.n_features_in_ = len(FEATURES)


class Body(BaseModel):
    records: list[dict[str, float]]


app = FastAPI()


@app.get("/ping")
async def ping() -> dict:
    return {"ok": True}


@app.post("/predict")
async def predict(body: Body) -> dict:
    X = np.array([[r[f] for f in FEATURES] for r in body.records], dtype=np.float64)
    return {"predictions": model.predict(X).tolist()}
'''

MLFLOW_SAVE = """\
import json, sys
import numpy as np
import mlflow.sklearn
from sklearn.linear_model import LogisticRegression

spec = json.load(open(sys.argv[1]))
model = LogisticRegression()
model.coef_ = np.array(spec["coef"])
model.intercept_ = np.array(spec["intercept"])
model.classes_ = np.array(spec["labels"])
model.n_features_in_ = len(spec["features"])
model.feature_names_in_ = np.array(spec["features"], dtype=object)
mlflow.sklearn.save_model(model, sys.argv[2])
"""

WRK_SCRIPT = """\
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "mean_us": %.1f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass
class Target:
    """A running server and how to ask it for a prediction."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    path: str
    token: str = ""
    body_key: str = "records"
    rss_mib: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("bench_serve: wrk is not installed; install it with `apt-get install -y wrk`")
    return wrk


def mlflow_venv(venv: Path) -> Path:
    """The benchmark-only venv with MLflow; created with pip when missing."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import mlflow, sklearn"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return venv
    print(f"installing mlflow into {venv} (benchmark only, not an aidlc dependency) ...")
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "mlflow", "scikit-learn"]
    subprocess.run(pip, check=True)
    return venv


# -- the model, trained and approved through aidlc ------------------------------------------------


def build_workspace(root: Path) -> dict[str, Any]:
    """A workspace where bc@1 (a LogisticRegression) is production; the api principal's token
    and the fitted estimator's parameters for the peers."""
    from aidlc.core import principals
    from aidlc.core.workspace import Workspace
    from aidlc.data.contract import parse_contract
    from aidlc.data.ingest import ingest
    from aidlc.demo import breast_cancer
    from aidlc.registry import approval, versions
    from aidlc.train import runner

    ws, _ = Workspace.init(root / "ws")
    tokens = {}
    for name, roles in {
        "steward": ["data-steward"],
        "trainer": ["trainer"],
        "approver": ["approver"],
        "api": ["inference"],
        "monitor": ["monitor"],
    }.items():
        _, tokens[name] = principals.add(ws, name, roles)
    ws.close()
    (root / "data").mkdir()
    good, _ = breast_cancer.write_files(root / "data")
    contract = parse_contract(breast_cancer.contract(breast_cancer.frame()), source="demo")
    with Workspace.open(root / "ws", token=tokens["steward"]) as steward:
        ingest(steward, good, "breast-cancer", contract=contract)
    with Workspace.open(root / "ws", token=tokens["trainer"]) as trainer:
        runner.train(
            trainer,
            TRAIN,
            register=versions.registrar(trainer),
            production_metrics=lambda name: versions.production_metrics(trainer, name),
        )
    with Workspace.open(root / "ws", token=tokens["approver"]) as approver:
        approval.approve(approver, "bc@1", reason="serving benchmark")
    with Workspace.open(root / "ws", token=tokens["trainer"]) as trainer:
        loaded = versions.load_model(trainer, "bc@1")
    pre, est = loaded.preprocessor, loaded.estimator
    assert pre.output_features == pre.input_features, "the benchmark model has no preprocessing"
    classes = loaded.bundle.classes or []
    spec = {
        "features": list(pre.input_features),
        "coef": est.coef_.tolist(),
        "intercept": est.intercept_.tolist(),
        "labels": [classes[int(i)] for i in est.classes_],
    }
    settings = yaml.safe_load((root / "ws" / "aidlc.yaml").read_text())
    settings.setdefault("serve", {}).update(
        {
            "rate_limit": "1000000/minute",
            "max_body_bytes": 4 << 20,
            "prediction_log": {"sample_rate": 1.0},
        }
    )
    (root / "ws" / "aidlc.yaml").write_text(yaml.safe_dump(settings))
    return {"token": tokens["api"], "monitor": tokens["monitor"], "spec": spec, "estimator": est}


def demo_rows() -> list[dict[str, Any]]:
    from aidlc.demo import breast_cancer

    frame = breast_cancer.frame().drop(["patient_id", "diagnosis"])
    rows: list[dict[str, Any]] = frame.to_dicts()
    return rows


# -- starting and stopping the servers -----------------------------------------------------------


def start(name: str, root: Path, ctx: dict[str, Any], mlflow_dir: Path | None) -> Target:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bindir = Path(sys.executable).parent
    ws = str((root / "ws").resolve())
    if name == "aidlc":
        cmd = [sys.executable, "-m", "aidlc", "-w", ws, "serve", "--port", str(port)]
        env.update(AIDLC_TOKEN=ctx["token"])
        target_path, token, key = "/v1/models/bc:predict", ctx["token"], "records"
    elif name == "granian":
        cmd = [str(bindir / "granian"), "--interface", "asgi", "--factory", "--host",
               "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning",
               "aidlc.cli.serve:from_environment"]  # fmt: skip
        env.update(
            AIDLC_TOKEN=ctx["token"],
            AIDLC_WORKSPACE=ws,
            AIDLC_SERVE_MODELS="null",
            AIDLC_SERVE_TLS="0",
        )
        target_path, token, key = "/v1/models/bc:predict", ctx["token"], "records"
    elif name == "bare":
        cmd = [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(root),
               "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
               "--log-level", "warning"]  # fmt: skip
        env.update(BENCH_MODEL=str(root / "model.json"))
        target_path, token, key = "/predict", "", "records"
    else:
        assert mlflow_dir is not None
        venv_bin = ctx["venv"] / "bin"
        cmd = [str(venv_bin / "mlflow"), "models", "serve", "-m", str(mlflow_dir),
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
        env.update(
            PATH=f"{venv_bin}:{env.get('PATH', '')}", MLFLOW_TRACKING_URI=str(root / "mlruns")
        )
        target_path, token, key = "/invocations", "", "dataframe_records"
    with open(root / f"{name}.log", "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
    return Target(name, proc, port, target_path, token, key)


def post(target: Target, rows: list[dict[str, Any]]) -> list[Any]:
    headers = {"Content-Type": "application/json"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    body = json.dumps({target.body_key: rows}).encode()
    req = urllib.request.Request(target.url, body, headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        doc = json.loads(resp.read())
    predictions = doc["predictions"]
    return [p["prediction"] if isinstance(p, dict) else p for p in predictions]


def wait_ready(target: Target, rows: list[dict[str, Any]], timeout: float = 120.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        if target.proc.poll() is not None:
            raise RuntimeError(f"{target.name} exited with {target.proc.returncode}; see its log")
        try:
            return post(target, rows)
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def logged(root: Path, token: str) -> tuple[int, int]:
    """Rows and batches in the prediction log, written by the aidlc servers."""
    from sqlalchemy import func, select

    from aidlc.core.meta import PredictionBatchRecord
    from aidlc.core.workspace import Workspace

    query = select(func.coalesce(func.sum(PredictionBatchRecord.rows), 0), func.count())
    with Workspace.open(root / "ws", token=token) as ws, ws.db.reading() as session:
        rows, batches = session.execute(query).one()
    return int(rows), int(batches)


def rss_mib(pid: int) -> float:
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
        return float(sum(p.memory_info().rss for p in procs)) / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def stop(target: Target) -> None:
    if target.proc.poll() is None:
        os.killpg(target.proc.pid, signal.SIGTERM)  # the session this script started
        try:
            target.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(target.proc.pid, signal.SIGKILL)
            target.proc.wait()


# -- measuring -----------------------------------------------------------------------------------


def run_wrk(
    wrk: str, script: Path, target: Target, body: Path, connections: int, seconds: int
) -> dict[str, Any]:
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency",
           "-s", str(script), target.url]  # fmt: skip
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_TOKEN": target.token}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    doc: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    doc["rps"] = doc["requests"] / (doc["duration_us"] / 1e6)
    return doc


def one_row_predict(estimator: Any, row: list[float]) -> float:
    """Median microseconds of `estimator.predict` on one numpy row."""
    import numpy as np

    X = np.array([row], dtype=np.float64)
    timer = timeit.Timer(lambda: estimator.predict(X))
    n, _ = timer.autorange()
    return float(statistics.median(timer.repeat(5, n))) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before each")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000, help="rows per batch request")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is reported")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--mlflow-venv", type=Path, default=MLFLOW_VENV)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and its logs")
    args = parser.parse_args()
    names = [s for s in args.servers.split(",") if s]
    unknown = set(names) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    wrk = need_wrk()
    venv = mlflow_venv(args.mlflow_venv) if "mlflow" in names else args.mlflow_venv

    tmp = tempfile.mkdtemp(prefix="aidlc-bench-serve-")
    root = Path(tmp)
    targets: list[Target] = []
    try:
        t0 = time.perf_counter()
        ctx = build_workspace(root)
        ctx["venv"] = venv
        print(f"workspace, training and approval: {time.perf_counter() - t0:.1f} s")
        (root / "model.json").write_text(json.dumps(ctx["spec"]))
        (root / "bare_app.py").write_text(BARE_APP)
        script = root / "post.lua"
        script.write_text(WRK_SCRIPT)
        mlflow_dir = None
        if "mlflow" in names:
            (root / "mlflow_save.py").write_text(MLFLOW_SAVE)
            mlflow_dir = root / "mlflow-model"
            subprocess.run(
                [str(venv / "bin" / "python"), str(root / "mlflow_save.py"),
                 str(root / "model.json"), str(mlflow_dir)],
                check=True, capture_output=True,
            )  # fmt: skip

        rows = demo_rows()
        one, batch = rows[7:8], [rows[i % len(rows)] for i in range(args.batch)]
        bodies = {}
        for key in ("records", "dataframe_records"):
            for label, part in (("one", one), ("batch", batch)):
                path = root / f"{key}-{label}.json"
                path.write_bytes(json.dumps({key: part}).encode())
                bodies[key, label] = path
        print(f"batch body: {bodies['records', 'batch'].stat().st_size / 1024:.0f} KiB")

        for name in names:
            targets.append(start(name, root, ctx, mlflow_dir))
        sample = rows[:20]
        expected = None
        for t in targets:
            got = wait_ready(t, sample)
            expected = expected or got
            if got != expected:
                raise RuntimeError(f"{t.name} predicts differently: {got} vs {expected}")
        print(f"all {len(targets)} servers answer, with the same predictions for 20 rows")

        phases = [
            ("single", "one", args.connections),
            ("latency", "one", 1),
            ("batch", "batch", args.connections),
        ]
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        load_before = os.getloadavg()[0]
        for round_ in range(args.repeat):
            for phase, body, conns in phases:
                order = list(targets)
                random.shuffle(order)
                for t in order:
                    path = bodies[t.body_key, body]
                    if args.warmup:
                        run_wrk(wrk, script, t, path, conns, args.warmup)
                    r = run_wrk(wrk, script, t, path, conns, args.seconds)
                    t.rss_mib.append(rss_mib(t.proc.pid))
                    results.setdefault((t.name, phase), []).append(r)
                    print(
                        f"round {round_ + 1} {phase:7} {t.name:8} {r['rps']:9.1f} req/s  "
                        f"p50 {r['p50_us'] / 1000:7.2f} ms  p99 {r['p99_us'] / 1000:7.2f} ms  "
                        f"non-2xx {r['non2xx']}  socket errors {r['socket_errors']}",
                        flush=True,
                    )
        load_after = os.getloadavg()[0]
        alive = {t.name: t.proc.poll() is None for t in targets}
        rss = {t.name: (t.rss_mib[0], max(t.rss_mib)) for t in targets}
    finally:
        for t in targets:
            stop(t)
        if targets and {"aidlc", "granian"} & set(names):
            written, batches = logged(root, ctx["monitor"])
            print(f"prediction log after a clean shutdown: {written:,} rows in {batches} batches")
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    single_row_us = one_row_predict(ctx["estimator"], [one[0][f] for f in ctx["spec"]["features"]])
    report(results, names, args, single_row_us, rss, alive, (load_before, load_after))


def report(
    results: dict[tuple[str, str], list[dict[str, Any]]],
    names: list[str],
    args: argparse.Namespace,
    single_row_us: float,
    rss: dict[str, tuple[float, float]],
    alive: dict[str, bool],
    load: tuple[float, float],
) -> None:
    def med(name: str, phase: str, key: str = "rps") -> float:
        return float(statistics.median(r[key] for r in results[name, phase]))

    def ratio(a: str, b: str, phase: str = "single") -> float:
        return med(a, phase) / med(b, phase)

    c, rows = args.connections, args.batch
    header = [
        "server",
        f"1 row, {c} conn (req/s)",
        "1 row, 1 conn (req/s)",
        "p50 (ms)",
        "p99 (ms)",
        f"{rows} rows, {c} conn (rows/s)",
        "batch p50 (ms)",
        "RSS (MiB)",
        "errors",
    ]
    print("\n| " + " | ".join(header) + " |")
    print("|---" + "|---:" * (len(header) - 1) + "|")
    for n in names:
        errors = sum(r["non2xx"] + r["socket_errors"] for (s, _), rs in results.items()
                     if s == n for r in rs)  # fmt: skip
        cells = [
            LABELS[n],
            f"{med(n, 'single'):,.0f}",
            f"{med(n, 'latency'):,.0f}",
            f"{med(n, 'latency', 'p50_us') / 1000:.2f}",
            f"{med(n, 'latency', 'p99_us') / 1000:.2f}",
            f"{med(n, 'batch') * rows:,.0f}",
            f"{med(n, 'batch', 'p50_us') / 1000:.1f}",
            f"{rss[n][0]:.0f} → {rss[n][1]:.0f}",
            f"{errors}{'' if alive[n] else ', DIED'}",
        ]
        print("| " + " | ".join(cells) + " |")
    print(f"\none-row `estimator.predict` in process: {single_row_us:.0f} µs")
    print(f"load average before {load[0]:.2f}, after {load[1]:.2f}")

    if {"aidlc", "bare"} <= set(names):
        r = ratio("aidlc", "bare")
        verdict = "met" if r >= 1 else f"MISSED by {(1 - r) * 100:.0f}%"
        print(f"aidlc / bare, 1 row at {c} conn: {r:.2f}x (goal >= 1): {verdict}")
        added = (med("aidlc", "latency", "p50_us") - med("bare", "latency", "p50_us")) / 1000
        verdict = "met" if added <= 1 else f"MISSED by {added - 1:.2f} ms"
        print(f"added p50 at 1 conn, aidlc - bare: {added:+.2f} ms (goal <= 1 ms): {verdict}")
        print(f"aidlc / bare, {rows}-row requests, rows/s: {ratio('aidlc', 'bare', 'batch'):.2f}x")
    if {"aidlc", "mlflow"} <= set(names):
        r = ratio("aidlc", "mlflow")
        verdict = "met" if r >= 5 else f"MISSED ({r:.1f}x of 5x)"
        print(f"aidlc / MLflow, 1 row at {c} conn: {r:.2f}x (goal >= 5): {verdict}")
        print(f"aidlc / MLflow, {rows}-row requests: {ratio('aidlc', 'mlflow', 'batch'):.2f}x")
    if {"aidlc", "granian"} <= set(names):
        print(
            f"granian / uvicorn (aidlc app): 1 row at {c} conn {ratio('granian', 'aidlc'):.2f}x, "
            f"1 conn {ratio('granian', 'aidlc', 'latency'):.2f}x, "
            f"{rows}-row {ratio('granian', 'aidlc', 'batch'):.2f}x"
        )


if __name__ == "__main__":
    main()
