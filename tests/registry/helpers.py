"""Shared set-up for training and registry tests: demo data through the gate, small configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONFIG = """\
format: 1
name: bc
dataset: breast-cancer@latest
target: diagnosis
exclude: [patient_id]
seed: 3
model:
  type: xgboost
  params: {{max_depth: 3, learning_rate: 0.2, subsample: 0.8}}
  rounds: {rounds}
  checkpoint_every: {every}
preprocessing:
  - impute: {{columns: numeric, strategy: median}}
validation: {{method: holdout, test_size: 0.25}}
metrics: [roc_auc, accuracy]
gates:
  - roc_auc >= {gate}
  - roc_auc >= production - 0.01
register: {{model: bc, description: breast cancer demo}}
card: {{intended_use: tests, owner: qa}}
"""


def config(*, rounds: int = 30, every: int = 10, gate: float = 0.9, extra: str = "") -> str:
    return CONFIG.format(rounds=rounds, every=every, gate=gate) + extra


def ingest_demo(env: Any, tmp: Path) -> str:
    """Put the demo's good file through the gate as the steward; returns the version ref."""
    from aidlc.data.contract import parse_contract
    from aidlc.data.ingest import ingest
    from aidlc.demo import breast_cancer

    tmp.mkdir(parents=True, exist_ok=True)
    good, _ = breast_cancer.write_files(tmp)
    contract = parse_contract(breast_cancer.contract(breast_cancer.frame()), source="demo")
    with env.open("steward") as steward:
        result = ingest(steward, good, "breast-cancer", contract=contract)
    assert result.outcome == "accepted"
    return str(result.ref)


def train(ws: Any, text: str, **kwargs: Any) -> Any:
    """Train and register through the runner as the CLI does."""
    from aidlc.registry import versions
    from aidlc.train import runner

    return runner.train(
        ws,
        text,
        register=versions.registrar(ws),
        production_metrics=lambda name: versions.production_metrics(ws, name),
        **kwargs,
    )
