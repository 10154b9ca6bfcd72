"""Who may approve what, and what an approval, a rejection or an alias move requires: each
refusal is audited as denied and leaves the version as it was."""

from __future__ import annotations

import pytest

from aidlc.errors import Conflict, InvalidInput, PermissionDenied, UsageError, ValidationFailed
from aidlc.registry import approval, versions
from tests.registry import trained


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    return trained.build(tmp_path_factory.mktemp("approval"))


@pytest.fixture
def env(built, tmp_path):
    return trained.copy(built, tmp_path)


def _denied(env, action: str) -> list[tuple[str, str, str]]:
    with env.open("auditor") as ws:
        return [
            (e.actor, e.resource, e.details["reason"])
            for e in ws.audit.events(action=action)
            if e.outcome == "denied"
        ]


def test_whoever_trained_a_version_cannot_approve_it(env):
    with env.open("lead") as ws:
        with pytest.raises(PermissionDenied) as caught:
            approval.approve(ws, "bc@1", reason="mine")
        assert versions.resolve(ws, "bc@1").status == "registered"
    why = "lead trained bc@1 and cannot approve it (separation of duties)"
    assert caught.value.message == why
    assert _denied(env, "model.approve") == [("lead", "model:bc@1", why)]


def test_another_approver_approves_into_production_or_staging(env):
    with env.open("approver") as ws:
        approved = approval.approve(ws, "bc@1", to="staging", reason="  reviewed  ")
        assert approved.status == "approved" and "staging" in approved.aliases
        assert "production" not in approved.aliases
        [record] = approval.approvals(ws, "bc@1")
        assert (record["decision"], record["to"], record["reason"], record["by"]) == (
            "approved",
            "staging",
            "reviewed",
            "approver",
        )
        assert "production" in approval.approve(ws, "bc@1", reason="promote").aliases
        assert ws.audit.events(action="model.approve")[-1].details == {
            "to": "production",
            "reason": "promote",
        }


def test_a_version_that_failed_its_gates_cannot_be_approved(env):
    with env.open("approver") as ws:
        with pytest.raises(ValidationFailed) as caught:
            approval.approve(ws, "bc@2", reason="try")
        assert versions.resolve(ws, "bc@2").status == "registered"
    assert caught.value.message.startswith("bc@2 failed its quality gates (roc_auc >= 1.01")
    assert _denied(env, "model.approve") == [("approver", "model:bc@2", caught.value.message)]


def test_a_rejected_version_is_never_approved_nor_aliased(env):
    with env.open("approver") as ws:
        rejected = approval.reject(ws, "bc@1", reason="bias review failed")
        assert rejected.status == "rejected" and rejected.aliases == []
        with pytest.raises(Conflict, match=r"^bc@1 was rejected$"):
            approval.approve(ws, "bc@1", reason="changed my mind")
        with pytest.raises(Conflict, match=r"^bc@1 was rejected$"):
            approval.set_alias(ws, "bc@1", "candidate", reason="again")
        assert versions.resolve(ws, "bc@1").aliases == []
        [record] = approval.approvals(ws, "bc@1")
        assert (record["decision"], record["reason"]) == ("rejected", "bias review failed")
    assert [a for a, _, _ in _denied(env, "model.approve")] == ["approver"]
    assert [a for a, _, _ in _denied(env, "model.alias")] == ["approver"]


def test_a_version_in_production_is_not_rejected(env):
    with env.open("approver") as ws:
        approval.approve(ws, "bc@1", reason="ok")
        with pytest.raises(Conflict) as caught:
            approval.reject(ws, "bc@1", reason="oops")
        assert versions.resolve(ws, "bc@1").status == "approved"
    assert caught.value.message == (
        "bc@1 is in production: move production to another version first"
    )
    assert _denied(env, "model.reject") == [("approver", "model:bc@1", caught.value.message)]


@pytest.mark.parametrize("alias", ["staging", "production"])
def test_only_an_approved_version_becomes_staging_or_production(env, alias):
    with env.open("approver") as ws:
        with pytest.raises(ValidationFailed) as caught:
            approval.set_alias(ws, "bc@1", alias, reason="early")
        assert caught.value.message == (
            f"bc@1 is not approved; only an approved version can become {alias}"
        )
        # candidate is not guarded: any version that is not rejected may hold it
        assert "candidate" in approval.set_alias(ws, "bc@1", "candidate", reason="back").aliases
        approval.approve(ws, "bc@1", to="staging", reason="ok")
        assert alias in approval.set_alias(ws, "bc@1", alias, reason="now").aliases


def test_approve_targets_staging_or_production_only(env):
    with env.open("approver") as ws:
        with pytest.raises(
            UsageError, match=r"^approve --to staging or production, not 'candidate'$"
        ):
            approval.approve(ws, "bc@1", to="candidate", reason="x")
        with pytest.raises(UsageError, match=r"^unknown alias 'prod'; aliases are "):
            approval.set_alias(ws, "bc@1", "prod", reason="x")
        assert versions.resolve(ws, "bc@1").status == "registered"


def test_every_decision_needs_a_reason_of_at_most_2000_characters(env):
    with env.open("approver") as ws:
        for blank in ("", "   "):
            with pytest.raises(UsageError, match="give a --reason"):
                approval.approve(ws, "bc@1", reason=blank)
            with pytest.raises(UsageError, match="give a --reason"):
                approval.reject(ws, "bc@1", reason=blank)
        with pytest.raises(InvalidInput, match=r"^a reason is at most 2,000 characters$"):
            approval.approve(ws, "bc@1", reason="x" * 2001)
        assert approval.approve(ws, "bc@1", reason="x" * 2000).status == "approved"


def test_approval_verifies_the_version_first(env):
    from sqlalchemy import update

    from aidlc.core.meta import ModelVersionRecord
    from aidlc.errors import IntegrityError

    with env.open("admin") as ws, ws.db.transaction() as session:
        session.execute(update(ModelVersionRecord).values(kind="sklearn.Ridge"))
    with env.open("approver") as ws, pytest.raises(IntegrityError, match="altered"):
        approval.approve(ws, "bc@1", reason="ok")
