"""Platform overhead of `aidlc train` over a bare `xgb.train` of the same model on the same rows.

Goal (issue 4): at most 10% plus 2 s on 100,000 rows. The bare side fits the same training rows
(the same 80% holdout split) with the same parameters and rounds, in process, data already in
memory. The aidlc side is the CLI end to end: process start, authentication, decrypting and
checking the validated Parquet, preprocessing, checkpoint segments, scoring, gates, signing, the
model card and ML-BOM, encrypted storage and the audit trail.

    .venv/bin/python benchmarks/bench_train.py [--rows 100000] [--rounds 200] [--repeat 3]
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

import numpy as np
import polars as pl

CONFIG = """\
format: 1
dataset: synth
target: label
seed: 1
model:
  type: xgboost
  params: {{max_depth: 6, learning_rate: 0.1, subsample: 0.8}}
  rounds: {rounds}
  checkpoint_every: {every}
validation: {{method: holdout, test_size: 0.2}}
metrics: [roc_auc, accuracy]
register: {{model: synth}}
"""


def synthetic(rows: int, features: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, features))
    logit = X[:, 0] - 2 * X[:, 1] * X[:, 2] + np.sin(3 * X[:, 3]) + rng.normal(size=rows)
    frame = pl.DataFrame({f"f{i}": X[:, i] for i in range(features)})
    return frame.with_columns(pl.Series("label", np.where(logit > 0, "yes", "no")))


def bare_fit(frame: pl.DataFrame, rounds: int) -> float:
    import xgboost as xgb
    from sklearn.model_selection import train_test_split

    y = (frame["label"] == "yes").to_numpy().astype(int)
    rows = np.arange(frame.height)
    train, _ = train_test_split(rows, test_size=0.2, random_state=1, stratify=y)
    X = frame.drop("label").to_numpy()[np.sort(train)]
    start = time.perf_counter()
    xgb.train(
        {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "subsample": 0.8, "seed": 1},
        xgb.DMatrix(X, label=y[np.sort(train)]),
        rounds,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--every", type=int, default=50, help="checkpoint_every")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from aidlc.core import principals
    from aidlc.core.workspace import Workspace
    from aidlc.data.contract import infer_contract
    from aidlc.data.ingest import ingest

    frame = synthetic(args.rows, args.features)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws, _ = Workspace.init(root / "ws")
        _, steward = principals.add(ws, "steward", ["data-steward"])
        _, trainer = principals.add(ws, "trainer", ["trainer"])
        ws.close()
        path = root / "synth.parquet"
        frame.write_parquet(path)
        with Workspace.open(root / "ws", token=steward) as s:
            ingest(s, path, "synth", contract=infer_contract(frame))
        cfg = root / "train.yaml"
        cfg.write_text(CONFIG.format(rounds=args.rounds, every=args.every))
        env = {**os.environ, "AIDLC_TOKEN": trainer, "AIDLC_WORKSPACE": str(root / "ws")}
        bare, platform = [], []
        for _ in range(args.repeat):
            bare.append(bare_fit(frame, args.rounds))
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "aidlc", "train", str(cfg), "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            platform.append(time.perf_counter() - start)
            durations = json.loads(proc.stdout)["durations"]
    b, p = statistics.median(bare), statistics.median(platform)
    goal = b * 1.10 + 2.0

    def runs(xs: list[float]) -> str:
        return ", ".join(f"{x:.2f}" for x in xs)

    verdict = "met" if p <= goal else "MISSED"
    print(f"rows {args.rows} x {args.features}, {args.rounds} rounds, every {args.every}")
    print(f"bare xgb.train       median {b:7.2f} s  (runs: {runs(bare)})")
    print(f"aidlc train (CLI)    median {p:7.2f} s  (runs: {runs(platform)})")
    print(f"ratio {p / b:.2f}x, overhead {p - b:.2f} s; goal <= {goal:.2f} s: {verdict}")
    print("last run's stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in durations.items()))


if __name__ == "__main__":
    main()
