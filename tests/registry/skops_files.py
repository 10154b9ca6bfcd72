"""Shared set-up for the skops audit and fitted-state tests: a small matrix and its labels, the
round trip through aidlc's loader, and skops archives rebuilt with edited entries.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse
import skops.io
from hypothesis import HealthCheck, settings

from aidlc.registry.skopsaudit import load_skops

_RNG = np.random.default_rng(7)
# positive values: some transformers (NMF, chi2-based ones, Box-Cox) refuse negative input
X_SMALL = np.abs(_RNG.normal(size=(40, 4))) + 0.1
Y_CLASS = np.array([0, 1] * 20)
Y_REGRESS = X_SMALL[:, 0] * 2 + _RNG.normal(size=40) * 0.1
_OUTPUTS = ("predict", "predict_proba", "decision_function", "transform", "score_samples")

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outputs(model: Any, X: Any) -> dict[str, Any]:
    """What each prediction method returns (or the exception type it raises) on X."""
    result: dict[str, Any] = {}
    for method in _OUTPUTS:
        if not hasattr(model, method):
            continue
        try:
            value = getattr(model, method)(X)
        except Exception as exc:
            result[method] = type(exc)
            continue
        result[method] = value.toarray() if scipy.sparse.issparse(value) else np.asarray(value)
    return result


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, type) or isinstance(actual, type):
        return actual is expected
    if expected.shape != actual.shape:
        return False
    if expected.dtype.kind in "fc":
        return bool(np.allclose(actual, expected, rtol=1e-12, atol=1e-12, equal_nan=True))
    return bool(np.array_equal(actual, expected))


def round_trip(model: Any, X: Any) -> Any:
    """Save `model` with skops, load it through aidlc, and check it predicts the same on X."""
    data = skops.io.dumps(model)
    twin = copy.deepcopy(model)
    loaded = load_skops(data, name="model.skops")
    assert type(loaded) is type(model)
    # all three start from the saved state, random state included
    expected, again, actual = _outputs(model, X), _outputs(twin, X), _outputs(loaded, X)
    assert expected.keys() == actual.keys()
    for method, value in expected.items():
        # a method drawing from NumPy's global random state (BernoulliRBM.score_samples)
        # answers differently on an exact copy too: only the others must match
        if _equal(value, again[method]):
            assert _equal(value, actual[method]), method
    return loaded


def schema_nodes(value: Any) -> list[dict[str, Any]]:
    """Every node dict of a schema."""
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__loader__" in item:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    """The same skops archive with some entries replaced or added."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    entries.update(replace)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
    return out.getvalue()


def rewrite(data: bytes, edit: Callable[[dict[str, Any], dict[str, np.ndarray]], None]) -> bytes:
    """The archive with its schema and .npy arrays changed by `edit`, in place."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
        arrays = {
            n: np.load(io.BytesIO(archive.read(n)), allow_pickle=False)
            for n in archive.namelist()
            if n.endswith(".npy")
        }
    edit(schema, arrays)
    replace = {"schema.json": json.dumps(schema).encode()}
    for entry, array in arrays.items():
        out = io.BytesIO()
        np.save(out, array, allow_pickle=False)
        replace[entry] = out.getvalue()
    return rezip(data, replace)
