"""Encrypted objects at their edges: refused names, failed writes, tampered records, shredding,
the store-wide check and rotation, each as an auditor would observe them."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from aidlc.core import crypto, objects
from aidlc.core.meta import StoredObject, WorkspaceKey
from aidlc.errors import Conflict, IntegrityError, InvalidInput, NotFound, PermissionDenied

SAMPLE = b"patient_id,diagnosis\nP-000417,hypertension-stage-2\n" * 50


def _edit_record(ws, object_id: str, version: int = 1, **values) -> None:
    """Change a stored object's metadata row behind aidlc's back, as a database intruder might."""
    with ws.db.transaction() as session:
        rec = session.execute(
            select(StoredObject).where(
                StoredObject.object_id == object_id, StoredObject.version == version
            )
        ).scalar_one()
        for name, value in values.items():
            setattr(rec, name, value)


def _record(ws, object_id: str, version: int = 1) -> StoredObject:
    with ws.db.reading() as session:
        return session.execute(
            select(StoredObject).where(
                StoredObject.object_id == object_id, StoredObject.version == version
            )
        ).scalar_one()


def _wrapping_version(wrapped: bytes) -> str:
    """The key version a key-ring-wrapped key names (version byte, id length, id, ...)."""
    return wrapped[2 : 2 + wrapped[1]].decode()


# --- format ----------------------------------------------------------------------------------


def test_an_object_can_be_recovered_from_its_documented_format_alone(local_env):
    """Disaster recovery without aidlc's read path: the data key is wrapped under the context
    {workspace, zone, object, version}, and the ciphertext's associated data is that context
    as canonical JSON (sorted keys, no spaces)."""
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE[::-1])
    rec = _record(steward, "a.csv", 2)
    context = {"workspace": steward.id, "zone": "raw", "object": "a.csv", "version": "2"}
    data_key = steward.keys.unwrap(bytes(rec.wrapped_key), context)
    with steward.store.reader(rec.storage_key) as raw:
        sealed = raw.read()
    aad = (f'{{"object":"a.csv","version":"2","workspace":"{steward.id}","zone":"raw"}}').encode()
    assert crypto.decrypt_bytes(sealed, key=data_key, associated_data=aad) == SAMPLE[::-1]
    assert rec.storage_key.startswith("raw/") and "a.csv" not in rec.storage_key


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "object_id"),
    [
        ("secrets", "a.csv"),
        ("raw", ""),
        ("raw", ".hidden"),
        ("raw", "a/../b"),
        ("raw", "a" * 201),
        ("raw", "a b"),
        ("raw", "a\nb"),
    ],
)
def test_unknown_zones_and_unsafe_object_ids_are_refused_before_anything_is_written(
    local_env, zone, object_id
):
    steward = local_env.open("steward")
    for call in (
        lambda: objects.put_bytes(steward, zone, object_id, b"x"),
        lambda: objects.get_bytes(steward, zone, object_id),
        lambda: objects.delete(steward, zone, object_id, 1),
    ):
        with pytest.raises(InvalidInput, match=r"unknown zone|invalid object id"):
            call()
    assert list(local_env.open("admin").store.keys()) == []


def test_the_longest_allowed_object_id_and_every_allowed_character_round_trip(local_env):
    steward = local_env.open("steward")
    longest = "a" * 200
    allowed = "A-z0.9_@:/=-b"
    for object_id in (longest, allowed):
        objects.put_bytes(steward, "raw", object_id, SAMPLE)
        assert objects.get_bytes(steward, "raw", object_id) == SAMPLE


def test_object_versions_start_at_one(local_env):
    steward = local_env.open("steward")
    with pytest.raises(InvalidInput, match=r"^object versions start at 1$"):
        objects.put_bytes(steward, "raw", "a.csv", b"x", version=0)
    assert objects.put_bytes(steward, "raw", "a.csv", b"x", version=1).version == 1
    assert objects.put_bytes(steward, "raw", "a.csv", b"y", version=5).version == 5
    assert objects.put_bytes(steward, "raw", "a.csv", b"z").version == 6


# --- writing ---------------------------------------------------------------------------------


def test_put_records_who_wrote_what_under_which_key_version(local_env):
    steward = local_env.open("steward")
    info = objects.put_bytes(steward, "raw", "a.csv", SAMPLE, details={"source": "upload"})
    digest = hashlib.sha256(SAMPLE).hexdigest()
    assert (info.size, info.sha256) == (len(SAMPLE), digest)
    assert info.created_by == "steward"
    assert info.key_id == steward.keys.current_key_id()
    assert _wrapping_version(bytes(_record(steward, "a.csv").wrapped_key)) == info.key_id
    (event,) = local_env.open("auditor").audit.events(action="object.put")
    assert (event.actor, event.resource) == ("steward", "object:raw/a.csv@1")
    assert event.details == {"size": len(SAMPLE), "sha256": digest, "source": "upload"}


def test_rewriting_a_shredded_version_is_a_conflict_and_leaves_no_ciphertext(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    objects.delete(steward, "raw", "a.csv", 1)
    with pytest.raises(Conflict, match="already exists"):
        objects.put_bytes(steward, "raw", "a.csv", b"resurrected", version=1)
    admin = local_env.open("admin")
    assert list(admin.store.keys()) == []
    assert objects.verify_all(admin).ok


def test_a_write_that_fails_to_record_leaves_no_ciphertext(local_env, monkeypatch):
    steward = local_env.open("steward")

    def refuse(*args, **kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(steward, "record", refuse)
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    admin = local_env.open("admin")
    assert list(admin.store.keys()) == []
    assert objects.list_objects(local_env.open("steward"), "raw") == []


# --- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit",
    [
        {"size": len(SAMPLE) + 1},
        {"sha256": hashlib.sha256(b"something else").hexdigest()},
    ],
    ids=["size", "sha256"],
)
def test_an_object_whose_recorded_size_or_digest_was_edited_fails_to_read(local_env, edit):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    _edit_record(steward, "a.csv", **edit)
    with pytest.raises(IntegrityError, match=r"^raw/a.csv@1 does not match its recorded digest"):
        objects.get_bytes(steward, "raw", "a.csv")


def test_reading_a_shredded_object_names_its_version(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    objects.put_bytes(steward, "raw", "a.csv", b"v2")
    objects.delete(steward, "raw", "a.csv", 1)
    with pytest.raises(NotFound, match=r"^raw/a.csv@1 was deleted"):
        objects.get_bytes(steward, "raw", "a.csv", 1)
    assert objects.get_bytes(steward, "raw", "a.csv") == b"v2"


# --- crypto-shredding ------------------------------------------------------------------------


def test_delete_destroys_the_key_and_the_bytes_and_records_who_and_why(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    objects.put_bytes(steward, "raw", "a.csv", b"v2")
    objects.delete(steward, "raw", "a.csv", 1, reason="r" * 600)
    rec = _record(steward, "a.csv")
    assert rec.wrapped_key is None
    assert rec.deleted_by == "steward" and rec.deleted_at is not None
    assert not steward.store.exists(rec.storage_key)
    assert steward.store.exists(_record(steward, "a.csv", 2).storage_key)
    (event,) = local_env.open("auditor").audit.events(action="object.delete")
    assert (event.actor, event.resource) == ("steward", "object:raw/a.csv@1")
    assert event.details == {"reason": "r" * 500, "crypto_shredded": True}


def test_deleting_twice_is_a_no_op_and_deleting_a_missing_version_is_not_found(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    objects.delete(steward, "raw", "a.csv", 1)
    first = _record(steward, "a.csv").deleted_at
    objects.delete(steward, "raw", "a.csv", 1)
    assert _record(steward, "a.csv").deleted_at == first
    (event,) = local_env.open("auditor").audit.events(action="object.delete")
    assert event.details["reason"] == ""
    with pytest.raises(NotFound, match=r"^no object raw/a.csv@2$"):
        objects.delete(steward, "raw", "a.csv", 2)


def test_deleting_an_object_leaves_the_same_id_in_another_zone_alone(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    objects.put_bytes(steward, "validated", "a.csv", b"validated rows")
    objects.delete(steward, "validated", "a.csv", 1)
    assert objects.get_bytes(steward, "raw", "a.csv") == SAMPLE
    with pytest.raises(NotFound, match="deleted"):
        objects.get_bytes(steward, "validated", "a.csv")


# --- the store-wide check --------------------------------------------------------------------


def test_verify_all_names_every_kind_of_problem(local_env):
    steward = local_env.open("steward")
    for name in ("ok.csv", "edited.csv", "missing.csv", "shredded.csv", "swapped.csv"):
        objects.put_bytes(steward, "raw", name, SAMPLE + name.encode())
    _edit_record(steward, "edited.csv", sha256=hashlib.sha256(b"other").hexdigest())
    steward.store.delete(_record(steward, "missing.csv").storage_key)
    shredded = _record(steward, "shredded.csv").storage_key
    with steward.store.reader(shredded) as raw:
        kept = raw.read()
    objects.delete(steward, "raw", "shredded.csv", 1)
    with steward.store.writer(shredded) as out:
        out.write(kept)
    with steward.store.writer("raw/stray/object") as out:
        out.write(b"orphan")
    _edit_record(steward, "swapped.csv", wrapped_key=_record(steward, "ok.csv").wrapped_key)

    verdict = objects.verify_all(local_env.open("admin"))
    assert not verdict.ok
    assert verdict.checked == 4
    problems = sorted(verdict.problems)
    assert len(problems) == 6
    assert problems[0] == "raw/edited.csv@1: digest mismatch"
    assert problems[1].startswith("raw/missing.csv@1: ")
    assert problems[2] == "raw/shredded.csv@1: deleted but bytes remain"
    assert problems[3].startswith("raw/swapped.csv@1: the wrapped data key does not verify")
    # the bytes of a shredded object are strays too: no live record accounts for them
    assert problems[4:] == [
        f"stray ciphertext {shredded} has no metadata record",
        "stray ciphertext raw/stray/object has no metadata record",
    ]
    assert verdict.to_json()["objects_checked"] == 4


def test_verify_all_of_a_healthy_store_counts_only_live_objects(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    objects.put_bytes(steward, "raw", "b.csv", SAMPLE)
    objects.delete(steward, "raw", "b.csv", 1)
    verdict = objects.verify_all(local_env.open("admin"))
    assert (verdict.ok, verdict.checked, verdict.problems) == (True, 1, [])


# --- rotation --------------------------------------------------------------------------------


def test_rotation_rewraps_every_live_data_key_and_workspace_key_under_the_new_version(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    objects.put_bytes(steward, "raw", "b.csv", SAMPLE)
    objects.put_bytes(steward, "raw", "c.csv", SAMPLE)
    objects.delete(steward, "raw", "b.csv", 1)
    admin = local_env.open("admin")
    result = objects.rotate_keys(admin)
    new_id = result["key_id"]
    assert result["rewrapped"] == 2
    live = _record(admin, "a.csv")
    assert live.key_id == new_id
    assert _wrapping_version(bytes(live.wrapped_key)) == new_id
    assert _record(admin, "b.csv").wrapped_key is None
    with admin.db.reading() as session:
        workspace_keys = list(session.execute(select(WorkspaceKey)).scalars())
    assert workspace_keys
    assert {_wrapping_version(bytes(wk.wrapped_key)) for wk in workspace_keys} == {new_id}
    (event,) = local_env.open("auditor").audit.events(action="key.rotate")
    assert (event.actor, event.resource) == ("admin", "keys")
    assert event.details == {"new_key_id": new_id, "rewrapped": 2}
    assert objects.get_bytes(local_env.open("steward"), "raw", "a.csv") == SAMPLE


# --- refusals --------------------------------------------------------------------------------


def test_each_refused_operation_is_audited_with_what_it_was_refused_on(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    trainer = local_env.open("trainer")
    refused = [
        (lambda: objects.put_bytes(trainer, "raw", "a.csv", b"x"), "object:raw/a.csv"),
        (lambda: objects.get_bytes(trainer, "raw", "a.csv"), "object:raw/a.csv"),
        (lambda: objects.delete(trainer, "raw", "a.csv", 1), "object:raw/a.csv@1"),
        (lambda: objects.verify_all(steward), "objects:verify"),
        (lambda: objects.rotate_keys(steward), "keys"),
    ]
    for call, _ in refused:
        with pytest.raises(PermissionDenied):
            call()
    denied = [e for e in local_env.open("auditor").audit.events() if e.outcome == "denied"]
    assert [e.resource for e in denied] == [resource for _, resource in refused]
    assert objects.get_bytes(steward, "raw", "a.csv") == SAMPLE
