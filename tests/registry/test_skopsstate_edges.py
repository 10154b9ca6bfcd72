"""Where a decision tree's state may stand: only as the tree_ of a decision tree estimator, and
inside any composition that holds one."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from aidlc.errors import InvalidInput
from aidlc.registry.skopsaudit import audit_skops
from tests.registry.skops_files import X_SMALL, Y_CLASS, rewrite, schema_nodes

_TREE = "sklearn.tree._tree.Tree"
_CLASSIFIER = "sklearn.tree._classes.DecisionTreeClassifier"


def _tree_file() -> bytes:
    return skops.io.dumps(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_SMALL, Y_CLASS))


def _classifier(schema: dict[str, Any]) -> dict[str, Any]:
    return next(n for n in schema_nodes(schema) if n.get("__class__") == "DecisionTreeClassifier")


def _refusal(data: bytes) -> str:
    with pytest.raises(InvalidInput) as refused:
        audit_skops(data, name="model.skops")
    return refused.value.message


def test_a_tree_under_another_attribute_of_a_decision_tree_is_refused() -> None:
    def move(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        state = _classifier(schema)["content"]["content"]
        state["other_tree_"] = state.pop("tree_")

    message = _refusal(rewrite(_tree_file(), move))
    assert (
        message == f"model.skops: {_TREE} is refused outside the tree_ of a decision tree estimator"
    )


def test_a_tree_as_the_tree_of_an_estimator_that_is_no_decision_tree_is_refused() -> None:
    def rename(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        node = _classifier(schema)
        node["__module__"], node["__class__"] = (
            "sklearn.linear_model._logistic",
            "LogisticRegression",
        )

    message = _refusal(rewrite(_tree_file(), rename))
    assert (
        message == f"model.skops: {_TREE} is refused outside the tree_ of a decision tree estimator"
    )


@pytest.mark.parametrize(
    "model",
    [
        make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=3, random_state=0)),
        BaggingClassifier(DecisionTreeClassifier(max_depth=3), n_estimators=2, random_state=0),
    ],
    ids=["pipeline", "bagging"],
)
def test_a_decision_tree_inside_a_composition_passes_the_audit(model: Any) -> None:
    audit = audit_skops(skops.io.dumps(model.fit(X_SMALL, Y_CLASS)))
    assert {_TREE, _CLASSIFIER} <= audit.types


def test_a_tree_wider_than_its_forest_is_refused_naming_the_forest() -> None:
    forest = RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0)
    data = skops.io.dumps(forest.fit(X_SMALL, Y_CLASS))
    width = X_SMALL.shape[1]

    def narrow(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        node = next(
            n for n in schema_nodes(schema) if n.get("__class__") == "RandomForestClassifier"
        )
        attribute = node["content"]["content"]["n_features_in_"]
        attribute["content"] = json.dumps(width - 1)
        attribute.pop("__id__", None)  # skops shares the nodes of small ints by id

    message = _refusal(rewrite(data, narrow))
    assert message == (
        f"model.skops: {_TREE} has {width} features but its RandomForestClassifier "
        f"takes {width - 1}"
    )
