"""Bring your own model: every format a user brings is imported, judged by aidlc, approved by
someone else, served, and answers as its own framework does; what is unsafe is refused with
nothing executed."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aidlc.errors import (
    ConfigError,
    IntegrityError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    UsageError,
    ValidationFailed,
)
from aidlc.registry import approval, importing, versions
from tests.registry import claims

USERS = {
    "steward": ["data-steward"],
    "trainer": ["trainer"],
    "approver": ["approver"],
    "service": ["inference", "monitor"],
    "auditor": ["auditor"],
}
AIDLC = [sys.executable, "-m", "aidlc"]


@dataclass
class Env:
    root: Path
    tokens: dict[str, str]
    train: str
    holdout: str

    def open(self, who: str = "trainer") -> Any:
        from aidlc.core.workspace import Workspace

        return Workspace.open(self.root, token=self.tokens[who])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Env:
    from aidlc.core import principals
    from aidlc.core.workspace import Workspace

    base = tmp_path_factory.mktemp("imports")
    ws, admin = Workspace.init(base / "ws")
    tokens = {"admin": admin}
    for name, roles in USERS.items():
        _, tokens[name] = principals.add(ws, name, roles)
    ws.close()
    env = Env(base / "ws", tokens, "", "")
    env.train, env.holdout = claims.ingest(env, base / "data")
    return env


@pytest.fixture
def env(template: Env, tmp_path: Path) -> Env:
    root = tmp_path / "ws"
    shutil.copytree(template.root, root, symlinks=True)
    return Env(root, dict(template.tokens), template.train, template.holdout)


@pytest.fixture(scope="module")
def data() -> Any:
    """The rows as a notebook user has them: pandas frames of the training and held-out rows."""
    frame = claims.frame()
    return frame.head(claims.TRAIN_ROWS).to_pandas(), frame.slice(claims.TRAIN_ROWS).to_pandas()


def run_cli(*args: str, env: Env, who: str = "trainer") -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("AIDLC_")}
    e.update(AIDLC_TOKEN=env.tokens[who], AIDLC_WORKSPACE=str(env.root))
    proc = subprocess.run(
        [*AIDLC, *args], capture_output=True, text=True, env=e, timeout=300, check=False
    )
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


# -- the models a user brings ---------------------------------------------------------------------


def _pipeline(estimator: Any) -> Any:
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


@dataclass
class Brought:
    """A model as the user brings it, and its own framework's answers on held-out rows."""

    source: Any  # a path or a Python object
    labels: list[Any]  # what the framework predicts for the held-out rows
    proba: np.ndarray | None  # its class probabilities ("no", "yes")
    exact: bool  # probabilities bit for bit (no float32 graph in between)
    served_by: str  # "onnx" or the bundle's runtime
    options: dict[str, Any] = field(default_factory=dict)  # what the importer must say


def _sklearn_pipeline(estimator: Any, tmp: Path, data: Any, *, mlflow: bool = False) -> Brought:
    import skops.io

    train, holdout = data
    model = _pipeline(estimator).fit(train[claims.FEATURES], train["readmitted"])
    if mlflow:
        import mlflow.sklearn

        mlflow.sklearn.save_model(
            model,
            tmp / "mlflow-model",
            serialization_format="skops",
            skops_trusted_types=["numpy.dtype"],
        )
        source: Any = tmp / "mlflow-model"
    else:
        source = tmp / "pipeline.skops"
        skops.io.dump(model, source)
    onnx_path = type(estimator).__name__ == "LogisticRegression"
    return Brought(
        source,
        list(model.predict(holdout[claims.FEATURES])),
        model.predict_proba(holdout[claims.FEATURES]),
        exact=not onnx_path,
        served_by="onnx" if onnx_path else "sklearn",
    )


