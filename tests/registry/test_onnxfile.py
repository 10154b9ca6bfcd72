"""ONNX files as users bring them: real exporters' models inspected and run; custom domains,
external data outside the model's directory, oversized and damaged files refused with InvalidInput."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from aidlc.errors import InvalidInput
from aidlc.registry import onnxfile
from aidlc.registry.onnxfile import (
    OnnxTensor,
    inspect_onnx,
    load_onnx_file,
    onnx_session,
)

# Paths the process opens while a test records them: an audit hook sees every open, by builtins,
# io, pathlib or os alike, so "never opened" does not depend on how the module reads files.
_recording: list[list[str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _recording and isinstance(args[0], (str, bytes, os.PathLike)):
        _recording[-1].append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@contextmanager
def opened_paths() -> Iterator[list[str]]:
    _recording.append([])
    try:
        yield _recording[-1]
    finally:
        _recording.pop()


# models ---------------------------------------------------------------------------------------


@cache
def mlp() -> onnx.ModelProto:
    """A single-tensor classifier as PyTorch and Keras export one: Gemm, Relu, Gemm, Softmax."""
    rng = np.random.default_rng(7)
    weights = [
        numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)
        for name, shape in (("w1", (8, 16)), ("b1", (16,)), ("w2", (16, 3)), ("b2", (3,)))
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["a"], name="relu"),
            helper.make_node("Gemm", ["a", "w2", "b2"], ["logits"], name="fc2"),
            helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1),
        ],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
        weights,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8, producer_name="pytorch"
    )
    onnx.checker.check_model(model)
    return model


def mlp_bytes() -> bytes:
    return mlp().SerializeToString()


def mlp_input(rows: int = 5) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(rows, 8)).astype(np.float32)


def copy_of(model: onnx.ModelProto) -> onnx.ModelProto:
    duplicate = onnx.ModelProto()
    duplicate.CopyFrom(model)
    return duplicate


def with_custom_node(model: onnx.ModelProto) -> onnx.ModelProto:
    """The MLP with its Relu replaced by an operator of a custom domain."""
    custom = copy_of(model)
    custom.graph.node[1].CopyFrom(
        helper.make_node("FastRelu", ["h"], ["a"], name="relu", domain="com.example")
    )
    custom.opset_import.append(helper.make_opsetid("com.example", 1))
    return custom


def if_model(then_domain: str) -> onnx.ModelProto:
    """y = If(flag, then: Neg(x) in `then_domain`, else: Identity(x))."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    then_branch = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["t"], name="inner", domain=then_domain)],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e"], name="other")],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])],
    )
    graph = helper.make_graph(
        [
            helper.make_node(
                "If",
                ["flag"],
                ["y"],
                name="branch",
                then_branch=then_branch,
                else_branch=else_branch,
            )
        ],
        "if",
        [helper.make_tensor_value_info("flag", TensorProto.BOOL, []), x],
        [y],
    )
    opsets = [helper.make_opsetid("", 17)]
    if then_domain:
        opsets.append(helper.make_opsetid(then_domain, 1))
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


