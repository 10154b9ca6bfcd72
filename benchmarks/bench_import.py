"""Importing a 100 MB ONNX model (issue 17, bring your own model): `import_model` end to end (read
and check the file, ONNX Runtime session, evaluation on 100,000 held-out rows, signing, storing,
registering) vs MLflow logging and evaluating the same file, and vs the lower bound.

Goal (issue 17): the import of a 100 MB ONNX model, evaluated on 100,000 rows, under 10 s.

Data (untimed): claims-like rows (tests/registry/claims.py, seed 7): 200,000 training rows
(claims@1) and 100,000 held-out rows (claims@2), both through the data gate of a fresh workspace.
Models (untimed, kept in `--data` to be reused), one float matrix of age, bmi, visits in:

- forest: a RandomForestClassifier on the 200,000 training rows (fully grown trees, as many as
  make about 100 MB), converted by skl2onnx: a TreeEnsembleClassifier, the realistic large
  ONNX model (a row visits one root-to-leaf path per tree: tens of comparisons per tree);
- mlp: a dense network 3-5000-5000-2 with seeded random weights (25 million float32 weights,
  100 MB): every row costs about 25 million multiply-adds, 2.5e12 for 100,000 rows, which is
  tens of seconds of arithmetic on two cores whoever runs it.

Contenders, each in a fresh child process (peak RSS is the child's VmHWM, imports included):

- aidlc: `importing.import_model` from Python as the trainer (features age, bmi, visits, target
  readmitted, evaluated on claims@2). Timed from the call to the registered version; the
  interpreter and imports (aidlc, polars, onnx, onnxruntime, scikit-learn) come first, untimed.
  Phases are the intervals between import_model's progress steps, and the inclusive time of the
  functions wrapped (in the child only) around the file check, the ONNX Runtime session, the
  dataset reads, the evaluation, the metrics, signing, storing and the ML-BOM;
- cli: `python -m aidlc models import ... --json`, wall time of the whole command (process start
  and imports included);
- mlflow: in MLflow's own venv (`--mlflow-venv`, as bench_serve.py): `onnx.load` of the file,
  `mlflow.onnx.log_model` into a local tracking store (sqlite, artifacts on disk),
  `mlflow.pyfunc.load_model` of the logged model, its predictions for the same 100,000 rows (a
  pandas frame read from Parquet, given as a dict: MLflow's ONNX flavour flattens a 2-D
  probability output of a DataFrame input and fails), and `mlflow.models.evaluate(
  model_type="classifier")` of those predictions; imports untimed;
- bound: the least any importer must do: read the file and SHA-256 it, one ONNX Runtime session
  (aidlc's options: intra-op threads = cores, no spinning), read the held-out Parquet, score it,
  count correct labels; imports untimed.

    .venv/bin/python benchmarks/bench_import.py [--repeat 3] [--models forest,mlp]
        [--contenders aidlc,cli,mlflow,bound] [--data DIR] [--size-mb 100]

(`--models` defaults to forest; the mlp takes about 40 s per contender.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_serve import mlflow_venv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.registry.claims: the data

from tests.registry import claims

MODELS = ("forest", "mlp")
CONTENDERS = ("aidlc", "cli", "mlflow", "bound")
TRAIN_ROWS, HELD_OUT_ROWS = 200_000, 100_000
SEED = 7
MLFLOW_VENV = Path("/tmp/aidlc-bench-mlflow")
USERS = {"steward": ["data-steward"], "trainer": ["trainer"]}
# What is timed inside import_model (module, function), inclusive; indented ones run inside the
# one above them.
WRAPPED = [
    ("read and check the file", "aidlc.registry.onnxfile", "load_onnx_file", 0),
    ("inspect the graph", "aidlc.registry.onnxfile", "inspect_onnx", 0),
    ("package inventory (run record, ML-BOM)", "aidlc.train.tracking", "installed_packages", 0),
    ("read a dataset version (decrypt, Parquet)", "aidlc.data.versions", "read_version", 0),
    ("held-out rows share none with training", "aidlc.registry.importing", "_check_disjoint", 0),
    ("ONNX Runtime session", "aidlc.registry.onnxfile", "onnx_session", 0),
    ("score 1,000 rows to tell logits", "aidlc.registry.importing", "_onnx_scores", 0),
    ("predict every evaluation row", "aidlc.registry.importing", "_predict_all", 0),
    ("metrics", "aidlc.train.estimators", "evaluate", 0),
    ("prediction baseline profile", "aidlc.data.profile", "profile_frame", 0),
    ("write the bundle and register", "aidlc.registry.importing", "_register", 0),
    ("sign (SHA-256 of every file, ECDSA)", "aidlc.registry.signing", "sign_model", 1),
    ("encrypt and store objects", "aidlc.registry.versions", "_put_file", 1),
    ("ML-BOM", "aidlc.registry.bom", "build_ml_bom", 1),
]

MLFLOW_CHILD = """\
import json, sys, time
import mlflow, mlflow.onnx, mlflow.pyfunc, numpy as np, onnx, pandas as pd
from mlflow.models import evaluate