def _ort(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _per_column_feeds(holdout: Any) -> dict[str, np.ndarray]:
    return {
        **{c: holdout[c].to_numpy().astype(np.float32).reshape(-1, 1) for c in claims.NUMERIC},
        **{c: holdout[c].to_numpy().astype(object).reshape(-1, 1) for c in claims.TEXT},
    }


def _onnx_pipeline(tmp: Path, data: Any, *, mlflow: bool = False) -> Brought:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.linear_model import LogisticRegression

    train, holdout = data
    model = _pipeline(LogisticRegression(max_iter=1000)).fit(
        train[claims.FEATURES], train["readmitted"]
    )
    types = [(c, FloatTensorType([None, 1])) for c in claims.NUMERIC]
    types += [(c, StringTensorType([None, 1])) for c in claims.TEXT]
    graph = convert_sklearn(model, initial_types=types, options={"zipmap": False})
    if mlflow:
        import mlflow.onnx

        mlflow.onnx.save_model(graph, tmp / "mlflow-onnx")
        path = tmp / "mlflow-onnx" / "model.onnx"
        source: Any = tmp / "mlflow-onnx"
    else:
        path = tmp / "pipeline.onnx"
        path.write_bytes(graph.SerializeToString())
        source = path
    labels, proba = _ort(path, _per_column_feeds(holdout))
    return Brought(source, list(labels), proba, exact=False, served_by="onnx")


def _mlp_graph(tmp: Path, data: Any) -> Brought:
    """A small network over the numeric columns as PyTorch or Keras export one: one float
    matrix in, raw logits out (no softmax in the graph), standardisation inside the graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.neural_network import MLPClassifier

    train, holdout = data
    X = train[claims.NUMERIC].to_numpy(dtype=np.float64)
    mean, std = X.mean(axis=0), X.std(axis=0)
    y = (train["readmitted"] == "yes").to_numpy().astype(int)
    net = MLPClassifier(hidden_layer_sizes=(16,), max_iter=600, random_state=0)
    net.fit((X - mean) / std, y)
    (w1, w2), (b1, b2) = net.coefs_, net.intercepts_
    # two logits: [0, z] gives softmax = (1 - sigmoid(z), sigmoid(z)), the network's own answer
    w2 = np.hstack([np.zeros_like(w2), w2])
    b2 = np.hstack([np.zeros_like(b2), b2])
    inits = [
        numpy_helper.from_array(a.astype(np.float32), n)
        for a, n in ((mean, "mean"), (std, "std"), (w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))
    ]
    nodes = [
        helper.make_node("Sub", ["input", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["scaled"]),
        helper.make_node("Gemm", ["scaled", "w1", "b1"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["active"]),
        helper.make_node("Gemm", ["active", "w2", "b2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.producer_name, model.producer_version = "pytorch", "2.13.0"
    path = tmp / "mlp.onnx"
    onnx.save(model, path)
    (logits,) = _ort(path, {"input": holdout[claims.NUMERIC].to_numpy().astype(np.float32)})
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba = shifted / shifted.sum(axis=1, keepdims=True)
    labels = ["yes" if p else "no" for p in proba.argmax(axis=1)]
    agree = np.mean(
        net.predict((holdout[claims.NUMERIC].to_numpy() - mean) / std) == proba.argmax(1)
    )
    assert agree > 0.99  # the graph is the network
    return Brought(
        path, labels, proba, exact=False, served_by="onnx", options={"features": claims.NUMERIC}
    )


def _xgboost(tmp: Path, data: Any, *, suffix: str = "ubj", mlflow: bool = False) -> Brought:
    import xgboost as xgb

    train, holdout = data
    y = (train["readmitted"] == "yes").astype(int)
    model = xgb.XGBClassifier(n_estimators=40, max_depth=3, learning_rate=0.2)
    model.fit(train[claims.NUMERIC], y)
    if mlflow:
        import mlflow.xgboost

        mlflow.xgboost.save_model(model, tmp / "mlflow-xgb")
        source: Any = tmp / "mlflow-xgb"
    else:
        source = tmp / f"model.{suffix}"
        model.get_booster().save_model(source)
    proba = model.predict_proba(holdout[claims.NUMERIC])
    labels = ["yes" if p else "no" for p in model.predict(holdout[claims.NUMERIC])]
    return Brought(source, labels, proba, exact=False, served_by="aidlc")  # float32 scores


def _xgboost_onnx(tmp: Path, data: Any) -> Brought:
    import onnxmltools
    import xgboost as xgb
    from onnxmltools.convert.common.data_types import FloatTensorType

    train, holdout = data
    y = (train["readmitted"] == "yes").astype(int)
    model = xgb.XGBClassifier(n_estimators=40, max_depth=3).fit(train[claims.NUMERIC].to_numpy(), y)
    graph = onnxmltools.convert_xgboost(
        model, initial_types=[("input", FloatTensorType([None, 3]))]
    )
    path = tmp / "xgb.onnx"
    path.write_bytes(graph.SerializeToString())
    raw_labels, proba = _ort(path, {"input": holdout[claims.NUMERIC].to_numpy().astype(np.float32)})
    # trained on 0/1, as XGBoost requires: the importer says what the classes stand for
    return Brought(
        path,
        ["yes" if v else "no" for v in raw_labels],
        proba,
        exact=False,
        served_by="onnx",
        options={"features": claims.NUMERIC, "classes": ["no", "yes"]},
    )


def _lightgbm(tmp: Path, data: Any, *, how: str = "text") -> Brought:
    import lightgbm as lgb

    train, holdout = data
    params = {"n_estimators": 40, "num_leaves": 8, "verbose": -1}
    if how == "mlflow-sklearn":
        import mlflow.lightgbm

        model = lgb.LGBMClassifier(**params).fit(train[claims.NUMERIC], train["readmitted"])
        mlflow.lightgbm.save_model(model, tmp / "mlflow-lgbm")
        labels = list(model.predict(holdout[claims.NUMERIC]))
        return Brought(
            tmp / "mlflow-lgbm", labels, model.predict_proba(holdout[claims.NUMERIC]), True, "aidlc"
        )
    y = (train["readmitted"] == "yes").astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 8, "verbose": -1},
        lgb.Dataset(train[claims.NUMERIC], y),
        num_boost_round=40,
    )
    if how == "mlflow":
        import mlflow.lightgbm

        mlflow.lightgbm.save_model(booster, tmp / "mlflow-lgb")
        source: Any = tmp / "mlflow-lgb"
    else:
        source = tmp / "model.txt"
        booster.save_model(source)
    p = booster.predict(holdout[claims.NUMERIC])
    return Brought(
        source, ["yes" if v > 0.5 else "no" for v in p], np.column_stack([1 - p, p]), True, "aidlc"
    )


def _hgb() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=30, random_state=0)


def _logreg() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000)


BRINGERS: dict[str, Callable[[Path, Any], Brought]] = {
    "skops-logistic-pipeline": lambda t, d: _sklearn_pipeline(_logreg(), t, d),
    "skops-hgb-pipeline": lambda t, d: _sklearn_pipeline(_hgb(), t, d),
    "onnx-skl2onnx-pipeline": _onnx_pipeline,
    "onnx-network-one-matrix": _mlp_graph,
    "onnx-onnxmltools-xgboost": _xgboost_onnx,
    "xgboost-ubj": _xgboost,
    "xgboost-json": lambda t, d: _xgboost(t, d, suffix="json"),
    "lightgbm-text": _lightgbm,
    "mlflow-sklearn-skops": lambda t, d: _sklearn_pipeline(_logreg(), t, d, mlflow=True),
    "mlflow-onnx": lambda t, d: _onnx_pipeline(t, d, mlflow=True),
    "mlflow-xgboost": lambda t, d: _xgboost(t, d, mlflow=True),
    "mlflow-lightgbm-booster": lambda t, d: _lightgbm(t, d, how="mlflow"),
    "mlflow-lightgbm-sklearn": lambda t, d: _lightgbm(t, d, how="mlflow-sklearn"),
}
NUMERIC_ONLY = {
    "onnx-network-one-matrix",
    "onnx-onnxmltools-xgboost",
    "xgboost-ubj",
    "xgboost-json",
    "lightgbm-text",
    "mlflow-xgboost",
    "mlflow-lightgbm-booster",
    "mlflow-lightgbm-sklearn",
}


@pytest.fixture
def serve(env: Env) -> Iterator[Callable[[], Any]]:
    """A started app (TestClient) serving the workspace's production models."""
    from starlette.testclient import TestClient

    from aidlc.serve.app import Server, create_app

    opened: list[tuple[Any, Any]] = []

    def start() -> Any:
        ws = env.open("service")
        server = Server(ws, ws.config.serve.model_copy(update={"rate_limit": "1000/second"}))
        client = TestClient(create_app(server))
        client.__enter__()
        opened.append((client, ws))
        return client

    yield start
    for client, ws in opened:
        client.__exit__(None, None, None)
        ws.close()


@pytest.mark.parametrize("kind", list(BRINGERS))
def test_each_format_is_imported_approved_served_and_answers_as_its_framework(
    kind, env, data, serve, tmp_path
):
    brought = BRINGERS[kind](tmp_path, data)
    numeric = kind in NUMERIC_ONLY
    with env.open("trainer") as trainer:
        version = importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
            **brought.options,
            gates=["accuracy >= 0.6", "roc_auc >= 0.6"],
            owner="care-analytics",
            intended_use="flags members for a follow-up call",
        )
    statement = version.statement
    assert version.gates_passed and version.trained_by == "trainer"
    assert statement["evaluation"] == {
        "dataset": env.holdout,
        "data_sha256": statement["evaluation"]["data_sha256"],
        "in_sample": False,
        "rows": 1000,
        "dropped": 0,
    }
    assert statement["datasets"][0]["ref"] == env.train
    with env.open("approver") as approver:
        approval.approve(approver, version.ref, reason="held-out metrics reviewed")
        loaded = versions.load_model(approver, version.ref, require_approved=True)
    served_by = loaded.bundle.runtime
    assert served_by == brought.served_by
    _, holdout = data
    columns = claims.NUMERIC if numeric else claims.FEATURES
    records = holdout[columns].to_dict(orient="records")
    client = serve()
    reply = client.post(
        "/v1/models/readmission:predict",
        headers={"Authorization": f"Bearer {env.tokens['service']}"},
        json={"records": records, "probabilities": True},
    )
    assert reply.status_code == 200, reply.text
    answers = reply.json()["predictions"]
    assert len(answers) == 1000
    assert [a["prediction"] for a in answers] == [str(v) for v in brought.labels]
    got = np.array([[a["probabilities"]["no"], a["probabilities"]["yes"]] for a in answers])
    tolerance = 1e-12 if brought.exact else 1e-5
    assert np.abs(got - np.asarray(brought.proba, dtype=np.float64)).max() <= tolerance
    with env.open("approver") as approver:
        written = versions.export(approver, version.ref, tmp_path / "export")
    assert "model.sig" in written
    verify = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_signing",
            "verify",
            "key",
            "--signature",
            str(tmp_path / "export" / "model.sig"),
            "--public_key",
            str(tmp_path / "export" / "signing-key.pub.pem"),
            str(tmp_path / "export" / "model"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    exported = sorted(p.name for p in (tmp_path / "export" / "model").iterdir())
    original = {
        "skops": "estimator.skops",
        "onnx": "model.onnx",
        "xgboost-ubj": "estimator.ubj",
        "xgboost-json": "estimator.json",
        "lightgbm-text": "estimator.txt",
        "lightgbm-skops": "estimator.txt",
    }[statement["imported"]["format"]]
    assert original in exported


def test_a_scikit_learn_model_onnx_cannot_run_is_served_from_skops_saying_why(env, data, tmp_path):
    brought = _sklearn_pipeline(_hgb(), tmp_path, data)
    with env.open("trainer") as trainer:
        version = importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
        )
        card = versions.read_document(trainer, version.ref, "model-card.md").decode()
    conversion = version.statement["imported"]["conversion"]
    assert conversion["served"] == "skops" and "skl2onnx cannot convert" in conversion["reason"]
    assert "Served from the skops file" in card


