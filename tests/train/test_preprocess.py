"""Preprocessing: exact numbers per step, the stored JSON form, and refusals."""

from __future__ import annotations

import copy
import json
import math
import time
from collections import Counter

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aidlc.errors import ConfigError, IntegrityError, InvalidInput, ValidationFailed
from aidlc.train.config import DeriveStep, EncodeStep, ImputeStep, ScaleStep, parse_train_config
from aidlc.train.preprocess import Preprocessor, fit_preprocessor


def steps(yaml_list: str) -> list:
    """Steps as a config file writes them."""
    text = "dataset: d\ntarget: y\nmodel: {type: xgboost}\npreprocessing:\n" + yaml_list
    return parse_train_config(text).preprocessing


def round_trip(pre: Preprocessor) -> Preprocessor:
    """Through JSON text with sorted keys, as the model bundle stores it."""
    return Preprocessor.from_json(json.loads(json.dumps(pre.to_json(), sort_keys=True)))


NUMBERS = pl.DataFrame(
    {
        "a": [1.0, None, 3.0, 10.0, float("nan")],
        "b": [4, 4, 0, 2, 2],
        "flag": [True, False, None, True, True],
    }
)


# -- each step's numbers ------------------------------------------------------------------------


def test_no_steps_is_the_identity_on_numeric_features_as_float64():
    pre = fit_preprocessor([], NUMBERS, ["b", "flag", "a"])
    X = pre.transform(NUMBERS)
    assert X.dtype == np.float64 and X.shape == (5, 3) and X.flags["C_CONTIGUOUS"]
    expected = [[4, 1, 1], [4, 0, np.nan], [0, np.nan, 3], [2, 1, 10], [2, 1, np.nan]]
    np.testing.assert_array_equal(X, np.array(expected, dtype=float))
    assert pre.input_features == pre.output_features == ["b", "flag", "a"]
    assert pre.steps == [] and pre.categorical == []


def test_median_and_mean_impute_fill_nulls_nan_and_infinities():
    df = pl.DataFrame(
        {"a": [1.0, None, 3.0, 10.0, float("nan"), float("inf")], "b": [1, 2, 3, 4, 5, None]}
    )
    pre = fit_preprocessor(
        steps(
            "  - impute: {columns: [a], strategy: median}\n  - impute: {columns: [b], strategy: mean}\n"
        ),
        df,
        ["a", "b"],
    )
    assert pre.steps[0] == {
        "kind": "impute",
        "strategy": "median",
        "columns": [{"name": "a", "value": 3.0}],
    }
    assert pre.steps[1]["columns"] == [{"name": "b", "value": 3.0}]
    X = pre.transform(df)
    np.testing.assert_array_equal(X[:, 0], [1, 3, 3, 10, 3, 3])
    np.testing.assert_array_equal(X[:, 1], [1, 2, 3, 4, 5, 3])


def test_most_frequent_breaks_ties_by_the_smaller_value_and_constant_fills_as_told():
    df = pl.DataFrame({"n": [5.0, 2.0, 5.0, 2.0, None], "c": ["z", "y", None, "z", "y"]})
    pre = fit_preprocessor(
        steps(
            "  - impute: {columns: all, strategy: most_frequent}\n  - encode: {columns: [c], method: ordinal}\n"
        ),
        df,
        ["n", "c"],
    )
    assert pre.steps[0]["columns"] == [{"name": "n", "value": 2.0}, {"name": "c", "value": "y"}]
    np.testing.assert_array_equal(pre.transform(df), [[5, 1], [2, 0], [5, 0], [2, 1], [2, 0]])
    constant = fit_preprocessor(
        [
            ImputeStep(columns=["n"], strategy="constant", value=-1),
            ImputeStep(columns=["c"], strategy="constant", value="?"),
            EncodeStep(columns=["c"]),
        ],
        df,
        ["n", "c"],
    )
    assert constant.output_features == ["n", "c=y", "c=z", "c=?"]
    np.testing.assert_array_equal(constant.transform(df)[:, 0], [5, 2, 5, 2, -1])
    np.testing.assert_array_equal(constant.transform(df)[2], [5, 0, 0, 1])


