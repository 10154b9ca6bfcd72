"""`aidlc train`, `runs` and `models` as users run them, including a real SIGTERM mid-training."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import numpy as np
import pytest

from tests.cli.test_cli import AIDLC, run
from tests.registry.helpers import config, ingest_demo


@pytest.fixture
def cli_env(local_env, tmp_path):
    ingest_demo(local_env, tmp_path / "inbox")
    cfg = tmp_path / "train.yaml"
    cfg.write_text(config())
    return local_env, cfg


def test_train_registers_and_runs_list_show_compare(cli_env, tmp_path):
    env, cfg = cli_env
    t = env.tokens
    first = run("train", str(cfg), "--json", token=t["trainer"], workspace=env.root)
    assert first.returncode == 0, first.stderr
    outcome = json.loads(first.stdout)
    assert outcome["model_version"] == "bc@1" and outcome["gates_passed"]
    cfg2 = tmp_path / "train2.yaml"
    cfg2.write_text(config(rounds=15))
    second = json.loads(
        run("train", str(cfg2), "--json", token=t["trainer"], workspace=env.root).stdout
    )

    listed = json.loads(
        run("runs", "list", "--json", token=t["approver"], workspace=env.root).stdout
    )
    assert {r["id"] for r in listed} == {outcome["run_id"], second["run_id"]}
    shown = run("runs", "show", outcome["run_id"][:8], token=t["approver"], workspace=env.root)
    assert shown.returncode == 0 and "breast-cancer@1" in shown.stdout and "roc_auc" in shown.stdout
    compared = json.loads(
        run(
            "runs",
            "compare",
            outcome["run_id"],
            second["run_id"],
            "--json",
            token=t["approver"],
            workspace=env.root,
        ).stdout
    )
    rounds = [r for r in compared["params"] if r["key"] == "model"]
    assert rounds and not rounds[0]["differs"]
    assert any(m["key"] == "roc_auc" for m in compared["metrics"])


def test_models_commands_approve_history_export(cli_env, tmp_path):
    env, cfg = cli_env
    t = env.tokens
    assert run("train", str(cfg), token=t["trainer"], workspace=env.root).returncode == 0
    denied = run(
        "models", "approve", "bc@1", "--reason", "mine", token=t["trainer"], workspace=env.root
    )
    assert denied.returncode == 4 and "approver" in denied.stderr
    no_reason = run("models", "approve", "bc@1", token=t["approver"], workspace=env.root)
    assert no_reason.returncode == 2
    ok = run(
        "models", "approve", "bc@1", "--reason", "fine", token=t["approver"], workspace=env.root
    )
    assert ok.returncode == 0, ok.stderr
    versions = json.loads(
        run("models", "versions", "bc", "--json", token=t["approver"], workspace=env.root).stdout
    )
    assert (
        versions[0]["aliases"] == ["candidate", "production"]
        and versions[0]["status"] == "approved"
    )
    history = json.loads(
        run("models", "history", "bc", "--json", token=t["auditor"], workspace=env.root).stdout
    )
    assert [(h["alias"], h["version"]) for h in history] == [("candidate", 1), ("production", 1)]
    at = run(
        "models",
        "history",
        "bc",
        "--alias",
        "production",
        "--at",
        history[1]["at"],
        "--json",
        token=t["auditor"],
        workspace=env.root,
    )
    assert json.loads(at.stdout)["version"] == 1
    verified = run("models", "verify", "bc@production", token=t["approver"], workspace=env.root)
    assert verified.returncode == 0 and "verifies" in verified.stdout
    out = tmp_path / "export"
    exported = run("models", "export", "bc@1", str(out), token=t["approver"], workspace=env.root)
    assert exported.returncode == 0, exported.stderr
    again = run("models", "export", "bc@1", str(out), token=t["approver"], workspace=env.root)
    assert again.returncode == 6
    card = run("models", "card", "bc@1", token=t["approver"], workspace=env.root)
    assert "# Model card: bc v1" in card.stdout
    pem = run("models", "public-key", token=t["inference"], workspace=env.root)
    assert pem.stdout == (out / "signing-key.pub.pem").read_text()


@pytest.mark.parametrize(
    "args, code",
    [
        (("train",), 2),
        (("train", "/nonexistent.yaml"), 2),
        (("models", "show", "bc@bogus"), 2),
        (("models", "show", "Bad Name"), 2),
        (("models", "show", "nope@1"), 5),
        (("runs", "show", "zz"), 2),
        (("runs", "show", "abcdef"), 5),
        (("models", "history", "bc", "--at", "yesterday", "--alias", "production"), 2),
    ],
)
def test_bad_arguments_get_clear_errors(cli_env, args, code):
    env, _ = cli_env
    proc = run(*args, token=env.tokens["approver"], workspace=env.root)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.startswith("aidlc: error:") or "Usage" in proc.stderr


@pytest.mark.parametrize(
    "text",
    [
        b"\xff\xfe not utf-8",
        b"model: [unclosed",
        b"- a list\n",
        b"format: 1\nformat: 1\n",
        b"x" * 2_000_000,
    ],
)
def test_hostile_configs_exit_2_without_a_traceback(cli_env, tmp_path, text):
    env, _ = cli_env
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(text)
    proc = run("train", str(bad), token=env.tokens["trainer"], workspace=env.root)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("aidlc: error:")


def _synthetic(env, tmp_path) -> None:
    """20,000 rows with 8 features: enough boosting work for a signal to land mid-training."""
    import polars as pl

    from aidlc.data.contract import infer_contract
    from aidlc.data.ingest import ingest

    rng = np.random.default_rng(11)
    X = rng.normal(size=(20_000, 8))
    logit = (
        X[:, 0] - 2 * X[:, 1] * X[:, 2] + np.sin(3 * X[:, 3]) + rng.normal(scale=0.5, size=20_000)
    )
    frame = pl.DataFrame({f"f{i}": X[:, i] for i in range(8)}).with_columns(
        pl.Series("label", np.where(logit > 0, "yes", "no"))
    )
    path = tmp_path / "synth.csv"
    frame.write_csv(path)
    with env.open("steward") as steward:
        assert ingest(steward, path, "synth", contract=infer_contract(frame)).outcome == "accepted"


SYNTH = """\
format: 1
dataset: synth
target: label
seed: 5
model:
  type: xgboost
  params: {max_depth: 6, learning_rate: 0.05, subsample: 0.8, colsample_bytree: 0.8}
  rounds: 2000
  checkpoint_every: 25