def test_the_onnx_conversion_is_proven_and_recorded_in_card_and_bom(env, data, tmp_path):
    from aidlc.registry import bom

    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with env.open("trainer") as trainer:
        version = importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
        )
        card = versions.read_document(trainer, version.ref, "model-card.md").decode()
        ml_bom = versions.read_document(trainer, version.ref, "ml-bom.json")
    conversion = version.statement["imported"]["conversion"]
    assert conversion["served"] == "onnx" and conversion["labels_equal"] is True
    assert conversion["rows"] == 1000 and conversion["max_abs_diff"] <= 1e-4
    assert set(version.statement["files"]) >= {"model.onnx", "estimator.skops", "aidlc-model.json"}
    assert "Served by ONNX Runtime" in card and "skl2onnx" in card
    bom.validate_ml_bom(ml_bom)
    props = {
        p["name"]: p["value"] for p in json.loads(ml_bom)["metadata"]["component"]["properties"]
    }
    assert props["aidlc:producer:framework"] == "scikit-learn"
    assert props["aidlc:converter"] == "skl2onnx" and props["aidlc:served_by"] == "onnx"
    assert json.loads(props["aidlc:onnx:opsets"])[""] >= 9
    assert props["aidlc:evaluated_on"] == env.holdout and props["aidlc:in_sample"] == "false"


