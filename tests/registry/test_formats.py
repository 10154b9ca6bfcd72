"""Safe model formats: deterministic files, faithful round trips, pickle and untrusted types refused."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
import skops.io
import xgboost as xgb
from sklearn.base import is_classifier
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aidlc.errors import ConfigError, IntegrityError, InvalidInput
from aidlc.registry import formats
from aidlc.registry.formats import (
    FLAVOR_FILES,
    TRUSTED_SKOPS_TYPES,
    flavor_of,
    load_estimator,
    refuse_pickle,
    save_estimator,
)
from aidlc.train import estimators
from aidlc.train.estimators import fit, predict, predict_proba

ROOT = Path(__file__).resolve().parents[2]


@cache
def iris() -> tuple[np.ndarray, np.ndarray]:
    return load_iris(return_X_y=True)


@cache
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    return load_diabetes(return_X_y=True)


def small_params(name: str) -> dict:
    params = estimators.sklearn_estimator(name)().get_params()
    if "n_estimators" in params:
        return {"n_estimators": 4}
    if name.startswith("HistGradientBoosting"):
        return {"max_iter": 4}
    if name == "LogisticRegression":
        return {"max_iter": 500}
    return {}


@cache
def fitted(kind: str) -> tuple[object, np.ndarray]:
    """A small fitted model of `kind` and the rows to predict with it."""
    if kind in estimators.BOOSTING:
        X, y = iris()
        return fit(kind, {}, "classification", X, y, seed=1, n_classes=3, rounds=10).model, X
    name = kind.removeprefix("sklearn.")
    classifier = is_classifier(estimators.sklearn_estimator(name)())
    X, y = iris() if classifier else diabetes()
    task = "classification" if classifier else "regression"
    model = fit(kind, small_params(name), task, X, y, seed=1, n_classes=3 if classifier else None)
    return model.model, X


ALL_KINDS = ["xgboost", "lightgbm"] + [f"sklearn.{n}" for n in estimators.SKLEARN_ESTIMATORS]


def save(kind: str, model: object, directory: Path) -> bytes:
    directory.mkdir(parents=True, exist_ok=True)
    name = save_estimator(kind, model, directory)
    assert sorted(os.listdir(directory)) == [name] == [FLAVOR_FILES[flavor_of(kind)]]
    return (directory / name).read_bytes()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_saved_model_loads_back_and_predicts_identically(kind, tmp_path):
    model, X = fitted(kind)
    first = save(kind, model, tmp_path / "a")
    loaded = load_estimator(flavor_of(kind), tmp_path / "a")
    assert np.array_equal(predict(kind, loaded, X), predict(kind, model, X))
    proba = predict_proba(kind, model, X)
    if proba is not None:
        assert np.array_equal(predict_proba(kind, loaded, X), proba)
    # saved twice, and saved again after loading: the same bytes
    assert save(kind, model, tmp_path / "b") == first
    assert save(kind, loaded, tmp_path / "c") == first


SAVE_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
from tests.registry.test_formats import fitted, save
out = Path(sys.argv[1])
for kind in sys.argv[2:]:
    save(kind, fitted(kind)[0], out / kind)
"""


def test_files_are_byte_identical_across_processes(tmp_path):
    kinds = [
        "xgboost",
        "lightgbm",
        "sklearn.RandomForestClassifier",
        "sklearn.GradientBoostingRegressor",
    ]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-c", SAVE_IN_A_NEW_PROCESS, str(tmp_path), *kinds],
        check=True,
        cwd=ROOT,
        env=env,
    )
    for kind in kinds:
        name = FLAVOR_FILES[flavor_of(kind)]
        here = save(kind, fitted(kind)[0], tmp_path / "here" / kind)
        assert (tmp_path / kind / name).read_bytes() == here, kind


