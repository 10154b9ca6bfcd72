"""The ML bill of materials of a model version: a CycloneDX 1.6 JSON BOM naming the model, its
files, the datasets it was trained on and the Python packages it was trained with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from uuid import UUID, uuid4

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from aidlc.errors import IntegrityError
from aidlc.registry.cards import ModelCard


def normalise_package(name: str) -> str:
    """A Python distribution name normalised as PEP 503 and the purl spec want it.

    >>> normalise_package("Typing_Extensions")
    'typing-extensions'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha256(digest: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=digest)]


def _model_properties(card: ModelCard) -> list[Property]:
    # cyclonedx-python-lib 11 cannot write a component's `modelCard` yet, so the card's key
    # facts travel as properties; the full card is `model-card.json` beside the BOM.
    facts = {
        "aidlc:task": card.task,
        "aidlc:flavor": card.flavor,
        "aidlc:target": card.target,
        "aidlc:owner": card.owner,
        "aidlc:features": json.dumps(card.features),
        "aidlc:gates_passed": str(card.gates_passed).lower(),
        "aidlc:trained_by": card.trained_by,
        "aidlc:registered_by": card.registered_by,
        "aidlc:run_id": card.run_id or "",
        "aidlc:created_at": card.created_at.isoformat(),
        "aidlc:intended_use": card.intended_use,
        "aidlc:limitations": card.limitations,
    }
    if card.classes is not None:
        facts["aidlc:classes"] = json.dumps(card.classes)
    if card.imported:
        producer = card.imported.get("producer") or {}
        conversion = card.imported.get("conversion") or {}
        facts["aidlc:imported:format"] = str(card.imported.get("format", ""))
        facts["aidlc:imported:sha256"] = str(card.imported.get("sha256", ""))
        facts["aidlc:producer:framework"] = str(producer.get("framework", ""))
        facts["aidlc:producer:version"] = str(producer.get("framework_version", ""))
        opsets = producer.get("opsets") or conversion.get("opsets")
        if opsets:
            facts["aidlc:onnx:opsets"] = json.dumps(opsets, sort_keys=True)
        if conversion:
            facts["aidlc:converter"] = str(conversion.get("converter", ""))
            facts["aidlc:converter:version"] = str(conversion.get("converter_version", ""))
            facts["aidlc:served_by"] = str(conversion.get("served", ""))
    if card.evaluation:
        facts["aidlc:evaluated_on"] = str(card.evaluation.get("dataset", ""))
        facts["aidlc:in_sample"] = str(bool(card.evaluation.get("in_sample"))).lower()
    for metric, score in card.metrics.items():
        facts[f"aidlc:metric:{metric}"] = repr(score)
    for gate in card.gates:
        facts[f"aidlc:gate:{gate.text}"] = "pass" if gate.passed else "fail"
    for key, tag in card.tags.items():
        facts[f"aidlc:tag:{key}"] = tag
    return [Property(name=name, value=value) for name, value in facts.items() if value]


def build_ml_bom(
    card: ModelCard,
    files: Mapping[str, str],
    packages: Sequence[tuple[str, str]],
    *,
    serial: UUID | None = None,
    timestamp: datetime | None = None,
) -> bytes:
    """A CycloneDX 1.6 ML-BOM (JSON bytes) for the model version described by `card`.

    The metadata component is the model (SHA-256 = its model digest); the BOM lists a file
    component per model file, a data component per training dataset and a library component
    per (name, version) package, and the model depends on all of them. The output is the same
    for the same inputs, `serial` and `timestamp` (default: random UUID, now).
    """
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=card.model,
        version=str(card.version),
        bom_ref=f"model:{card.model}@{card.version}",
        description=card.description or None,
        hashes=_sha256(card.model_digest),
        properties=_model_properties(card),
    )
    parts: list[Component] = [
        Component(
            type=ComponentType.FILE,
            name=path,
            bom_ref=f"model-file:{path}",
            hashes=_sha256(digest),
        )
        for path, digest in sorted(files.items())
    ]
    seen: set[str] = set()
    for d in card.training_data:
        ref = f"dataset:{d.dataset}@{d.version}"
        if ref in seen:
            continue
        seen.add(ref)
        parts.append(
            Component(
                type=ComponentType.DATA,
                name=f"{d.dataset}@{d.version}",
                version=str(d.version),
                bom_ref=ref,
                hashes=_sha256(d.sha256),
                properties=[
                    Property(name="aidlc:rows", value=str(d.rows)),
                    Property(name="aidlc:contract_version", value=str(d.contract_version)),
                ],
            )
        )
    for name, version in packages:
        normalised = normalise_package(name)
        purl = PackageURL(type="pypi", name=normalised, version=version)
        if purl.to_string() in seen:
            continue
        seen.add(purl.to_string())
        parts.append(
            Component(
                type=ComponentType.LIBRARY,
                name=normalised,
                version=version,
                purl=purl,
                bom_ref=purl.to_string(),
            )
        )
    bom = Bom(
        serial_number=serial or uuid4(),
        metadata=BomMetaData(component=model, timestamp=timestamp or datetime.now(UTC)),
        components=parts,
    )
    bom.register_dependency(model, parts)
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    return (text + "\n").encode("utf-8")


def validate_ml_bom(data: bytes) -> None:
    """Check `data` against the strict CycloneDX 1.6 JSON schema (offline).

    Raises IntegrityError with the first problem the validator reports.
    """
    # Imported here: jsonschema's format checkers compile dozens of grammars on import
    # (seconds), a price only validation should pay.
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        text = data.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError("the ML-BOM is not JSON") from exc
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        detail = getattr(error.data, "message", str(error))
        raise IntegrityError(f"the ML-BOM is not valid CycloneDX 1.6: {str(detail)[:300]}")