def test_string_inputs_are_validated_by_the_data_contract(env, data, serve, tmp_path):
    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with env.open("trainer") as trainer:
        version = importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
        )
    with env.open("approver") as approver:
        approval.approve(approver, version.ref, reason="ok")
    client = serve()
    headers = {"Authorization": f"Bearer {env.tokens['service']}"}
    good = {"age": 40, "bmi": 25.5, "visits": 1, "region": "north", "plan": "basic"}
    bad = [
        ({**good, "region": "mars"}, "region"),
        ({**good, "plan": None}, "plan"),
        ({**good, "age": "forty"}, "age"),
        ({k: v for k, v in good.items() if k != "bmi"}, "bmi"),
    ]
    assert (
        client.post(
            "/v1/models/readmission:predict", headers=headers, json={"records": [good]}
        ).status_code
        == 200
    )
    for record, name in bad:
        reply = client.post(
            "/v1/models/readmission:predict", headers=headers, json={"records": [record]}
        )
        assert reply.status_code == 422, reply.text
        assert any(p["field"] == name for p in reply.json()["problems"]), reply.text


# -- aidlc judges the model, not the notebook ----------------------------------------------------


def test_without_a_held_out_version_metrics_are_in_sample_and_approval_must_accept_it(
    env, data, tmp_path
):
    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with env.open("trainer") as trainer:
        version = importing.import_model(
            trainer, brought.source, name="readmission", trained_on=env.train, target="readmitted"
        )
        card = versions.read_document(trainer, version.ref, "model-card.md").decode()
    assert version.statement["evaluation"]["in_sample"] is True
    assert version.statement["evaluation"]["rows"] == claims.TRAIN_ROWS
    assert "In-sample (optimistic)" in card
    with env.open("approver") as approver:
        with pytest.raises(ValidationFailed, match="in-sample"):
            approval.approve(approver, version.ref, reason="looks fine")
        assert versions.resolve(approver, version.ref).status == "registered"
        done = approval.approve(approver, version.ref, reason="pilot only", accept_in_sample=True)
    assert done.status == "approved"
    with env.open("auditor") as auditor:
        events = [e for e in auditor.audit.events() if e.action == "model.approve"]
    assert events[0].outcome == "denied" and "in-sample" in events[0].details["reason"]
    assert events[-1].outcome == "ok" and events[-1].details["accepted_in_sample"] is True
    from aidlc.govern import threats

    with env.open("auditor") as auditor:
        model = threats.threat_model(auditor)
    (transfer,) = [t for t in model["threats"] if t["id"] == "transfer-learning"]
    assert (
        "1 imported model version(s), each signed and approved like any" in transfer["mitigations"]
    )
    assert any("approved on in-sample metrics" in g for g in transfer["gaps"])


def test_a_held_out_version_sharing_rows_with_the_training_data_is_refused(env, data, tmp_path):
    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with (
        env.open("trainer") as trainer,
        pytest.raises(InvalidInput, match="is the version the model was trained on"),
    ):
        importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.train,
            target="readmitted",
        )
    # a third version repeating 5 training rows among new ones
    from aidlc.data.ingest import ingest

    fresh = claims.frame(3500).slice(3000, 500)  # new members
    mixed = fresh.vstack(claims.frame().slice(0, 5))  # and 5 rows of the training version
    path = tmp_path / "mixed.csv"
    mixed.write_csv(path)
    with env.open("steward") as steward:
        result = ingest(steward, path, "claims")
    assert result.outcome == "accepted", result.report
    with (
        env.open("trainer") as trainer,
        pytest.raises(ValidationFailed, match="5 rows of claims@3 also appear in claims@1"),
    ):
        importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=str(result.ref),
            target="readmitted",
        )


def test_a_version_whose_gate_failed_cannot_be_approved(env, data, tmp_path):
    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with env.open("trainer") as trainer:
        version = importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
            gates=["accuracy >= 0.99"],
        )
    assert not version.gates_passed
    with env.open("approver") as approver, pytest.raises(ValidationFailed, match="quality gates"):
        approval.approve(approver, version.ref, reason="try")


