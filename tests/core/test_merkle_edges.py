"""Edges of the Merkle code an attacker or a careless caller reaches: arguments that are almost
right, events that cannot be encoded canonically, and the messages that say what is wrong."""

from __future__ import annotations

import hashlib
from types import MappingProxyType

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aidlc.core.merkle import (
    CompactRange,
    ConsistencyProof,
    InclusionProof,
    consistency_proof,
    encode_event,
    inclusion_proof,
    leaf_hash,
    root,
    sign_tree_head,
    verify_consistency,
    verify_inclusion,
)
from aidlc.errors import IntegrityError, InvalidInput

KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
LEAVES = [leaf_hash(bytes([i])) for i in range(9)]
SHORT = b"\x01" * 31


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _refusal(event: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        encode_event(event)  # type: ignore[arg-type]
    return caught.value


# -- canonical event encoding --------------------------------------------------------------------


def _nested(depth: int, inner: object, wrap) -> dict[str, object]:
    value = inner
    for _ in range(depth):
        value = wrap(value)
    return {"a": value}


@pytest.mark.parametrize(
    ("event", "message", "hint"),
    [
        (
            {"a": {"b": [0, 2**53]}},
            "event field a.b[1]: integer is outside ±(2**53 - 1)",
            "store it as a string",
        ),
        ({"x": 1.5}, "event field x: floats are not allowed", "store it as a string"),
        ({1: "x"}, "event: key 1 is not a string", None),
        ({"a": {10**50: "x"}}, f"event field a: key {str(10**50)[:40]} is not a string", None),
        (
            {"a": {"😀" * 50: 1}},
            f"event field a: key {'😀' * 40!r} has a character outside the Basic Multilingual "
            "Plane, where Python and RFC 8785 sort keys differently",
            None,
        ),
        (
            {"k" * 100: {"x": {1, 2}}},
            f"event field {('k' * 100 + '.x')[:80]}: set is not allowed",
            "use str, int, bool, None, list or dict",
        ),
        # values already checked (a string, an int) must not end the walk early
        ({"z": 1.5, "a": "fine"}, "event field z: floats are not allowed", "store it as a string"),
        ({"z": 1.5, "a": 7}, "event field z: floats are not allowed", "store it as a string"),
    ],
)
def test_an_event_that_has_no_canonical_form_is_refused_by_name(event, message, hint):
    refusal = _refusal(event)
    assert (refusal.message, refusal.hint) == (message, hint)


@pytest.mark.parametrize("wrap", [lambda v: {"a": v}, lambda v: [v]], ids=["dicts", "lists"])
def test_events_nest_64_levels_deep_and_no_deeper(wrap):
    # the event itself is level 1, so 63 more containers reach the limit
    assert encode_event(_nested(62, wrap(1), wrap))
    refusal = _refusal(_nested(63, wrap(1), wrap))
    assert refusal.message.endswith(": nested deeper than 64 levels")
    assert refusal.message.startswith("event field a")


def test_a_non_mapping_event_is_refused():
    assert _refusal([("a", 1)]).message == "an event must be a mapping, not list"


def test_a_read_only_mapping_encodes_like_a_dict():
    event = {"b": [1, True, None], "a": "é"}
    assert encode_event(MappingProxyType(event)) == encode_event(event)


def test_a_lone_surrogate_is_refused():
    assert _refusal({"a": "\ud800"}).message == (
        "event: text holds a lone surrogate, not valid Unicode"
    )


# -- building proofs ----------------------------------------------------------------------------


def test_proofs_name_an_index_or_size_outside_the_tree():
    with pytest.raises(InvalidInput, match=r"^leaf index 3 is outside a tree of 3 leaves$"):
        inclusion_proof(3, LEAVES[:3])
    with pytest.raises(InvalidInput, match=r"^old tree size 4 is outside 0\.\.3$"):
        consistency_proof(4, LEAVES[:3])


def test_proofs_refuse_leaf_hashes_of_the_wrong_size():
    leaves = [*LEAVES[:2], SHORT]
    with pytest.raises(InvalidInput, match="every leaf hash must be 32 bytes"):
        inclusion_proof(0, leaves)
    with pytest.raises(InvalidInput, match="every leaf hash must be 32 bytes"):
        consistency_proof(1, leaves)


def test_compact_range_extend_equals_appending_one_by_one():
    for n in range(len(LEAVES) + 1):
        extended, appended = CompactRange(), CompactRange()
        extended.extend(LEAVES[:n])
        for leaf in LEAVES[:n]:
            appended.append(leaf)
        assert extended == appended and extended.root() == root(LEAVES[:n])
        assert extended.size == n


def test_compact_range_refuses_a_leaf_of_the_wrong_size():
    frontier = CompactRange()
    with pytest.raises(InvalidInput, match=r"^a leaf hash must be 32 bytes$"):
        frontier.append(SHORT)
    with pytest.raises(InvalidInput, match=r"^a leaf hash must be 32 bytes$"):
        frontier.extend([LEAVES[0], SHORT])
    assert frontier.size == 1


# -- verifying proofs: a malformed argument never verifies ---------------------------------------


def test_inclusion_with_a_short_hash_anywhere_does_not_verify():
    # each forged root is what the algorithm computes, so only the size check refuses it
    assert not verify_inclusion(SHORT, 0, 2, [LEAVES[1]], _node(SHORT, LEAVES[1]))
    assert not verify_inclusion(LEAVES[0], 0, 2, [SHORT], _node(LEAVES[0], SHORT))
    assert verify_inclusion(LEAVES[0], 0, 2, [LEAVES[1]], _node(LEAVES[0], LEAVES[1]))


def test_consistency_with_a_short_hash_anywhere_does_not_verify():
    assert not verify_consistency(1, 2, SHORT, _node(SHORT, LEAVES[1]), [LEAVES[1]])
    assert not verify_consistency(1, 2, LEAVES[0], _node(LEAVES[0], SHORT), [SHORT])
    assert verify_consistency(1, 2, LEAVES[0], _node(LEAVES[0], LEAVES[1]), [LEAVES[1]])


def test_consistency_of_a_larger_old_tree_or_a_bool_size_does_not_verify():
    a, c = LEAVES[0], LEAVES[1]
    assert not verify_consistency(3, 2, a, _node(a, c), [a, c])
    old, new = root(LEAVES[:1]), root(LEAVES[:2])
    proof = consistency_proof(1, LEAVES[:2])
    assert verify_consistency(1, 2, old, new, proof)
    assert not verify_consistency(True, 2, old, new, proof)


# -- signed heads and proof documents ---------------------------------------------------------


def test_a_malformed_tree_head_is_refused_by_name():
    with pytest.raises(InvalidInput, match=r"^tree head: tree_size must be an integer"):
        sign_tree_head(KEY, -1, root([]))
    with pytest.raises(InvalidInput, match=r"^tree head: timestamp must look like"):
        sign_tree_head(KEY, 0, root([]), "yesterday")


def _inclusion(event: bytes | None = None, key: Ed25519PrivateKey = KEY) -> InclusionProof:
    head = sign_tree_head(key, 4, root(LEAVES[:4]))
    return InclusionProof(
        leaf_index=1,
        tree_size=4,
        leaf_hash=LEAVES[1],
        audit_path=tuple(inclusion_proof(1, LEAVES[:4])),
        tree_head=head,
        event=event,
    )


def test_inclusion_proof_check_says_what_fails():
    public = KEY.public_key()
    _inclusion().check(public)
    with pytest.raises(IntegrityError, match=r"^the tree head was signed by key [0-9a-f]{16}, "):
        _inclusion(key=OTHER_KEY).check(public)
    with pytest.raises(IntegrityError, match=r"^the event does not hash to leaf_hash$"):
        _inclusion(event=encode_event({"seq": 2})).check(public)
    bad_path = InclusionProof(1, 4, LEAVES[2], _inclusion().audit_path, _inclusion().tree_head)
    with pytest.raises(
        IntegrityError, match=r"^the audit path does not lead from leaf_hash to the signed root$"
    ):
        bad_path.check(public)


def test_consistency_proof_check_names_the_head_that_fails():
    public = KEY.public_key()

    def proof(old_key: Ed25519PrivateKey, new_key: Ed25519PrivateKey) -> ConsistencyProof:
        return ConsistencyProof(
            old_head=sign_tree_head(old_key, 3, root(LEAVES[:3])),
            new_head=sign_tree_head(new_key, 7, root(LEAVES[:7])),
            consistency_path=tuple(consistency_proof(3, LEAVES[:7])),
        )

    proof(KEY, KEY).check(public)
    with pytest.raises(IntegrityError, match=r"^the old tree head was signed by key "):
        proof(OTHER_KEY, KEY).check(public)
    with pytest.raises(IntegrityError, match=r"^the new tree head was signed by key "):
        proof(KEY, OTHER_KEY).check(public)
    proof(OTHER_KEY, KEY).check(public, old_public_key=OTHER_KEY.public_key())
