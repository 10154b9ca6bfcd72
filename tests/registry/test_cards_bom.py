"""Model cards render safely, read back from JSON, and the CycloneDX ML-BOM validates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

import pytest
from pydantic import ValidationError

from aidlc.errors import IntegrityError
from aidlc.registry import bom, cards

HOSTILE = "Scores churn | <script>alert(1)</script>\n# Not a heading\n1. not a list"
FILES = {"model.skops": "c" * 64, "preprocess.json": "d" * 64}
PACKAGES = [("numpy", "2.4.0"), ("Typing_Extensions", "4.12.2"), ("scikit-learn", "1.9.0")]
SERIAL = UUID("12345678-1234-5678-1234-567812345678")
WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def make_card(**changes) -> cards.ModelCard:
    fields = {
        "model": "churn",
        "version": 3,
        "description": HOSTILE,
        "intended_use": "",
        "limitations": "Not for credit decisions.",
        "owner": "ml-team",
        "task": "binary",
        "flavor": "xgboost",
        "target": "churned",
        "features": ["age", "plan"],
        "classes": ["no", "yes"],
        "training_data": [
            cards.TrainingData(
                dataset="customers", version=2, rows=1000, sha256="a" * 64, contract_version=1
            )
        ],
        "metrics": {"roc_auc": 0.912345, "accuracy": 0.8},
        "gates": [
            cards.GateOutcome(
                text="roc_auc >= 0.8", passed=True, actual=0.912345, threshold=0.8, detail="ok"
            ),
            cards.GateOutcome(
                text="f1 | x", passed=False, actual=None, threshold=0.5, detail="<b>missing</b>"
            ),
        ],
        "gates_passed": False,
        "trained_by": "trainer",
        "registered_by": "approver",
        "run_id": "0123abcd",
        "model_digest": "b" * 64,
        "created_at": WHEN,
        "tags": {"team": "growth"},
    }
    return cards.ModelCard(**(fields | changes))


# --- cards -------------------------------------------------------------------------------------


def test_markdown_has_every_section_in_order() -> None:
    text = cards.render_markdown(make_card())
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        "# Model card: churn v3",
        "## Overview",
        "## Intended use",
        "## Training data",
        "## Metrics",
        "## Quality gates",
        "## Limitations",
        "## Provenance",
    ]
    assert "| customers | 2 | 1000 | v1 | `" + "a" * 64 + "` |" in text
    assert "| roc\\_auc | 0.9123 |" in text and "| accuracy | 0.8000 |" in text
    assert "| roc\\_auc &gt;= 0.8 | ✅ PASS | 0.9123 | 0.8000 | ok |" in text
    assert "| f1 \\| x | ❌ FAIL | — | 0.5000 | &lt;b&gt;missing&lt;/b&gt; |" in text
    assert "- **Trained by:** trainer" in text and "- **Registered by:** approver" in text
    assert "- **Training run:** `0123abcd`" in text
    assert "- **Model digest (SHA-256):** `" + "b" * 64 + "`" in text
    assert "- **Created:** 2025-03-04T05:06:07+00:00" in text


def test_a_hostile_description_cannot_inject_html_or_markup() -> None:
    text = cards.render_markdown(make_card())
    overview = text.split("## Overview\n\n")[1].split("\n\n")[0]
    assert overview == (
        "Scores churn \\| &lt;script&gt;alert(1)&lt;/script&gt;\n\\# Not a heading\n1\\. not a list"
    )
    assert "<script>" not in text and "<b>" not in text


def test_empty_intended_use_and_limitations_say_not_stated() -> None:
    text = cards.render_markdown(make_card(intended_use="  ", limitations=""))
    assert "## Intended use\n\nNot stated.\n" in text
    assert "## Limitations\n\nNot stated.\n" in text


def test_card_json_is_sorted_indented_and_reads_back() -> None:
    card = make_card()
    data = cards.card_json(card)
    assert data.endswith(b"}\n")
    parsed = json.loads(data)
    assert list(parsed) == sorted(parsed)
    assert data.startswith(b'{\n  "classes": [\n')
    assert parsed["created_at"] == "2025-03-04T05:06:07Z"
    assert cards.ModelCard.model_validate_json(data) == card


def test_a_card_refuses_unknown_fields_naive_times_and_nan() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        make_card(surprise=1)
    with pytest.raises(ValidationError, match="timezone"):
        make_card(created_at=datetime(2025, 1, 1))
    with pytest.raises(ValidationError, match="finite"):
        make_card(metrics={"auc": float("nan")})
    with pytest.raises(ValidationError, match="pattern"):
        make_card(model_digest="not-hex")


# --- ML-BOM ------------------------------------------------------------------------------------


def build(card: cards.ModelCard | None = None) -> bytes:
    return bom.build_ml_bom(card or make_card(), FILES, PACKAGES, serial=SERIAL, timestamp=WHEN)


def test_the_bom_validates_and_names_model_files_data_and_packages() -> None:
    data = build()
    bom.validate_ml_bom(data)
    doc = json.loads(data)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")
    assert doc["serialNumber"] == f"urn:uuid:{SERIAL}"
    model = doc["metadata"]["component"]
    assert (model["type"], model["name"], model["version"]) == (
        "machine-learning-model",
        "churn",
        "3",
    )
    assert model["hashes"] == [{"alg": "SHA-256", "content": "b" * 64}]
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["aidlc:metric:roc_auc"] == "0.912345"
    assert props["aidlc:gate:f1 | x"] == "fail"
    assert props["aidlc:features"] == '["age", "plan"]'

    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    assert by_ref["model-file:model.skops"]["type"] == "file"
    assert by_ref["model-file:model.skops"]["hashes"][0]["content"] == "c" * 64
    dataset = by_ref["dataset:customers@2"]
    assert (dataset["type"], dataset["name"]) == ("data", "customers@2")
    assert dataset["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    purls = {c["purl"] for c in doc["components"] if c["type"] == "library"}
    assert purls == {
        "pkg:pypi/numpy@2.4.0",
        "pkg:pypi/typing-extensions@4.12.2",
        "pkg:pypi/scikit-learn@1.9.0",
    }
    [model_deps] = [d for d in doc["dependencies"] if d["ref"] == "model:churn@3"]
    assert sorted(model_deps["dependsOn"]) == sorted(by_ref)


def test_the_bom_is_byte_identical_for_the_same_inputs() -> None:
    assert build() == build()
    assert build() != bom.build_ml_bom(make_card(), FILES, PACKAGES, timestamp=WHEN)


def test_a_bom_missing_a_required_field_fails_validation() -> None:
    doc = json.loads(build())
    del doc["components"][0]["name"]
    with pytest.raises(IntegrityError, match=r"not valid CycloneDX 1\.6: 'name' is a required"):
        bom.validate_ml_bom(json.dumps(doc).encode())
    doc = json.loads(build())
    doc["metadata"]["component"]["type"] = "spaceship"
    with pytest.raises(
        IntegrityError, match=r"not valid CycloneDX 1\.6: 'spaceship' is not one of"
    ):
        bom.validate_ml_bom(json.dumps(doc).encode())
    with pytest.raises(IntegrityError, match="not JSON"):
        bom.validate_ml_bom(b"{truncated")