def test_standard_scaling_equals_scikit_learn():
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    rng = np.random.default_rng(7)
    data = np.column_stack(
        [rng.normal(50, 10, 1000), rng.lognormal(0, 2, 1000), rng.integers(0, 5, 1000)]
    )
    df = pl.DataFrame({f"x{i}": data[:, i] for i in range(3)})
    for method, scaler in (
        ("standard", StandardScaler()),
        ("minmax", MinMaxScaler()),
        ("robust", RobustScaler()),
    ):
        pre = fit_preprocessor([ScaleStep(columns="numeric", method=method)], df, df.columns)
        np.testing.assert_allclose(
            pre.transform(df), scaler.fit_transform(data), rtol=0, atol=1e-12
        )


def test_a_constant_column_is_centred_but_not_scaled():
    df = pl.DataFrame({"k": [3.0, 3.0, 3.0]})
    for method in ("standard", "minmax", "robust"):
        pre = fit_preprocessor([ScaleStep(columns="all", method=method)], df, ["k"])
        assert pre.steps[0]["columns"] == [{"name": "k", "center": 3.0, "scale": 1.0}]
        np.testing.assert_array_equal(
            pre.transform(pl.DataFrame({"k": [3.0, 5.0]})), [[0.0], [2.0]]
        )
    # A spread of rounding noise (here subnormal) counts as none, instead of turning into inf.
    tiny = pl.DataFrame({"k": [0.0, 0.0, 1e-308, 3e-308]})
    pre = fit_preprocessor([ScaleStep(columns="all", method="robust")], tiny, ["k"])
    assert pre.steps[0]["columns"][0]["scale"] == 1.0
    assert np.isfinite(pre.transform(tiny)).all()


def test_a_scaled_value_that_overflows_is_missing():
    scale = {
        "kind": "scale",
        "method": "standard",
        "columns": [{"name": "k", "center": 0.0, "scale": 1e-300}],
    }
    pre = Preprocessor.from_json(
        {
            "format": 1,
            "input_features": ["k"],
            "categorical": [],
            "steps": [scale],
            "output_features": ["k"],
        }
    )
    np.testing.assert_allclose(
        pre.transform(pl.DataFrame({"k": [1e-301, 1e10]}))[:, 0], [0.1, np.nan]
    )


def test_onehot_keeps_the_most_frequent_categories_and_zeroes_the_rest():
    train = pl.DataFrame({"color": ["red", "blue", "red", "green", "blue", "amber", None, "red"]})
    pre = fit_preprocessor([EncodeStep(columns="categorical", max_categories=3)], train, ["color"])
    # red 3, blue 2, then amber and green tie at 1: amber sorts first.
    assert pre.output_features == ["color=red", "color=blue", "color=amber"]
    assert pre.categorical == ["color"]
    serve = pl.DataFrame({"color": ["blue", "green", None, "purple", "amber"]})
    np.testing.assert_array_equal(
        pre.transform(serve), [[0, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]]
    )


def test_ordinal_numbers_categories_by_frequency_and_unknown_or_null_is_minus_one():
    train = pl.DataFrame({"plan": ["pro", "basic", "pro", "team", "basic", "pro", None]})
    pre = fit_preprocessor([EncodeStep(columns=["plan"], method="ordinal")], train, ["plan"])
    assert pre.steps[0]["columns"] == [{"name": "plan", "categories": ["pro", "basic", "team"]}]
    assert pre.output_features == ["plan"]
    serve = pl.DataFrame({"plan": ["team", "pro", "enterprise", None, "basic"]})
    np.testing.assert_array_equal(pre.transform(serve)[:, 0], [2, 0, -1, -1, 1])
    capped = fit_preprocessor(
        [EncodeStep(columns=["plan"], method="ordinal", max_categories=1)], train, ["plan"]
    )
    np.testing.assert_array_equal(capped.transform(serve)[:, 0], [-1, 0, -1, -1, -1])


def test_categorical_and_enum_columns_encode_like_text():
    values = ["a", "b", "a", None]
    text = pl.DataFrame({"c": values})
    for df in (
        text.with_columns(pl.col("c").cast(pl.Categorical)),
        text.with_columns(pl.col("c").cast(pl.Enum(["a", "b"]))),
    ):
        pre = fit_preprocessor([EncodeStep(columns="categorical")], df, ["c"])
        np.testing.assert_array_equal(pre.transform(df), [[1, 0], [0, 1], [1, 0], [0, 0]])
        np.testing.assert_array_equal(pre.transform(text), pre.transform(df))


