"""MLflow model directories are read without opening a pickle or running code: the file to load,
its safe format and the declared facts, or a clear refusal.
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aidlc.errors import InvalidInput
from aidlc.registry.mlflowdir import (
    MAX_MLMODEL_BYTES,
    SignatureColumn,
    check_signature,
    is_mlflow_dir,
    read_mlflow_dir,
)

# Values that must never reach the facts: the example rows may hold personal data.
EXAMPLE = pd.DataFrame(
    {
        "income": [73519.8125, 61234.5625, 88001.0625, 45012.3125],
        "age": [918273645, 918273646, 918273647, 918273648],
        "plan": ["alice@example.org", "bob@example.org", "carol@example.org", "dan@example.org"],
    }
)
TARGET = [0, 1, 0, 1]
PINS = ["scikit-learn==1.9.1", "skops==0.16.0"]
CONTRACT = {"income": "float", "age": "int", "plan": "category", "churned": "bool"}
FEATURES = ["income", "age", "plan"]


class Marker:
    """A pickle whose loading creates a file: proof of whether anything unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Directories written once by the real MLflow, one per flavour and serialization."""
    import lightgbm as lgb
    import mlflow
    import mlflow.lightgbm
    import mlflow.onnx
    import mlflow.sklearn
    import mlflow.xgboost
    import xgboost as xgb
    from mlflow.models import infer_signature
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("mlflow")
    numeric = EXAMPLE[["income", "age"]]
    dirs = {name: root / name for name in ("skops", "cloudpickle", "xgb", "xgb-json", "booster")}
    dirs |= {name: root / name for name in ("lgbm-skops", "lgbm-pickle", "onnx")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's hints about integer columns and pip versions
        logistic = LogisticRegression(max_iter=5).fit(numeric, TARGET)
        mlflow.sklearn.save_model(
            logistic,
            dirs["skops"],
            signature=infer_signature(EXAMPLE, TARGET),
            input_example=EXAMPLE,
            pip_requirements=PINS,
        )
        mlflow.sklearn.save_model(
            logistic, dirs["cloudpickle"], serialization_format="cloudpickle", pip_requirements=PINS
        )
        booster = xgb.XGBClassifier(n_estimators=2).fit(numeric, TARGET)
        mlflow.xgboost.save_model(booster, dirs["xgb"], pip_requirements=PINS)
        mlflow.xgboost.save_model(
            booster, dirs["xgb-json"], model_format="json", pip_requirements=PINS
        )
        params = {"verbose": -1, "min_data_in_leaf": 1}
        trained = lgb.train(params, lgb.Dataset(numeric, TARGET), num_boost_round=2)
        mlflow.lightgbm.save_model(trained, dirs["booster"], pip_requirements=PINS)
        wrapper = lgb.LGBMClassifier(n_estimators=2, verbose=-1, min_child_samples=1)
        wrapper.fit(numeric, TARGET)
        mlflow.lightgbm.save_model(wrapper, dirs["lgbm-skops"], pip_requirements=PINS)
        mlflow.lightgbm.save_model(
            wrapper, dirs["lgbm-pickle"], serialization_format="cloudpickle", pip_requirements=PINS
        )
        # eight float features, so the tensor signature is eight wide
        wide = np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32)
        onnx_model = to_onnx(LogisticRegression().fit(wide, TARGET * 2), wide)
        mlflow.onnx.save_model(
            onnx_model, dirs["onnx"], signature=infer_signature(wide), pip_requirements=PINS
        )
        with pytest.MonkeyPatch.context() as env:
            env.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
            env.setenv("MLFLOW_TRACKING_URI", (root / "mlruns").as_uri())
            with mlflow.start_run() as run:
                mlflow.sklearn.log_model(logistic, name="churn", pip_requirements=PINS)
        (logged,) = (root / "mlruns").glob("*/models/*/artifacts/MLmodel")
        dirs["logged"] = logged.parent
        dirs["run_id"] = Path(run.info.run_id)
    return dirs


def copy_of(source: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None] | None = None):
    """A copy of an MLflow directory, its MLmodel changed by `edit`."""
    target = tmp_path / source.name
    shutil.copytree(source, target)
    if edit is not None:
        document = yaml.safe_load((target / "MLmodel").read_text())
        edit(document)
        (target / "MLmodel").write_text(yaml.safe_dump(document))
    return target


def refused(directory: Path) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        read_mlflow_dir(directory)
    return caught.value


# --- what is read ------------------------------------------------------------------------------


def test_skops_sklearn_directory_names_its_file_and_declared_facts(saved):
    model = read_mlflow_dir(saved["skops"])

    assert (model.flavor, model.artifact_format, model.model_class) == ("sklearn", "skops", None)
    assert model.artifact == saved["skops"].resolve() / "model.skops"
    assert model.directory == saved["skops"].resolve()
    assert model.signature_inputs == [
        SignatureColumn("income", "double", True),
        SignatureColumn("age", "long", True),
        SignatureColumn("plan", "string", True),
    ]
    facts = model.facts
    assert facts["mlflow_version"] == "3.18.0"
    assert facts["flavor"] == "sklearn"
    assert facts["flavor_version"] == "1.9.1"
    assert facts["serialization_format"] == "skops"
    assert facts["python_version"].count(".") == 2
    assert {"model_uuid", "utc_time_created"} <= set(facts)
    assert "run_id" not in facts  # saved outside a run
    assert [spec["name"] for spec in facts["signature"]["inputs"]] == FEATURES
    assert facts["signature"]["outputs"] == [{"type": "long", "required": True}]
    assert facts["input_example"] == {"columns": FEATURES, "rows": 4}
    assert set(PINS) <= set(facts["requirements"])
    assert facts["artifact"] == "model.skops"
    assert facts["artifact_size"] == (saved["skops"] / "model.skops").stat().st_size


def test_facts_hold_the_example_shape_but_none_of_its_values(saved):
    text = json.dumps(read_mlflow_dir(saved["skops"]).facts)

    for value in EXAMPLE.to_numpy().ravel():
        assert str(value) not in text
    assert "example.org" not in text


def test_a_model_logged_in_a_run_carries_its_run_id(saved):
    model = read_mlflow_dir(saved["logged"])

    assert model.facts["run_id"] == str(saved["run_id"])
    assert model.artifact_format == "skops"
    # MLflow 3 writes the run's artifact URI into MLmodel; it is a record, never a path to read
    assert yaml.safe_load((saved["logged"] / "MLmodel").read_text())["artifact_path"].startswith(
        "file://"
    )


@pytest.mark.parametrize(
    ("name", "artifact", "artifact_format", "model_class"),
    [
        ("xgb", "model.ubj", "xgboost-ubj", "xgboost.sklearn.XGBClassifier"),
        ("xgb-json", "model.json", "xgboost-json", "xgboost.sklearn.XGBClassifier"),
        ("booster", "model.lgb", "lightgbm-text", "lightgbm.basic.Booster"),
        ("lgbm-skops", "model.skops", "lightgbm-skops", "lightgbm.sklearn.LGBMClassifier"),
        ("onnx", "model.onnx", "onnx", None),
    ],
)
def test_each_safe_flavour_names_its_file_and_format(
    saved, name, artifact, artifact_format, model_class
):
    model = read_mlflow_dir(saved[name])

    assert model.artifact == saved[name].resolve() / artifact
    assert (model.artifact_format, model.model_class) == (artifact_format, model_class)
    assert model.facts["artifact"] == artifact
    assert model.facts["flavor_version"]
    assert model.facts["requirements"][0].startswith("mlflow==")
    # MLflow records serialization_format: skops for a Booster it writes as text
    assert ("serialization_format" in model.facts) == artifact_format.endswith("skops")


def test_onnx_is_preferred_when_a_directory_holds_several_flavours(saved, tmp_path):
    def add_onnx(document):
        document["flavors"]["onnx"] = {"code": None, "data": "model.onnx"}

    directory = copy_of(saved["xgb"], tmp_path, add_onnx)
    shutil.copy(saved["onnx"] / "model.onnx", directory / "model.onnx")

    assert read_mlflow_dir(directory).flavor == "onnx"


OPENED: list[str] | None = None  # paths opened while a test records them


def record_open(event: str, args: tuple) -> None:
    if event == "open" and OPENED is not None and isinstance(args[0], str | bytes | os.PathLike):
        OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(record_open)  # an audit hook stays for the process, so it records only on demand


def test_only_mlmodel_the_artifact_requirements_and_example_are_opened(saved, tmp_path):
    global OPENED
    directory = copy_of(saved["skops"], tmp_path)
    shutil.copy(saved["cloudpickle"] / "model.pkl", directory / "model.pkl")
    OPENED = []
    try:
        read_mlflow_dir(directory)
        opened = {Path(path).name for path in OPENED if Path(path).is_relative_to(directory)}
    finally:
        OPENED = None

    assert opened == {"MLmodel", "model.skops", "requirements.txt", "input_example.json"}
    assert {path.name for path in directory.iterdir()} - opened == {
        "model.pkl", "conda.yaml", "python_env.yaml", "serving_input_example.json"
    }  # fmt: skip


def test_is_mlflow_dir_wants_a_directory_holding_mlmodel(saved, tmp_path):
    assert is_mlflow_dir(saved["onnx"])
    assert not is_mlflow_dir(saved["onnx"] / "model.onnx")
    assert not is_mlflow_dir(tmp_path)


# --- pickle and code ---------------------------------------------------------------------------


def test_cloudpickle_sklearn_is_refused_without_opening_the_pickle(saved, tmp_path):
    directory = copy_of(saved["cloudpickle"], tmp_path)
    marker = tmp_path / "unpickled"
    (directory / "model.pkl").write_bytes(pickle.dumps(Marker(marker)))

    error = refused(directory)

    assert "serialized with cloudpickle; aidlc never loads pickle" in error.message
    assert 'serialization_format="skops"' in error.hint
    assert "skl2onnx" in error.hint
    assert not marker.exists()


def test_pickled_lgbm_classifier_is_refused_with_the_booster_hint(saved):
    error = refused(saved["lgbm-pickle"])

    assert "cloudpickle" in error.message
    assert "model.booster_" in error.hint and "onnxmltools" in error.hint


@pytest.mark.parametrize(
    ("serialization", "tail"),
    [
        ("pickle", "serialized with pickle; aidlc never loads pickle"),
        (None, "serialized with cloudpickle; aidlc never loads pickle"),
        ("joblib-ish", "serialized with joblib-ish; aidlc loads only skops"),
    ],
)
def test_a_sklearn_flavour_not_saved_with_skops_is_refused_naming_its_format(
    saved, tmp_path, serialization, tail
):
    def reformat(document):
        sklearn = document["flavors"]["sklearn"]
        sklearn.pop("serialization_format", None)
        if serialization is not None:
            sklearn["serialization_format"] = serialization

    error = refused(copy_of(saved["skops"], tmp_path, reformat))

    assert error.message == f"MLmodel's sklearn flavour is {tail}"


def test_a_lightgbm_flavour_of_another_class_is_refused_naming_it(saved, tmp_path):
    def other_class(document):
        document["flavors"]["lightgbm"]["model_class"] = "lightgbm.dask.DaskLGBMClassifier"

    error = refused(copy_of(saved["lgbm-skops"], tmp_path, other_class))

    assert error.message == (
        "MLmodel's lightgbm flavour holds a lightgbm.dask.DaskLGBMClassifier, "
        "which aidlc does not load"
    )
    assert "model.booster_" in error.hint


@pytest.mark.parametrize("model_class", [None, "lightgbm.basic.Booster"])
def test_a_lightgbm_booster_is_read_as_text_whatever_its_serialization(
    saved, tmp_path, model_class
):
    def declare(document):
        lightgbm = document["flavors"]["lightgbm"]
        lightgbm.pop("model_class", None)
        if model_class is not None:
            lightgbm["model_class"] = model_class
        lightgbm["serialization_format"] = "cloudpickle"

    model = read_mlflow_dir(copy_of(saved["booster"], tmp_path, declare))

    assert (model.artifact_format, model.model_class) == ("lightgbm-text", model_class)


def test_a_directory_without_any_flavour_is_refused_saying_so(saved, tmp_path):
    def no_flavours(document):
        document["flavors"] = {}

    error = refused(copy_of(saved["onnx"], tmp_path, no_flavours))

    assert "MLmodel has no flavour aidlc imports (it has: none)" in error.message


def test_a_pickle_stream_behind_a_safe_name_is_refused_unread(saved, tmp_path):
    directory = copy_of(saved["onnx"], tmp_path)
    marker = tmp_path / "unpickled"
    (directory / "model.onnx").write_bytes(pickle.dumps(Marker(marker)))

    assert "pickle stream" in refused(directory).message
    assert not marker.exists()


def test_an_artifact_named_like_a_pickle_is_refused(saved, tmp_path):
    def point_at_joblib(document):
        document["flavors"]["onnx"]["data"] = "model.joblib"

    directory = copy_of(saved["onnx"], tmp_path, point_at_joblib)
    shutil.copy(directory / "model.onnx", directory / "model.joblib")

    assert "model.joblib is a pickle file" in refused(directory).message


def test_a_flavour_that_ships_code_is_refused(saved, tmp_path):
    def ship_code(document):
        document["flavors"]["xgboost"]["code"] = "some_dir"

    error = refused(copy_of(saved["xgb"], tmp_path, ship_code))

    assert "ships its own Python code (code: some_dir)" in error.message


def test_legacy_xgboost_binary_is_refused_with_the_ubjson_hint(saved, tmp_path):
    def legacy(document):
        document["flavors"]["xgboost"]["model_format"] = "xgb"

    error = refused(copy_of(saved["xgb"], tmp_path, legacy))

    assert 'booster.save_model("model.ubj")' in error.hint


@pytest.mark.parametrize(("name", "claimed"), [("xgb", "json"), ("xgb-json", "ubj")])
def test_xgboost_format_that_disagrees_with_the_file_is_refused(saved, tmp_path, name, claimed):
    def claim(document):
        document["flavors"]["xgboost"]["model_format"] = claimed

    assert "does not start like one" in refused(copy_of(saved[name], tmp_path, claim)).message


def test_only_unsupported_flavours_are_refused_listing_them(saved, tmp_path):
    def pytorch(document):
        document["flavors"] = {"python_function": {"loader_module": "x"}, "pytorch": {}}

    error = refused(copy_of(saved["onnx"], tmp_path, pytorch))

    assert "python_function, pytorch" in error.message
    assert "export the model to ONNX" in error.hint


# --- paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../outside.onnx", "/etc/passwd", "sub/../../outside.onnx"])
def test_artifact_paths_that_leave_the_directory_are_refused(saved, tmp_path, path):
    def point(document):
        document["flavors"]["onnx"]["data"] = path

    shutil.copy(saved["onnx"] / "model.onnx", tmp_path / "outside.onnx")
    error = refused(copy_of(saved["onnx"], tmp_path, point))

    assert f"'{path}'" in error.message and "escapes the model directory" in error.message


@pytest.mark.parametrize(
    "path",
    ["..\\outside.onnx", "C:\\outside.onnx", "C:outside.onnx", "model.onnx\0", "", "x" * 4097],
    ids=["backslash-parent", "windows-drive", "drive-relative", "nul", "empty", "too-long"],
)
def test_artifact_paths_that_could_leave_the_directory_elsewhere_are_refused(saved, tmp_path, path):
    def point(document):
        document["flavors"]["onnx"]["data"] = path

    error = refused(copy_of(saved["onnx"], tmp_path, point))

    assert "(flavors.onnx.data) escapes the model directory" in error.message


def test_an_artifact_path_of_the_longest_length_allowed_is_read(saved, tmp_path):
    directory = copy_of(saved["onnx"], tmp_path)
    # 4096 characters, most of them the current directory, name the same file
    path = "./" * 2043 + "model.onnx"
    assert len(path) == 4096

    def point(document):
        document["flavors"]["onnx"]["data"] = path

    edited = copy_of(directory, tmp_path / "edited", point)
    assert read_mlflow_dir(edited).artifact == (edited / "model.onnx").resolve()


def test_a_symlink_out_of_the_directory_is_refused(saved, tmp_path):
    directory = copy_of(saved["onnx"], tmp_path)
    outside = tmp_path / "outside.onnx"
    shutil.copy(directory / "model.onnx", outside)
    (directory / "model.onnx").unlink()
    os.symlink(outside, directory / "model.onnx")

    assert "'model.onnx' (flavors.onnx.data) escapes" in refused(directory).message


def test_a_missing_artifact_is_refused(saved, tmp_path):
    directory = copy_of(saved["onnx"], tmp_path)
    (directory / "model.onnx").unlink()

    assert "'model.onnx' is missing" in refused(directory).message


def test_an_input_example_outside_the_directory_is_refused(saved, tmp_path):
    def point(document):
        document["saved_input_example_info"]["artifact_path"] = "../example.json"

    (tmp_path / "example.json").write_text('{"columns": ["a"], "data": [[1]]}')

    assert "'../example.json'" in refused(copy_of(saved["skops"], tmp_path, point)).message


def test_broken_optional_files_are_left_out_of_the_facts(saved, tmp_path):
    directory = copy_of(saved["skops"], tmp_path)
    (directory / "input_example.json").write_text('{"columns": ["a"], "columns": ["b"]}')
    (directory / "requirements.txt").write_bytes(b"\xff\xfe junk")

    facts = read_mlflow_dir(directory).facts

    assert "input_example" not in facts and "requirements" not in facts
    assert facts["signature"]


# --- malformed MLmodel -------------------------------------------------------------------------


MALFORMED = {
    "not yaml": b"flavors: [unclosed\n  - {",
    "list at top": b"- flavors\n- onnx\n",
    "flavors a list": b"flavors: [onnx]\n",
    "no flavors": b"mlflow_version: 3.18.0\n",
    "binary junk": bytes(range(256)) * 4,
    "flavour a string": b"flavors:\n  onnx: model.onnx\n",
    "run_id a list": b"flavors:\n  onnx: {data: model.onnx}\nrun_id: [1, 2]\n",
    "signature not json": b"flavors:\n  onnx: {data: model.onnx}\nsignature: {inputs: '[{'}\n",
}


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_mlmodel_is_refused(saved, tmp_path, content):
    directory = copy_of(saved["onnx"], tmp_path)
    (directory / "MLmodel").write_bytes(content)

    refused(directory)


def test_python_tags_in_mlmodel_are_refused_and_never_run(saved, tmp_path):
    directory = copy_of(saved["onnx"], tmp_path)
    marker = tmp_path / "marker"
    (directory / "MLmodel").write_text(
        f'flavors: !!python/object/apply:os.system ["touch {marker}"]\n'
    )

    assert "not YAML that aidlc reads safely" in refused(directory).message
    assert not marker.exists()


def test_an_oversized_mlmodel_is_refused_before_parsing(saved, tmp_path):
    directory = copy_of(saved["onnx"], tmp_path)
    valid = (directory / "MLmodel").read_bytes()
    (directory / "MLmodel").write_bytes(valid + b"#" * MAX_MLMODEL_BYTES)

    assert "larger than" in refused(directory).message


def test_a_directory_without_mlmodel_is_refused(tmp_path):
    assert "no MLmodel file" in refused(tmp_path).message


# --- the signature against the contract --------------------------------------------------------


def test_a_signature_that_agrees_with_the_contract_passes(saved):
    check_signature(read_mlflow_dir(saved["skops"]), CONTRACT, FEATURES, dataset="customers")


def test_a_signature_type_that_disagrees_with_the_contract_is_refused(saved):
    contract = CONTRACT | {"plan": "int"}

    with pytest.raises(InvalidInput) as caught:
        check_signature(read_mlflow_dir(saved["skops"]), contract, FEATURES, dataset="customers")

    assert caught.value.message == (
        "MLflow's signature says 'plan' is string, but customers's contract says int"
    )


def test_a_signature_input_that_is_not_a_feature_is_refused(saved):
    with pytest.raises(InvalidInput, match="'plan', which is not among the features"):
        check_signature(
            read_mlflow_dir(saved["skops"]), CONTRACT, ["income", "age"], dataset="customers"
        )


def test_a_feature_missing_from_the_signature_is_refused(saved):
    contract = CONTRACT | {"tenure": "int"}

    with pytest.raises(InvalidInput, match="feature 'tenure' of customers is not in MLflow's"):
        check_signature(
            read_mlflow_dir(saved["skops"]), contract, [*FEATURES, "tenure"], dataset="customers"
        )


def test_a_tensor_signature_must_be_as_wide_as_the_features(saved):
    model = read_mlflow_dir(saved["onnx"])
    columns = {f"x{i}": "float" for i in range(8)}
    assert model.signature_inputs is None

    check_signature(model, columns, list(columns), dataset="wide")
    with pytest.raises(InvalidInput, match="takes 8 values per row, but aidlc sends 7 features"):
        check_signature(model, columns, list(columns)[:7], dataset="wide")


def test_an_unnamed_column_signature_must_be_as_long_as_the_features(saved, tmp_path):
    def positional(document):
        document["signature"]["inputs"] = json.dumps([{"type": "double"}] * 3)

    model = read_mlflow_dir(copy_of(saved["skops"], tmp_path, positional))

    check_signature(model, CONTRACT, FEATURES, dataset="customers")
    with pytest.raises(InvalidInput, match="takes 3 values per row, but aidlc sends 2"):
        check_signature(model, CONTRACT, ["income", "age"], dataset="customers")


def test_no_signature_means_nothing_to_check(saved):
    check_signature(read_mlflow_dir(saved["xgb"]), CONTRACT, FEATURES, dataset="customers")


# --- any content -------------------------------------------------------------------------------


KEYS = [
    "flavors", "onnx", "sklearn", "xgboost", "lightgbm", "python_function", "data",
    "pickled_model", "code", "serialization_format", "model_format", "model_class", "signature",
    "inputs", "outputs", "saved_input_example_info", "artifact_path", "mlflow_version", "run_id",
    "python_version", "utc_time_created",
]  # fmt: skip
WORDS = [
    "model.onnx", "model.skops", "model.ubj", "model.lgb", "input_example.json", "skops", "ubj",
    "json", "cloudpickle", "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier", "../x",
    "/etc/passwd", "", '[{"type": "double", "name": "a"}]', '[{"type": "long"}]',
    '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]',
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(WORDS),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
    ),
    max_leaves=30,
)


@pytest.fixture
def fuzz_dir(saved, tmp_path) -> Path:
    """A directory holding every file an MLmodel might name, for fuzzed MLmodels to point at."""
    directory = copy_of(saved["skops"], tmp_path)
    for name in ("onnx", "xgb", "booster"):
        for path in saved[name].glob("model.*"):
            shutil.copy(path, directory / path.name)
    return directory


def read_any(directory: Path, content: bytes) -> None:
    (directory / "MLmodel").write_bytes(content)
    try:
        model = read_mlflow_dir(directory)
    except InvalidInput:
        return
    json.dumps(model.facts, allow_nan=False)
    assert model.artifact.is_relative_to(model.directory) and model.artifact.is_file()
    try:
        check_signature(model, {"a": "float", "b": "int"}, ["a", "b"], dataset="d")
    except InvalidInput:
        pass


@settings(
    deadline=None, max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_bytes_as_mlmodel_give_a_model_or_invalid_input(fuzz_dir, content):
    read_any(fuzz_dir, content)


@settings(
    deadline=None, max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=st.dictionaries(st.sampled_from(KEYS), DOCUMENTS, max_size=8))
def test_any_yaml_shaped_like_mlmodel_gives_a_model_or_invalid_input(fuzz_dir, document):
    read_any(fuzz_dir, yaml.safe_dump(document).encode())
