"""Training configs: the documented example, every refusal with its key path, gates."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aidlc.errors import AidlcError, ConfigError, InvalidInput, UsageError
from aidlc.train.config import (
    LOWER_IS_BETTER,
    METRICS,
    DeriveStep,
    EncodeStep,
    Gate,
    GateResult,
    ImputeStep,
    ScaleStep,
    TrainConfig,
    config_digest,
    default_metrics,
    load_train_config,
    parse_gate,
    parse_train_config,
)

EXAMPLE = """\
format: 1
name: breast-cancer-xgb          # optional run name
dataset: breast-cancer@latest    # NAME, NAME@V or NAME@latest
target: diagnosis
exclude: [patient_id]            # or `features: [a, b, ...]` (not both)
task: classification             # optional: classification|regression (runner infers when absent)
seed: 42
model:
  type: xgboost                  # xgboost | lightgbm | sklearn.<EstimatorName>
  params: {max_depth: 3, learning_rate: 0.1, subsample: 0.8}
  rounds: 200                    # boosting rounds (ignored for sklearn)
  checkpoint_every: 10           # rounds per checkpoint segment
preprocessing:
  - impute: {columns: numeric, strategy: median}
  - derive: {name: area_ratio, op: ratio, inputs: [mean_area, worst_area]}
  - scale: {columns: numeric, method: standard}
  - encode: {columns: categorical, method: onehot, max_categories: 20}
validation: {method: holdout, test_size: 0.2, stratify: true}   # or {method: cv, folds: 5}
metrics: [roc_auc, accuracy, f1]
gates:
  - roc_auc >= 0.85
  - roc_auc >= production - 0.01
tuning:
  trials: 20
  parallelism: 2
  objective: roc_auc
  direction: maximize            # optional; default by metric
  folds: 3
  space:
    max_depth: {type: int, low: 2, high: 8}
    learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
    booster: {type: categorical, choices: [gbtree, dart]}
