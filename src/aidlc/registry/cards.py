"""Model cards: the facts of a model version as a typed record, a readable Markdown page and
canonical JSON. User text is escaped so a description cannot inject HTML or break a table.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
NOT_STATED = "Not stated."


class _Record(BaseModel):
    # NaN and infinity have no JSON form: a card that holds them could not be read back.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TrainingData(_Record):
    """One validated dataset version a model was trained on."""

    dataset: str
    version: int
    rows: int = Field(ge=0)
    sha256: Sha256Hex
    contract_version: int


class GateOutcome(_Record):
    """One quality gate as evaluated at training time, e.g. `roc_auc >= 0.80`."""

    text: str
    passed: bool
    actual: float | None
    threshold: float | None
    detail: str = ""


class ModelCard(_Record):
    """Everything a reviewer needs to know about one model version."""

    model: str
    version: int = Field(ge=1)
    description: str
    intended_use: str
    limitations: str
    owner: str
    task: str
    flavor: str
    target: str
    features: list[str]
    classes: list[str] | None
    training_data: list[TrainingData]
    metrics: dict[str, float]
    gates: list[GateOutcome]
    gates_passed: bool
    trained_by: str
    registered_by: str
    run_id: str | None
    model_digest: Sha256Hex
    created_at: AwareDatetime
    tags: dict[str, str]
    # imported models: where the file came from (format, digest, producer, what an MLflow
    # directory declared, the ONNX conversion's proof) and where aidlc evaluated it
    imported: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None


# --- escaping ----------------------------------------------------------------------------------

# HTML first (so our own escapes survive), then the characters that make inline Markdown.
_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_INLINE = re.compile(r"([\\`*_\[\]|~])")
# What turns the start of a line into a heading, list, rule or setext underline.
_BLOCK_MARK = re.compile(r"^([#+=-])")
_ORDERED_ITEM = re.compile(r"^(\d+)([.)])")
_PLAIN_TOKEN = re.compile(r"^[0-9A-Za-z.:@-]+\Z")


def escape_inline(text: str) -> str:
    """`text` as literal inline Markdown: no HTML, links, emphasis or table pipes.

    >>> escape_inline("a | <b>*c*</b>")
    'a \\\\| &lt;b&gt;\\\\*c\\\\*&lt;/b&gt;'
    """
    return _INLINE.sub(r"\\\1", text.translate(_HTML))


def escape_cell(text: str) -> str:
    """`text` as the literal content of one table cell (on one line)."""
    return escape_inline(" ".join(text.split()))


def escape_block(text: str) -> str:
    """`text` as literal paragraphs: lines kept, but none can start a heading, list or code."""
    lines = []
    for line in text.strip().splitlines():
        # Leading spaces would make an indented code block.
        escaped = _BLOCK_MARK.sub(r"\\\1", escape_inline(line.strip()))
        lines.append(_ORDERED_ITEM.sub(r"\1\\\2", escaped))
    return "\n".join(lines)


def _prose(text: str) -> str:
    return escape_block(text) if text.strip() else NOT_STATED


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _code(text: str) -> str:
    # A code span shows backslashes literally and GFM splits cells on `|` even inside one:
    # only plain tokens (digests, ids) go in one.
    return f"`{text}`" if _PLAIN_TOKEN.match(text) else escape_cell(text)


# --- rendering ---------------------------------------------------------------------------------


def render_markdown(card: ModelCard) -> str:
    """The card as a Markdown page: overview, intended use, training data, metrics, quality
    gates, limitations and provenance. Every piece of user text is escaped.
    """
    name = escape_inline(f"{card.model} v{card.version}")
    out: list[str] = [f"# Model card: {name}", ""]

    out += ["## Overview", "", _prose(card.description), ""]
    classes = ", ".join(escape_inline(c) for c in card.classes) if card.classes else "—"
    features = ", ".join(escape_inline(f) for f in card.features) or "—"
    out += [
        f"- **Owner:** {escape_inline(card.owner) or '—'}",
        f"- **Task:** {escape_inline(card.task)}",
        f"- **Flavor:** {escape_inline(card.flavor)}",
        f"- **Target:** {escape_inline(card.target)}",
        f"- **Features ({len(card.features)}):** {features}",
        f"- **Classes:** {classes}",
        f"- **Quality gates:** {'all passed' if card.gates_passed else 'FAILED'}",
    ]
    if card.tags:
        tags = ", ".join(f"{escape_inline(k)}={escape_inline(v)}" for k, v in card.tags.items())
        out.append(f"- **Tags:** {tags}")
    out.append("")

    out += ["## Intended use", "", _prose(card.intended_use), ""]

    out += ["## Training data", ""]
    if card.training_data:
        out += ["| Dataset | Version | Rows | Contract | SHA-256 |", "|---|---:|---:|---:|---|"]
        out += [
            f"| {escape_cell(d.dataset)} | {d.version} | {d.rows} | v{d.contract_version} "
            f"| {_code(d.sha256)} |"
            for d in card.training_data
        ]
    else:
        out.append(NOT_STATED)
    out.append("")

    out += _evaluation(card)

    out += ["## Metrics", ""]
    if card.metrics:
        out += ["| Metric | Value |", "|---|---:|"]
        out += [f"| {escape_cell(k)} | {v:.4f} |" for k, v in sorted(card.metrics.items())]
    else:
        out.append("No metrics recorded.")
    out.append("")

    out += ["## Quality gates", ""]
    if card.gates:
        out += ["| Gate | Result | Actual | Threshold | Detail |", "|---|---|---:|---:|---|"]
        out += [
            f"| {escape_cell(g.text)} | {'✅ PASS' if g.passed else '❌ FAIL'} "
            f"| {_number(g.actual)} | {_number(g.threshold)} | {escape_cell(g.detail)} |"
            for g in card.gates
        ]
    else:
        out.append("No quality gates configured.")
    out.append("")

    out += ["## Limitations", "", _prose(card.limitations), ""]

    out += [
        "## Provenance",
        "",
        f"- **Trained by:** {escape_inline(card.trained_by)}",
        f"- **Registered by:** {escape_inline(card.registered_by)}",
        f"- **Training run:** {_code(card.run_id) if card.run_id else '—'}",
        f"- **Model digest (SHA-256):** {_code(card.model_digest)}",
        f"- **Created:** {card.created_at.isoformat()}",
        "",
    ]
    out += _imported(card.imported)
    return "\n".join(out)


def _evaluation(card: ModelCard) -> list[str]:
    ev = card.evaluation
    if not ev:
        return []
    rows = f"{ev.get('rows')} rows of {escape_inline(str(ev.get('dataset')))}"
    if ev.get("in_sample"):
        return [
            "## Evaluation",
            "",
            f"**In-sample (optimistic):** aidlc computed the metrics below on {rows}, the data "
            "the model was trained on, because no held-out version was named. Approving this "
            "version needs the approver to accept that explicitly.",
            "",
        ]
    return [
        "## Evaluation",
        "",
        f"aidlc computed the metrics below on {rows}, a validated version held out from "
        "training (it shares no row with the training data).",
        "",
    ]


def _imported(imported: dict[str, Any] | None) -> list[str]:
    if not imported:
        return []
    producer = imported.get("producer") or {}
    made = " ".join(str(producer[k]) for k in ("framework", "framework_version") if producer.get(k))
    out = [
        "## Imported",
        "",
        f"- **Format:** {escape_inline(str(imported.get('format')))}",
        f"- **File SHA-256:** {_code(str(imported.get('sha256')))}",
        f"- **Made with:** {escape_inline(made) or '—'}",
    ]
    if producer.get("opsets"):
        opsets = ", ".join(f"{k or 'ai.onnx'} {v}" for k, v in sorted(producer["opsets"].items()))
        out.append(f"- **ONNX opsets:** {escape_inline(opsets)}")
    mlflow = (imported.get("declared") or {}).get("mlflow")
    if mlflow:
        facts = ", ".join(
            f"{k} {mlflow[k]}"
            for k in ("mlflow_version", "run_id", "flavor", "flavor_version")
            if mlflow.get(k)
        )
        out.append(f"- **MLflow declared (not verified):** {escape_inline(facts) or '—'}")
    conversion = imported.get("conversion")
    if conversion:
        if conversion.get("served") == "onnx":
            diff = conversion.get("max_abs_diff", conversion.get("max_rel_diff", 0.0))
            out.append(
                "- **Served by ONNX Runtime:** converted with "
                f"{escape_inline(str(conversion.get('converter')))} "
                f"{escape_inline(str(conversion.get('converter_version')))}; on "
                f"{conversion.get('rows')} evaluation rows the labels are equal and the scores "
                f"differ by at most {float(diff):.2g} (tolerance "
                f"{float(conversion.get('tolerance', 0.0)):.2g}); the skops file is kept as "
                "the reference"
            )
        else:
            out.append(
                "- **Served from the skops file:** "
                + escape_inline(str(conversion.get("reason", "not converted")))
            )
    out.append("")
    return out


def card_json(card: ModelCard) -> bytes:
    """The card as JSON: sorted keys, two-space indent, trailing newline; it reads back with
    `ModelCard.model_validate_json`.
    """
    text = json.dumps(card.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")
