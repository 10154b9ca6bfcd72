"""The rules of core.auth on their own: principal names, role lists, token shape and hashing,
expiry dates. No workspace needed."""

from __future__ import annotations

import hashlib
import re
import string
from datetime import UTC, datetime, timedelta

import pytest

from aidlc.core import auth
from aidlc.errors import InvalidInput


@pytest.mark.parametrize("name", ["a", "0", "ci.bot_2-x", "a" * 64])
def test_names_of_one_to_64_lowercase_characters_are_accepted(name):
    assert auth.check_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "-a", ".a", "_a", "a b", "a" * 65, "é", "a/b", "a\n"])
def test_other_names_are_refused_saying_what_a_name_may_be(name):
    with pytest.raises(InvalidInput) as refused:
        auth.check_name(name)
    assert refused.value.message == (
        f"invalid principal name {name!r}: use 1-64 characters a-z, 0-9, '.', '_', '-', "
        "starting with a letter or digit"
    )


def test_a_refused_name_is_quoted_at_most_80_characters_long():
    with pytest.raises(InvalidInput) as refused:
        auth.check_name("X" * 500)
    assert f"{'X' * 80!r}" in refused.value.message
    assert "X" * 81 not in refused.value.message


def test_roles_are_checked_against_the_known_roles():
    assert auth.check_roles(["trainer", "monitor", "trainer"]) == {"trainer", "monitor"}
    assert auth.check_roles(("auditor",)) == frozenset({"auditor"})
    every = ", ".join(auth.ROLES)
    with pytest.raises(InvalidInput) as empty:
        auth.check_roles([])
    assert empty.value.message == f"a principal needs at least one role: {every}"
    with pytest.raises(InvalidInput) as unknown:
        auth.check_roles(["trainer", "root", "sudo", "z" * 60])
    assert unknown.value.message == f"unknown role root, sudo, {'z' * 40}; roles are: {every}"


def test_new_tokens_are_random_prefixed_and_stored_as_their_sha256():
    token_id, value, digest = auth.new_token()
    assert re.fullmatch(r"[0-9a-f]{16}", token_id)
    assert value.startswith("aidlc_") and len(value) == 6 + 43  # 32 random bytes, base64url
    assert set(value[6:]) <= set(string.ascii_letters + string.digits + "-_")
    assert digest == hashlib.sha256(value.encode()).hexdigest()
    assert auth.token_looks_valid(value)
    others = [auth.new_token() for _ in range(20)]
    assert len({token_id, *(o[0] for o in others)}) == 21
    assert len({value, *(o[1] for o in others)}) == 21


def test_any_string_hashes_even_one_that_is_not_valid_unicode():
    assert auth.hash_token("aidlc_é") == hashlib.sha256("aidlc_é".encode()).hexdigest()
    assert auth.hash_token("\ud800") == hashlib.sha256(b"\xed\xa0\x80").hexdigest()


@pytest.mark.parametrize(
    ("value", "looks_valid"),
    [
        ("aidlc_" + "a" * 34, True),  # 40 characters
        ("aidlc_" + "a" * 94, True),  # 100 characters
        ("aidlc_" + "a" * 33, False),
        ("aidlc_" + "a" * 95, False),
        ("AIDLC_" + "a" * 40, False),
        ("xaidlc_" + "a" * 40, False),
        ("aidlc_" + "é" * 40, False),
    ],
)
def test_a_token_must_look_like_one_before_it_is_looked_up(value, looks_valid):
    assert auth.token_looks_valid(value) is looks_valid


def test_hashes_compare_equal_only_when_equal():
    digest = auth.hash_token("aidlc_" + "a" * 43)
    assert auth.same_hash(digest, str(digest))
    assert not auth.same_hash(digest, auth.hash_token("aidlc_" + "b" * 43))


def test_expiry_is_days_after_now_or_never():
    now = datetime(2030, 1, 31, 12, 0, tzinfo=UTC)
    assert auth.expiry(None, now=now) is None
    assert auth.expiry(3, now=now) == datetime(2030, 2, 3, 12, 0, tzinfo=UTC)
    before = datetime.now(UTC)
    expires = auth.expiry(1)
    assert expires is not None
    assert before + timedelta(days=1) <= expires <= datetime.now(UTC) + timedelta(days=1)


def test_a_principal_may_what_its_roles_grant():
    trainer = auth.Principal(id=5, name="t", kind="user", roles=frozenset({"trainer"}))
    assert trainer.may("train.run") and not trainer.may("model.approve")
    assert not auth.SYSTEM.may("train.run")