register: {model: breast-cancer, description: "...", tags: {team: oncology}}
card: {intended_use: "...", limitations: "...", owner: "ml-team@example.org"}
"""

MINIMAL = "dataset: churn\ntarget: churned\nmodel: {type: xgboost}\n"


def _refusal(text: str, error: type[AidlcError] = ConfigError) -> str:
    with pytest.raises(error) as info:
        parse_train_config(text, "train.yaml")
    return str(info.value)


# -- the example and its round trip -------------------------------------------------------------


def test_the_documented_example_parses_to_what_it_says():
    cfg = parse_train_config(EXAMPLE)
    assert (cfg.name, cfg.dataset, cfg.target, cfg.task, cfg.seed) == (
        "breast-cancer-xgb",
        "breast-cancer@latest",
        "diagnosis",
        "classification",
        42,
    )
    assert cfg.features is None and cfg.exclude == ["patient_id"]
    assert cfg.model.type == "xgboost" and cfg.model.rounds == 200
    assert cfg.model.params == {"max_depth": 3, "learning_rate": 0.1, "subsample": 0.8}
    assert [type(s) for s in cfg.preprocessing] == [ImputeStep, DeriveStep, ScaleStep, EncodeStep]
    assert [s.kind for s in cfg.preprocessing] == ["impute", "derive", "scale", "encode"]
    derive = cfg.preprocessing[1]
    assert isinstance(derive, DeriveStep)
    assert (derive.name, derive.op, derive.inputs) == (
        "area_ratio",
        "ratio",
        ["mean_area", "worst_area"],
    )
    assert cfg.validation.method == "holdout" and cfg.validation.test_size == 0.2
    assert cfg.metrics == ["roc_auc", "accuracy", "f1"]
    assert cfg.gates == [
        Gate("roc_auc", ">=", 0.85),
        Gate("roc_auc", ">=", -0.01, relative=True),
    ]
    assert cfg.tuning is not None and cfg.tuning.resolved_direction() == "maximize"
    space = cfg.tuning.space
    assert (space["max_depth"].low, space["max_depth"].high) == (2, 8)
    assert isinstance(space["max_depth"].low, int) and space["learning_rate"].log is True
    assert space["booster"].choices == ["gbtree", "dart"]
    assert cfg.register is not None and cfg.register.tags == {"team": "oncology"}
    assert cfg.card.owner == "ml-team@example.org"


def test_to_json_parses_back_to_an_equal_config_with_the_same_digest():
    cfg = parse_train_config(EXAMPLE)
    body = cfg.to_json()
    assert body["gates"] == ["roc_auc >= 0.85", "roc_auc >= production - 0.01"]
    assert body["preprocessing"][0] == {
        "impute": {"columns": "numeric", "strategy": "median", "value": None}
    }
    text = json.dumps(body, allow_nan=False)  # plain JSON, which is also YAML
    again = parse_train_config(text)
    assert again == cfg and again.to_json() == body
    assert parse_train_config(yaml.safe_dump(body)) == cfg
    assert config_digest(again) == config_digest(cfg)


def test_the_digest_is_sha256_of_the_canonical_json():
    import hashlib

    cfg = parse_train_config(EXAMPLE)
    canonical = json.dumps(cfg.to_json(), sort_keys=True, separators=(",", ":"))
    assert config_digest(cfg) == hashlib.sha256(canonical.encode()).hexdigest()


def test_equal_configs_written_differently_have_equal_digests():
    a = parse_train_config(MINIMAL + "gates: ['roc_auc>=0.9']\nseed: 0\n")
    b = parse_train_config(
        '{"target": "churned", "gates": ["roc_auc  >=  .9"], "model": {"rounds": 100, '
        '"type": "xgboost"}, "dataset": "churn"}'
    )
    c = parse_train_config(MINIMAL + "seed: 1\n")
    assert config_digest(a) == config_digest(b)
    assert config_digest(a) != config_digest(c)


def test_defaults_of_a_minimal_config():
    cfg = parse_train_config(MINIMAL)
    assert cfg.format == 1 and cfg.seed == 0 and cfg.name is None and cfg.task is None
    assert (cfg.model.rounds, cfg.model.checkpoint_every, cfg.model.params) == (100, 50, {})
    assert cfg.validation.model_dump() == {
        "method": "holdout",
        "test_size": 0.2,
        "folds": 5,
        "stratify": True,
    }
    assert cfg.preprocessing == [] and cfg.gates == [] and cfg.metrics is None
    assert cfg.tuning is None and cfg.register is None
    assert cfg.card.model_dump() == {"intended_use": "", "limitations": "", "owner": ""}


def test_exponents_without_a_dot_are_numbers_as_in_yaml_1_2():
    cfg = parse_train_config(
        MINIMAL.replace("{type: xgboost}", "{type: xgboost, params: {eta: 1e-3}}")
    )
    assert cfg.model.params == {"eta": 0.001}


def test_config_is_immutable():
    cfg = parse_train_config(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        cfg.seed = 3  # type: ignore[misc]
    assert cfg.model_copy(update={"dataset": "churn@2"}).dataset == "churn@2"


def test_metric_tables():
    assert default_metrics("regression") == ["mae", "rmse", "r2"]
    assert default_metrics("classification") == list(METRICS["classification"])
    assert {"log_loss", "mae", "rmse"} == LOWER_IS_BETTER
    with pytest.raises(ConfigError, match="unknown task"):
        default_metrics("ranking")


@pytest.mark.parametrize(
    ("objective", "direction", "expected"),
    [
        ("roc_auc", None, "maximize"),
        ("log_loss", None, "minimize"),
        ("rmse", None, "minimize"),
        ("r2", None, "maximize"),
        ("log_loss", "maximize", "maximize"),
    ],
)
def test_tuning_direction_defaults_by_metric(objective, direction, expected):
    extra = f", direction: {direction}" if direction else ""
    cfg = parse_train_config(
        MINIMAL + f"tuning: {{trials: 5, objective: {objective}{extra}, "
        "space: {eta: {type: float, low: 0.01, high: 0.3}}}\n"
    )
    assert cfg.tuning is not None and cfg.tuning.resolved_direction() == expected


# -- refusals name the key path -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("rounds: 200", "roundz: 200", "model.roundz: unknown field"),
        ("seed: 42", "seed: 42\ncolour: red", "colour: unknown field"),
        ("metrics: [roc_auc,", "metrics: [auc,", "metrics[0]: unknown metric 'auc'"),
        ("metrics: [roc_auc, accuracy, f1]", "metrics: [roc_auc, f1, f1]", "f1 is listed twice"),
        ("- roc_auc >= 0.85", "- roc_auc >> 0.85", "gates[0]: gate 'roc_auc >> 0.85'"),
        ("- roc_auc >= 0.85", "- auc >= 0.85", "gates[0]: unknown metric 'auc'"),
        ("- roc_auc >= 0.85", "- log_loss <= 0.3", "gates[0]: log_loss is not in metrics"),
        ("objective: roc_auc", "objective: auc", "tuning.objective: unknown metric 'auc'"),
        ("objective: roc_auc", "objective: rmse", "tuning.objective: rmse is a regression"),
        ("task: classification", "task: regression", "metrics[0]: roc_auc is a classification"),
        ("task: classification", "task: survival", "task: Input should be"),
        ("exclude: [patient_id]", "features: [a]\nexclude: [b]", "give one or the other"),
        ("exclude: [patient_id]", "exclude: [diagnosis]", "exclude[0]: 'diagnosis' is the target"),
        ("exclude: [patient_id]", "features: [a, a]", "features[1]: 'a' is listed twice"),
        ("type: xgboost", "type: pytorch", "model.type: 'pytorch' is not xgboost, lightgbm"),
        ("type: xgboost", "type: sklearn.os.system", "model.type:"),
        ("max_depth: 3,", "Max_Depth: 3,", "model.params: 'Max_Depth' is not a parameter name"),
        ("max_depth: 3,", "max_depth: [3],", "model.params: max_depth: must be a finite number"),
        ("max_depth: 3,", "max_depth: .nan,", "model.params: max_depth: must be a finite number"),
        ("rounds: 200", "rounds: 0", "model.rounds: Input should be greater than or equal to 1"),
        ("seed: 42", "seed: -1", "seed: Input should be greater than or equal to 0"),
        ("dataset: breast-cancer@latest", "dataset: Breast", "dataset: 'Breast' is not a dataset"),
        ("dataset: breast-cancer@latest", "dataset: bc@0", "dataset: 'bc@0' is not a dataset"),
        ("name: breast-cancer-xgb", "name: yes", "name: Input should be a valid string (YAML"),
        ("name: breast-cancer-xgb", "name: My Run", "name: 'My Run' is not a name"),
        ("test_size: 0.2", "test_size: 1.5", "validation.test_size: Input should be less than 1"),
        ("method: holdout,", "method: bootstrap,", "validation.method: Input should be"),
        ("format: 1", "format: 2", "format: Input should be 1"),
        ("strategy: median}", "strategy: constant}", "preprocessing[0].impute: strategy constant"),
        ("strategy: median}", "strategy: median, value: 3}", "value applies only to strategy"),
        ("strategy: median}", "strategy: mode}", "preprocessing[0].impute.strategy: Input should"),
        ("numeric, strategy", "nums, strategy", "preprocessing[0].impute.columns: 'nums' is not"),
        ("numeric, strategy", "[a, a], strategy", "preprocessing[0].impute.columns: lists 'a'"),
        (
            "- impute: {columns",
            "- normalize: {columns",
            "preprocessing[0]: unknown step 'normalize'",
        ),
        ("- impute: {columns", "- {impute: {}, scale: {}}\n  - x: {columns", "exactly one key"),
        ("- impute: {columns", "- impute\n  - impute: {columns", "preprocessing[0]: a step is"),
        ("strategy: median}", "strategy: median, kind: scale}", "impute.kind: unknown field"),
        ("strategy: median}", "strategy: median, how: x}", "preprocessing[0].impute.how: unknown"),
        ("ratio, inputs: [mean_area, worst_area]", "ratio, inputs: [mean_area]", "ratio takes 2"),
        ("op: ratio,", "op: clip,", "preprocessing[1].derive: clip takes 1 input, not 2"),
        ("op: ratio,", "op: sum, low: 1,", "low and high apply only to clip"),
        ("op: ratio,", "op: power,", "preprocessing[1].derive.op: Input should be"),
        ("method: standard}", "method: standard, max_categories: 3}", "max_categories: unknown"),
        ("{columns: numeric, method: standard}", "{columns: categorical}", "scaling applies to"),
        ("{columns: categorical, method: onehot", "{columns: numeric, method: onehot", "encoding"),
        ("max_categories: 20", "max_categories: 0", "encode.max_categories: Input should be"),
        ("high: 8}", "high: 2}", "tuning.space.max_depth: low (2) must be less than high (2)"),
        ("low: 2, high: 8", "low: 2.5, high: 8", "low of an int parameter must be a whole"),
        ("low: 0.01, high: 0.3, log: true", "low: 0, high: 0.3, log: true", "log needs low > 0"),
        ("choices: [gbtree, dart]", "choices: [1, 1.0]", "choices[1] repeats an earlier choice"),
        ("choices: [gbtree, dart]", "choices: []", "choices must be a list of 1 to 100"),
        ("choices: [gbtree, dart]", "choices: [a], low: 1", "low does not apply to a categorical"),
        ("type: int, low: 2, high: 8", "type: int, low: 2, high: 8, step: 4", "multiple of step"),
        ("type: int, low: 2, high: 8", "type: int, low: 2, high: 8, choices: [1]", "choices apply"),
        ("trials: 20", "trials: 0", "tuning.trials: Input should be greater than or equal to 1"),
        ("parallelism: 2", "parallelism: 65", "tuning.parallelism: Input should be less than"),
        ("folds: 3", "folds: 1", "tuning.folds: Input should be greater than or equal to 2"),
        ("{team: oncology}", "{Team: oncology}", "register.tags: 'Team' is not a tag name"),
        ("register: {model: breast-cancer", "register: {model: BC", "register.model: 'BC' is not"),
        ('owner: "ml-team@example.org"', "owner: [me]", "card.owner: Input should be"),
    ],
)
def test_a_bad_field_is_refused_with_its_key_path(old, new, expected):
    assert old in EXAMPLE
    message = _refusal(EXAMPLE.replace(old, new, 1))
    assert message.startswith("train.yaml is invalid: ")
    assert expected in message


def test_duplicate_derive_names_are_refused():
    extra = "  - derive: {name: area_ratio, op: abs, inputs: [mean_area]}\n"
    text = EXAMPLE.replace("validation:", extra + "validation:")
    assert "preprocessing[4].derive.name: 'area_ratio' is already derived by " in _refusal(text)


def test_a_missing_required_field_is_named():
    message = _refusal("dataset: churn\nmodel: {type: xgboost}\n")
    assert message == "train.yaml is invalid: target: is required"


def test_many_problems_are_listed_ten_at_a_time():
    fields = "".join(f"extra{i}: 1\n" for i in range(12))
    message = _refusal(MINIMAL + fields)
    assert "extra0: unknown field" in message and message.endswith("(and 2 more)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seed: 1\nseed: 2\n", "repeats the key 'seed' at line 2, column 1"),
        ("model:\n  type: xgboost\n  type: lightgbm\n", "repeats the key 'type' at line 3"),
        ("tags: {a: 1, a: 2}\n", "repeats the key 'a' at line 1, column 14"),
    ],
)
def test_a_repeated_key_anywhere_is_refused_with_its_line(text, expected):
    assert expected in _refusal(text)


def test_a_merge_key_may_be_overridden():
    text = (
        "base: &b {type: xgboost, rounds: 5}\n"
        "dataset: churn\ntarget: y\nmodel: {<<: *b, rounds: 7}\n"
    )
    # The merge is fine; `base` itself is then an unknown field.
    assert _refusal(text) == "train.yaml is invalid: base: unknown field"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: [unclosed\n", "train.yaml is not valid YAML at line 2, column 1"),
        ("a: b\n  c: d: e\n", "train.yaml is not valid YAML at line 2"),
        ("x: 1\n\tbad: 2\n", "train.yaml is not valid YAML at line 2"),
        ("when: 2024-13-01\n", "train.yaml is not valid YAML: month must be in 1..12"),
        ("x: \x07\n", "train.yaml is not valid YAML at line 1"),
        ("? [a]\n: 1\n", "found an unhashable key"),
        ("[" * 100_000, "train.yaml is not valid YAML: nested too deeply"),
    ],
)
def test_malformed_yaml_names_the_line(text, expected):
    assert expected in _refusal(text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a list\n", "a list"), ("", "empty"), ("just text", "a str"), ("3", "a int")],
)
def test_the_top_level_must_be_a_mapping(text, kind):
    assert _refusal(text) == (
        f"train.yaml must be a mapping of settings (dataset, target, model, ...), not {kind}"
    )


def test_input_over_one_mebibyte_is_refused_before_parsing():
    huge = MINIMAL + "#" * (1 << 20)
    assert "larger than 1 MiB" in _refusal(huge, InvalidInput)
    assert "larger than 1 MiB" in _refusal(huge.encode(), InvalidInput)
    # Characters that take several bytes count as bytes.
    assert "larger than 1 MiB" in _refusal("#" + "é" * (1 << 19), InvalidInput)


def test_bytes_that_are_not_utf8_are_refused():
    assert _refusal(b"dataset: caf\xe9\n", InvalidInput) == (
        "train.yaml is not UTF-8 text (byte 12 is not valid UTF-8)"
    )
    assert parse_train_config(MINIMAL.encode()).dataset == "churn"


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(EXAMPLE)
    assert load_train_config(path) == parse_train_config(EXAMPLE)


def test_load_names_the_file_in_every_refusal(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UsageError, match=f"no training config at {missing}"):
        load_train_config(missing)
    with pytest.raises(UsageError, match="is a folder"):
        load_train_config(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"dataset: caf\xe9\n")
    with pytest.raises(InvalidInput, match=f"{latin} is not UTF-8 text"):
        load_train_config(latin)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (3 << 20))
    with pytest.raises(InvalidInput, match=f"{big} is larger than 1 MiB"):
        load_train_config(big)
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "seed: x\n")
    with pytest.raises(ConfigError, match=f"{bad} is invalid: seed: Input should be"):
        load_train_config(bad)


# -- gates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gate", "canonical"),
    [
        ("roc_auc >= 0.85", Gate("roc_auc", ">=", 0.85), "roc_auc >= 0.85"),
        ("  rmse<4  ", Gate("rmse", "<", 4.0), "rmse < 4"),
        ("r2 > -0.5", Gate("r2", ">", -0.5), "r2 > -0.5"),
        ("mae <= 1e3", Gate("mae", "<=", 1000.0), "mae <= 1000"),
        ("f1 >= .5", Gate("f1", ">=", 0.5), "f1 >= 0.5"),
        ("auc_2 > 1.5E-3", Gate("auc_2", ">", 0.0015), "auc_2 > 0.0015"),
        (
            "roc_auc >= production - 0.01",
            Gate("roc_auc", ">=", -0.01, True),
            "roc_auc >= production - 0.01",
        ),
        ("log_loss<=production+0.02", Gate("log_loss", "<=", 0.02, True), None),
        ("roc_auc >= production", Gate("roc_auc", ">=", 0.0, True), "roc_auc >= production"),
        ("roc_auc >= production - 0", Gate("roc_auc", ">=", 0.0, True), "roc_auc >= production"),
    ],
)
def test_gate_forms(text, gate, canonical):
    parsed = parse_gate(text)
    assert parsed == gate
    assert parsed.text == (canonical or "log_loss <= production + 0.02")
    assert parse_gate(parsed.text) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "roc_auc >> 0.85",
        "roc_auc = 0.85",
        "roc_auc >= ",
        ">= 0.85",
        "ROC_AUC >= 0.85",
        "roc_auc >= nan",
        "roc_auc >= inf",
        "roc_auc >= production * 2",
        "roc_auc >= production - -0.1",
        "roc_auc >= 0.85 and f1 > 0.5",
        "roc_auc >= staging - 0.01",
        "roc_auc >= 0x10",
        "rôc >= 1",
    ],
)
def test_a_gate_that_is_not_understood_shows_the_accepted_forms(text):
    with pytest.raises(ConfigError) as info:
        parse_gate(text)
    assert str(info.value).startswith(f"gate {text!r} is not understood: write METRIC OP NUMBER")
    assert "METRIC OP production [+|-] NUMBER" in str(info.value)


def test_gate_refusals_truncate_long_text():
    with pytest.raises(ConfigError) as info:
        parse_gate("x" * 500)
    assert f"gate '{'x' * 60}...' is longer than 200 characters" == str(info.value)
    with pytest.raises(ConfigError, match="the number is too large"):
        parse_gate("rmse < 1e999")
    with pytest.raises(ConfigError, match="a gate is text, not int"):
        parse_gate(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("gate", "metrics", "production", "passed", "actual", "threshold", "detail"),
    [
        ("roc_auc >= 0.85", {"roc_auc": 0.85}, None, True, 0.85, 0.85, "0.85 >= 0.85"),
        ("roc_auc > 0.85", {"roc_auc": 0.85}, None, False, 0.85, 0.85, "0.85 is not > 0.85"),
        ("roc_auc >= 0.85", {"roc_auc": 0.8499}, None, False, 0.8499, 0.85, "0.8499 is not >="),
        ("rmse <= 2", {"rmse": 2.0}, None, True, 2.0, 2.0, "2 <= 2"),
        ("rmse < 2", {"rmse": 2.0}, None, False, 2.0, 2.0, "2 is not < 2"),
        ("rmse < 2", {"rmse": 1}, None, True, 1.0, 2.0, "1 < 2"),
        ("roc_auc >= 0.5", {"f1": 0.9}, None, False, None, None, "roc_auc was not computed"),
        ("roc_auc >= 0.5", {"roc_auc": math.nan}, None, False, math.nan, None, "roc_auc is NaN"),
        ("roc_auc >= production - 0.25", {"roc_auc": 0.5}, {"roc_auc": 0.75}, True, 0.5, 0.5, ""),
        ("roc_auc > production - 0.25", {"roc_auc": 0.5}, {"roc_auc": 0.75}, False, 0.5, 0.5, ""),
        ("rmse <= production + 0.5", {"rmse": 2.5}, {"rmse": 2.0}, True, 2.5, 2.5, "2.5 <= 2.5"),
        ("rmse <= production + 0.5", {"rmse": 2.75}, {"rmse": 2.0}, False, 2.75, 2.5, ""),
        (
            "roc_auc >= production - 0.01",
            {"roc_auc": 0.1},
            None,
            True,
            0.1,
            None,
            "no production version to compare with",
        ),
        (
            "roc_auc >= production - 0.01",
            {"roc_auc": 0.1},
            {"f1": 0.9},
            True,
            0.1,
            None,
            "the production version has no roc_auc to compare with",
        ),
        (
            "roc_auc >= production",
            {"roc_auc": math.nan},
            None,
            False,
            math.nan,
            None,
            "roc_auc is NaN",
        ),
        (
            "roc_auc >= production",
            {},
            {"roc_auc": 0.5},
            False,
            None,
            None,
            "roc_auc was not computed",
        ),
    ],
)
def test_gate_evaluation(gate, metrics, production, passed, actual, threshold, detail):
    result = parse_gate(gate).evaluate(metrics, production)
    assert isinstance(result, GateResult)
    assert result.text == parse_gate(gate).text and result.passed is passed
    if actual is not None and math.isnan(actual):
        assert result.actual is not None and math.isnan(result.actual)
    else:
        assert result.actual == actual
    assert result.threshold == threshold
    assert result.detail.startswith(detail)


def test_gate_results_are_json_even_for_nan():
    result = parse_gate("roc_auc >= 0.5").evaluate({"roc_auc": math.nan})
    assert json.dumps(result.to_json(), allow_nan=False) == (
        '{"text": "roc_auc >= 0.5", "passed": false, "actual": null, "threshold": null, '
        '"detail": "roc_auc is NaN"}'
    )
    ok = parse_gate("rmse < 2").evaluate({"rmse": 1.5}).to_json()
    assert ok == {
        "text": "rmse < 2",
        "passed": True,
        "actual": 1.5,
        "threshold": 2.0,
        "detail": "1.5 < 2",
    }


def test_config_gates_are_gates():
    cfg = parse_train_config(EXAMPLE)
    results = [g.evaluate({"roc_auc": 0.9}, {"roc_auc": 0.95}) for g in cfg.gates]
    assert [r.passed for r in results] == [True, False]
    assert results[1].threshold == pytest.approx(0.94)
    assert isinstance(TrainConfig.model_validate(cfg.to_json()).gates[0], Gate)


# -- properties ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_random_text_parses_or_raises_an_aidlc_error(text):
    try:
        cfg = parse_train_config(text)
    except AidlcError:
        return
    assert isinstance(cfg, TrainConfig)


_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


_words = st.sampled_from(
    [
        "numeric",
        "categorical",
        "all",
        "median",
        "constant",
        "onehot",
        "ordinal",
        "ratio",
        "clip",
        "sum",
        "int",
        "float",
        "categorical",
        "a",
        "b",
    ]
)
_settings = st.dictionaries(
    st.sampled_from(
        [
            "columns",
            "strategy",
            "method",
            "name",
            "op",
            "inputs",
            "low",
            "high",
            "value",
            "max_categories",
            "type",
            "log",
            "step",
            "choices",
            "kind",
        ]
    ),
    _values | _words | st.lists(_words, max_size=3),
    max_size=5,
)
_steps = st.lists(
    st.dictionaries(
        st.sampled_from(["impute", "scale", "encode", "derive", "x"]), _settings, max_size=2
    ),
    max_size=3,
)
_tuning = st.fixed_dictionaries(
    {"trials": st.integers(0, 3), "objective": st.sampled_from(["roc_auc", "rmse", "x"])},
    optional={
        "space": st.dictionaries(st.sampled_from(["eta", "Bad", "depth"]), _settings, max_size=2),
        "direction": _values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "dataset": st.just("churn"),
            "target": st.just("y"),
            "model": st.just({"type": "xgboost"}),
        },
        optional={
            "preprocessing": _steps | _values,
            "tuning": _tuning | _values,
            "gates": st.lists(st.sampled_from(["roc_auc >= 0.5", "rmse < production + 1", "x"]))
            | _values,
            "metrics": st.lists(st.sampled_from(["roc_auc", "rmse", "f1", "x"]), max_size=3)
            | _values,
            "task": st.sampled_from(["classification", "regression"]) | _values,
            "validation": _values,
            "features": _values,
            "register": _values,
            "seed": _values,
        },
    )
)
def test_random_structures_parse_or_raise_an_aidlc_error(obj):
    try:
        text = json.dumps(obj)
    except ValueError:
        return
    try:
        cfg = parse_train_config(text)
    except AidlcError:
        return
    assert parse_train_config(json.dumps(cfg.to_json())) == cfg


@settings(max_examples=500, deadline=None)
@given(
    st.text(max_size=80)
    | st.builds(
        lambda m, op, prod, sign, n: f"{m} {op} {'production ' + sign + ' ' if prod else ''}{n}",
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        st.sampled_from([">=", ">", "<=", "<", "=", "=>"]),
        st.booleans(),
        st.sampled_from(["+", "-", ""]),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
    )
)
def test_random_gate_text_parses_or_raises_config_error(text):
    try:
        gate = parse_gate(text)
    except ConfigError:
        return
    assert parse_gate(gate.text) == gate
    assert math.isfinite(gate.value)


def test_numpy_metric_values_count_as_numbers_and_booleans_do_not():
    import numpy as np

    gate = parse_gate("roc_auc >= production - 0.5")
    assert gate.evaluate({"roc_auc": np.float32(0.5)}, {"roc_auc": np.float64(1.0)}).passed
    assert gate.evaluate({"roc_auc": True}, None).detail == "roc_auc was not computed"
