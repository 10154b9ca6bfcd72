"""Erasure's decisions without a workspace: which ids and reasons are refused, which cells and
files hold the subject, what a legal hold keeps, and which certificates verify."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from aidlc.errors import InvalidInput
from aidlc.govern import erasure
from aidlc.govern.erasure import _Plan, check_subject, verify_certificate

SUBJECT = "P-00007"
EMPTY = "the subject id is empty; pass the id exactly as stored"
CONTROL = "the subject id contains control characters; pass the id as stored"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


WORKSPACE = SimpleNamespace(id="ws-1")


@pytest.fixture
def certificate(key: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A certificate signed by `key`, standing in for the workspace's model-signing key."""
    keys = {id(WORKSPACE): key}
    monkeypatch.setattr("aidlc.registry.versions.signing_key", lambda ws: keys[id(ws)])
    monkeypatch.setattr("aidlc.registry.versions.public_key", lambda ws: keys[id(ws)].public_key())
    body = {"type": "aidlc-erasure-certificate", "held_data": True, "reason": "Löschung"}
    return erasure._sign(WORKSPACE, body)  # type: ignore[arg-type]


def _resign(key: ec.EllipticCurvePrivateKey, doc: dict[str, Any], message: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes

    value = key.sign(message, ec.ECDSA(hashes.SHA256()))
    doc["signature"]["value"] = base64.b64encode(value).decode()
    return json.dumps(doc).encode()


def test_subject_ids_of_1_to_256_printable_characters_are_accepted() -> None:
    for subject in ("P", "P-00007", "x" * 256, "Jürgen Müller", " padded "):
        assert check_subject(subject) == subject


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("", EMPTY),
        (" \t", EMPTY),
        ("x" * 257, "the subject id is 257 characters; the limit is 256"),
        ("P-0\x00007", CONTROL),
        ("P-\x7f", CONTROL),
        ("P-\udcff", CONTROL),
        (7, EMPTY),
    ],
)
def test_ids_that_cannot_name_a_subject_are_refused(subject: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_subject(subject)
    assert refused.value.message == message


def test_reasons_are_bounded_and_free_of_control_characters_but_may_span_lines() -> None:
    assert erasure._check_reason("") == ""
    assert erasure._check_reason("a" * 1000) == "a" * 1000
    assert erasure._check_reason("ticket 12\n\tby mail") == "ticket 12\n\tby mail"
    with pytest.raises(InvalidInput) as long:
        erasure._check_reason("a" * 1001)
    assert long.value.message == "the reason is 1001 characters; the limit is 1000"
    for bad in ("a\x00b", "a\rb", "\udcff", "a\x1bb"):
        with pytest.raises(InvalidInput) as refused:
            erasure._check_reason(bad)
        assert refused.value.message == "the reason contains control characters"


def test_a_signed_certificate_verifies_with_the_public_key_and_names_it(
    key: ec.EllipticCurvePrivateKey, certificate: bytes
) -> None:
    assert verify_certificate(key.public_key(), certificate)
    doc = json.loads(certificate)
    assert doc["held_data"] is True and doc["type"] == "aidlc-erasure-certificate"
    signature = doc["signature"]
    assert signature["algorithm"] == "ecdsa-p256-sha256"
    assert signature["key"] == "workspace model-signing key"
    assert signature["public_key_sha256"] == erasure._key_id(key.public_key())
    assert len(signature["public_key_sha256"]) == 64
    assert not verify_certificate(ec.generate_private_key(ec.SECP256R1()).public_key(), certificate)


def test_the_certificate_is_stored_as_readable_stable_json(certificate: bytes) -> None:
    """Indented, keys sorted (the same certificate gives the same bytes), text as written."""
    text = certificate.decode("utf-8")
    assert '"reason": "Löschung"' in text
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False)
    assert text.startswith('{\n  "held_data": true,\n')


def test_the_workspace_checks_its_own_certificates(certificate: bytes) -> None:
    assert verify_certificate(WORKSPACE, certificate)  # type: ignore[arg-type]
    doc = json.loads(certificate)
    doc["reason"] = "edited"
    assert not verify_certificate(WORKSPACE, json.dumps(doc).encode())  # type: ignore[arg-type]


def test_a_signature_value_with_stray_characters_is_refused(
    key: ec.EllipticCurvePrivateKey, certificate: bytes
) -> None:
    """Strict base64: a lenient decoder would skip the stray `*` and accept the signature."""
    doc = json.loads(certificate)
    value = doc["signature"]["value"]
    doc["signature"]["value"] = value[:8] + "*" + value[8:]
    assert not verify_certificate(key.public_key(), json.dumps(doc).encode())


def test_an_edited_certificate_no_longer_verifies(
    key: ec.EllipticCurvePrivateKey, certificate: bytes
) -> None:
    doc = json.loads(certificate)
    doc["held_data"] = False
    assert not verify_certificate(key.public_key(), json.dumps(doc).encode())


def test_a_signature_without_the_erasure_context_line_does_not_verify(
    key: ec.EllipticCurvePrivateKey, certificate: bytes
) -> None:
    """The same body signed as another kind of document (no context line) is no certificate."""
    doc = json.loads(certificate)
    body = {k: v for k, v in doc.items() if k != "signature"}
    forged = _resign(key, json.loads(certificate), erasure._canonical(body))
    assert not verify_certificate(key.public_key(), forged)
    genuine = _resign(key, json.loads(certificate), b"aidlc-erasure-certificate-v1\n" + (
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ))  # fmt: skip
    assert verify_certificate(key.public_key(), genuine)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d.update(signature={**d["signature"], "algorithm": "ecdsa-p384-sha384"}),
        lambda d: d["signature"].pop("algorithm"),
        lambda d: d["signature"].pop("value"),
        lambda d: d.pop("signature"),
        lambda d: d.update(signature={**d["signature"], "value": "not base64!"}),
        lambda d: d.update(signature="a string"),
        lambda d: d.update(signature=None),
    ],
)
def test_bad_certificates_are_refused_without_raising(
    key: ec.EllipticCurvePrivateKey, certificate: bytes, mangle: Any
) -> None:
    doc = json.loads(certificate)
    mangle(doc)
    assert verify_certificate(key.public_key(), json.dumps(doc).encode()) is False