@pytest.mark.parametrize(
    ("op", "inputs", "bounds", "expected"),
    [
        ("ratio", ["a", "b"], "", [0.5, math.nan, math.nan, -0.5, -9.0]),
        ("product", ["a", "b"], "", [2.0, 0.0, math.nan, -8.0, -9.0]),
        ("difference", ["a", "b"], "", [-1.0, 3.0, math.nan, -6.0, 10.0]),
        ("sum", ["a", "b", "a"], "", [4.0, 6.0, math.nan, 0.0, 17.0]),
        ("log1p", ["b"], "", [math.log1p(2), 0.0, math.log1p(5), math.log1p(4), math.nan]),
        ("sqrt", ["a"], "", [1.0, math.sqrt(3), math.nan, math.nan, 3.0]),
        ("sqrt", ["b"], "", [math.sqrt(2), 0.0, math.sqrt(5), 2.0, math.nan]),
        ("log1p", ["a"], "", [math.log1p(1), math.log1p(3), math.nan, math.nan, math.log1p(9)]),
        ("square", ["a"], "", [1.0, 9.0, math.nan, 4.0, 81.0]),
        ("abs", ["a"], "", [1.0, 3.0, math.nan, 2.0, 9.0]),
        ("clip", ["a"], ", low: 0, high: 3", [1.0, 3.0, math.nan, 0.0, 3.0]),
        ("clip", ["a"], ", high: 2", [1.0, 2.0, math.nan, -2.0, 2.0]),
    ],
)
def test_derived_columns_follow_safe_arithmetic(op, inputs, bounds, expected):
    df = pl.DataFrame({"a": [1.0, 3.0, None, -2.0, 9.0], "b": [2, 0, 5, 4, -1]})
    step = f"  - derive: {{name: d, op: {op}, inputs: [{', '.join(inputs)}]{bounds}}}\n"
    pre = fit_preprocessor(steps(step), df, ["a", "b"])
    assert pre.output_features == ["a", "b", "d"]
    np.testing.assert_array_equal(pre.transform(df)[:, 2], np.array(expected))


def test_an_overflowing_derived_value_is_missing():
    df = pl.DataFrame({"a": [1e200, 2.0]})
    pre = fit_preprocessor([DeriveStep(name="sq", op="square", inputs=["a"])], df, ["a"])
    np.testing.assert_array_equal(pre.transform(df)[:, 1], [np.nan, 4.0])


def test_selectors_resolve_at_each_step_so_derived_columns_join_later_steps():
    df = pl.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 0.0, 1.0, 2.0]})
    pre = fit_preprocessor(
        steps(
            "  - derive: {name: r, op: ratio, inputs: [a, b]}\n"
            "  - impute: {columns: numeric, strategy: median}\n"
            "  - scale: {columns: numeric, method: minmax}\n"
        ),
        df,
        ["a", "b"],
    )
    assert [c["name"] for c in pre.steps[1]["columns"]] == ["a", "b", "r"]
    # r = [1, null, 3, 2] → median 2 fills the null → minmax over [1, 2, 3, 2].
    np.testing.assert_allclose(pre.transform(df)[:, 2], [0.0, 0.5, 1.0, 0.5], rtol=0, atol=1e-15)


def test_onehot_columns_replace_their_source_in_place():
    df = pl.DataFrame({"x": [1.0, 2.0], "c": ["p", "q"], "z": [0.0, 1.0]})
    pre = fit_preprocessor(
        [EncodeStep(columns="categorical"), ScaleStep(columns="numeric", method="minmax")],
        df,
        ["x", "c", "z"],
    )
    assert pre.output_features == ["x", "c=p", "c=q", "z"]
    np.testing.assert_array_equal(pre.transform(df), [[0, 1, 0, 0], [1, 0, 1, 1]])


# -- the stored form ----------------------------------------------------------------------------


EVERYTHING = """\
  - impute: {columns: numeric, strategy: median}
  - impute: {columns: categorical, strategy: constant, value: missing}
  - derive: {name: r, op: ratio, inputs: [a, b]}
  - derive: {name: lc, op: clip, inputs: [a], low: -1, high: 1}
  - scale: {columns: [a, r], method: robust}
  - encode: {columns: [c], method: onehot, max_categories: 3}
  - encode: {columns: [d], method: ordinal}
"""


