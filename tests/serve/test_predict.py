"""The served model's fast paths agree with its plain, field-by-field paths on any input.

Serving checks, flags and predicts plain-number schemas a matrix at a time and predicts a
LogisticRegression with its own product; each of these must decide and answer exactly as the
general code does, which these property tests hold them to.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aidlc.serve.predict import InvalidRecords, ServedModel

SCHEMA = [
    {"name": "a", "dtype": "float", "nullable": True, "min": -10.0, "max": 10.0},
    {"name": "b", "dtype": "int", "nullable": False, "min": 0, "max": 100},
    {"name": "c", "dtype": "float", "nullable": True},
]


def _served(classes: int) -> tuple[ServedModel, ServedModel]:
    from sklearn.linear_model import LogisticRegression

    from aidlc.data.profile import profile_frame
    from aidlc.registry import formats
    from aidlc.registry.model import Bundle, LoadedModel, output_schema
    from aidlc.train.config import ImputeStep, ScaleStep
    from aidlc.train.preprocess import fit_preprocessor

    rng = np.random.default_rng(classes)
    n = 300
    df = pl.DataFrame(
        {
            "a": rng.normal(0, 3, n).clip(-9, 9),
            "b": rng.integers(0, 60, n).astype(float),
            "c": rng.normal(50, 10, n),
        }
    )
    steps = [ImputeStep(columns="numeric", strategy="median"), ScaleStep(columns="numeric")]
    pre = fit_preprocessor(steps, df, ["a", "b", "c"])
    X = pre.transform(df)
    y = np.digitize(X[:, 0] + X[:, 1] * 0.5 + rng.normal(0, 0.3, n), [0.0, 0.8][: classes - 1])
    kind = "sklearn.LogisticRegression"
    labels = ["no", "yes", "maybe"][:classes]
    bundle = Bundle(
        kind=kind,
        flavor=formats.flavor_of(kind),
        task="classification",
        target="y",
        classes=labels,
        preprocessing=pre.to_json(),
        estimator_file=formats.FLAVOR_FILES[formats.flavor_of(kind)],
        input_schema=SCHEMA,
        output_schema=output_schema("classification", "y", labels),
    )
    model = LoadedModel(bundle, pre, LogisticRegression(max_iter=500).fit(X, y))
    baseline = {"features": profile_frame(df).to_json()}
    fast = ServedModel("m", 1, "0" * 64, model, baseline, ood_z=2.0)
    slow = ServedModel("m", 1, "0" * 64, model, baseline, ood_z=2.0)
    for attribute in list(vars(slow)):
        if attribute in ("_plain", "_screen", "_linear") or attribute.endswith("_columns"):
            setattr(slow, attribute, None)
    assert fast._plain is not None and fast._screen is not None and fast._linear is not None
    return fast, slow


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "multiclass"])
def twins(request):
    return _served(request.param)


_VALUE = st.one_of(
    st.none(),
    st.integers(-200, 200),
    st.floats(-60, 60, allow_nan=False),
    st.booleans(),
    st.text(max_size=3),
    st.integers(2**53 - 2, 2**63 - 1),
    st.sampled_from([0, 100, 101, -10.0, 10.0, 10.000001, 2.5, 3.0]),
)
_RECORD = st.dictionaries(st.sampled_from(["a", "b", "c", "zz"]), _VALUE, max_size=4)
_CLEAN = st.fixed_dictionaries(
    {"a": st.one_of(st.none(), st.floats(-10, 10)), "b": st.integers(0, 100)},
    optional={"c": st.one_of(st.none(), st.floats(-1e6, 1e6))},
)


def _outcome(served: ServedModel, records):
    try:
        return "ok", [dict(row) for row in served.check(records, 50)]
    except InvalidRecords as exc:
        return "refused", exc.problems


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(st.one_of(_RECORD, _CLEAN), min_size=1, max_size=6))
def test_fast_checks_accept_and_refuse_exactly_what_the_field_pass_does(twins, records):
    fast, slow = twins
    assert _outcome(fast, records) == _outcome(slow, records)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(_CLEAN, min_size=1, max_size=20))
def test_fast_predictions_and_ood_flags_equal_the_general_path(twins, records):
    fast, slow = twins
    mine, theirs = fast.predict(fast.check(records, 50)), slow.predict(slow.check(records, 50))
    assert mine.predictions == theirs.predictions
    assert mine.ood == theirs.ood
    np.testing.assert_allclose(mine.anomaly, theirs.anomaly, rtol=1e-12, atol=1e-12)


def test_the_linear_path_equals_scikit_learn_on_many_rows(twins):
    from aidlc.train import estimators

    fast, _ = twins
    X = np.random.default_rng(1).normal(0, 2, (5000, 3))
    ours = fast._linear.predict(X)
    assert ours is not None
    np.testing.assert_array_equal(
        ours, estimators.predict(fast.model.bundle.kind, fast.model.estimator, X)
    )
    with_nan = X.copy()
    with_nan[3, 1] = np.nan
    assert fast._linear.predict(with_nan) is None  # scikit-learn decides what NaN means
