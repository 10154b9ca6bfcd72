"""Serving imported models (issue 17, bring your own model): `aidlc serve` with every layer on vs
a bare FastAPI endpoint vs `mlflow models serve`, single-row predict, `wrk` on loopback.

Goals (issue 17): aidlc's single-row throughput at least the bare endpoint's (1.0x) with every
security feature on, and at least 5x MLflow's.

Three scenarios on claims-like data (tests/registry/claims.py: 2,000 training rows, 1,000
held-out rows; numeric age, bmi, visits and text region, plan; target readmitted), each model
fitted once, as a notebook user would, and the same fitted model given to every server:

- logistic: ColumnTransformer (impute + scale the numbers, one-hot the text) + LogisticRegression
  in pandas, saved with skops. aidlc imports the skops file and serves it by ONNX Runtime (skl2onnx
  converts it; "the ONNX path"). The bare endpoint loads the skops file and calls
  `pipeline.predict` on a pandas DataFrame built from the records; MLflow serves
  `mlflow.sklearn.save_model(serialization_format="skops")` of the same pipeline.
- hgb: the same ColumnTransformer + HistGradientBoostingClassifier (100 iterations), which
  skl2onnx cannot convert: aidlc serves the skops file through scikit-learn on a polars frame
  ("the skops path"); bare and MLflow as above.
- mlp: an ONNX network over the numeric columns (one float matrix in, logits out, 64-64 hidden
  units, standardisation in the graph, weights from a fitted MLPClassifier), built with
  onnx.helper as PyTorch exports one. aidlc imports the .onnx file; the bare endpoint runs the same
  file with `onnxruntime.InferenceSession.run` (no MLflow peer).

Every model is imported by a trainer, judged on the held-out version and approved by another
principal. `aidlc serve --model NAME` (1 worker) runs as an inference principal with every layer
on: bearer auth, rate limit (1,000,000/minute: counted, never hit), schema validation, OOD flags,
prediction logging at sample rate 1.0, Prometheus metrics, JSON access log. The bare endpoints are
FastAPI + uvicorn, a pydantic body and the model, nothing else; they load the model files in their
own process. MLflow runs `mlflow models serve --env-manager local -w 1` from its own venv
(`--mlflow-venv`, created with pip on first use; never aidlc's environment).

One scenario at a time: its servers start, must give the same labels for 50 held-out rows, then
each is loaded alone in turn (order shuffled per phase and round) by one `wrk` thread: single-row
requests at `--connections`, then at one connection (p50/p99). Medians over `--repeat` rounds;
peak RSS is VmHWM summed over the server's process tree. `--profile DIR` also samples aidlc's
server with py-spy under load and prints where its time goes. `--omp-threads 1` sets
OMP_NUM_THREADS for every server (scikit-learn's HistGradientBoosting predicts with OpenMP, one
parallel region per tree; unset, as shipped, is the default). `--aidlc-setting
serve.prediction_log.sample_rate=0` (repeatable) changes aidlc.yaml, to measure one layer's cost.
Needs `wrk` (`apt-get install -y wrk`). Helpers (wrk driver, servers, MLflow venv) come from
bench_serve.py.

    .venv/bin/python benchmarks/bench_byom_serve.py [--seconds 15] [--connections 10] [--repeat 3]
        [--scenarios logistic,hgb,mlp] [--servers aidlc,bare,mlflow] [--profile DIR]
        [--omp-threads N] [--aidlc-setting SECTION.KEY=VALUE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench_serve import (
    WRK_SCRIPT,
    Target,
    free_port,
    logged,
    mlflow_venv,
    need_wrk,
    rss_mib,
    run_wrk,
    stop,
    wait_ready,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.registry.claims: the data

from tests.registry import claims

SCENARIOS = ("logistic", "hgb", "mlp")
SERVERS = ("aidlc", "bare", "mlflow")
MODEL_NAME = {"logistic": "readmit-logistic", "hgb": "readmit-hgb", "mlp": "readmit-mlp"}
DESCRIBE = {
    "logistic": "ColumnTransformer + LogisticRegression (aidlc: the ONNX path)",
    "hgb": "ColumnTransformer + HistGradientBoostingClassifier (aidlc: the skops path)",
    "mlp": "ONNX MLP 3-64-64-2 (aidlc and bare: ONNX Runtime)",
}
LABELS = {
    "aidlc": "aidlc serve (every layer on)",
    "bare": "bare FastAPI endpoint",
    "mlflow": "mlflow models serve",
}
MLFLOW_VENV = Path("/tmp/aidlc-bench-mlflow")
USERS = {
    "steward": ["data-steward"],
    "trainer": ["trainer"],
    "approver": ["approver"],
    "api": ["inference"],
    "monitor": ["monitor"],
}

BARE_APP = '''\
"""The bare endpoint: FastAPI, a pydantic body, the model; no auth, checks or logs."""
import os

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

PATH = os.environ["BENCH_MODEL"]
app = FastAPI()


class Member(BaseModel):
    age: int
    bmi: float
    visits: int
    region: str
    plan: str


class Numbers(BaseModel):
    age: int
    bmi: float
    visits: int


class Members(BaseModel):
    records: list[Member]


class Rows(BaseModel):
    records: list[Numbers]


if os.environ["BENCH_KIND"] == "sklearn":
    import pandas as pd
    import skops.io

    # the engineer's own file: trust the types it holds
    pipeline = skops.io.load(PATH, trusted=skops.io.get_untrusted_types(file=PATH))

    @app.post("/predict")
    async def predict(body: Members) -> dict:
        frame = pd.DataFrame([r.model_dump() for r in body.records])
        return {"predictions": pipeline.predict(frame).tolist()}

else:
    import onnxruntime as ort

    session = ort.InferenceSession(PATH, providers=["CPUExecutionProvider"])
    LABELS = np.array(["no", "yes"])

    @app.post("/predict")
    async def predict(body: Rows) -> dict:
        X = np.array([[r.age, r.bmi, r.visits] for r in body.records], dtype=np.float32)
        (logits,) = session.run(None, {"input": X})
        return {"predictions": LABELS[logits.argmax(axis=1)].tolist()}
'''

MLFLOW_SAVE = """\
import sys

