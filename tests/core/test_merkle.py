"""The audit log's Merkle tree, canonical event bytes and signed tree heads."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aidlc.core.merkle import (
    EMPTY_ROOT,
    MAX_SAFE_INTEGER,
    TREE_HEAD_DOMAIN,
    CompactRange,
    ConsistencyProof,
    InclusionProof,
    TreeHead,
    consistency_proof,
    decode_event,
    encode_event,
    inclusion_proof,
    leaf_hash,
    node_hash,
    public_key_id,
    root,
    sign_tree_head,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)
from aidlc.errors import IntegrityError, InvalidInput

# ---------------------------------------------------------------- RFC 6962 §2.1, as written


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n, found by counting up as the RFC says."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return _sha(b"\x00" + d[0])
    k = _k(n)
    return _sha(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return naive_path(m, d[:k]) + [naive_mth(d[k:])]
    return naive_path(m - k, d[k:]) + [naive_mth(d[:k])]


def naive_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [naive_mth(d)]
    k = _k(n)
    if m <= k:
        return naive_subproof(m, d[:k], b) + [naive_mth(d[k:])]
    return naive_subproof(m - k, d[k:], False) + [naive_mth(d[:k])]


def naive_proof(m: int, d: list[bytes]) -> list[bytes]:
    return naive_subproof(m, d, True)


DATA = [b"leaf-%d" % i * (i % 4) for i in range(70)]
LEAF_HASHES = [leaf_hash(x) for x in DATA]


def test_root_matches_the_rfc_for_every_size_up_to_70() -> None:
    for n in range(71):
        assert root(LEAF_HASHES[:n]) == naive_mth(DATA[:n]), n


def test_inclusion_proofs_match_the_rfc_for_every_index_of_every_size_up_to_70() -> None:
    for n in range(1, 71):
        tree_root = naive_mth(DATA[:n])
        for m in range(n):
            proof = inclusion_proof(m, LEAF_HASHES[:n])
            assert proof == naive_path(m, DATA[:n]), (m, n)
            assert verify_inclusion(LEAF_HASHES[m], m, n, proof, tree_root), (m, n)


def test_consistency_proofs_match_the_rfc_for_every_old_size_of_every_size_up_to_70() -> None:
    for n in range(71):
        new_root = naive_mth(DATA[:n])
        for m in range(n + 1):
            proof = consistency_proof(m, LEAF_HASHES[:n])
            if 0 < m < n:
                assert proof == naive_proof(m, DATA[:n]), (m, n)
            else:
                assert proof == []
            assert verify_consistency(m, n, naive_mth(DATA[:m]), new_root, proof), (m, n)


# ---------------------------------------------------------------- published vectors
# certificate-transparency-go testonly/constants.go (the RFC 6962 reference test data).

CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (0-based leaf index, tree size, path)
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, proof)
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_HASHES = [leaf_hash(x) for x in CT_LEAVES]


def test_roots_of_the_certificate_transparency_test_tree() -> None:
    for n, expected in enumerate(CT_ROOTS):
        assert root(CT_HASHES[:n]).hex() == expected
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_inclusion_proofs_of_the_certificate_transparency_test_tree(
    index: int, size: int, path: list[str]
) -> None:
    assert [h.hex() for h in inclusion_proof(index, CT_HASHES[:size])] == path
    proof = [bytes.fromhex(h) for h in path]
    assert verify_inclusion(CT_HASHES[index], index, size, proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "path"), CT_CONSISTENCY)
def test_consistency_proofs_of_the_certificate_transparency_test_tree(
    old: int, new: int, path: list[str]
) -> None:
    assert [h.hex() for h in consistency_proof(old, CT_HASHES[:new])] == path
    proof = [bytes.fromhex(h) for h in path]
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old, new, old_root, new_root, proof)


def test_node_hash_is_sha256_of_0x01_and_both_children() -> None:
    left, right = CT_HASHES[0], CT_HASHES[1]
    assert node_hash(left, right) == _sha(b"\x01" + left + right)
    assert node_hash(left, right).hex() == CT_ROOTS[2]


# ---------------------------------------------------------------- proof properties


def _leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


def _flip(h: bytes, position: int) -> bytes:
    position %= len(h)
    return h[:position] + bytes([h[position] ^ 0x01]) + h[position + 1 :]


@given(st.data(), st.integers(1, 300))
def test_every_inclusion_proof_verifies_and_no_altered_one_does(data: Any, size: int) -> None:
    leaves = _leaves(size)
    tree_root = root(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, leaves)
    assert verify_inclusion(leaves[index], index, size, proof, tree_root)

    if size > 1:
        other_index = (index + data.draw(st.integers(1, size - 1))) % size
        assert not verify_inclusion(leaves[other_index], index, size, proof, tree_root)
        assert not verify_inclusion(leaves[index], other_index, size, proof, tree_root)
    # A root does not encode its size (the signed head does), so "another size" means a proof
    # from another tree, or a size too small to hold the leaf.
    other_size = data.draw(st.integers(index + 1, 400).filter(lambda s: s != size))
    other_leaves = _leaves(other_size)
    other_proof = inclusion_proof(index, other_leaves)
    assert not verify_inclusion(leaves[index], index, other_size, other_proof, tree_root)
    assert not verify_inclusion(leaves[index], index, size, other_proof, tree_root)
    if index > 0:
        assert not verify_inclusion(leaves[index], index, index, proof, tree_root)
    assert not verify_inclusion(
        leaves[index], index, size, proof, root(leaves[:-1] or [EMPTY_ROOT])
    )

    position = data.draw(st.integers(0, 31))
    assert not verify_inclusion(_flip(leaves[index], position), index, size, proof, tree_root)
    assert not verify_inclusion(leaves[index], index, size, proof, _flip(tree_root, position))
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        tampered = proof[:at] + [_flip(proof[at], position)] + proof[at + 1 :]
        assert not verify_inclusion(leaves[index], index, size, tampered, tree_root)
        assert not verify_inclusion(leaves[index], index, size, proof[:-1], tree_root)
    assert not verify_inclusion(leaves[index], index, size, [*proof, leaves[0]], tree_root)


@given(st.data(), st.integers(0, 300))
def test_consistency_proofs_verify_and_fail_once_the_old_tree_changes(
    data: Any, new_size: int
) -> None:
    leaves = _leaves(new_size)
    old_size = data.draw(st.integers(0, new_size))
    old_root, new_root = root(leaves[:old_size]), root(leaves)
    proof = consistency_proof(old_size, leaves)
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)

    if old_size > 0:
        changed = data.draw(st.integers(0, old_size - 1))
        edited = [*leaves[:changed], leaf_hash(b"edited"), *leaves[changed + 1 :]]
        assert not verify_consistency(old_size, new_size, root(edited[:old_size]), new_root, proof)
        # The log rewritten in its old part cannot prove it extends the honest old head.
        rewritten = consistency_proof(old_size, edited)
        assert not verify_consistency(old_size, new_size, old_root, root(edited), rewritten)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        tampered = proof[:at] + [_flip(proof[at], data.draw(st.integers(0, 31)))] + proof[at + 1 :]
        assert not verify_consistency(old_size, new_size, old_root, new_root, tampered)
        assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
    if 0 < old_size < new_size:
        assert not verify_consistency(old_size + 1, new_size, old_root, new_root, proof)
        assert not verify_consistency(old_size, new_size, old_root, _flip(new_root, 0), proof)
    assert not verify_consistency(new_size + 1, new_size, new_root, new_root, [])


def test_trivial_consistency_needs_an_empty_proof_and_matching_roots() -> None:
    leaves = _leaves(5)
    assert verify_consistency(0, 5, EMPTY_ROOT, root(leaves), [])
    assert not verify_consistency(0, 5, leaves[0], root(leaves), [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root(leaves), [leaves[0]])
    assert verify_consistency(5, 5, root(leaves), root(leaves), [])
    assert not verify_consistency(5, 5, root(leaves), root(leaves), [leaves[0]])
    assert not verify_consistency(5, 5, root(leaves), root(leaves[:4]), [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, leaves[0], [])


def test_verifiers_return_false_on_malformed_arguments() -> None:
    leaves = _leaves(4)
    proof = inclusion_proof(1, leaves)
    tree_root = root(leaves)
    assert not verify_inclusion(leaves[1][:31], 1, 4, proof, tree_root)
    assert not verify_inclusion(leaves[1], 1, 4, [*proof[:-1], b"short"], tree_root)
    assert not verify_inclusion(leaves[1], -1, 4, proof, tree_root)
    assert not verify_inclusion(leaves[1], 4, 4, proof, tree_root)
    assert not verify_inclusion(leaves[1], True, 4, proof, tree_root)
    assert not verify_consistency(2, 4, root(leaves[:2]), tree_root, [b"x" * 33])
    assert not verify_consistency(-1, 4, EMPTY_ROOT, tree_root, [])


def test_proof_builders_refuse_impossible_requests() -> None:
    leaves = _leaves(4)
    for bad in (-1, 4, True):
        with pytest.raises(InvalidInput):
            inclusion_proof(bad, leaves)
    for bad in (-1, 5):
        with pytest.raises(InvalidInput):
            consistency_proof(bad, leaves)
    with pytest.raises(InvalidInput):
        root([*leaves, b"too short"])


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=8), max_size=200))
def test_compact_range_tracks_the_root_and_survives_json(items: list[bytes]) -> None:
    frontier = CompactRange()
    leaves: list[bytes] = []
    for item in items:
        leaves.append(leaf_hash(item))
        frontier.append(leaves[-1])
        assert frontier.root() == root(leaves)
    assert frontier.size == len(items)
    assert len(frontier.hashes) == bin(len(items)).count("1")
    restored = CompactRange.from_json(json.loads(json.dumps(frontier.to_json())))
    assert restored == frontier
    assert restored.root() == root(leaves)
    restored.append(leaf_hash(b"next"))
    assert restored.root() == root([*leaves, leaf_hash(b"next")])


def test_compact_range_refuses_a_state_that_cannot_exist() -> None:
    frontier = CompactRange()
    frontier.extend(_leaves(6))
    good = frontier.to_json()
    assert CompactRange.from_json(json.dumps(good)) == frontier
    bad_states: list[Any] = [
        {**good, "size": 7},
        {**good, "size": -1},
        {**good, "size": True},
        {**good, "hashes": good["hashes"][:1]},
        {**good, "hashes": [good["hashes"][0].upper(), good["hashes"][1]]},
        {**good, "extra": 1},
        {"size": 6},
        [good],
        "{",
    ]
    for state in bad_states:
        with pytest.raises(InvalidInput):
            CompactRange.from_json(state)
    with pytest.raises(InvalidInput):
        frontier.append(b"short")


# ---------------------------------------------------------------- canonical events

# An independent RFC 8785 serializer for the allowed subset: ECMAScript string escaping and keys
# sorted by UTF-16 code units.
_ES_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}


def _jcs_string(s: str) -> str:
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif c in _ES_ESCAPES:
            out.append(_ES_ESCAPES[c])
        elif c < 0x20:
            out.append(f"\\u{c:04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def _jcs(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(_jcs_string(k) + ":" + _jcs(value[k]) for k in keys) + "}"


_bmp_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=6)
_event_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_bmp_text, children, max_size=4)
    ),
    max_leaves=15,
)
_events = st.dictionaries(_bmp_text, _event_values, max_size=6)


@given(_events, st.randoms())
def test_event_encoding_ignores_key_order_and_round_trips(event: dict[str, Any], rnd: Any) -> None:
    items = list(event.items())
    rnd.shuffle(items)
    encoded = encode_event(event)
    assert encode_event(dict(items)) == encoded
    assert decode_event(encoded) == event
    assert leaf_hash(encoded) == leaf_hash(encode_event(decode_event(encoded)))


@given(_events)
def test_event_encoding_equals_rfc_8785_for_the_allowed_values(event: dict[str, Any]) -> None:
    assert encode_event(event) == _jcs(event).encode("utf-8")


def test_event_encoding_is_compact_sorted_utf8() -> None:
    event = {"z": 1, "a": [True, None, "é\n\x01\u2028"], "B": {"y": -5, "x": ""}}
    assert encode_event(event) == (
        '{"B":{"x":"","y":-5},"a":[true,null,"é\\n\\u0001\u2028"],"z":1}'.encode()
    )


@pytest.mark.parametrize(
    "event",
    [
        {"latency": 0.5},
        {"details": {"scores": [1, 2.0]}},
        {"n": float("nan")},
        {"n": 2**53},
        {"n": -(2**53)},
        {1: "int key"},
        {"details": {None: 1}},
        {"t": (1, 2)},
        {"b": b"bytes"},
        {"s": {"a"}},
        {"\U0001f600": "non-BMP key, sorted differently by RFC 8785"},
        {"text": "\ud800 lone surrogate"},
        {"\udfff": 1},
    ],
)
def test_event_encoding_refuses_ambiguous_values(event: Any) -> None:
    with pytest.raises(InvalidInput):
        encode_event(event)


def test_event_encoding_refuses_absurd_nesting_and_cycles() -> None:
    deep: Any = "leaf"
    for _ in range(100):
        deep = [deep]
    with pytest.raises(InvalidInput, match="nested"):
        encode_event({"d": deep})
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(InvalidInput):
        encode_event({"c": cycle})
    with pytest.raises(InvalidInput):
        encode_event(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_non_bmp_text_is_fine_in_values() -> None:
    assert decode_event(encode_event({"emoji": "\U0001f600"})) == {"emoji": "\U0001f600"}


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":1,"a":2}',
        b'{"a": 1}',
        b'{"a":"\\u00e9"}',
        b'{"a":1.0}',
        b'{"a":1e3}',
        b'{"a":NaN}',
        b'{"a":-0}',
        b'{"a":1,"a":1}',
        b"[1]",
        b'"a"',
        b'{"a":1}\n',
        b"\xff",
        b'{"a":"\\ud800"}',
        b'{"a":' + b"9" * 5000 + b"}",
        b"[" * 100_000,
        b"",
    ],
)
def test_decoding_refuses_bytes_that_are_not_canonical(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        decode_event(data)


# ---------------------------------------------------------------- signed tree heads

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
TS = "2025-06-01T09:30:12.123456Z"


def _head(size: int = 8, tree_root: bytes | None = None) -> TreeHead:
    return sign_tree_head(KEY, size, tree_root or bytes.fromhex(CT_ROOTS[8]), TS)


def test_key_id_is_a_prefix_of_sha256_of_the_raw_public_key() -> None:
    raw = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert public_key_id(KEY.public_key()) == hashlib.sha256(raw).hexdigest()[:16]


def test_a_signed_head_verifies_with_its_key_only() -> None:
    head = _head()
    assert verify_tree_head(head, KEY.public_key())
    assert not verify_tree_head(head, OTHER_KEY.public_key())
    assert head.key_id == public_key_id(KEY.public_key())


def test_the_signature_covers_the_documented_message() -> None:
    head = _head()
    body = {
        "v": 1,
        "tree_size": 8,
        "root_hash": CT_ROOTS[8],
        "timestamp": TS,
        "key_id": head.key_id,
    }
    message = TREE_HEAD_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert head.signed_message() == message
    KEY.public_key().verify(head.signature, message)
    document = head.to_json()
    assert document == {**body, "signature": base64.b64encode(head.signature).decode()}
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    assert TREE_HEAD_DOMAIN + encode_event(unsigned) == message


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 9},
        {"root_hash": bytes.fromhex(CT_ROOTS[7])},
        {"timestamp": "2025-06-01T09:30:12.123457Z"},
        {"key_id": public_key_id(OTHER_KEY.public_key())},
        {"key_id": "0" * 16},
    ],
)
def test_changing_any_field_of_a_head_breaks_its_signature(change: dict[str, Any]) -> None:
    assert not verify_tree_head(dataclasses.replace(_head(), **change), KEY.public_key())


def test_a_flipped_signature_bit_breaks_the_head() -> None:
    head = _head()
    for position in range(64):
        forged = dataclasses.replace(head, signature=_flip(head.signature, position))
        assert not verify_tree_head(forged, KEY.public_key())


def test_heads_take_datetimes_and_default_to_now() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2025, 6, 1, 11, 30, 12, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert sign_tree_head(KEY, 0, EMPTY_ROOT, moment).timestamp == TS
    assert re.fullmatch(r"\d{4}-.*\.\d{6}Z", sign_tree_head(KEY, 0, EMPTY_ROOT).timestamp)
    for bad in (datetime(2025, 6, 1), "2025-06-01T09:30:12Z", "2025-02-30T00:00:00.000000Z"):
        with pytest.raises(InvalidInput):
            sign_tree_head(KEY, 0, EMPTY_ROOT, bad)
    for size, tree_root in ((-1, EMPTY_ROOT), (2**53, EMPTY_ROOT), (True, EMPTY_ROOT), (1, b"x")):
        with pytest.raises(InvalidInput):
            sign_tree_head(KEY, size, tree_root, TS)


def test_head_json_round_trips_as_dict_and_as_text() -> None:
    head = _head()
    assert TreeHead.from_json(head.to_json()) == head
    assert TreeHead.from_json(json.dumps(head.to_json(), indent=2)) == head
    assert TreeHead.from_json(json.dumps(head.to_json()).encode()) == head


def _bad_heads() -> list[Any]:
    good = _head().to_json()
    sig = good["signature"]
    # The last base64 character before "==" carries 4 spare bits: flipping one of them gives
    # another text for the same 64 bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    alias = sig[:-3] + alphabet[alphabet.index(sig[-3]) ^ 1] + "=="
    assert base64.b64decode(alias) == base64.b64decode(sig)
    bad: list[Any] = [
        {k: v for k, v in good.items() if k != field} for field in good
    ]  # each field missing
    bad += [
        {**good, "extra": None},
        {**good, "v": 2},
        {**good, "v": True},
        {**good, "v": 1.0},
        {**good, "tree_size": -1},
        {**good, "tree_size": 2**53},
        {**good, "tree_size": 8.0},
        {**good, "tree_size": "8"},
        {**good, "tree_size": True},
        {**good, "root_hash": good["root_hash"].upper()},
        {**good, "root_hash": good["root_hash"][:-2]},
        {**good, "root_hash": " " + good["root_hash"][1:]},
        {**good, "root_hash": "٣" * 64},
        {**good, "root_hash": None},
        {**good, "timestamp": "2025-06-01T09:30:12.123456+00:00"},
        {**good, "timestamp": "2025-06-01 09:30:12.123456Z"},
        {**good, "timestamp": "2025-06-01T09:30:12.123456Z\n"},
        {**good, "timestamp": "2025-13-01T09:30:12.123456Z"},
        {**good, "timestamp": "٢٠٢٥-06-01T09:30:12.123456Z"},
        {**good, "key_id": good["key_id"].upper()},
        {**good, "key_id": good["key_id"] + "00"},
        {**good, "key_id": 12},
        {**good, "signature": sig.rstrip("=")},
        {**good, "signature": sig[:-4] + "===="},
        {**good, "signature": base64.urlsafe_b64encode(b"\xff" * 64).decode()},
        {**good, "signature": base64.b64encode(b"x" * 63).decode()},
        {**good, "signature": sig.encode().hex()},
        {**good, "signature": None},
        {**good, "signature": alias},
        None,
        [],
        "",
        "{",
        b"\xff\xfe",
        '{"v":1,"v":1}',
        '{"tree_size": NaN}',
        "[" * 50_000,
        json.dumps(good) + "x",
        42,
    ]
    return bad


@pytest.mark.parametrize("bad", _bad_heads())
def test_malformed_head_json_is_refused_with_invalid_input(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        TreeHead.from_json(bad)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)


@given(_json_values)
def test_random_json_never_parses_as_a_head_or_raises_anything_else(value: Any) -> None:
    with pytest.raises(InvalidInput):
        TreeHead.from_json(value)


@given(st.sampled_from(sorted(_head().to_json())), _json_values, st.booleans())
def test_a_head_with_one_field_replaced_by_random_json_is_refused_or_intact(
    field: str, value: Any, as_text: bool
) -> None:
    doc = {**_head().to_json(), field: value}
    try:
        head = TreeHead.from_json(json.dumps(doc) if as_text else doc)
    except InvalidInput:
        return
    assert head.to_json() == doc


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_random_text_never_parses_as_a_head(text: str | bytes) -> None:
    with pytest.raises(InvalidInput):
        TreeHead.from_json(text)


# ---------------------------------------------------------------- proof documents


def _event(seq: int) -> dict[str, Any]:
    return {
        "v": 1,
        "seq": seq,
        "time": "2025-06-01T09:30:12.000000Z",
        "actor": "alice",
        "action": "models.approve",
        "resource": "model:churn@3",
        "outcome": "ok",
        "request_id": f"req-{seq}",
        "details": {"reason": "reviewed", "score": "0.93"},
    }


EVENTS = [encode_event(_event(seq)) for seq in range(1, 12)]
EVENT_HASHES = [leaf_hash(e) for e in EVENTS]


def _inclusion(index: int = 6, size: int = 11) -> InclusionProof:
    head = sign_tree_head(KEY, size, root(EVENT_HASHES[:size]), TS)
    path = inclusion_proof(index, EVENT_HASHES[:size])
    return InclusionProof(index, size, EVENT_HASHES[index], tuple(path), head, EVENTS[index])


def test_an_inclusion_proof_document_verifies_and_round_trips() -> None:
    for size in range(1, 12):
        for index in range(size):
            proof = _inclusion(index, size)
            assert proof.verify(KEY.public_key())
            document = json.loads(json.dumps(proof.to_json()))
            assert InclusionProof.from_json(document) == proof
    bare = dataclasses.replace(_inclusion(), event=None)
    assert "event" not in bare.to_json()
    assert InclusionProof.from_json(bare.to_json()).verify(KEY.public_key())


def test_tampered_inclusion_proofs_fail_with_a_reason() -> None:
    proof = _inclusion()
    other_seq = encode_event({**_event(7), "outcome": "denied"})
    cases = [
        (dataclasses.replace(proof, event=other_seq), "does not hash"),
        (
            dataclasses.replace(proof, event=EVENTS[5], leaf_hash=EVENT_HASHES[5]),
            "seq",
        ),
        (dataclasses.replace(proof, leaf_hash=EVENT_HASHES[5], event=None), "audit path"),
        (
            dataclasses.replace(proof, audit_path=(_flip(proof.audit_path[0], 3),)),
            "audit path",
        ),
    ]
    for tampered, reason in cases:
        with pytest.raises(IntegrityError, match=reason):
            tampered.check(KEY.public_key())
        assert not tampered.verify(KEY.public_key())
    with pytest.raises(IntegrityError, match="signed by key"):
        proof.check(OTHER_KEY.public_key())
    forged_head = dataclasses.replace(proof.tree_head, timestamp="2030-01-01T00:00:00.000000Z")
    with pytest.raises(IntegrityError, match="signature"):
        dataclasses.replace(proof, tree_head=forged_head).check(KEY.public_key())


def test_inclusion_proof_documents_refuse_inconsistent_fields() -> None:
    good = _inclusion().to_json()
    bad: list[Any] = [
        {**good, "tree_size": 10},
        {**good, "leaf_index": 11},
        {**good, "leaf_index": -1},
        {**good, "audit_path": "00" * 32},
        {**good, "audit_path": ["00" * 32] * 65},
        {**good, "audit_path": [1]},
        {**good, "tree_head": json.dumps(good["tree_head"])},
        {**good, "tree_head": {**good["tree_head"], "signature": "AA=="}},
        {**good, "event": "text"},
        {**good, "event": {**good["event"], "score": 0.93}},
        {**good, "v": 0},
        {**good, "unknown": 1},
    ]
    for document in bad:
        with pytest.raises(InvalidInput):
            InclusionProof.from_json(document)


@given(st.sampled_from(sorted(_inclusion().to_json())), _json_values)
def test_random_fields_in_an_inclusion_proof_give_invalid_input_or_a_document(
    field: str, value: Any
) -> None:
    try:
        proof = InclusionProof.from_json({**_inclusion().to_json(), field: value})
    except InvalidInput as exc:
        assert str(exc)
    else:
        assert InclusionProof.from_json(proof.to_json()) == proof


def _consistency(old: int, new: int) -> ConsistencyProof:
    old_head = sign_tree_head(KEY, old, root(EVENT_HASHES[:old]), TS)
    new_head = sign_tree_head(KEY, new, root(EVENT_HASHES[:new]), TS)
    path = consistency_proof(old, EVENT_HASHES[:new])
    return ConsistencyProof(old_head, new_head, tuple(path))


def test_consistency_documents_verify_round_trip_and_catch_rewritten_history() -> None:
    for new in range(12):
        for old in range(new + 1):
            proof = _consistency(old, new)
            assert proof.verify(KEY.public_key())
            assert ConsistencyProof.from_json(json.dumps(proof.to_json())) == proof
    proof = _consistency(5, 11)
    rewritten = [*EVENT_HASHES[:2], leaf_hash(b"forged"), *EVENT_HASHES[3:]]
    # The operator re-signs the rewritten log with the real key: only the old head catches it.
    new_head = sign_tree_head(KEY, 11, root(rewritten), TS)
    forged = ConsistencyProof(proof.old_head, new_head, tuple(consistency_proof(5, rewritten)))
    with pytest.raises(IntegrityError, match="history was rewritten"):
        forged.check(KEY.public_key())
    rotated = ConsistencyProof(
        sign_tree_head(OTHER_KEY, 5, root(EVENT_HASHES[:5]), TS),
        proof.new_head,
        proof.consistency_path,
    )
    assert not rotated.verify(KEY.public_key())
    assert rotated.verify(KEY.public_key(), old_public_key=OTHER_KEY.public_key())
    with pytest.raises(InvalidInput):
        ConsistencyProof(proof.new_head, proof.old_head, ())


# ---------------------------------------------------------------- the auditor's example in the docs


def _doc_example() -> dict[str, Any]:
    text = (Path(__file__).parents[2] / "docs" / "audit.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    source = next(b for b in blocks if "def check_inclusion_proof" in b)
    namespace: dict[str, Any] = {"__name__": "audit_doc_example"}
    exec(compile(source, "docs/audit.md", "exec"), namespace)
    return namespace


def test_the_standalone_verifier_in_the_docs_accepts_real_proofs_and_rejects_tampering() -> None:
    check = _doc_example()["check_inclusion_proof"]
    public_key = KEY.public_key()
    for size in (1, 2, 7, 11):
        for index in range(size):
            check(json.loads(json.dumps(_inclusion(index, size).to_json())), public_key)
    good = _inclusion().to_json()
    tampered = [
        {**good, "event": {**good["event"], "outcome": "denied"}},
        {**good, "leaf_index": 5},
        {**good, "audit_path": good["audit_path"][:-1]},
        {**good, "tree_head": {**good["tree_head"], "tree_size": 12}},
        {**good, "tree_head": {**good["tree_head"], "root_hash": CT_ROOTS[8]}},
    ]
    for document in tampered:
        with pytest.raises((ValueError, InvalidSignature)):
            check(document, public_key)
    with pytest.raises((ValueError, InvalidSignature)):
        check(good, OTHER_KEY.public_key())
