"""The model file as aidlc reads it: a file at the size limit, behind a symlink, swapped or grown
while it is read, and the messages that name what was refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import helper

from aidlc.registry import onnxfile
from aidlc.registry.onnxfile import inspect_onnx, load_onnx_file
from tests.registry.test_onnxfile import mlp_bytes, refused


def test_a_file_of_exactly_the_limit_loads(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(mlp_bytes())
    assert load_onnx_file(path, max_bytes=len(mlp_bytes())) == mlp_bytes()
    assert inspect_onnx(mlp_bytes(), max_bytes=len(mlp_bytes())).size == len(mlp_bytes())


def test_a_file_over_the_limit_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(mlp_bytes())
    message = refused(load_onnx_file, path, max_bytes=len(mlp_bytes()) - 1)
    assert str(path) in message
    assert "over the limit" in message


def test_a_model_path_that_is_a_symlink_to_the_model_loads(tmp_path: Path) -> None:
    (tmp_path / "real.onnx").write_bytes(mlp_bytes())
    (tmp_path / "model.onnx").symlink_to("real.onnx")
    assert load_onnx_file(tmp_path / "model.onnx") == mlp_bytes()


def test_a_missing_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    message = refused(load_onnx_file, tmp_path / "absent.onnx")
    assert "absent.onnx cannot be read: No such file or directory" in message


def _while_opening(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    """Make `change(path)` happen after the file is checked and before it is opened: another
    process writing the file at that moment."""
    original = onnxfile._open_regular

    def open_after_change(path: Path, *args: Any, **kwargs: Any) -> Any:
        change(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(onnxfile, "_open_regular", open_after_change)


def test_a_file_swapped_after_its_checks_is_refused_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(mlp_bytes())

    def swap(target: Path) -> None:
        other = tmp_path / "other.onnx"
        other.write_bytes(mlp_bytes())
        other.replace(target)

    _while_opening(monkeypatch, swap)
    assert f"{path} changed while it was being read" in refused(load_onnx_file, path)


def test_a_file_that_grows_while_it_is_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(mlp_bytes())

    def grow(target: Path) -> None:
        with target.open("ab") as file:
            file.write(b"\0" * 10)

    _while_opening(monkeypatch, grow)
    assert f"{path} changed while it was being read" in refused(load_onnx_file, path)


def _nested_ifs(levels: int) -> bytes:
    empty = helper.make_graph([], "empty", [], [])
    graph = empty
    for level in range(levels):
        node = helper.make_node("If", ["flag"], [], then_branch=graph, else_branch=empty)
        graph = helper.make_graph([node], f"level{level}", [], [])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_subgraphs_nested_to_the_depth_limit_are_not_refused_for_nesting() -> None:
    assert "nests subgraphs" in refused(inspect_onnx, _nested_ifs(33))
    # deep enough to pass the walk: what refuses it is the checker, for the If without outputs
    assert "fails the ONNX checker" in refused(inspect_onnx, _nested_ifs(32))


def test_as_many_nodes_as_the_limit_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxfile, "MAX_NODES", 4)
    assert inspect_onnx(mlp_bytes()).nodes == 4


def test_a_model_with_training_information_is_refused() -> None:
    model = onnx.load_from_string(mlp_bytes())
    model.training_info.append(onnx.TrainingInfoProto())
    message = refused(inspect_onnx, model.SerializeToString())
    assert message == "models with training information are not supported"