def test_no_worse_than_production_compares_with_the_production_version(env, data, tmp_path):
    (tmp_path / "a").mkdir()
    good = _sklearn_pipeline(_logreg(), tmp_path / "a", data)
    from sklearn.dummy import DummyClassifier

    with env.open("trainer") as trainer:
        first = importing.import_model(
            trainer,
            good.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
        )
    with env.open("approver") as approver:
        approval.approve(approver, first.ref, reason="baseline")
    train, _ = data
    weak = _pipeline(DummyClassifier(strategy="most_frequent")).fit(
        train[claims.FEATURES], train["readmitted"]
    )
    with env.open("trainer") as trainer:
        second = importing.import_model(
            trainer,
            weak,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
            gates=["accuracy >= production - 0.01"],
        )
    (gate,) = second.statement["gates"]
    assert not gate["passed"] and gate["threshold"] == pytest.approx(
        first.metrics["accuracy"] - 0.01
    )


def test_a_dataset_version_that_did_not_pass_the_gate_cannot_be_used(env, data, tmp_path):
    from aidlc.data.ingest import ingest

    bad = claims.frame(3100).slice(3000)
    bad = bad.with_columns(bad["age"].cast(float) * -1)  # negative ages fail the contract
    path = tmp_path / "bad.csv"
    bad.write_csv(path)
    with env.open("steward") as steward:
        result = ingest(steward, path, "claims")
    assert result.outcome != "accepted" and result.ref is None
    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with env.open("trainer") as trainer:
        with pytest.raises(NotFound, match="claims@3") as refused:
            importing.import_model(
                trainer,
                brought.source,
                name="readmission",
                trained_on=env.train,
                evaluate_on="claims@3",
                target="readmitted",
            )
        assert "passed the data gate" in str(refused.value)
        with pytest.raises(NotFound):
            importing.import_model(
                trainer,
                brought.source,
                name="readmission",
                trained_on="nowhere@1",
                target="readmitted",
            )


def test_the_importer_cannot_approve_and_other_roles_cannot_import(env, data, tmp_path):
    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with env.open("approver") as approver, pytest.raises(PermissionDenied):
        importing.import_model(
            approver,
            brought.source,
            name="readmission",
            trained_on=env.train,
            target="readmitted",
        )
    from aidlc.core import principals

    with env.open("admin") as admin:
        _, both = principals.add(admin, "both", ["trainer", "approver"])
    env.tokens["both"] = both
    with env.open("both") as ws:
        version = importing.import_model(
            ws,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
        )
        assert version.trained_by == version.registered_by == "both"
        with pytest.raises(PermissionDenied, match="separation of duties"):
            approval.approve(ws, version.ref, reason="mine")


def test_features_come_from_the_model_and_the_contract_guards_them(env, data, tmp_path):
    import xgboost as xgb

    train, _ = data
    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with env.open("trainer") as trainer:
        version = importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
        )
        assert version.statement["files"]
        loaded = versions.load_model(trainer, version.ref)
        assert loaded.features == claims.FEATURES  # not member_id, not the targets
        with pytest.raises(InvalidInput, match="disagree with the model's own input names"):
            importing.import_model(
                trainer,
                brought.source,
                name="readmission",
                trained_on=env.train,
                target="readmitted",
                features=["age", "bmi"],
            )
        y = (train["readmitted"] == "yes").astype(int)
        unnamed = xgb.XGBClassifier(n_estimators=5).fit(train[claims.NUMERIC].to_numpy(), y)
        with pytest.raises(InvalidInput, match="does not name its inputs"):
            importing.import_model(
                trainer, unnamed, name="readmission", trained_on=env.train, target="readmitted"
            )
        with pytest.raises(InvalidInput, match="subject id"):
            importing.import_model(
                trainer,
                unnamed,
                name="readmission",
                trained_on=env.train,
                target="readmitted",
                features=["member_id", "age", "bmi"],
            )
        with pytest.raises(InvalidInput, match="the target"):
            importing.import_model(
                trainer,
                unnamed,
                name="readmission",
                trained_on=env.train,
                target="age",
                features=["age", "bmi", "visits"],
            )
        with pytest.raises(InvalidInput, match="hold text"):
            importing.import_model(
                trainer,
                unnamed,
                name="readmission",
                trained_on=env.train,
                target="readmitted",
                features=["age", "bmi", "region"],
            )
        named = importing.import_model(
            trainer,
            unnamed,
            name="readmission",
            trained_on=env.train,
            target="readmitted",
            evaluate_on=env.holdout,
            features=claims.NUMERIC,
        )
    assert named.statement["evaluation"]["rows"] == 1000


def test_class_labels_that_are_not_the_targets_values_must_be_named(env, data, tmp_path):
    train, holdout = data
    model = _pipeline(_logreg()).fit(
        train[claims.FEATURES], (train["readmitted"] == "yes").astype(int)
    )
    with env.open("trainer") as trainer:
        with pytest.raises(InvalidInput, match="--classes"):
            importing.import_model(
                trainer, model, name="readmission", trained_on=env.train, target="readmitted"
            )
        import aidlc

        version = aidlc.import_model(  # the package's own name for it
            trainer,
            model,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
            classes=["no", "yes"],
        )
        loaded = versions.load_model(trainer, version.ref)
    import polars as pl

    expected = ["yes" if v else "no" for v in model.predict(holdout[claims.FEATURES])]
    assert loaded.predict(pl.from_pandas(holdout[claims.FEATURES])) == expected