import mlflow.sklearn
import skops.io

source, target = sys.argv[1], sys.argv[2]
trusted = skops.io.get_untrusted_types(file=source)
model = skops.io.load(source, trusted=trusted)
mlflow.sklearn.save_model(
    model, target, serialization_format="skops", skops_trusted_types=trusted
)
"""


def mlflow_venv_with_skops(venv: Path) -> Path:
    """bench_serve's MLflow venv, plus skops for `serialization_format="skops"`."""
    venv = mlflow_venv(venv)
    python = str(venv / "bin" / "python")
    if subprocess.run([python, "-c", "import skops"], capture_output=True).returncode != 0:
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "skops"], check=True)
    return venv


# -- the models, fitted as a notebook user would -------------------------------------------------


def pipeline(estimator: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), claims.NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), claims.TEXT),
        ]
    )
    return Pipeline([("pre", pre), ("model", estimator)])


def fit_skops(kind: str, train: Any, path: Path) -> Any:
    import skops.io
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    estimator = (
        LogisticRegression(max_iter=1000)
        if kind == "logistic"
        else HistGradientBoostingClassifier(random_state=0)
    )
    model = pipeline(estimator).fit(train[claims.FEATURES], train["readmitted"])
    skops.io.dump(model, path)
    return model


def mlp_onnx(train: Any, path: Path, hidden: tuple[int, ...] = (64, 64)) -> None:
    """A network as PyTorch exports one: a float matrix in, two logits out (softmax of [0, z] is
    the MLP's own probability), standardisation in the graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.neural_network import MLPClassifier

    X = train[claims.NUMERIC].to_numpy(dtype=np.float64)
    mean, std = X.mean(axis=0), X.std(axis=0)
    y = (train["readmitted"] == "yes").to_numpy().astype(int)
    net = MLPClassifier(hidden_layer_sizes=hidden, max_iter=600, random_state=0)
    net.fit((X - mean) / std, y)
    weights, biases = list(net.coefs_), list(net.intercepts_)
    weights[-1] = np.hstack([np.zeros_like(weights[-1]), weights[-1]])
    biases[-1] = np.hstack([np.zeros_like(biases[-1]), biases[-1]])
    arrays = {"mean": mean, "std": std}
    nodes = [
        helper.make_node("Sub", ["input", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["h0"]),
    ]
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        out = "logits" if i == last else f"z{i}"
        nodes.append(helper.make_node("Gemm", [f"h{i}", f"w{i}", f"b{i}"], [out]))
        if i != last:
            nodes.append(helper.make_node("Relu", [out], [f"h{i + 1}"]))
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.producer_name, model.producer_version = "pytorch", "2.13.0"
    onnx.save(model, path)


class _People:
    """Opens the workspace as one of the principals (what claims.ingest expects)."""

    def __init__(self, root: Path, tokens: dict[str, str]) -> None:
        self.root, self.tokens = root, tokens

    def open(self, who: str) -> Any:
        from aidlc.core.workspace import Workspace

        return Workspace.open(self.root, token=self.tokens[who])


def build_workspace(root: Path, scenarios: list[str], overrides: list[str]) -> dict[str, Any]:
    """claims@1 (training) and claims@2 (held out) through the gate; each scenario's model fitted,
    imported by the trainer, approved by the approver. The serving settings of bench_serve, then
    any `section.key=value` overrides (to measure what one layer costs)."""
    from aidlc.core import principals
    from aidlc.core.workspace import Workspace
    from aidlc.registry import approval, importing

    ws, _ = Workspace.init(root / "ws")
    tokens = {}
    for name, roles in USERS.items():
        _, tokens[name] = principals.add(ws, name, roles)
    ws.close()
    people = _People(root / "ws", tokens)
    train_ref, holdout_ref = claims.ingest(people, root / "data")
    frame = claims.frame()
    train = frame.head(claims.TRAIN_ROWS).to_pandas()
    files: dict[str, Path] = {}
    imported: dict[str, dict[str, Any]] = {}
    for kind in scenarios:
        if kind == "mlp":
            files[kind] = root / "mlp.onnx"
            mlp_onnx(train, files[kind])
            options: dict[str, Any] = {"features": claims.NUMERIC}
        else:
            files[kind] = root / f"{kind}.skops"
            fit_skops(kind, train, files[kind])
            options = {}
        with people.open("trainer") as trainer:
            version = importing.import_model(
                trainer,
                files[kind],
                name=MODEL_NAME[kind],
                trained_on=train_ref,
                evaluate_on=holdout_ref,
                target="readmitted",
                gates=["accuracy >= 0.6"],
                **options,
            )
        with people.open("approver") as approver:
            approval.approve(approver, version.ref, reason="serving benchmark")
        conversion = version.statement["imported"].get("conversion") or {}
        imported[kind] = {
            "ref": version.ref,
            "metrics": version.metrics,
            "served": conversion.get("served", "onnx"),
            "reason": conversion.get("reason", ""),
        }
    settings = yaml.safe_load((root / "ws" / "aidlc.yaml").read_text())
    settings.setdefault("serve", {}).update(
        {
            "rate_limit": "1000000/minute",
            "max_body_bytes": 4 << 20,
            "prediction_log": {"sample_rate": 1.0},
        }
    )
    for override in overrides:
        dotted, _, value = override.partition("=")
        *path, key = dotted.split(".")
        section = settings
        for part in path:
            section = section.setdefault(part, {})
        section[key] = yaml.safe_load(value)
    (root / "ws" / "aidlc.yaml").write_text(yaml.safe_dump(settings))
    return {"tokens": tokens, "files": files, "imported": imported}


def held_out_rows(kind: str) -> list[dict[str, Any]]:
    columns = claims.NUMERIC if kind == "mlp" else claims.FEATURES
    rows: list[dict[str, Any]] = claims.frame().slice(claims.TRAIN_ROWS).select(columns).to_dicts()
    return rows


# -- starting the servers -------------------------------------------------------------------------


def start(
    server: str, kind: str, root: Path, ctx: dict[str, Any], mlflow_dir: Path | None
) -> Target:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if ctx["omp_threads"]:
        env["OMP_NUM_THREADS"] = str(ctx["omp_threads"])
    if server == "aidlc":
        cmd = [sys.executable, "-m", "aidlc", "-w", str((root / "ws").resolve()), "serve",
               "--port", str(port), "--model", MODEL_NAME[kind]]  # fmt: skip
        env.update(AIDLC_TOKEN=ctx["tokens"]["api"])
        path, token, key = f"/v1/models/{MODEL_NAME[kind]}:predict", ctx["tokens"]["api"], "records"
    elif server == "bare":
        cmd = [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(root),
               "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
               "--log-level", "warning"]  # fmt: skip
        env.update(
            BENCH_MODEL=str(ctx["files"][kind]),
            BENCH_KIND="onnx" if kind == "mlp" else "sklearn",
        )
        path, token, key = "/predict", "", "records"
    else:
        assert mlflow_dir is not None
        venv_bin = ctx["venv"] / "bin"
        cmd = [str(venv_bin / "mlflow"), "models", "serve", "-m", str(mlflow_dir),
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
        env.update(
            PATH=f"{venv_bin}:{env.get('PATH', '')}", MLFLOW_TRACKING_URI=str(root / "mlruns")
        )
        path, token, key = "/invocations", "", "dataframe_records"
    with open(root / f"{kind}-{server}.log", "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
    return Target(server, proc, port, path, token, key)


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) summed over a process and its children."""
    import psutil

    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for p in procs:
        try:
            status = Path(f"/proc/{p.pid}/status").read_text()
        except OSError:
            continue
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        total += int(line.split()[1])
    return total / 1024