def _mixed(n: int = 50, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    a[::7] = np.nan
    return pl.DataFrame(
        {
            "a": a,
            "b": rng.integers(-2, 3, n),
            "c": rng.choice(["u", "v", "w", "x", None], n).tolist(),
            "d": rng.choice(["lo", "hi", None], n).tolist(),
            "ignored": rng.normal(size=n),
        }
    )


def test_to_json_from_json_transform_gives_identical_arrays():
    train = _mixed()
    pre = fit_preprocessor(steps(EVERYTHING), train, ["a", "b", "c", "d"])
    again = round_trip(pre)
    assert again == pre and again.to_json() == pre.to_json()
    serve = _mixed(30, seed=2)
    X, Y = pre.transform(serve), again.transform(serve)
    assert X.tobytes() == Y.tobytes()
    assert X.shape == (30, len(pre.output_features))
    # c after imputing "missing": the three most frequent values, ties by value.
    counts = Counter(v if v is not None else "missing" for v in train["c"].to_list())
    top = sorted(counts, key=lambda v: (-counts[v], v))[:3]
    assert pre.output_features == ["a", "b", *(f"c={v}" for v in top), "d", "r", "lc"]
    assert pre.input_features == ["a", "b", "c", "d"] and pre.categorical == ["c", "d"]


def test_to_json_is_a_copy():
    pre = fit_preprocessor(steps(EVERYTHING), _mixed(), ["a", "b", "c", "d"])
    body = pre.to_json()
    body["steps"][0]["columns"][0]["value"] = 99.0
    body["output_features"].append("x")
    assert pre.steps[0]["columns"][0]["value"] != 99.0 and "x" not in pre.output_features


def _tamper(path, value):
    def change(body):
        target = body
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (_tamper(["format"], 2), "expected a format-1 object"),
        (_tamper(["format"], True), "expected a format-1 object"),
        (_tamper(["extra"], 1), "expected a format-1 object"),
        (_tamper(["categorical"], KeyError), "expected a format-1 object"),
        (_tamper(["input_features"], []), "input_features must be a list of 1 to"),
        (_tamper(["input_features", 0], 5), "input_features must hold non-empty names"),
        (_tamper(["input_features", 1], "a"), "input_features repeats a name"),
        (_tamper(["categorical"], ["zzz"]), "categorical names a column that is not an input"),
        (_tamper(["categorical"], ["c"]), "steps[1]: the value for 'd' does not fit"),
        (_tamper(["steps"], {}), "steps must be a list"),
        (_tamper(["steps", 0], "impute"), "steps[0]: is not an impute"),
        (_tamper(["steps", 0, "kind"], ["impute"]), "steps[0]: is not an impute"),
        (_tamper(["steps", 0, "kind"], "pickle"), "steps[0]: is not an impute"),
        (_tamper(["steps", 0, "code"], "import os"), "steps[0]: a impute step has exactly"),
        (_tamper(["steps", 0, "strategy"], "exec"), "steps[0]: unknown impute setting"),
        (_tamper(["steps", 0, "columns", 0, "value"], "x"), "the value for 'a' does not fit"),
        (_tamper(["steps", 0, "columns", 0, "value"], math.nan), "the value for 'a' does not fit"),
        (_tamper(["steps", 0, "columns", 0, "value"], True), "the value for 'a' does not fit"),
        (_tamper(["steps", 0, "columns", 0, "name"], "zz"), "names a column that is absent"),
        (_tamper(["steps", 0, "columns", 0, "name"], ["a"]), "names a column that is absent"),
        (_tamper(["steps", 0, "columns", 1, "name"], "a"), "names it twice"),
        (_tamper(["steps", 0, "columns", 0, "extra"], 1), "each column has exactly the fields"),
        (_tamper(["steps", 4, "columns", 0, "scale"], 0.0), "the scale of 'a' must be positive"),
        (_tamper(["steps", 4, "columns", 0, "scale"], -2.0), "the scale of 'a' must be positive"),
        (_tamper(["steps", 4, "columns", 0, "center"], math.inf), "scaling of 'a' needs"),
        (_tamper(["steps", 4, "columns", 0, "name"], "c"), "scaling of 'c' needs a numeric"),
        (_tamper(["steps", 5, "columns", 0, "categories"], ["u", "u"]), "must be distinct text"),
        (_tamper(["steps", 5, "columns", 0, "categories"], [1]), "must be distinct text"),
        (_tamper(["steps", 5, "columns", 0, "name"], "a"), "categories of 'a' must be"),
        (_tamper(["steps", 5, "method"], "target"), "unknown encode setting"),
        (_tamper(["steps", 2, "op"], "eval"), "unknown derive operation"),
        (_tamper(["steps", 2, "op"], {}), "unknown derive operation"),
        (_tamper(["steps", 2, "name"], "a"), "a derived column needs a new name"),
        (_tamper(["steps", 2, "inputs"], ["a", "c"]), "derive inputs must be numeric"),
        (_tamper(["steps", 2, "inputs"], ["a"]), "ratio cannot take 1 inputs"),
        (_tamper(["steps", 2, "low"], 1.0), "low and high apply only to clip"),
        (_tamper(["steps", 3, "low"], 5.0), "clip needs low <= high"),
        (_tamper(["steps", 3, "high"], "1"), "low and high must be finite numbers"),
        (_tamper(["output_features", 0], "b"), "output_features repeats a name"),
        (_tamper(["output_features"], ["b", "a"]), "output_features are not the numeric columns"),
    ],
)
def test_tampered_or_malformed_json_is_an_integrity_error(change, detail):
    pre = fit_preprocessor(steps(EVERYTHING), _mixed(), ["a", "b", "c", "d"])
    body = copy.deepcopy(pre.to_json())
    change(body)
    with pytest.raises(IntegrityError) as info:
        Preprocessor.from_json(body)
    assert str(info.value).startswith("model preprocessing is malformed: ")
    assert detail in str(info.value)