def test_a_regressor_pipeline_is_judged_with_regression_metrics(env, data, serve, tmp_path):
    from sklearn.linear_model import Ridge

    train, holdout = data
    model = _pipeline(Ridge()).fit(train[claims.FEATURES], train["cost"])
    with env.open("trainer") as trainer:
        version = importing.import_model(
            trainer,
            model,
            name="cost",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="cost",
            gates=["r2 >= 0.3"],
        )
    assert set(version.metrics) == {"mae", "rmse", "r2"} and version.gates_passed
    assert version.statement["imported"]["conversion"]["served"] == "onnx"
    with env.open("approver") as approver:
        approval.approve(approver, version.ref, reason="ok")
    reply = serve().post(
        "/v1/models/cost:predict",
        headers={"Authorization": f"Bearer {env.tokens['service']}"},
        json={"records": holdout[claims.FEATURES].head(200).to_dict(orient="records")},
    )
    got = np.array([p["prediction"] for p in reply.json()["predictions"]])
    want = model.predict(holdout[claims.FEATURES].head(200))
    assert np.all(np.abs(got - want) <= 1e-4 * (1 + np.abs(want)))


def test_the_python_api_registers_through_the_same_import_and_computes_its_own_metrics(env, data):
    with env.open("trainer") as trainer:
        with trainer.start_run("notebook") as run:
            frame = run.read_dataset(env.train)
            model = _pipeline(_logreg()).fit(frame.select(claims.FEATURES), frame["readmitted"])
            run.log_metrics({"accuracy": 0.999})  # what the notebook claims
            version = run.register_model(
                "readmission", model, target="readmitted", evaluate_on=env.holdout
            )
        info = run.info()
    assert version.run_id == info.id and info.model_version == version.ref
    assert version.metrics["accuracy"] < 0.95  # aidlc's, on held-out rows, not the claim
    assert version.statement["datasets"][0]["ref"] == env.train
    with env.open("trainer") as trainer, pytest.raises(TypeError):
        versions.register_model(
            trainer,
            "readmission",
            model,
            trained_on=env.train,
            target="readmitted",
            metrics={"accuracy": 1.0},
        )


def test_an_import_is_a_run_in_the_lineage_and_the_audit_log(env, data, tmp_path):
    from aidlc.govern import lineage
    from aidlc.train.tracking import get_run

    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with env.open("trainer") as trainer:
        version = importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
        )
        run = get_run(trainer, version.run_id)
    assert run.kind == "import" and run.status == "finished"
    assert {d["ref"] for d in run.datasets} == {env.train, env.holdout}
    with env.open("auditor") as auditor:
        graph = lineage.trace(auditor, version.ref)
        events = [e for e in auditor.audit.events() if e.action == "model.register"]
    assert any(n.kind == "raw" for n in graph.nodes.values())
    assert events[-1].details["imported"] == "skops"
    assert events[-1].details["sha256"] == version.statement["imported"]["sha256"]


# -- refusals: nothing executes ------------------------------------------------------------------

EVIL_MODULE = """
import pathlib, os
pathlib.Path(os.environ["AIDLC_TEST_MARKER"]).touch()

from sklearn.base import BaseEstimator, TransformerMixin

class Doubler(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self
    def transform(self, X):
        return X * 2

def double(X):
    return X * 2
"""


def _evil(tmp_path: Path, body: str) -> tuple[Path, Path]:
    """A skops file made in another process from a module whose import leaves a marker."""
    (tmp_path / "evil_pkg.py").write_text(EVIL_MODULE)
    marker = tmp_path / "marker"
    script = (
        "import numpy as np, skops.io\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "import evil_pkg\n"
        "X = np.random.default_rng(0).normal(size=(40, 2)); y = (X[:, 0] > 0).astype(int)\n"
        f"model = {body}.fit(X, y)\n"
        f"skops.io.dump(model, {str(tmp_path / 'evil.skops')!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "AIDLC_TEST_MARKER": str(marker)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    marker.unlink()
    return tmp_path / "evil.skops", marker


def _refused(env: Env, source: Path, *more: str) -> subprocess.CompletedProcess[str]:
    proc = run_cli(
        "models",
        "import",
        str(source),
        "--name",
        "readmission",
        "--trained-on",
        env.train,
        "--target",
        "readmitted",
        *more,
        env=env,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    with env.open("auditor") as auditor:
        assert not [e for e in auditor.audit.events() if e.action == "model.register"]
    return proc


def test_a_skops_file_with_a_custom_class_is_refused_naming_it_and_nothing_runs(env, tmp_path):
    source, marker = _evil(tmp_path, "make_pipeline(evil_pkg.Doubler(), LogisticRegression())")
    proc = _refused(env, source, "--features", "a,b")
    assert "evil_pkg.Doubler" in proc.stderr and not marker.exists()


def test_a_function_transformer_with_a_function_is_refused_naming_it(env, tmp_path):
    source, marker = _evil(
        tmp_path,
        "make_pipeline(FunctionTransformer(evil_pkg.double), LogisticRegression())",
    )
    proc = _refused(env, source)
    assert "evil_pkg.double" in proc.stderr and not marker.exists()


class _Touch:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (self.path,))


def test_a_pickle_renamed_skops_is_refused_and_never_unpickled(env, tmp_path):
    marker = tmp_path / "marker"
    source = tmp_path / "model.skops"
    source.write_bytes(pickle.dumps(_Touch(marker)))
    proc = _refused(env, source)
    assert "pickle" in proc.stderr and not marker.exists()


def test_an_mlflow_cloudpickle_model_is_refused_with_the_command_that_converts_it(
    env, data, tmp_path
):
    import mlflow.sklearn

    train, _ = data
    model = _pipeline(_logreg()).fit(train[claims.FEATURES], train["readmitted"])
    directory = tmp_path / "mlflow-model"
    mlflow.sklearn.save_model(model, directory, serialization_format="cloudpickle")
    marker = tmp_path / "marker"
    (directory / "model.pkl").write_bytes(pickle.dumps(_Touch(marker)))
    proc = _refused(env, directory)
    assert "cloudpickle" in proc.stderr and 'serialization_format="skops"' in proc.stderr
    assert not marker.exists()


def test_an_mlmodel_whose_artifact_escapes_its_directory_is_refused(env, data, tmp_path):
    import mlflow.onnx

    brought = _onnx_pipeline(tmp_path, data)
    directory = tmp_path / "mlflow-model"
    import onnx

    mlflow.onnx.save_model(onnx.load(brought.source), directory)
    outside = tmp_path / "outside.onnx"
    shutil.copy(directory / "model.onnx", outside)
    mlmodel = (
        (directory / "MLmodel").read_text().replace("data: model.onnx", "data: ../outside.onnx")
    )
    (directory / "MLmodel").write_text(mlmodel)
    proc = _refused(env, directory)
    assert "escapes" in proc.stderr


def test_an_onnx_model_with_a_custom_operator_domain_is_refused(env, tmp_path):
    from onnx import TensorProto, helper

    node = helper.make_node("Steal", ["input"], ["output"], domain="com.example.evil")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 2])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.evil", 1)],
    )
    source = tmp_path / "custom.onnx"
    source.write_bytes(model.SerializeToString())
    proc = _refused(env, source, "--features", "age,bmi,visits")
    assert "com.example.evil" in proc.stderr


