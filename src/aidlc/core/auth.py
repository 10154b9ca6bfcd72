"""Principals, roles, API tokens and the permission check every service function starts with.

Default deny: an action is allowed only when one of the caller's roles grants it in `GRANTS`,
which is the role table of DESIGN.md. Tokens are 256-bit random values shown once and stored
only as SHA-256 hashes (a token has full entropy, so a slow hash would add nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ROLES: tuple[str, ...] = (
    "admin",
    "data-steward",
    "trainer",
    "approver",
    "inference",
    "monitor",
    "auditor",
)

ZONES: tuple[str, ...] = ("raw", "validated", "quarantine", "models", "predictions", "reports")

# Every action aidlc knows, with the roles that may perform it. Nothing else is allowed.
GRANTS: dict[str, frozenset[str]] = {
    # admin: manage principals, roles, keys, configuration
    "principal.manage": frozenset({"admin"}),
    "key.manage": frozenset({"admin"}),
    "config.manage": frozenset({"admin"}),
    # data-steward: ingest and validate data, read raw, write validated and quarantine
    "data.ingest": frozenset({"data-steward"}),
    "data.validate": frozenset({"data-steward"}),
    "object.write:raw": frozenset({"data-steward"}),
    "object.read:raw": frozenset({"data-steward"}),
    "object.delete:raw": frozenset({"data-steward"}),
    "object.write:validated": frozenset({"data-steward"}),
    "object.delete:validated": frozenset({"data-steward"}),
    "object.write:quarantine": frozenset({"data-steward"}),
    "object.read:quarantine": frozenset({"data-steward"}),
    "object.delete:quarantine": frozenset({"data-steward"}),
    # trainer: read validated data, run training, register model versions
    "object.read:validated": frozenset({"data-steward", "trainer"}),
    "train.run": frozenset({"trainer"}),
    "model.register": frozenset({"trainer"}),
    "object.write:models": frozenset({"trainer"}),
    "run.read": frozenset({"trainer", "approver", "monitor", "auditor"}),
    # approver: approve or reject model versions, move aliases, deploy
    "model.approve": frozenset({"approver"}),
    "model.reject": frozenset({"approver"}),
    "model.alias": frozenset({"approver"}),
    "model.deploy": frozenset({"approver"}),
    # inference: read approved models, call predict, write prediction logs
    "object.read:models": frozenset({"trainer", "approver", "inference"}),
    "model.read": frozenset({"trainer", "approver", "inference", "monitor", "auditor"}),
    "model.predict": frozenset({"inference"}),
    "object.write:predictions": frozenset({"inference"}),
    # a server ends a rollout an approver started, only as its policy decides (serve.rollout)
    "deployment.conclude": frozenset({"inference"}),
    # monitor: read prediction logs and baselines, write monitor reports, send alerts
    "object.read:predictions": frozenset({"monitor"}),
    "object.delete:predictions": frozenset({"data-steward"}),
    "object.write:reports": frozenset({"data-steward", "monitor"}),
    "alert.send": frozenset({"monitor"}),
    "monitor.run": frozenset({"monitor"}),
    "monitor.read": frozenset({"monitor", "approver", "auditor"}),
    # a breach asks for retraining; a trainer's principal carries it out (monitor.retrain)
    "retrain.request": frozenset({"monitor"}),
    # a retraining policy decides what happens to a candidate: an approver's call
    "retrain.policy": frozenset({"approver"}),
    # business KPIs pushed beside the model metrics, by the applications that call the model
    "kpi.write": frozenset({"inference", "monitor"}),
    # alerts concern whoever runs a gate or watches production, and auditors
    "alert.read": frozenset({"data-steward", "monitor", "auditor"}),
    # auditor: read the audit log, lineage and compliance reports; change nothing
    "object.read:reports": frozenset({"monitor", "auditor"}),
    "audit.read": frozenset({"auditor"}),
    "audit.verify": frozenset({"auditor"}),
    "lineage.read": frozenset({"trainer", "approver", "monitor", "auditor"}),
    "compliance.read": frozenset({"approver", "auditor"}),
    # governance: what is kept how long, what must be kept anyway, and erasure of a person
    "retention.manage": frozenset({"admin"}),
    "retention.apply": frozenset({"admin"}),
    "legal_hold.manage": frozenset({"admin"}),
    "subject.erase": frozenset({"data-steward"}),
    # the posture check and the threat model read configuration and evidence, change nothing
    "posture.read": frozenset({"admin", "auditor"}),
    "backup.create": frozenset({"admin"}),
    "backup.restore": frozenset({"admin"}),
}

ACTIONS: tuple[str, ...] = tuple(sorted(GRANTS))

# A public marker that lets secret scanners recognise leaked tokens; not itself a secret.
TOKEN_PREFIX = "aidlc_"  # noqa: S105  # nosec B105
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a service function."""

    id: int
    name: str
    kind: str
    roles: frozenset[str]
    token_id: str | None = None

    def may(self, action: str) -> bool:
        return allowed(self.roles, action)


SYSTEM = Principal(id=0, name="system", kind="system", roles=frozenset())


def allowed(roles: frozenset[str] | set[str], action: str) -> bool:
    """Whether any of `roles` grants `action`. Unknown actions are denied.

    >>> allowed({"trainer"}, "train.run"), allowed({"admin"}, "train.run")
    (True, False)
    """
    grants = GRANTS.get(action)
    return grants is not None and not grants.isdisjoint(roles)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):  # not match with "$", which lets a trailing "\n" through
        from aidlc.errors import InvalidInput

        raise InvalidInput(
            f"invalid principal name {name[:80]!r}: use 1-64 characters a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return name


def check_roles(roles: list[str] | tuple[str, ...] | set[str]) -> frozenset[str]:
    from aidlc.errors import InvalidInput

    if not roles:
        raise InvalidInput("a principal needs at least one role: " + ", ".join(ROLES))
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InvalidInput(
            f"unknown role {', '.join(r[:40] for r in unknown)}; roles are: " + ", ".join(ROLES)
        )
    return frozenset(roles)


def new_token() -> tuple[str, str, str]:
    """A fresh token: (public id, token value shown once, hash to store)."""
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 256 bits from the OS CSPRNG
    return secrets.token_hex(8), value, hash_token(value)


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def token_looks_valid(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and 40 <= len(value) <= 100 and value.isascii()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


def expiry(days: int | None, *, now: datetime | None = None) -> datetime | None:
    if days is None:
        return None
    return (now or datetime.now(UTC)) + timedelta(days=days)
