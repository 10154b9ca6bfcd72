"""Refusals of the skops audit at their edges: a score function beside a selector's score_func,
encrypted or inconsistent entries, an archive at its expansion limit."""

from __future__ import annotations

import copy
import io
import json
import struct
import zipfile
import zlib
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.feature_selection import SelectKBest, f_classif

from aidlc.registry import skopsaudit
from aidlc.registry.skopsaudit import audit_skops
from tests.registry.skops_files import X_SMALL, Y_CLASS, schema_nodes
from tests.registry.test_skopsaudit import _edit_schema, _node_of, _refusal, _small_model_file

_F_CLASSIF = "sklearn.feature_selection._univariate_selection.f_classif"


def test_a_score_function_under_another_key_of_a_selectors_state_is_refused() -> None:
    data = skops.io.dumps(SelectKBest(f_classif, k=2).fit(X_SMALL, Y_CLASS))

    def add_second_function(schema: dict[str, Any]) -> None:
        state = _node_of(schema, "sklearn.feature_selection._univariate_selection.SelectKBest")
        items = state["content"]["content"]
        extra = copy.deepcopy(items["score_func"])
        extra.pop("__id__", None)
        items["k"] = extra

    message = _refusal(_edit_schema(data, add_second_function))
    assert f"function reference {_F_CLASSIF} refused" in message
    assert "trusted only as the score_func of a univariate feature selector" in message


def _zip_with(flags: int, method: int, payload: bytes, declared: int) -> bytes:
    """A one-entry archive written by hand, its general purpose flags and sizes as given."""
    name = b"schema.json"
    sizes = (zlib.crc32(payload), len(payload), declared, len(name))
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, *sizes, 0)
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21, *sizes, 0, 0, 0, 0, 0, 0
    )
    body = local + name + payload
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name), len(body), 0)
    return body + central + name + end


def test_an_encrypted_entry_is_refused() -> None:
    data = _zip_with(0x1, zipfile.ZIP_STORED, b"{}", 2)
    assert _refusal(data) == "model.skops holds an encrypted entry"


def test_a_stored_entry_whose_sizes_disagree_is_refused() -> None:
    data = _zip_with(0, zipfile.ZIP_STORED, b"{}", 3)
    assert _refusal(data) == "model.skops is not a valid zip archive"


def test_an_archive_that_expands_past_the_limit_is_refused(monkeypatch) -> None:
    data = skops.io.dumps(SelectKBest(f_classif, k=2).fit(X_SMALL, Y_CLASS))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        expanded = sum(info.file_size for info in archive.infolist())
    monkeypatch.setattr(skopsaudit, "MAX_EXPANDED_BYTES", expanded)
    assert audit_skops(data).expanded == expanded
    monkeypatch.setattr(skopsaudit, "MAX_EXPANDED_BYTES", expanded - 1)
    assert f"would expand to more than {expanded - 1} bytes" in _refusal(data)


@pytest.mark.parametrize(
    ("module", "cls"), [("os", "path.join"), ("", "Popen"), ("subprocess", "")]
)
def test_a_node_whose_type_splits_otherwise_is_refused_naming_it(module: str, cls: str) -> None:
    def edit(schema: dict[str, Any]) -> None:
        node = next(n for n in schema_nodes(schema) if n["__loader__"] == "JsonNode")
        node.clear()
        node.update({"__class__": cls, "__module__": module, "__loader__": "ObjectNode"})

    message = _refusal(_edit_schema(_small_model_file(), edit))
    assert message == f"model.skops: schema.json names a type {module}.{cls}"


@pytest.mark.parametrize("name", [None, 5, "bit.PCG64"], ids=["missing", "number", "dotted"])
def test_a_generator_without_a_plain_bit_generator_name_is_refused(name: Any) -> None:
    data = skops.io.dumps({"rng": np.random.default_rng(5)})

    def edit(schema: dict[str, Any]) -> None:
        generator = _node_of(schema, "numpy.random._generator.Generator")
        state = generator["content"]["bit_generator"]["content"]["bit_generator"]
        if name is None:
            del state["content"]
        else:
            state["content"] = json.dumps(name)

    message = _refusal(_edit_schema(data, edit))
    assert message == "model.skops: a numpy Generator without a bit generator name"
