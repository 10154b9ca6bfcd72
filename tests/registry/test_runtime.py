"""How imported models run: the thread limit at serve time, class indices from labels and from
scores, logits and probabilities read alike."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aidlc.errors import IntegrityError, InvalidInput
from aidlc.registry import runtime


class _Probe:
    """A model that records the native thread pools' sizes while it predicts."""

    seen: dict[str, int]

    def predict(self, X):
        from threadpoolctl import threadpool_info

        self.seen = {i["user_api"]: i["num_threads"] for i in threadpool_info()}
        return np.zeros(len(X))


def test_a_served_scikit_learn_model_predicts_with_one_native_thread():
    import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime)
    from threadpoolctl import threadpool_info

    cores = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp")
    if cores < 2:
        pytest.skip("one core: nothing to limit")
    served, batch = _Probe(), _Probe()
    schema = {"a": "Float64"}
    runtime.SklearnRuntime(served, ["a"], schema, "regression", None, single_threaded=True).run(
        {"a": [1.0]}, probabilities=False
    )
    runtime.SklearnRuntime(batch, ["a"], schema, "regression", None).run(
        {"a": [1.0]}, probabilities=False
    )
    assert served.seen["openmp"] == 1 and served.seen["blas"] == 1
    assert batch.seen["openmp"] == cores
    after = {i["user_api"]: i["num_threads"] for i in threadpool_info()}
    assert after["openmp"] == cores  # the limit ends with the call


class _Session:
    """ONNX Runtime's `run` for a graph whose outputs are given."""

    def __init__(self, outputs: dict[str, object]) -> None:
        self.outputs = outputs

    def run(self, names, feeds):
        return [self.outputs[n] for n in names]


def _graph(scores: np.ndarray, scores_are: str) -> runtime.OnnxRuntime:
    spec = {
        "inputs": [{"name": "x", "columns": ["a"], "elem": "float", "rank": 2}],
        "label": None,
        "scores": "s",
        "values": None,
        "scores_are": scores_are,
    }
    width = max(2, scores.shape[1])
    return runtime.OnnxRuntime(_Session({"s": scores}), spec, "classification", list(range(width)))


@settings(deadline=None, max_examples=200)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 20), st.integers(1, 5)),
        elements=st.floats(-30, 30, width=32),
    ),
    st.sampled_from(["logits", "probabilities"]),
)
def test_the_class_without_probabilities_is_the_class_with_them(scores, scores_are):
    if scores_are == "probabilities":
        scores = np.abs(scores) + 1e-3
        if scores.shape[1] > 1:
            scores = scores / scores.sum(axis=1, keepdims=True)
        else:
            scores = scores / (scores.max() + 1.0)
    graph = _graph(scores, scores_are)
    columns = {"a": [0.0] * len(scores)}
    fast, none = graph.run(columns, probabilities=False)
    slow, proba = graph.run(columns, probabilities=True)
    assert none is None and proba is not None
    assert np.array_equal(fast, slow)
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_labels_map_to_class_indices_and_an_unknown_label_is_an_integrity_error():
    spec = {
        "inputs": [{"name": "x", "columns": ["a"], "elem": "float", "rank": 2}],
        "label": "label",
        "scores": None,
        "values": None,
    }
    graph = runtime.OnnxRuntime(
        _Session({"label": np.array(["yes", "no", "yes"], dtype=object)}),
        spec,
        "classification",
        ["no", "yes"],
    )
    out, _ = graph.run({"a": [1.0, 2.0, 3.0]}, probabilities=False)
    assert out.tolist() == [1, 0, 1]
    odd = runtime.OnnxRuntime(
        _Session({"label": np.array(["maybe"], dtype=object)}),
        spec,
        "classification",
        ["no", "yes"],
    )
    with pytest.raises(IntegrityError, match="does not list"):
        odd.run({"a": [1.0]}, probabilities=False)


def test_a_null_for_a_text_or_integer_graph_input_is_refused_naming_the_field():
    spec = {
        "inputs": [
            {"name": "region", "columns": ["region"], "elem": "string", "rank": 2},
            {"name": "visits", "columns": ["visits"], "elem": "int64", "rank": 2},
        ],
        "label": None,
        "scores": None,
        "values": "v",
    }
    graph = runtime.OnnxRuntime(_Session({"v": np.zeros((1, 1))}), spec, "regression", None)
    with pytest.raises(InvalidInput, match="'region' is required"):
        graph.feeds({"region": [None], "visits": [1]})
    with pytest.raises(InvalidInput, match="'visits' is required"):
        graph.feeds({"region": ["north"], "visits": [None]})
    feeds = graph.feeds({"region": ["north"], "visits": [3]})
    assert feeds["region"].dtype == object and feeds["visits"].dtype == np.int64