register: {model: synth}
"""


@pytest.mark.slow
def test_sigterm_mid_training_then_resume_gives_the_uninterrupted_model(local_env, tmp_path):
    _synthetic(local_env, tmp_path)
    cfg = tmp_path / "synth.yaml"
    cfg.write_text(SYNTH)
    e = {k: v for k, v in os.environ.items() if not k.startswith("AIDLC_")}
    e.update(AIDLC_TOKEN=local_env.tokens["trainer"], AIDLC_WORKSPACE=str(local_env.root))
    proc = subprocess.Popen(
        [*AIDLC, "train", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=e,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "boosting rounds" in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, rest = proc.communicate(timeout=300)
    stderr = "".join(seen) + rest
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "aidlc train --resume" in stderr
    run_id = stderr.split("aidlc: error: run ")[1].split()[0]
    assert "of 2000 rounds" in stderr

    resumed = run(
        "train",
        "--resume",
        run_id,
        "--json",
        token=local_env.tokens["trainer"],
        workspace=local_env.root,
    )
    assert resumed.returncode == 0, resumed.stderr
    straight = run(
        "train", str(cfg), "--json", token=local_env.tokens["trainer"], workspace=local_env.root
    )
    assert straight.returncode == 0, straight.stderr
    a, b = json.loads(resumed.stdout), json.loads(straight.stdout)
    assert a["resumed"] and a["run_id"] == run_id
    assert a["model_digest"] == b["model_digest"]
    assert (a["model_version"], b["model_version"]) == ("synth@1", "synth@2")