spec = json.loads(sys.argv[1])
mlflow.set_tracking_uri(spec["tracking"])
frame = pd.read_parquet(spec["holdout"], columns=spec["columns"])
phases = {}
t0 = time.perf_counter()
model = onnx.load(spec["model"])
phases["onnx.load"] = time.perf_counter() - t0
with mlflow.start_run():
    t = time.perf_counter()
    info = mlflow.onnx.log_model(model, name="model")
    phases["mlflow.onnx.log_model"] = time.perf_counter() - t
    t = time.perf_counter()
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    phases["mlflow.pyfunc.load_model (ONNX Runtime session)"] = time.perf_counter() - t
    t = time.perf_counter()
    X = frame[spec["features"]].to_numpy(dtype=np.float32)
    # a dict in, a dict out: the DataFrame form flattens a 2-D probability output and fails
    outputs = loaded.predict({"input": X})
    first = np.asarray(next(iter(outputs.values())))
    if first.dtype.kind in "OU":
        labels = first.astype(str)
    else:
        labels = np.where(first.argmax(axis=1) == 1, "yes", "no")
    scored = frame.assign(prediction=labels)
    phases["predict 100,000 rows"] = time.perf_counter() - t
    t = time.perf_counter()
    result = evaluate(
        data=scored,
        targets="readmitted",
        predictions="prediction",
        model_type="classifier",
        evaluators=["default"],
    )
    phases["mlflow.models.evaluate (metrics, artifacts)"] = time.perf_counter() - t