# -- in-process costs, to explain the HTTP numbers -----------------------------------------------


def per_call_us(call: Callable[[], Any]) -> float:
    timer = timeit.Timer(call)
    n, _ = timer.autorange()
    return float(statistics.median(timer.repeat(5, n))) / n * 1e6


def model_alone(
    kind: str, root: Path, ctx: dict[str, Any], row: dict[str, Any]
) -> dict[str, float]:
    """Median µs of one row through the bare peer's model call and through aidlc's runtime (with
    the servers' OpenMP thread limit, if one was set)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=ctx["omp_threads"], user_api="openmp"):
        return _model_alone(kind, root, ctx, row)


def _model_alone(
    kind: str, root: Path, ctx: dict[str, Any], row: dict[str, Any]
) -> dict[str, float]:
    from aidlc.core.workspace import Workspace
    from aidlc.registry import versions

    out: dict[str, float] = {}
    path = ctx["files"][kind]
    if kind == "mlp":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        X = np.array([[row[c] for c in claims.NUMERIC]], dtype=np.float32)
        out["bare: session.run"] = per_call_us(lambda: session.run(None, {"input": X}))
    else:
        import pandas as pd
        import skops.io

        model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=str(path)))
        out["bare: DataFrame + pipeline.predict"] = per_call_us(
            lambda: model.predict(pd.DataFrame([row]))
        )
    with Workspace.open(root / "ws", token=ctx["tokens"]["api"]) as ws:
        loaded = versions.load_model(ws, ctx["imported"][kind]["ref"], require_approved=True)
    runtime = loaded.runtime
    assert runtime is not None
    columns = {f: [row[f]] for f in loaded.features}
    out[f"aidlc: {type(runtime).__name__}.run"] = per_call_us(
        lambda: runtime.run(columns, probabilities=False)
    )
    return out


# -- py-spy ----------------------------------------------------------------------------------------


def profile(
    wrk: str, script: Path, target: Target, body: Path, connections: int, seconds: int, out: Path
) -> dict[str, Any]:
    """Sample the server with py-spy while wrk loads it; where its main thread's time goes."""
    spy = Path(sys.executable).parent / "py-spy"
    raw = out / f"{target.path.strip('/').replace('/', '_').replace(':', '_')}.txt"
    cmd = [str(spy), "record", "--pid", str(target.proc.pid), "--duration", str(seconds),
           "--rate", "250", "--threads", "--format", "raw", "--output", str(raw),
           "--nonblocking"]  # fmt: skip
    spying = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    run_wrk(wrk, script, target, body, connections, seconds - 2)
    spying.wait(timeout=120)
    return where_time_goes(raw)