@pytest.mark.parametrize("obj", [None, [], "{}", {"format": 1}])
def test_from_json_of_something_else_is_an_integrity_error(obj):
    with pytest.raises(IntegrityError, match="model preprocessing is malformed"):
        Preprocessor.from_json(obj)


def test_onehot_names_that_would_collide_are_refused_at_fit_and_at_load():
    df = pl.DataFrame({"c": ["x", "y"], "c=x": [1.0, 2.0]})
    with pytest.raises(ConfigError, match=r"preprocessing\[0\] \(encode\): one-hot column 'c=x'"):
        fit_preprocessor([EncodeStep(columns="categorical")], df, ["c", "c=x"])
    fine = fit_preprocessor([EncodeStep(columns="categorical")], df, ["c"])
    body = fine.to_json()
    body["input_features"].append("c=x")
    with pytest.raises(IntegrityError, match="would repeat an existing column name"):
        Preprocessor.from_json(body)


def test_the_identity_preprocessor_of_custom_models_round_trips():
    pre = Preprocessor(input_features=["a", "b"], output_features=["a", "b"], steps=[])
    assert round_trip(pre) == pre
    np.testing.assert_array_equal(
        pre.transform(NUMBERS), [[1, 4], [np.nan, 4], [3, 0], [10, 2], [np.nan, 2]]
    )


# -- refusals -----------------------------------------------------------------------------------


def test_a_missing_column_at_transform_is_invalid_input_and_extras_are_ignored():
    pre = fit_preprocessor(steps(EVERYTHING), _mixed(), ["a", "b", "c", "d"])
    with pytest.raises(
        InvalidInput,
        match="the input has no column 'd'; the model reads 4 input features, all of them",
    ):
        pre.transform(_mixed().drop("d"))
    wider = _mixed().with_columns(pl.lit("?").alias("new"))
    assert pre.transform(wider).tobytes() == pre.transform(_mixed()).tobytes()


def test_a_column_of_the_wrong_type_at_transform_is_invalid_input():
    pre = fit_preprocessor(steps(EVERYTHING), _mixed(), ["a", "b", "c", "d"])
    with pytest.raises(InvalidInput, match="column 'a' must be numeric, not String"):
        pre.transform(_mixed().with_columns(pl.col("a").cast(pl.String)))
    with pytest.raises(InvalidInput, match="column 'c' must be text, not Int"):
        pre.transform(_mixed().with_columns(pl.lit(1).alias("c")))
    with pytest.raises(InvalidInput, match="needs a polars DataFrame, not dict"):
        pre.transform({"a": [1.0]})  # type: ignore[arg-type]
    # A column of nulls only (as JSON nulls arrive) is fine for either kind.
    nulls = _mixed(3).with_columns(pl.lit(None).alias("a"), pl.lit(None).alias("c"))
    assert pre.transform(nulls).shape == (3, 8)