def test_skops_files_carry_no_timestamps_or_addresses(tmp_path):
    data = save(
        "sklearn.RandomForestClassifier", fitted("sklearn.RandomForestClassifier")[0], tmp_path
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        schema = archive.read("schema.json").decode()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert all(i.filename == "schema.json" or i.filename.split(".")[0].isdigit() for i in infos)
    assert str(id(fitted("sklearn.RandomForestClassifier")[0])) not in schema


# -- pickle --------------------------------------------------------------------------------------


def pickle_that_creates(marker: Path) -> bytes:
    class P:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    return pickle.dumps(P(), protocol=4)


@pytest.mark.parametrize("flavor", ["sklearn", "xgboost", "lightgbm"])
def test_a_pickle_under_a_safe_name_is_refused_and_never_runs(flavor, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle_that_creates(marker)
    assert payload[:2] == b"\x80\x04"
    (tmp_path / FLAVOR_FILES[flavor]).write_bytes(payload)
    with pytest.raises(IntegrityError, match=f"{FLAVOR_FILES[flavor]} holds a pickle stream"):
        load_estimator(flavor, tmp_path)
    assert not marker.exists()


def test_pickle_file_names_are_refused_whatever_they_hold(tmp_path):
    marker = tmp_path / "pwned"
    for name in (
        "model.pkl",
        "model.PICKLE",
        "m.joblib",
        "weights.pt",
        "w.pth",
        "x.dill",
        "y.cloudpickle",
    ):
        with pytest.raises(IntegrityError, match=f"{name} is a pickle file"):
            refuse_pickle(name, b"harmless")
    with pytest.raises(IntegrityError, match=r"model\.pkl"):
        refuse_pickle("model.pkl", pickle_that_creates(marker))
    assert not marker.exists()


def test_a_model_pkl_beside_the_estimator_is_never_read(tmp_path):
    marker = tmp_path / "pwned"
    model, X = fitted("xgboost")
    save("xgboost", model, tmp_path / "bundle")
    (tmp_path / "bundle" / "model.pkl").write_bytes(pickle_that_creates(marker))
    loaded = load_estimator("xgboost", tmp_path / "bundle")
    assert np.array_equal(predict("xgboost", loaded, X), predict("xgboost", model, X))
    assert not marker.exists()


def test_a_zip_holding_a_pytorch_style_data_pkl_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/version", "3")
        archive.writestr("archive/data.pkl", pickle_that_creates(marker))
        archive.writestr("archive/data/0", b"\0" * 8000)
    data = buffer.getvalue()
    (tmp_path / "estimator.skops").write_bytes(data)
    with pytest.raises(IntegrityError, match=r"archive holding a pickle \(archive/data.pkl\)"):
        load_estimator("sklearn", tmp_path)
    # the registry checks only the first 4 KiB of each bundle file
    with pytest.raises(IntegrityError, match=r"data\.pkl"):
        refuse_pickle("weights.bin", data[:4096])
    assert not marker.exists()


def test_safe_files_pass_the_pickle_check(tmp_path):
    for kind in ("xgboost", "lightgbm", "sklearn.HistGradientBoostingClassifier"):
        data = save(kind, fitted(kind)[0], tmp_path / kind)
        refuse_pickle(FLAVOR_FILES[flavor_of(kind)], data)
        refuse_pickle(FLAVOR_FILES[flavor_of(kind)], data[:4096])


# -- untrusted skops types -----------------------------------------------------------------------


class Payload:
    """A class skops does not trust; building it would write a file."""

    marker = ""

    def __setstate__(self, state):
        Path(state["marker"]).write_text("ran")


def test_a_skops_file_with_a_custom_class_is_refused_before_it_is_built(tmp_path):
    marker = tmp_path / "pwned"
    model = LogisticRegression(max_iter=300).fit(*iris())
    extra = Payload()
    extra.__dict__["marker"] = str(marker)
    model.extra_ = extra
    (tmp_path / "estimator.skops").write_bytes(skops.io.dumps(model))
    with pytest.raises(
        IntegrityError, match=r"untrusted type tests\.registry\.test_formats\.Payload refused"
    ):
        load_estimator("sklearn", tmp_path)
    assert not marker.exists()


def test_a_skops_file_calling_eval_is_refused(tmp_path):
    model = LogisticRegression(max_iter=300).fit(*iris())
    model.postprocess_ = eval
    (tmp_path / "estimator.skops").write_bytes(skops.io.dumps(model))
    with pytest.raises(IntegrityError, match=r"untrusted type builtins\.eval refused"):
        load_estimator("sklearn", tmp_path)


def test_a_model_that_could_not_be_loaded_back_is_not_saved(tmp_path):
    model = LogisticRegression(max_iter=300).fit(*iris())
    model.postprocess_ = eval
    with pytest.raises(InvalidInput, match=r"holds types aidlc will not load back: builtins\.eval"):
        save_estimator("sklearn.LogisticRegression", model, tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_skops_file_of_something_other_than_an_allowlisted_estimator_is_refused(tmp_path):
    X, y = iris()
    for obj in (
        make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        {"a": np.arange(3)},
    ):
        (tmp_path / "estimator.skops").write_bytes(skops.io.dumps(obj))
        with pytest.raises(IntegrityError, match="not an allowlisted estimator"):
            load_estimator("sklearn", tmp_path)


def test_trusted_types_are_exactly_the_estimators_and_the_helpers_they_need():
    helpers: set[str] = set()
    for name in estimators.SKLEARN_ESTIMATORS:
        model, _ = fitted(f"sklearn.{name}")
        helpers |= set(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    X, y = iris()
    categorical = estimators.sklearn_estimator("HistGradientBoostingClassifier")(
        max_iter=2, categorical_features=[0]
    ).fit(np.round(X), y)
    helpers |= set(skops.io.get_untrusted_types(data=skops.io.dumps(categorical)))
    names = {
        f"{c.__module__}.{c.__name__}"
        for c in map(estimators.sklearn_estimator, estimators.SKLEARN_ESTIMATORS)
    }
    assert set(TRUSTED_SKOPS_TYPES) == names | helpers
    assert len(TRUSTED_SKOPS_TYPES) == len(set(TRUSTED_SKOPS_TYPES)) == 19


# -- corruption ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm", "sklearn.DecisionTreeClassifier"])
def test_corrupted_files_are_integrity_errors_naming_the_file(kind, tmp_path):
    model, _ = fitted(kind)
    data = save(kind, model, tmp_path)
    name = FLAVOR_FILES[flavor_of(kind)]
    for bad in (data[: len(data) // 2], b"\x00garbage" + data[8:], b""):
        (tmp_path / name).write_bytes(bad)
        with pytest.raises(IntegrityError, match=name):
            load_estimator(flavor_of(kind), tmp_path)


MUTATE_IN_A_NEW_PROCESS = """
import json, random, sys
from pathlib import Path
from aidlc.errors import AidlcError
from aidlc.registry.formats import FLAVOR_FILES, flavor_of, load_estimator
from aidlc.train.estimators import predict
from tests.registry.test_formats import fitted, save
out, rng = Path(sys.argv[1]), random.Random(7)
counts = {}
for kind in sys.argv[2:]:
    model, X = fitted(kind)
    raw = save(kind, model, out / kind)
    path = out / kind / FLAVOR_FILES[flavor_of(kind)]
    for _ in range(100):
        data, at = bytearray(raw), rng.randrange(len(raw))
        edit = rng.choice(["cut", "byte", "digit", "delete", "repeat"])
        if edit == "cut":
            data = data[:at]
        elif edit == "byte":
            data[at] = rng.randrange(256)
        elif edit == "digit":
            data[rng.choice([i for i, c in enumerate(data) if 48 <= c <= 57])] = rng.randrange(48, 58)
        elif edit == "delete":
            del data[at : at + rng.randrange(1, 20)]
        else:
            data[at:at] = data[at : at + rng.randrange(1, 50)]
        path.write_bytes(bytes(data))
        try:
            predict(kind, load_estimator(flavor_of(kind), out / kind), X)
            outcome = "loaded"
        except AidlcError:
            outcome = "refused"
        counts[f"{kind} {outcome}"] = counts.get(f"{kind} {outcome}", 0) + 1
print(json.dumps(counts))
"""


def test_damaged_files_are_refused_or_load_but_never_crash_the_process(tmp_path):
    # XGBoost and LightGBM parse without bounds checks and abort or segfault on some damaged
    # files; the checks before them must catch those. A crash here is a non-zero exit code.
    kinds = ["xgboost", "lightgbm", "sklearn.DecisionTreeClassifier"]
    proc = subprocess.run(
        [sys.executable, "-c", MUTATE_IN_A_NEW_PROCESS, str(tmp_path), *kinds],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = json.loads(proc.stdout)
    for kind in kinds:
        assert counts.get(f"{kind} loaded", 0) + counts[f"{kind} refused"] == 100
        assert counts[f"{kind} refused"] >= 50


def test_lightgbm_text_must_be_utf8(tmp_path):
    (tmp_path / "estimator.txt").write_bytes(b"tree\nversion=v4\n\xff\xfe")
    with pytest.raises(IntegrityError, match=r"estimator\.txt is not UTF-8"):
        load_estimator("lightgbm", tmp_path)


def test_a_missing_file_or_unknown_flavor_is_an_integrity_error(tmp_path):
    with pytest.raises(IntegrityError, match=r"no readable estimator\.ubj"):
        load_estimator("xgboost", tmp_path)
    with pytest.raises(IntegrityError, match="unknown model flavor 'onnx'"):
        load_estimator("onnx", tmp_path)


def test_unknown_kinds_have_no_flavor():
    assert flavor_of("xgboost") == "xgboost"
    with pytest.raises(ConfigError, match=r"unknown model kind 'sklearn\.SVC'"):
        flavor_of("sklearn.SVC")


def test_files_over_the_size_limit_are_refused(tmp_path, monkeypatch):
    save("xgboost", fitted("xgboost")[0], tmp_path)
    monkeypatch.setattr(formats, "MAX_ESTIMATOR_BYTES", 100)
    with pytest.raises(IntegrityError, match=r"estimator\.ubj is larger than 100 bytes"):
        load_estimator("xgboost", tmp_path)


# -- models from users' own code -----------------------------------------------------------------


def test_user_xgboost_and_lightgbm_models_become_boosters_that_predict_the_same():
    X, y = load_breast_cancer(return_X_y=True)
    xgb_model = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    booster = formats.from_xgboost_object(xgb_model)
    assert isinstance(booster, xgb.Booster)
    assert np.array_equal(predict("xgboost", booster, X), xgb_model.predict(X))
    assert np.allclose(predict_proba("xgboost", booster, X), xgb_model.predict_proba(X), atol=1e-7)

    lgb_model = lgb.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, y.astype(float))
    booster = formats.from_lightgbm_object(lgb_model)
    assert isinstance(booster, lgb.Booster)
    assert np.array_equal(predict("lightgbm", booster, X), lgb_model.predict(X))


def test_an_early_stopped_xgboost_model_keeps_only_its_best_trees():
    X, y = load_breast_cancer(return_X_y=True)
    model = xgb.XGBClassifier(n_estimators=200, early_stopping_rounds=3, learning_rate=0.5)
    model.fit(X[:400], y[:400], eval_set=[(X[400:], y[400:])], verbose=False)
    booster = formats.from_xgboost_object(model)
    assert booster.num_boosted_rounds() == model.best_iteration + 1 < 200
    assert np.array_equal(predict("xgboost", booster, X), model.predict(X))


def test_unfitted_user_boosters_are_refused():
    with pytest.raises(InvalidInput, match="the XGBClassifier is not fitted"):
        formats.from_xgboost_object(xgb.XGBClassifier())
    with pytest.raises(InvalidInput, match="the LGBMClassifier is not fitted"):
        formats.from_lightgbm_object(lgb.LGBMClassifier())


def test_xgboost_json_models_are_checked_like_ubjson_before_xgboost_reads_them(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=y), 5)
    data = bytes(booster.save_raw("json"))
    loaded = formats.load_booster("xgboost", "estimator.json", data)
    assert np.array_equal(loaded.predict(xgb.DMatrix(X)), booster.predict(xgb.DMatrix(X)))
    document = json.loads(data)
    tree = document["learner"]["gradient_booster"]["model"]["trees"][0]
    tree["left_children"][0] = 10_000  # a child past the end: XGBoost would read out of bounds
    with pytest.raises(IntegrityError, match="not a complete, consistent XGBoost JSON model"):
        formats.load_booster("xgboost", "estimator.json", json.dumps(document).encode())
    for bad in (b"{", b'{"learner": 1}', b'{"a": 1, "a": 2}', b"{" + b"[" * 100_000):
        with pytest.raises(IntegrityError):
            formats.load_booster("xgboost", "estimator.json", bad)


def test_user_boosters_with_objectives_aidlc_cannot_serve_are_refused():
    X, y = iris()
    ranker = xgb.train({"objective": "rank:pairwise"}, xgb.DMatrix(X, label=y, group=[150]), 2)
    with pytest.raises(InvalidInput, match="objective 'rank:pairwise' cannot be served"):
        estimators.task_of("xgboost", ranker)