def where_time_goes(raw: Path, top: int = 30) -> dict[str, Any]:
    """From py-spy's raw stacks of the main thread (the event loop, where requests run): the share
    of samples in each aidlc function and in each library call aidlc makes (inclusive), and in
    each innermost function (self). py-spy cuts coroutine stacks at the event loop, so shares are
    of all samples, not of the ones under the endpoint."""
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        thread, *frames = stack.split(";")
        if "MainThread" not in thread or not frames:
            continue
        n = int(count)
        total += n
        names = [f.rsplit(":", 1)[0] + ")" if ":" in f else f for f in frames]  # no line numbers
        leaves[names[-1]] += n
        seen = set()
        for i, name in enumerate(names):
            if "(aidlc/" in name and not name.startswith(("main (aidlc/cli", "serve (aidlc/cli")):
                seen.add(name)
                if i + 1 < len(names) and "(aidlc/" not in names[i + 1]:
                    seen.add(names[i + 1])  # the library call aidlc made
        for name in seen:
            inclusive[name] += n
    return {
        "samples": total,
        "inclusive": [(f, c / total) for f, c in inclusive.most_common(top)] if total else [],
        "self": [(f, c / total) for f, c in leaves.most_common(15)] if total else [],
    }


# -- the run ---------------------------------------------------------------------------------------