def test_an_onnx_model_with_external_data_outside_its_folder_is_refused(env, data, tmp_path):
    import onnx

    brought = _mlp_graph(tmp_path, data)
    model = onnx.load(brought.source)
    folder = tmp_path / "bundle"
    folder.mkdir()
    onnx.save_model(
        model,
        folder / "mlp.onnx",
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    shutil.move(folder / "weights.bin", tmp_path / "weights.bin")
    hostile = onnx.load(folder / "mlp.onnx", load_external_data=False)
    for tensor in hostile.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"
    (folder / "mlp.onnx").write_bytes(hostile.SerializeToString())
    proc = _refused(env, folder / "mlp.onnx", "--features", "age,bmi,visits")
    assert "../weights.bin" in proc.stderr


def test_a_zip_bomb_given_as_a_skops_file_is_refused_without_expanding_it(env, tmp_path):
    import zipfile

    source = tmp_path / "bomb.skops"
    with (
        zipfile.ZipFile(source, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z,
        z.open("schema.json", "w", force_zip64=True) as fh,
    ):
        chunk = b" " * (1 << 20)
        for _ in range(1024):  # 1 GiB of spaces, a few MB compressed
            fh.write(chunk)
    assert source.stat().st_size < 16 << 20
    proc = _refused(env, source)
    assert "bomb.skops" in proc.stderr or "skops" in proc.stderr


def test_bad_arguments_are_usage_errors_not_tracebacks(env, tmp_path):
    missing = run_cli(
        "models",
        "import",
        str(tmp_path / "nope.onnx"),
        "--name",
        "m",
        "--trained-on",
        env.train,
        "--target",
        "readmitted",
        env=env,
    )
    assert missing.returncode == 5
    weird = tmp_path / "weird.bin"
    weird.write_bytes(b"\x00\x01garbage" * 10)
    unknown = run_cli(
        "models",
        "import",
        str(weird),
        "--name",
        "m",
        "--trained-on",
        env.train,
        "--target",
        "readmitted",
        env=env,
    )
    assert unknown.returncode == 2 and "cannot tell" in unknown.stderr
    bad_gate = run_cli(
        "models",
        "import",
        str(weird),
        "--name",
        "m",
        "--trained-on",
        env.train,
        "--target",
        "readmitted",
        "--gate",
        "accuracy >>= 2",
        env=env,
    )
    assert bad_gate.returncode == 2 and "not understood" in bad_gate.stderr
    bad_name = run_cli(
        "models",
        "import",
        str(weird),
        "--name",
        "Bad Name",
        "--trained-on",
        env.train,
        "--target",
        "readmitted",
        env=env,
    )
    assert bad_name.returncode == 2


def test_the_cli_imports_and_prints_the_ref_for_scripts(env, data, tmp_path):
    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    proc = run_cli(
        "models",
        "import",
        str(brought.source),
        "--name",
        "readmission",
        "--trained-on",
        env.train,
        "--evaluate-on",
        env.holdout,
        "--target",
        "readmitted",
        "--gate",
        "roc_auc >= 0.7",
        "--owner",
        "care",
        "--intended-use",
        "follow-up calls",
        "--limitations",
        "one region",
        "--json",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ref"] == "readmission@1" and out["gates"][0]["passed"] is True
    human = run_cli(
        "models",
        "import",
        str(brought.source),
        "--name",
        "readmission",
        "--trained-on",
        env.train,
        "--target",
        "readmitted",
        env=env,
    )
    assert human.returncode == 0 and "in-sample" in human.stdout
    refused = run_cli(
        "models", "approve", "readmission@2", "--reason", "ok", env=env, who="approver"
    )
    assert refused.returncode == 1 and "--accept-in-sample" in refused.stderr
    accepted = run_cli(
        "models",
        "approve",
        "readmission@2",
        "--reason",
        "pilot",
        "--accept-in-sample",
        env=env,
        who="approver",
    )
    assert accepted.returncode == 0, accepted.stderr
    shown = run_cli("models", "show", "readmission@2", env=env, who="auditor")
    said = " ".join(shown.stdout.split())
    assert "imported skops" in said and "made with scikit-learn" in said
    assert f"evaluated on 2000 rows of {env.train} (in-sample, optimistic)" in said


def test_monitoring_an_imported_pipeline_flags_drift_in_numeric_and_text_columns(
    env, data, serve, tmp_path
):
    from aidlc.monitor import runner

    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with env.open("trainer") as trainer:
        version = importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=env.train,
            evaluate_on=env.holdout,
            target="readmitted",
        )
    with env.open("approver") as approver:
        approval.approve(approver, version.ref, reason="ok")
    _, holdout = data
    rows = holdout[claims.FEATURES].to_dict(orient="records")
    drifted = [{**r, "bmi": r["bmi"] * 1.4, "region": "north"} for r in rows[:600]]
    client = serve()
    for i in range(0, 600, 200):
        reply = client.post(
            "/v1/models/readmission:predict",
            headers={"Authorization": f"Bearer {env.tokens['service']}"},
            json={"records": drifted[i : i + 200]},
        )
        assert reply.status_code == 200
    client.__exit__(None, None, None)  # flushes the prediction log
    with env.open("service") as monitor:
        (outcome,) = runner.run(monitor, model="readmission", window="1h")
    drifted_names = set(outcome.document["drift"]["drifted"])
    assert {"bmi", "region"} <= drifted_names and "age" not in drifted_names


def test_every_exception_from_hostile_python_objects_is_an_aidlc_error():
    for thing in (object(), 3, "a string is not a path to anything", {"a": 1}):
        with pytest.raises((InvalidInput, NotFound, UsageError, ConfigError, IntegrityError)):
            importing.read_source(thing if not isinstance(thing, str) else Path(thing))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_import_approve_and_load_on_each_metadata_backend(backend, make_env, data, tmp_path):
    """The import's records (run, statement, approval) on SQLite and on a real PostgreSQL."""
    built = make_env(backend, users={n: r[0] for n, r in USERS.items()})
    target = Env(built.root, built.tokens, "", "")
    target.train, target.holdout = claims.ingest(target, tmp_path / "data")
    brought = _sklearn_pipeline(_logreg(), tmp_path, data)
    with target.open("trainer") as trainer:
        version = importing.import_model(
            trainer,
            brought.source,
            name="readmission",
            trained_on=target.train,
            evaluate_on=target.holdout,
            target="readmitted",
        )
    with target.open("approver") as approver:
        approval.approve(approver, version.ref, reason="ok")
        loaded = versions.load_model(approver, "readmission@production", require_approved=True)
        assert versions.verify(approver, version.ref).model_digest == version.model_digest
    import polars as pl

    _, holdout = data
    rows = pl.from_pandas(holdout[claims.FEATURES].head(50))
    assert loaded.predict(rows) == [str(v) for v in brought.labels[:50]]


def _rollout_pair(env: Env, data: Any, tmp_path: Path) -> None:
    """readmission@1 (ONNX path) in production, @2 (skops path) approved to staging."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = _sklearn_pipeline(_logreg(), tmp_path / "one", data)
    second = _sklearn_pipeline(_hgb(), tmp_path / "two", data)
    with env.open("trainer") as trainer:
        for brought in (first, second):
            importing.import_model(
                trainer,
                brought.source,
                name="readmission",
                trained_on=env.train,
                evaluate_on=env.holdout,
                target="readmitted",
            )
    with env.open("approver") as approver:
        approval.approve(approver, "readmission@1", reason="production")
        approval.approve(approver, "readmission@2", to="staging", reason="candidate")


@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_imported_versions_roll_out_as_canary_and_shadow(mode, env, data, tmp_path):
    from starlette.testclient import TestClient

    from aidlc.core.config import CanaryPolicy
    from aidlc.serve import rollout
    from aidlc.serve.app import Server, create_app

    _rollout_pair(env, data, tmp_path)
    policy = CanaryPolicy(
        promote_after=40,
        min_requests=20,
        max_error_rate=0.01,
        max_latency_ratio=1000,
        max_divergence=0.3,
    )
    ws = env.open("service")
    settings = ws.config.serve.model_copy(update={"rate_limit": "1000/second", "poll_seconds": 0.1})
    server = Server(ws, settings)
    _, holdout = data
    records = holdout[claims.FEATURES].to_dict(orient="records")
    headers = {"Authorization": f"Bearer {env.tokens['service']}"}
    try:
        with TestClient(create_app(server)) as client:
            with env.open("approver") as approver:
                rollout.deploy(
                    approver,
                    "readmission@2",
                    policy=policy,
                    reason=mode,
                    **({"canary": 50.0} if mode == "canary" else {"shadow": True}),
                )
            answered: set[int] = set()
            for i in range(2000):
                slot = server.slots.get("readmission")
                reply = client.post(
                    "/v1/models/readmission:predict",
                    headers=headers,
                    json={"records": [records[i % len(records)]]},
                )
                assert reply.status_code == 200, reply.text
                if slot is not None and slot.candidate is not None:
                    answered.add(reply.json()["version"])
                with env.open("approver") as approver:
                    status = rollout.deployments(approver, "readmission")[0].status
                if status != "active":
                    break
    finally:
        ws.close()
    assert status == ("promoted" if mode == "canary" else "completed")
    assert answered == ({1, 2} if mode == "canary" else {1})
    with env.open("approver") as approver:
        production = approval.aliases(approver, "readmission")["production"]
    assert production == (2 if mode == "canary" else 1)