def test_a_categorical_left_unencoded_is_a_config_error():
    df = pl.DataFrame({"x": [1.0, 2.0], "color": ["red", "blue"]})
    for given_steps in ([], [ImputeStep(columns="all", strategy="most_frequent")]):
        with pytest.raises(
            ConfigError, match="column 'color' is categorical: add an encode step or exclude it"
        ):
            fit_preprocessor(given_steps, df, ["x", "color"])


@pytest.mark.parametrize(
    ("given_steps", "message"),
    [
        (
            "  - scale: {columns: [x, nope]}\n",
            r"preprocessing\[0\] \(scale\): no column 'nope' at this step",
        ),
        (
            "  - encode: {columns: [c]}\n  - impute: {columns: [c], strategy: most_frequent}\n",
            r"preprocessing\[1\] \(impute\): no column 'c'",
        ),
        (
            "  - derive: {name: r, op: ratio, inputs: [x, y]}\n",
            r"preprocessing\[0\] \(derive\): no column 'y'",
        ),
        (
            "  - derive: {name: x, op: abs, inputs: [x]}\n",
            r"'x' is already a column; pick a new name",
        ),
        (
            "  - derive: {name: r, op: abs, inputs: [c]}\n",
            "column 'c' is categorical, but this step needs a numeric column",
        ),
        ("  - scale: {columns: all}\n", "column 'c' is categorical, but this step needs a numeric"),
        (
            "  - impute: {columns: all, strategy: median}\n",
            "column 'c' is categorical, but this step",
        ),
        (
            "  - encode: {columns: [x]}\n",
            "column 'x' is numeric, but this step needs a categorical",
        ),
        (
            "  - impute: {columns: [c], strategy: constant, value: 0}\n",
            "column 'c' is categorical, so the value must be text",
        ),
        (
            "  - impute: {columns: [x], strategy: constant, value: '0'}\n",
            "column 'x' is numeric, so the value must be a number",
        ),
    ],
)
def test_a_step_that_cannot_apply_is_a_config_error_naming_step_and_column(given_steps, message):
    df = pl.DataFrame({"x": [1.0, 2.0], "c": ["p", "q"], "target": [0, 1]})
    with pytest.raises(ConfigError, match=message):
        fit_preprocessor(steps(given_steps), df, ["x", "c"])


def test_features_must_be_usable_columns():
    df = pl.DataFrame({"x": [1.0], "when": pl.Series([None], dtype=pl.Date)})
    with pytest.raises(ConfigError, match="feature 'when' has type Date"):
        fit_preprocessor([], df, ["x", "when"])
    with pytest.raises(ConfigError, match="feature 'y' is not a column of the training data"):
        fit_preprocessor([], df, ["x", "y"])
    with pytest.raises(ConfigError, match="feature 'x' is listed twice"):
        fit_preprocessor([], df, ["x", "x"])
    with pytest.raises(ConfigError, match="no features"):
        fit_preprocessor([], df, [])


def test_a_column_without_values_cannot_be_fitted():
    df = pl.DataFrame({"x": [None, float("nan")], "c": pl.Series([None, None], dtype=pl.String)})
    for step in (
        ImputeStep(columns=["x"], strategy="median"),
        ScaleStep(columns=["x"]),
        ImputeStep(columns=["x"], strategy="most_frequent"),
    ):
        with pytest.raises(ValidationFailed, match="column 'x' has no values in the training rows"):
            fit_preprocessor([step], df, ["x"])
    with pytest.raises(ValidationFailed, match="column 'c' has no values"):
        fit_preprocessor([ImputeStep(columns=["c"], strategy="most_frequent")], df, ["c"])


def test_fit_and_transform_of_100k_rows_by_30_columns_is_fast():
    rng = np.random.default_rng(0)
    n = 100_000
    data = {f"x{i}": np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n)) for i in range(26)}
    data.update({f"c{i}": rng.choice(["a", "b", "c", "d", "e"], n).tolist() for i in range(4)})
    df = pl.DataFrame(data)
    configured = steps(
        "  - impute: {columns: numeric, strategy: median}\n"
        "  - derive: {name: r, op: ratio, inputs: [x0, x1]}\n"
        "  - scale: {columns: numeric, method: standard}\n"
        "  - encode: {columns: categorical, method: onehot}\n"
    )
    clock = time.perf_counter()
    pre = fit_preprocessor(configured, df, df.columns)
    X = pre.transform(df)
    seconds = time.perf_counter() - clock
    assert X.shape == (n, 26 + 1 + 20)
    assert seconds < 2.0, f"fit + transform took {seconds:.2f} s"