total = time.perf_counter() - t0
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print("RESULT " + json.dumps({
    "vmhwm_mib": int(status) / 1024,
    "total": total,
    "phases": phases,
    "accuracy": result.metrics.get("accuracy_score"),
}))
"""


# -- data and models (untimed) ---------------------------------------------------------------------


def data_files(folder: Path) -> tuple[Path, Path, Path]:
    """The training and held-out CSV files (for the gate) and the held-out Parquet (for peers)."""
    folder.mkdir(parents=True, exist_ok=True)
    train, holdout, parquet = (
        folder / "train.csv",
        folder / "holdout.csv",
        folder / "holdout.parquet",
    )
    if not (train.exists() and holdout.exists() and parquet.exists()):
        frame = claims.frame(TRAIN_ROWS + HELD_OUT_ROWS, seed=SEED)
        frame.head(TRAIN_ROWS).write_csv(train)
        rest = frame.slice(TRAIN_ROWS)
        rest.write_csv(holdout)
        rest.select([*claims.NUMERIC, "readmitted"]).write_parquet(parquet)
    return train, holdout, parquet


def forest_onnx(train_csv: Path, path: Path, size_mb: float) -> dict[str, Any]:
    """Fully grown trees, added until the ONNX graph is about `size_mb` (41 bytes per node)."""
    import polars as pl
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import RandomForestClassifier

    frame = pl.read_csv(train_csv, columns=[*claims.NUMERIC, "readmitted"])
    X = frame.select(claims.NUMERIC).to_numpy().astype(np.float32)
    y = frame["readmitted"].to_numpy()
    forest = RandomForestClassifier(
        n_estimators=0, max_features=None, n_jobs=2, random_state=0, warm_start=True
    )
    nodes = 0
    while nodes * 41 < size_mb * 1e6:
        forest.n_estimators += 1
        forest.fit(X, y)
        nodes = sum(e.tree_.node_count for e in forest.estimators_)
    graph = convert_sklearn(
        forest, initial_types=[("input", FloatTensorType([None, 3]))], options={"zipmap": False}
    )
    path.write_bytes(graph.SerializeToString())
    depth = float(np.mean([e.tree_.max_depth for e in forest.estimators_]))
    return {"trees": forest.n_estimators, "nodes": nodes, "mean_max_depth": depth}


def mlp_onnx(path: Path, size_mb: float) -> dict[str, Any]:
    """3-H-H-2 with H chosen for `size_mb` of float32 weights; He-scaled seeded weights, inputs
    standardised in the graph (means and spreads of the claims columns)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hidden = int((size_mb * 1e6 / 4) ** 0.5)
    rng = np.random.default_rng(SEED)
    shapes = [(3, hidden), (hidden, hidden), (hidden, 2)]
    arrays: dict[str, np.ndarray] = {
        "mean": np.array([54.0, 27.0, 2.0]),
        "std": np.array([21.0, 5.0, 1.4]),
    }
    nodes = [
        helper.make_node("Sub", ["input", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["h0"]),
    ]
    for i, (fan_in, fan_out) in enumerate(shapes):
        arrays[f"w{i}"] = rng.normal(0, (2 / fan_in) ** 0.5, (fan_in, fan_out))
        arrays[f"b{i}"] = np.zeros(fan_out)
        out = "logits" if i == len(shapes) - 1 else f"z{i}"
        nodes.append(helper.make_node("Gemm", [f"h{i}", f"w{i}", f"b{i}"], [out]))
        if out != "logits":
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
    weights = sum(a * b + b for a, b in shapes)
    return {"hidden": hidden, "weights": weights, "macs_per_row": weights}


def model_file(kind: str, folder: Path, train_csv: Path, size_mb: float) -> tuple[Path, dict]:
    path = folder / f"{kind}-{size_mb:g}MB.onnx"
    facts_path = path.with_suffix(".json")
    if not path.exists() or not facts_path.exists():
        t0 = time.perf_counter()
        facts = (
            forest_onnx(train_csv, path, size_mb) if kind == "forest" else mlp_onnx(path, size_mb)
        )
        facts["built_s"] = time.perf_counter() - t0
        facts_path.write_text(json.dumps(facts))
    facts = json.loads(facts_path.read_text())
    facts["bytes"] = path.stat().st_size
    return path, facts


class _People:
    def __init__(self, root: Path, tokens: dict[str, str]) -> None:
        self.root, self.tokens = root, tokens

    def open(self, who: str) -> Any:
        from aidlc.core.workspace import Workspace

        return Workspace.open(self.root, token=self.tokens[who])


def build_workspace(root: Path, train_csv: Path, holdout_csv: Path) -> dict[str, Any]:
    from aidlc.core import principals
    from aidlc.core.workspace import Workspace
    from aidlc.data.contract import parse_contract
    from aidlc.data.ingest import ingest

    ws, _ = Workspace.init(root)
    tokens = {}
    for name, roles in USERS.items():
        _, tokens[name] = principals.add(ws, name, roles)
    ws.close()
    people = _People(root, tokens)
    with people.open("steward") as steward:
        contract = parse_contract(claims.contract(), source="bench")
        first = ingest(steward, train_csv, "claims", contract=contract)
        second = ingest(steward, holdout_csv, "claims")
    assert first.outcome == second.outcome == "accepted", (first.outcome, second.outcome)
    return {"tokens": tokens, "train": str(first.ref), "holdout": str(second.ref)}


# -- the contenders, each in its own child process -------------------------------------------------


def child_aidlc(spec: dict[str, Any]) -> dict[str, Any]:
    import importlib

    import onnxruntime  # noqa: F401  (imports untimed)
    import polars  # noqa: F401
    import sklearn.metrics  # noqa: F401

    from aidlc.core.workspace import Workspace
    from aidlc.registry import importing, onnxfile, signing, versions  # noqa: F401
    from aidlc.train import estimators, tracking  # noqa: F401

    spent: dict[str, list[float]] = {}

    def wrap(label: str, module: str, attr: str) -> None:
        mod = importlib.import_module(module)
        inner = getattr(mod, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                entry = spent.setdefault(label, [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - t

        setattr(mod, attr, timed)

    for label, module, attr, _ in WRAPPED:
        wrap(label, module, attr)
    steps: list[tuple[str, float]] = []
    ws = Workspace.open(Path(spec["workspace"]), token=spec["token"])
    t0 = time.perf_counter()
    version = importing.import_model(
        ws,
        Path(spec["model"]),
        name=spec["name"],
        trained_on=spec["train"],
        evaluate_on=spec["holdout"],
        target="readmitted",
        features=claims.NUMERIC,
        progress=lambda step: steps.append((step, time.perf_counter() - t0)),
    )
    total = time.perf_counter() - t0
    ws.close()
    marks = [*steps, ("done", total)]
    intervals = {f"{i}. {name}": marks[i + 1][1] - at for i, (name, at) in enumerate(marks[:-1])}
    return {
        "total": total,
        "steps": intervals,
        "phases": {k: v for k, v in spent.items()},
        "ref": version.ref,
        "accuracy": version.metrics.get("accuracy"),
        "rows": version.statement["evaluation"]["rows"],
    }


def child_bound(spec: dict[str, Any]) -> dict[str, Any]:
    import onnxruntime as ort
    import polars as pl

    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    data = Path(spec["model"]).read_bytes()
    hashlib.sha256(data).hexdigest()
    phases["read + SHA-256 of the file"] = time.perf_counter() - t0
    t = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    phases["ONNX Runtime session"] = time.perf_counter() - t
    t = time.perf_counter()
    frame = pl.read_parquet(spec["parquet"])
    X = frame.select(claims.NUMERIC).to_numpy().astype(np.float32)
    phases["read the held-out Parquet"] = time.perf_counter() - t
    t = time.perf_counter()
    outputs = session.run(None, {"input": X})
    first = np.asarray(outputs[0])
    if first.dtype.kind in "OU":  # a label output
        labels = first.astype(str)
    else:  # logits
        labels = np.where(first.argmax(axis=1) == 1, "yes", "no")
    accuracy = float(np.mean(labels == frame["readmitted"].to_numpy()))
    phases["score 100,000 rows + accuracy"] = time.perf_counter() - t
    return {"total": time.perf_counter() - t0, "phases": phases, "accuracy": accuracy}


def vmhwm_mib(pid: int) -> float:
    """The peak resident set of a running process (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), None)
    return int(line.split()[1]) / 1024 if line else 0.0


def run_child(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], float, float]:
    """(the child's RESULT line, wall seconds, peak RSS in MiB) of a child process.

    The peak is the child's VmHWM, polled every 20 ms (and reported by the child itself where it
    can): wait4's ru_maxrss would count this parent's own resident set, which a forked child
    inherits as its starting maximum."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    peak = [0.0]

    def watch() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], vmhwm_mib(proc.pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    text = out.decode()
    line = next((x for x in text.splitlines() if x.startswith("RESULT ")), None)
    doc = json.loads(line.removeprefix("RESULT ")) if line else {"cli": json.loads(text)}
    return doc, wall, max(peak[0], doc.get("vmhwm_mib", 0.0))


def contender(
    name: str, kind: str, path: Path, ctx: dict[str, Any], root: Path, args: argparse.Namespace
) -> dict[str, Any]:
    model_name = f"readmit-{kind}"
    spec = {
        "workspace": str(root / "ws"),
        "token": ctx["tokens"]["trainer"],
        "model": str(path),
        "name": model_name,
        "train": ctx["train"],
        "holdout": ctx["holdout"],
        "parquet": str(ctx["parquet"]),
    }
    here = Path(__file__).resolve()
    if name in ("aidlc", "bound"):
        doc, wall, peak = run_child(
            [sys.executable, str(here), "--child", name, json.dumps(spec)], root
        )
    elif name == "cli":
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIDLC_")}
        env.update(AIDLC_TOKEN=spec["token"], AIDLC_WORKSPACE=spec["workspace"])
        cmd = [sys.executable, "-m", "aidlc", "models", "import", str(path),
               "--name", model_name, "--trained-on", ctx["train"],
               "--evaluate-on", ctx["holdout"], "--target", "readmitted",
               "--features", ",".join(claims.NUMERIC), "--json"]  # fmt: skip
        doc, wall, peak = run_child(cmd, root, env)
        doc = {"total": wall, "accuracy": doc["cli"].get("metrics", {}).get("accuracy")}
    else:
        mlspec = {
            "tracking": f"sqlite:///{root / 'mlflow.db'}",
            "model": str(path),
            "holdout": str(ctx["parquet"]),
            "columns": [*claims.NUMERIC, "readmitted"],
            "features": claims.NUMERIC,
        }
        python = str(ctx["venv"] / "bin" / "python")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # artifacts go to ./mlruns beside the sqlite store: the temp dir
        cmd = [python, str(root / "mlflow_child.py"), json.dumps(mlspec)]
        doc, wall, peak = run_child(cmd, root, env)
    doc["wall"], doc["peak_mib"] = wall, peak
    return doc


# -- the run ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians reported")
    parser.add_argument("--models", default="forest")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--size-mb", type=float, default=100.0, help="model size, 10^6 bytes")
    parser.add_argument("--data", type=Path, help="keep data and models here to reuse them")
    parser.add_argument("--mlflow-venv", type=Path, default=MLFLOW_VENV)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("spec", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work = {"aidlc": child_aidlc, "bound": child_bound}[args.child]
        doc = work(json.loads(args.spec))
        doc["vmhwm_mib"] = vmhwm_mib(os.getpid())
        print("RESULT " + json.dumps(doc), flush=True)
        return
    kinds = [k for k in args.models.split(",") if k]
    names = [c for c in args.contenders.split(",") if c]
    if set(kinds) - set(MODELS) or set(names) - set(CONTENDERS):
        parser.error(f"models are {', '.join(MODELS)}; contenders {', '.join(CONTENDERS)}")
    venv = None
    if "mlflow" in names:
        venv = mlflow_venv(args.mlflow_venv)
        python = str(venv / "bin" / "python")
        probe = [python, "-c", "import onnx, onnxruntime"]
        if subprocess.run(probe, capture_output=True).returncode != 0:
            pip = [str(venv / "bin" / "pip"), "install", "-q", "onnx", "onnxruntime"]
            subprocess.run(pip, check=True)

    root = Path(tempfile.mkdtemp(prefix="aidlc-bench-import-"))
    folder = args.data or root / "data"
    try:
        t0 = time.perf_counter()
        train_csv, holdout_csv, parquet = data_files(folder)
        files = {k: model_file(k, folder, train_csv, args.size_mb) for k in kinds}
        ctx = build_workspace(root / "ws", train_csv, holdout_csv)
        ctx.update(parquet=parquet, venv=venv)
        (root / "mlflow_child.py").write_text(MLFLOW_CHILD)
        print(f"data, models and workspace (untimed): {time.perf_counter() - t0:.1f} s")
        for kind, (path, facts) in files.items():
            print(f"{kind}: {path.name}, {facts['bytes'] / 1e6:.1f} MB, {json.dumps(facts)}")
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        load_before = os.getloadavg()[0]
        for round_ in range(args.repeat):
            for kind in kinds:
                order = list(names)
                random.shuffle(order)
                for name in order:
                    doc = contender(name, kind, files[kind][0], ctx, root, args)
                    results.setdefault((kind, name), []).append(doc)
                    print(
                        f"round {round_ + 1} {kind:6} {name:6} {doc['total']:7.2f} s "
                        f"(process {doc['wall']:6.2f} s)  peak RSS {doc['peak_mib']:6.0f} MiB  "
                        f"accuracy {doc.get('accuracy')}",
                        flush=True,
                    )
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(results, kinds, names, files, (load_before, load_after))


def report(
    results: dict[tuple[str, str], list[dict[str, Any]]],
    kinds: list[str],
    names: list[str],
    files: dict[str, tuple[Path, dict[str, Any]]],
    load: tuple[float, float],
) -> None:
    label = {
        "aidlc": "aidlc `import_model` (Python)",
        "cli": "`aidlc models import` (whole command)",
        "mlflow": "MLflow log_model + evaluate",
        "bound": "lower bound: SHA-256 + session + score",
    }
    for kind in kinds:
        facts = files[kind][1]
        print(f"\n### {kind}: {facts['bytes'] / 1e6:.1f} MB ONNX, 100,000 held-out rows")
        print("\n| contender | median (s) | range (s) | vs bound | peak RSS (MiB) |")
        print("|---|---:|---:|---:|---:|")
        bound = (
            statistics.median(d["total"] for d in results[kind, "bound"])
            if (kind, "bound") in results
            else None
        )
        for name in names:
            docs = results[kind, name]
            totals = [d["total"] for d in docs]
            m = statistics.median(totals)
            vs = f"{m / bound:.1f}x" if bound else ""
            peak = statistics.median(d["peak_mib"] for d in docs)
            print(
                f"| {label[name]} | {m:.2f} | {min(totals):.2f}-{max(totals):.2f} | {vs} | "
                f"{peak:,.0f} |"
            )
        for name in names:
            docs = results[kind, name]
            if name == "aidlc":
                print("\naidlc, intervals between progress steps (median s):")
                for step in docs[0]["steps"]:
                    m = statistics.median(d["steps"][step] for d in docs)
                    print(f"  {step[:55]:55} {m:6.2f}")
                print("aidlc, inclusive time of the wrapped functions (median s, calls):")
                for what, _, _, depth in WRAPPED:
                    if what in docs[0]["phases"]:
                        calls = docs[0]["phases"][what][0]
                        s = statistics.median(d["phases"][what][1] for d in docs)
                        print(f"  {'  ' * depth}{what:{55 - 2 * depth}} {s:6.2f}  ({calls})")
            elif name in ("mlflow", "bound"):
                print(f"\n{label[name]}, phases (median s):")
                for what in docs[0]["phases"]:
                    print(f"  {what:55} {statistics.median(d['phases'][what] for d in docs):6.2f}")
        if (kind, "aidlc") in results:
            m = statistics.median(d["total"] for d in results[kind, "aidlc"])
            verdict = "met" if m < 10 else f"MISSED by {m - 10:.1f} s"
            print(f"\n{kind}: aidlc import {m:.2f} s (goal < 10 s): {verdict}")
        if (kind, "cli") in results:
            m = statistics.median(d["total"] for d in results[kind, "cli"])
            verdict = "met" if m < 10 else f"MISSED by {m - 10:.1f} s"
            print(f"{kind}: whole `aidlc models import` command {m:.2f} s (goal < 10 s): {verdict}")
    print(f"\nload average before {load[0]:.2f}, after {load[1]:.2f}")


if __name__ == "__main__":
    main()