@pytest.mark.parametrize("data", [b"", b"not json", b"[]", b"\xff\xfe", b'"text"', b"{}"])
def test_garbage_is_no_certificate(key: ec.EllipticCurvePrivateKey, data: bytes) -> None:
    assert verify_certificate(key.public_key(), data) is False


def test_a_subject_id_inside_a_longer_id_is_not_the_subject() -> None:
    found = erasure._boundary(SUBJECT)
    for text in ("P-00007", "id,P-00007,x", "(P-00007)", "P-00007\n", "x P-00007."):
        assert found.search(text), text
    for text in ("P-000070", "XP-00007", "P-00007-2", "-P-00007", "P_00007", "P-0000", "AP-00007b"):
        assert not found.search(text), text
    assert not erasure._boundary("a.b").search("axb")  # the id is matched literally


def test_json_values_and_keys_naming_the_subject_are_found() -> None:
    assert erasure._in_json(SUBJECT, SUBJECT)
    assert erasure._in_json({"id": SUBJECT}, SUBJECT)
    assert erasure._in_json({SUBJECT: 1}, SUBJECT)
    assert erasure._in_json([1, {"a": [SUBJECT]}], SUBJECT)
    assert erasure._in_json({"a": 1, "b": {"c": SUBJECT}}, SUBJECT)
    assert erasure._in_json([None, SUBJECT], SUBJECT)
    for other in ("P-000071", {"id": "x"}, [1, 2], 7, None, {"a": [{"b": "P"}]}, []):
        assert not erasure._in_json(other, SUBJECT), other


def test_rows_holding_the_subject_in_any_text_subject_or_inputs_cell() -> None:
    df = pl.DataFrame(
        {
            "patient": [7, 8, 9, None, 11],  # a subject column of another type: compared as text
            "note": ["x", SUBJECT, None, "y", "z"],
            "inputs": [None, "{}", "not json", json.dumps({"id": SUBJECT}), "[]"],
            "n": [1, 2, 3, 4, 5],
        }
    )
    mask = erasure._subject_mask(df, "7", {"patient"})
    assert mask.to_list() == [True, False, False, False, False]
    assert erasure._subject_mask(df, "7", set()).to_list() == [False] * 5
    assert erasure._subject_mask(df, SUBJECT, set()).to_list() == [
        False, True, False, True, False
    ]  # fmt: skip
    assert erasure._subject_mask(df, "not json", set()).to_list() == [
        False, False, True, False, False
    ]  # fmt: skip
    assert erasure._subject_mask(df, "1", {"n"}).to_list() == [True] + [False] * 4


def test_an_empty_table_holds_nobody() -> None:
    """A boolean mask of no rows, so filtering an empty version by it keeps its schema."""
    empty = pl.DataFrame({"n": pl.Series([], dtype=pl.Int64)})
    mask = erasure._subject_mask(empty, "1", set())
    assert mask.dtype == pl.Boolean and mask.len() == 0
    assert empty.filter(~mask).schema == empty.schema
    no_predictions = pl.DataFrame({"inputs": pl.Series([], dtype=pl.String)})
    assert erasure._subject_mask(no_predictions, "1", set()).dtype == pl.Boolean


def test_json_inputs_are_searched_only_in_a_text_column() -> None:
    df = pl.DataFrame({"inputs": [1, 2]})
    assert erasure._subject_mask(df, "1", set()).to_list() == [False, False]


def _hold(id_: int, zone: str | None, prefix: str) -> Any:
    return SimpleNamespace(id=id_, zone=zone, prefix=prefix)


def test_a_legal_hold_keeps_what_its_zone_and_prefix_cover() -> None:
    holds = [_hold(1, "raw", "cases/"), _hold(2, None, "ds/2024"), _hold(3, "quarantine", "")]
    assert erasure._hold_on(holds, "raw/cases/a.csv@1").id == 1
    assert erasure._hold_on(holds, "raw/ds/2024x/a.csv@1").id == 2
    assert erasure._hold_on(holds, "validated/ds/2024/a@3").id == 2
    assert erasure._hold_on(holds, "quarantine/anything@1").id == 3
    assert erasure._hold_on(holds, "validated/cases/a.csv@1") is None
    assert erasure._hold_on(holds, "raw/ds/2023/a.csv@1") is None
    assert erasure._hold_on([_hold(4, None, "")], "models/m/v1@1").id == 4
    assert erasure._hold_on([], "raw/a@1") is None


def test_objects_are_shredded_once_unless_a_hold_keeps_them() -> None:
    holds = [_hold(5, "raw", "kept/")]
    plan = _Plan()
    for ref in ("raw/a.csv@1", "raw/kept/b.csv@1", "raw/a.csv@1", "raw/kept/b.csv@1", "raw/c@2"):
        erasure._shred_or_keep(holds, plan, ref)
    assert plan.to_shred == ["raw/a.csv@1", "raw/c@2"]
    assert plan.held == [
        {"object": "raw/kept/b.csv@1", "hold": 5, "note": "kept under legal hold 5"}
    ]