def run_scenario(
    kind: str,
    names: list[str],
    root: Path,
    ctx: dict[str, Any],
    args: argparse.Namespace,
    wrk: str,
    script: Path,
) -> dict[str, Any]:
    servers = [s for s in names if not (kind == "mlp" and s == "mlflow")]
    mlflow_dir = None
    if "mlflow" in servers:
        mlflow_dir = root / f"mlflow-{kind}"
        subprocess.run(
            [str(ctx["venv"] / "bin" / "python"), str(root / "mlflow_save.py"),
             str(ctx["files"][kind]), str(mlflow_dir)],
            check=True, capture_output=True,
        )  # fmt: skip
    rows = held_out_rows(kind)
    one = rows[7:8]
    bodies = {}
    for key in ("records", "dataframe_records"):
        bodies[key] = root / f"{kind}-{key}.json"
        bodies[key].write_bytes(json.dumps({key: one}).encode())
    targets: list[Target] = []
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    spied: dict[str, Any] = {}
    try:
        for s in servers:
            targets.append(start(s, kind, root, ctx, mlflow_dir))
        expected = None
        for t in targets:
            got = [str(v) for v in wait_ready(t, rows[:50])]
            expected = expected or got
            if got != expected:
                raise RuntimeError(f"{kind}: {t.name} predicts differently: {got} vs {expected}")
        print(f"{kind}: {len(targets)} servers give the same labels for 50 held-out rows")
        load_before = os.getloadavg()[0]
        phases = [("single", args.connections), ("latency", 1)]
        for round_ in range(args.repeat):
            for phase, conns in phases:
                order = list(targets)
                random.shuffle(order)
                for t in order:
                    body = bodies[t.body_key]
                    if args.warmup:
                        run_wrk(wrk, script, t, body, conns, args.warmup)
                    r = run_wrk(wrk, script, t, body, conns, args.seconds)
                    t.rss_mib.append(rss_mib(t.proc.pid))
                    results.setdefault((t.name, phase), []).append(r)
                    print(
                        f"{kind:8} round {round_ + 1} {phase:7} {t.name:6} {r['rps']:8.1f} req/s  "
                        f"p50 {r['p50_us'] / 1000:6.2f} ms  p99 {r['p99_us'] / 1000:6.2f} ms  "
                        f"non-2xx {r['non2xx']}  socket errors {r['socket_errors']}",
                        flush=True,
                    )
        load_after = os.getloadavg()[0]
        if args.profile is not None:
            aidlc = next(t for t in targets if t.name == "aidlc")
            spied = profile(
                wrk, script, aidlc, bodies["records"], args.connections, 20, args.profile
            )
        peak = {t.name: peak_rss_mib(t.proc.pid) for t in targets}
        alive = {t.name: t.proc.poll() is None for t in targets}
    finally:
        for t in targets:
            stop(t)
    return {
        "servers": servers,
        "results": results,
        "peak": peak,
        "alive": alive,
        "load": (load_before, load_after),
        "alone": model_alone(kind, root, ctx, one[0]),
        "profile": spied,
    }