# -- properties ---------------------------------------------------------------------------------

_cell = st.none() | st.floats(min_value=-1e9, max_value=1e9) | st.sampled_from([math.nan, math.inf])


@st.composite
def numeric_frames(draw):
    width = draw(st.integers(1, 4))
    height = draw(st.integers(1, 30))
    columns = {}
    for i in range(width):
        cells = draw(st.lists(_cell, min_size=height, max_size=height))
        # Every column has at least one value to fit on.
        cells[draw(st.integers(0, height - 1))] = draw(st.floats(min_value=-1e9, max_value=1e9))
        columns[f"f{i}"] = pl.Series(cells, dtype=pl.Float64)
    return pl.DataFrame(columns)


@settings(max_examples=200, deadline=None)
@given(
    numeric_frames(),
    st.sampled_from(["mean", "median", "most_frequent"]),
    st.sampled_from(["standard", "minmax", "robust"]),
    st.sampled_from(["log1p", "sqrt", "abs", "square", "difference", "sum", "clip"]),
)
def test_after_impute_the_training_matrix_is_finite(df, strategy, method, op):
    inputs = ["f0", df.columns[-1]] if op in ("difference", "sum") else ["f0"]
    bounds = {"low": -1.0, "high": 1.0} if op == "clip" else {}
    configured = [
        DeriveStep(name="d", op=op, inputs=inputs, **bounds),
        ImputeStep(columns="numeric", strategy=strategy),
        ScaleStep(columns="numeric", method=method),
    ]
    try:
        pre = fit_preprocessor(configured, df, df.columns)
    except ValidationFailed as exc:
        # A derived column without a single value (sqrt of negatives only): refused.
        assert "column 'd' has no values" in str(exc)
        return
    X = pre.transform(df)
    assert X.shape == (df.height, df.width + 1)
    assert np.isfinite(X).all()
    assert round_trip(pre).transform(df).tobytes() == X.tobytes()


_VALUES = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from([0.0, -1.0, -0.5, float("nan"), float("inf"), float("-inf")]),
)


@settings(max_examples=60, deadline=None)
@given(
    train=st.lists(st.tuples(_VALUES, _VALUES), min_size=3, max_size=12),
    serve=st.lists(st.tuples(_VALUES, _VALUES), min_size=1, max_size=6),
    op=st.sampled_from(
        ["log1p", "sqrt", "square", "abs", "ratio", "product", "difference", "sum", "clip"]
    ),
    order=st.sampled_from(["impute-first", "scale-first"]),
    method=st.sampled_from(["standard", "minmax", "robust"]),
)
def test_numpy_serving_path_equals_the_data_frame_path(train, serve, op, order, method):
    """`transform_numbers` (serving's fast path) gives what `transform` gives: the same missing
    cells and the same numbers up to float rounding (polars may order an operation differently)."""
    x, y = zip(*train, strict=True)
    df = pl.DataFrame({"x": list(x), "y": list(y)})
    derive = DeriveStep(
        name="d", op=op, inputs=["x", "y"] if op in ("ratio", "product", "difference", "sum")
        else ["x"], low=-2.0 if op == "clip" else None, high=3.0 if op == "clip" else None,
    )  # fmt: skip
    impute = ImputeStep(columns="numeric", strategy="median")
    scale = ScaleStep(columns="numeric", method=method)
    chain = [impute, derive, scale] if order == "impute-first" else [scale, derive, impute]
    try:
        pre = fit_preprocessor(chain, df, ["x", "y"])
    except ValidationFailed:
        return  # a column with no usable training value: nothing to serve
    a, b = zip(*serve, strict=True)
    frame = pl.DataFrame({"x": list(a), "y": list(b)})
    expected = pre.transform(frame)
    got = pre.transform_numbers(np.array([list(a), list(b)], dtype=np.float64).T)
    assert got is not None
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_numpy_serving_path_declines_text_pipelines():
    df = pl.DataFrame({"plan": ["pro", "basic"], "age": [1.0, 2.0]})
    pre = fit_preprocessor([EncodeStep(columns=["plan"])], df, ["plan", "age"])
    assert pre.transform_numbers(np.array([[0.0, 1.0]])) is None