@cache
def pipeline_case():
    """A scikit-learn pipeline fitted on a polars frame, converted with and without ZipMap."""
    import polars as pl
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 200
    age, income = rng.normal(40, 10, n), rng.normal(50, 15, n)
    income[::7] = np.nan
    city, plan = rng.choice(["paris", "oslo", "rome"], n), rng.choice(["basic", "pro"], n)
    frame = pl.DataFrame({"age": age, "income": income, "city": city, "plan": plan})
    target = ((age > 40) ^ (plan == "pro")).astype(int)
    classifier = LogisticRegression()
    numeric = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    prep = ColumnTransformer(
        [
            ("num", numeric, ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
        ]
    )
    pipeline = Pipeline([("prep", prep), ("clf", classifier)]).fit(frame, target)
    types = [(c, FloatTensorType([None, 1])) for c in ("age", "income")]
    types += [(c, StringTensorType([None, 1])) for c in ("city", "plan")]
    plain = convert_sklearn(
        pipeline, initial_types=types, options={id(classifier): {"zipmap": False}}
    )
    zipmap = convert_sklearn(pipeline, initial_types=types)
    return pipeline, frame, plain.SerializeToString(), zipmap.SerializeToString()


def feeds(frame) -> dict[str, np.ndarray]:
    columns = {c: frame[c].to_numpy().astype(np.float32).reshape(-1, 1) for c in ("age", "income")}
    columns |= {c: frame[c].to_numpy().astype(object).reshape(-1, 1) for c in ("city", "plan")}
    return columns


def save_external(model: onnx.ModelProto, directory: Path) -> Path:
    """The model saved as exporters do past 2 GiB: every tensor in weights.bin beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.onnx"
    onnx.save_model(
        copy_of(model),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    return path


def rewrite_external(path: Path, **values: str) -> None:
    """Change the external data entries of every initializer of the model file at `path`."""
    model = onnx.ModelProto.FromString(path.read_bytes())
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key in values:
                entry.value = values[entry.key]
    path.write_bytes(model.SerializeToString())


def refused(call, *args, **kwargs) -> str:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    return caught.value.message


# models from real exporters ---------------------------------------------------------------------


def test_sklearn_pipeline_inspects_one_input_per_column_with_labels_and_probabilities():
    _, _, plain, _ = pipeline_case()
    facts = inspect_onnx(plain)
    assert [(t.name, t.kind, t.elem, t.shape) for t in facts.inputs] == [
        ("age", "tensor", "float", (None, 1)),
        ("income", "tensor", "float", (None, 1)),
        ("city", "tensor", "string", (None, 1)),
        ("plan", "tensor", "string", (None, 1)),
    ]
    assert [(t.name, t.kind, t.elem, t.shape) for t in facts.outputs] == [
        ("label", "tensor", "int64", (None,)),
        ("probabilities", "tensor", "float", (None, 2)),
    ]
    assert facts.class_labels == [0, 1]
    assert facts.producer_name == "skl2onnx"
    assert set(facts.opsets) == {"", "ai.onnx.ml"}
    assert facts.size == len(plain)
    assert facts.nodes >= 5


def test_zipmap_probabilities_are_a_sequence_map_output():
    _, _, _, zipmap = pipeline_case()
    facts = inspect_onnx(zipmap)
    probabilities = facts.outputs[1]
    assert (probabilities.kind, probabilities.elem, probabilities.shape) == (
        "sequence_map",
        "int64",
        (),
    )
    assert facts.class_labels == [0, 1]


def test_sklearn_pipeline_session_predicts_as_the_pipeline():
    pipeline, frame, plain, _ = pipeline_case()
    labels, probabilities = onnx_session(plain).run(None, feeds(frame))
    assert (labels == pipeline.predict(frame)).all()
    assert np.allclose(probabilities, pipeline.predict_proba(frame), atol=1e-5)


def test_single_tensor_mlp_inspects_as_one_batch_input_and_runs():
    facts = inspect_onnx(mlp_bytes())
    assert facts.inputs == [OnnxTensor("input", "tensor", "float", (None, 8))]
    assert facts.outputs == [OnnxTensor("probabilities", "tensor", "float", (None, 3))]
    assert (facts.opsets, facts.ir_version, facts.nodes) == ({"": 17}, 8, 4)
    assert facts.class_labels is None
    assert json.loads(json.dumps(facts.to_json()))["inputs"][0]["shape"] == [None, 8]
    (probabilities,) = onnx_session(mlp_bytes()).run(None, {"input": mlp_input()})
    assert probabilities.shape == (5, 3)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_xgboost_converted_by_onnxmltools_inspects_with_the_ml_opset_and_class_labels():
    import onnxmltools
    import xgboost as xgb
    from onnxmltools.convert.common.data_types import FloatTensorType

    rng = np.random.default_rng(1)
    features = rng.normal(size=(120, 4)).astype(np.float32)
    target = (features[:, 0] + features[:, 1] > 0).astype(int)
    classifier = xgb.XGBClassifier(n_estimators=5, max_depth=3).fit(features, target)
    model = onnxmltools.convert_xgboost(
        classifier, initial_types=[("input", FloatTensorType([None, 4]))]
    )
    data = model.SerializeToString()
    facts = inspect_onnx(data)
    assert "ai.onnx.ml" in facts.opsets
    assert facts.class_labels == [0, 1]
    assert facts.inputs == [OnnxTensor("input", "tensor", "float", (None, 4))]
    labels, _ = onnx_session(data).run(None, {"input": features})
    assert (labels == classifier.predict(features)).all()


def test_session_runs_on_the_cpu_provider_only_with_the_threads_asked_for():
    session = onnx_session(mlp_bytes(), threads=2)
    assert session.get_providers() == ["CPUExecutionProvider"]
    options = session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)


# operator domains and structure ---------------------------------------------------------------


def test_custom_domain_in_the_main_graph_is_refused_naming_domain_node_and_op():
    message = refused(inspect_onnx, with_custom_node(mlp()).SerializeToString())
    assert "'com.example'" in message
    assert "node 'relu'" in message
    assert "op 'FastRelu'" in message


def test_custom_domain_only_inside_an_if_branch_is_refused():
    message = refused(inspect_onnx, if_model("com.example").SerializeToString())
    assert "'com.example'" in message
    assert "node 'inner'" in message


def test_if_model_with_default_domains_only_is_accepted():
    facts = inspect_onnx(if_model("").SerializeToString())
    assert facts.nodes == 3
    assert [t.name for t in facts.inputs] == ["flag", "x"]


def test_custom_domain_only_in_opset_imports_is_refused():
    model = copy_of(mlp())
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert "'com.microsoft'" in refused(inspect_onnx, model.SerializeToString())


def test_model_local_function_is_refused():
    model = copy_of(mlp())
    model.functions.append(
        helper.make_function(
            "local",
            "Double",
            ["x"],
            ["y"],
            [helper.make_node("Add", ["x", "x"], ["y"])],
            [helper.make_opsetid("", 17)],
        )
    )
    assert "model-local functions" in refused(inspect_onnx, model.SerializeToString())


def test_subgraphs_nested_past_the_depth_limit_are_refused():
    empty = helper.make_graph([], "empty", [], [])
    graph = empty
    for level in range(33):
        node = helper.make_node("If", ["flag"], [], then_branch=graph, else_branch=empty)
        graph = helper.make_graph([node], f"level{level}", [], [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert "nests subgraphs" in refused(inspect_onnx, model.SerializeToString())


def test_more_nodes_than_the_limit_are_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(onnxfile, "MAX_NODES", 3)
    assert "more than 3 nodes" in refused(inspect_onnx, mlp_bytes())


def test_input_that_is_not_a_tensor_is_refused():
    graph = helper.make_graph(
        [helper.make_node("SequenceLength", ["items"], ["count"])],
        "seq",
        [helper.make_tensor_sequence_value_info("items", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("count", TensorProto.INT64, [])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert "input 'items' is not a tensor" in refused(inspect_onnx, model.SerializeToString())


def test_output_without_a_shape_is_refused_by_the_checker():
    model = copy_of(mlp())
    model.graph.output[0].type.tensor_type.ClearField("shape")
    message = refused(inspect_onnx, model.SerializeToString())
    assert (
        message
        == "the model fails the ONNX checker: Field 'shape' of 'type' is required but missing."
    )


def test_checker_failure_is_refused_with_the_checkers_first_line():
    model = copy_of(mlp())
    model.graph.node[1].input[0] = "nowhere"
    message = refused(inspect_onnx, model.SerializeToString())
    assert message.startswith("the model fails the ONNX checker: ")
    assert "nowhere" in message
    assert "\n" not in message and len(message) < 300


def test_model_onnx_runtime_cannot_load_is_refused():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "strings",
        [helper.make_tensor_value_info("x", TensorProto.STRING, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, ["n"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    message = refused(onnx_session, model.SerializeToString())
    assert message.startswith("ONNX Runtime cannot load the model: ")
    assert "tensor(string)" in message


def test_session_refuses_custom_domains_and_external_references_without_inspection():
    assert "'com.example'" in refused(onnx_session, with_custom_node(mlp()).SerializeToString())
    # ONNX Runtime's tag for "read this tensor from process memory at offset"
    model = copy_of(mlp())
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "*/_ORT_MEM_ADDR_/*"), ("offset", "4096"), ("length", "512")):
        tensor.external_data.add(key=key, value=value)
    message = refused(onnx_session, model.SerializeToString())
    assert "tensor 'w1' refers to external data '*/_ORT_MEM_ADDR_/*'" in message
    assert "external data" in refused(inspect_onnx, model.SerializeToString())


# external data --------------------------------------------------------------------------------


def test_external_data_beside_the_model_is_inlined_and_predicts_the_same(tmp_path: Path):
    path = save_external(mlp(), tmp_path / "model")
    assert (tmp_path / "model" / "weights.bin").stat().st_size > 0
    data = load_onnx_file(path)
    loaded = onnx.ModelProto.FromString(data)
    assert all(
        t.data_location == TensorProto.DEFAULT and not t.external_data
        for t in loaded.graph.initializer
    )
    assert inspect_onnx(data).size == len(data)
    expected = onnx_session(mlp_bytes()).run(None, {"input": mlp_input()})[0]
    assert np.array_equal(onnx_session(data).run(None, {"input": mlp_input()})[0], expected)


def test_model_without_external_data_loads_byte_for_byte(tmp_path: Path):
    path = tmp_path / "model.onnx"
    path.write_bytes(mlp_bytes())
    assert load_onnx_file(path) == mlp_bytes()


def test_external_data_through_a_symlink_inside_the_directory_is_read(tmp_path: Path):
    path = save_external(mlp(), tmp_path / "model")
    (tmp_path / "model" / "weights.bin").rename(tmp_path / "model" / "blob")
    (tmp_path / "model" / "link.bin").symlink_to("blob")
    rewrite_external(path, location="link.bin")
    assert inspect_onnx(load_onnx_file(path)).nodes == 4


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink"])
def test_external_data_outside_the_directory_is_refused_without_being_opened(
    tmp_path: Path, where: str
):
    path = save_external(mlp(), tmp_path / "model")
    outside = tmp_path / "outside.bin"
    shutil.copy(tmp_path / "model" / "weights.bin", outside)
    location = {"parent": "../outside.bin", "absolute": str(outside), "symlink": "link.bin"}[where]
    (tmp_path / "model" / "link.bin").symlink_to(outside)
    rewrite_external(path, location=location)
    with opened_paths() as opened:
        message = refused(load_onnx_file, path)
    assert f"external data '{location}' is outside the model's directory" in message
    assert str(path) in opened  # the recorder sees the module's own reads
    assert not [p for p in opened if p.endswith(("outside.bin", "link.bin"))]


@pytest.mark.parametrize(
    ("offset", "length"), [("0", "100000"), ("100000", "4"), ("-4", "4"), ("0x10", "4")]
)
def test_external_data_range_outside_the_file_is_refused(tmp_path: Path, offset: str, length: str):
    path = save_external(mlp(), tmp_path)
    rewrite_external(path, offset=offset, length=length)
    assert "external data 'weights.bin' is out of range" in refused(load_onnx_file, path)


def test_missing_external_data_is_refused(tmp_path: Path):
    path = save_external(mlp(), tmp_path)
    (tmp_path / "weights.bin").unlink()
    assert "external data 'weights.bin' is missing" in refused(load_onnx_file, path)


def test_model_with_external_data_over_the_limit_is_refused(tmp_path: Path):
    path = save_external(mlp(), tmp_path)
    limit = path.stat().st_size + 100  # the model file fits, its weights do not
    assert "over the limit" in refused(load_onnx_file, path, max_bytes=limit)


def test_inspect_refuses_a_model_that_still_refers_to_external_data(tmp_path: Path):
    path = save_external(mlp(), tmp_path)
    message = refused(inspect_onnx, path.read_bytes())
    assert "refers to external data 'weights.bin'" in message


# size and damaged files -----------------------------------------------------------------------


def test_file_over_the_limit_is_refused_without_being_read(tmp_path: Path):
    path = tmp_path / "model.onnx"
    path.write_bytes(mlp_bytes())
    with opened_paths() as opened:
        message = refused(load_onnx_file, path, max_bytes=100)
    assert "over the limit of 100 bytes" in message
    assert str(path) not in opened


def test_bytes_over_the_limit_are_refused():
    assert "over the limit of 100 bytes" in refused(inspect_onnx, mlp_bytes(), max_bytes=100)


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00garbage that is not protobuf\xff" * 20, mlp_bytes()[: len(mlp_bytes()) // 2]],
    ids=["empty", "garbage", "truncated"],
)
def test_not_a_model_is_refused(tmp_path: Path, content: bytes):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    assert "model.onnx is not an ONNX model" in refused(load_onnx_file, path)
    assert "not an ONNX model" in refused(inspect_onnx, content)


def test_directory_or_missing_path_is_refused(tmp_path: Path):
    assert "is not a regular file" in refused(load_onnx_file, tmp_path)
    assert "cannot be read" in refused(load_onnx_file, tmp_path / "absent.onnx")


@cache
def fuzz_targets() -> tuple[bytes, ...]:
    external = copy_of(mlp())
    onnx.external_data_helper.convert_model_to_external_data(
        external, location="w.bin", size_threshold=0
    )
    return (
        mlp_bytes(),
        if_model("").SerializeToString(),
        pipeline_case()[3],
        external.SerializeToString(),
    )


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_model_bytes_give_facts_or_invalid_input_only(data: st.DataObject):
    damaged = bytearray(data.draw(st.sampled_from(fuzz_targets())))
    positions = st.integers(0, len(damaged) - 1)
    for position, value in data.draw(
        st.lists(st.tuples(positions, st.integers(0, 255)), max_size=8)
    ):
        damaged[position] = value
    damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    try:
        inspect_onnx(bytes(damaged))
    except InvalidInput:
        pass