def report(kind: str, done: dict[str, Any], ctx: dict[str, Any], args: argparse.Namespace) -> None:
    results = done["results"]

    def med(name: str, phase: str, key: str = "rps") -> float:
        return float(statistics.median(r[key] for r in results[name, phase]))

    def spread(name: str, phase: str = "single") -> str:
        values = [r["rps"] for r in results[name, phase]]
        return f"{min(values):,.0f}-{max(values):,.0f}"

    info = ctx["imported"][kind]
    c = args.connections
    print(f"\n### {DESCRIBE[kind]}")
    if args.aidlc_setting or args.omp_threads:
        changed = [*args.aidlc_setting, f"OMP_NUM_THREADS={args.omp_threads or 'unset'}"]
        print(f"changed from the defaults: {', '.join(changed)}")
    print(
        f"aidlc {info['ref']}: served by {info['served']}"
        + (f" ({info['reason']})" if info["reason"] else "")
        + f"; held-out accuracy {info['metrics'].get('accuracy', float('nan')):.3f}"
    )
    header = [
        "server",
        f"1 row, {c} conn (req/s)",
        f"range of {args.repeat}",
        "1 row, 1 conn (req/s)",
        "p50 (ms)",
        "p99 (ms)",
        "peak RSS (MiB)",
        "errors",
    ]
    print("\n| " + " | ".join(header) + " |")
    print("|---" + "|---:" * (len(header) - 1) + "|")
    for n in done["servers"]:
        errors = sum(r["non2xx"] + r["socket_errors"] for (s, _), rs in results.items()
                     if s == n for r in rs)  # fmt: skip
        cells = [
            LABELS[n],
            f"{med(n, 'single'):,.0f}",
            spread(n),
            f"{med(n, 'latency'):,.0f}",
            f"{med(n, 'latency', 'p50_us') / 1000:.2f}",
            f"{med(n, 'latency', 'p99_us') / 1000:.2f}",
            f"{done['peak'][n]:.0f}",
            f"{errors}{'' if done['alive'][n] else ', DIED'}",
        ]
        print("| " + " | ".join(cells) + " |")
    for what, us in done["alone"].items():
        print(f"one row in process, {what}: {us:.0f} µs")
    print(f"load average before {done['load'][0]:.2f}, after {done['load'][1]:.2f}")
    servers = set(done["servers"])
    if {"aidlc", "bare"} <= servers:
        ratios = [
            a["rps"] / b["rps"]
            for a, b in zip(results["aidlc", "single"], results["bare", "single"], strict=True)
        ]
        r = med("aidlc", "single") / med("bare", "single")
        verdict = "met" if r >= 1 else f"MISSED by {(1 - r) * 100:.0f}%"
        print(
            f"aidlc / bare, 1 row at {c} conn: {r:.2f}x (rounds {min(ratios):.2f}-"
            f"{max(ratios):.2f}; goal >= 1): {verdict}"
        )
        added = (med("aidlc", "latency", "p50_us") - med("bare", "latency", "p50_us")) / 1000
        print(f"added p50 at 1 conn, aidlc - bare: {added:+.2f} ms")
    if {"aidlc", "mlflow"} <= servers:
        ratios = [
            a["rps"] / b["rps"]
            for a, b in zip(results["aidlc", "single"], results["mlflow", "single"], strict=True)
        ]
        r = med("aidlc", "single") / med("mlflow", "single")
        verdict = "met" if r >= 5 else f"MISSED ({r:.1f}x of 5x)"
        print(
            f"aidlc / MLflow, 1 row at {c} conn: {r:.2f}x (rounds {min(ratios):.2f}-"
            f"{max(ratios):.2f}; goal >= 5): {verdict}"
        )
    if done["profile"]:
        spied = done["profile"]
        print(
            f"py-spy, aidlc's main thread ({spied['samples']} samples at 250 Hz, {c} connections): "
            "share of samples in each aidlc function or library call it makes (inclusive)"
        )
        for frame, share in spied["inclusive"]:
            print(f"  {share * 100:5.1f}%  {frame}")
        print("innermost function (self):")
        for frame, share in spied["self"]:
            print(f"  {share * 100:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before each")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--mlflow-venv", type=Path, default=MLFLOW_VENV)
    parser.add_argument("--profile", type=Path, help="py-spy aidlc's server; raw stacks go here")
    parser.add_argument(
        "--omp-threads", type=int, help="OMP_NUM_THREADS for every server (default: unset)"
    )
    parser.add_argument(
        "--aidlc-setting",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override aidlc.yaml, e.g. serve.prediction_log.sample_rate=0 (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and its logs")
    args = parser.parse_args()
    kinds = [s for s in args.scenarios.split(",") if s]
    names = [s for s in args.servers.split(",") if s]
    if set(kinds) - set(SCENARIOS) or set(names) - set(SERVERS):
        parser.error(f"scenarios are {', '.join(SCENARIOS)}; servers {', '.join(SERVERS)}")
    wrk = need_wrk()
    venv = mlflow_venv_with_skops(args.mlflow_venv) if "mlflow" in names else args.mlflow_venv
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)

    root = Path(tempfile.mkdtemp(prefix="aidlc-bench-byom-serve-"))
    ctx: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        ctx = build_workspace(root, kinds, args.aidlc_setting)
        ctx["venv"] = venv
        ctx["omp_threads"] = args.omp_threads
        print(f"workspace, data, fitting, imports and approvals: {time.perf_counter() - t0:.1f} s")
        (root / "bare_app.py").write_text(BARE_APP)
        (root / "mlflow_save.py").write_text(MLFLOW_SAVE)
        script = root / "post.lua"
        script.write_text(WRK_SCRIPT)
        done = {kind: run_scenario(kind, names, root, ctx, args, wrk, script) for kind in kinds}
        if "aidlc" in names:
            rows, batches = logged(root, ctx["tokens"]["monitor"])
            print(f"prediction log after clean shutdowns: {rows:,} rows in {batches} batches")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    for kind in kinds:
        report(kind, done[kind], ctx, args)


if __name__ == "__main__":
    main()
