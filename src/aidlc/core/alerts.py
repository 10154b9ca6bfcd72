"""Alerts: recorded, audited, deduplicated, and delivered to the configured sinks after commit.

Gates, the registry, the server and monitors raise them; the sinks (log, a Slack-style webhook,
SMTP, SNS) live in `aidlc.core.alertsinks`, imported only when something is to be sent.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, or_, select, update

from aidlc.core.config import parse_duration
from aidlc.core.meta import AlertRecord
from aidlc.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, SessionTransaction

    from aidlc.core.alertsinks import Delivery
    from aidlc.core.config import AlertsConfig
    from aidlc.core.workspace import Workspace

SEVERITIES = ("INFO", "WARNING", "CRITICAL")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# Alerts raised in a session and waiting for its commit: (alert, sinks, savepoint raised in).
_PENDING = "aidlc_pending_alerts"


@dataclass(frozen=True)
class Alert:
    """One alert as recorded; `occurrences` counts repeats within the cooldown."""

    id: int
    severity: str
    source: str
    title: str
    details: dict[str, Any]
    created_at: datetime
    created_by: str
    occurrences: int = 1
    last_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "created_at": self.created_at.isoformat(),
            "last_at": self.last_at.isoformat() if self.last_at else None,
        }


def _alert(rec: AlertRecord) -> Alert:
    return Alert(
        rec.id,
        rec.severity,
        rec.source,
        rec.title,
        json.loads(rec.details),
        rec.created_at,
        rec.created_by,
        rec.occurrences,
        rec.last_at,
    )


def raise_alert(
    ws: Workspace,
    session: Session,
    *,
    severity: str,
    source: str,
    title: str,
    details: dict[str, Any] | None = None,
    dedup_key: str | None = None,
) -> int:
    """Record an alert inside the caller's transaction (with its audit event); once that
    transaction commits, send it to every configured sink. Returns the alert's id.

    A repeat (same `dedup_key`, default `source:title`) within `alerts.cooldown` of the
    alert's creation is not sent again: the existing alert counts it (`occurrences`,
    `last_at`, audit event `alert.repeat`) and its id is returned. A repeat of higher severity
    is an escalation and becomes a new alert. A rolled-back alert is never sent.
    """
    alert, new = _record(
        ws,
        session,
        severity=severity,
        source=source,
        title=title,
        details=details,
        dedup_key=dedup_key,
    )
    if new:
        _deliver_after_commit(session, ws.config.alerts, alert)
    return alert.id


def _record(
    ws: Workspace,
    session: Session,
    *,
    severity: str,
    source: str,
    title: str,
    details: dict[str, Any] | None,
    dedup_key: str | None,
) -> tuple[Alert, bool]:
    """The alert recorded for this occurrence, and whether it is new (not a repeat)."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    title = title[:300]
    key = (dedup_key or f"{source}:{title}")[:300]
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=parse_duration(ws.config.alerts.cooldown))
    recent = session.execute(
        select(AlertRecord)
        .where(AlertRecord.dedup_key == key, AlertRecord.created_at >= cutoff)
        .order_by(AlertRecord.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    summary = {"severity": severity, "source": source, "title": title}
    if recent is not None and SEVERITY_RANK[recent.severity] >= SEVERITY_RANK[severity]:
        # Counted in SQL, so concurrent repeats are not lost.
        session.execute(
            update(AlertRecord)
            .where(AlertRecord.id == recent.id)
            .values(occurrences=AlertRecord.occurrences + 1, last_at=now)
            .execution_options(synchronize_session=False)
        )
        session.refresh(recent)
        ws.record(
            session,
            "alert.repeat",
            f"alert:{recent.id}",
            {**summary, "occurrences": recent.occurrences},
        )
        return _alert(recent), False
    rec = AlertRecord(
        severity=severity,
        source=source,
        title=title,
        details=json.dumps(details or {}, sort_keys=True, default=str),
        dedup_key=key,
        created_at=now,
        created_by=ws.principal.name if ws.principal else "system",
        occurrences=1,
    )
    session.add(rec)
    session.flush()
    ws.record(session, "alert.raise", f"alert:{rec.id}", summary)
    return _alert(rec), True


def _deliver_after_commit(session: Session, config: AlertsConfig, alert: Alert) -> None:
    """Queue `alert` on `session`; it is sent when the outermost transaction commits and dropped
    when the transaction (or the savepoint it was raised in) rolls back."""
    pending: list[tuple[Alert, AlertsConfig, SessionTransaction | None]] | None
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _send_pending)
        event.listen(session, "after_soft_rollback", _drop_rolled_back)
    pending.append((alert, config, session.get_nested_transaction()))


def _send_pending(session: Session) -> None:
    from aidlc.core.alertsinks import deliver

    pending = session.info.get(_PENDING, [])
    sent, pending[:] = list(pending), []
    for alert, config, _ in sent:
        deliver(config, alert)


def _drop_rolled_back(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(_PENDING, [])
    if not previous.nested:
        pending.clear()
        return

    def inside(savepoint: SessionTransaction | None) -> bool:
        while savepoint is not None:
            if savepoint is previous:
                return True
            savepoint = savepoint.parent
        return False

    pending[:] = [item for item in pending if not inside(item[2])]


def send_test_alert(ws: Workspace, *, severity: str = "INFO") -> tuple[Alert, list[Delivery]]:
    """Raise a test alert (never deduplicated) and send it to the sinks now, returning what
    each sink did, so an operator can check the alert configuration end to end."""
    from aidlc.core.alertsinks import deliver

    principal = ws.authorize("alert.send", "alerts")
    if severity not in SEVERITIES:
        raise InvalidInput(
            f"unknown severity {severity[:20]!r}: use one of {', '.join(SEVERITIES)}"
        )
    with ws.transaction() as session:
        alert, _ = _record(
            ws,
            session,
            severity=severity,
            source="aidlc",
            title=f"test alert sent by {principal.name}",
            details={"purpose": "check that alerts reach their sinks"},
            dedup_key=f"alert-test:{secrets.token_hex(8)}",
        )
    return alert, deliver(ws.config.alerts, alert)


def list_alerts(
    ws: Workspace,
    *,
    limit: int = 100,
    severity: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
) -> list[Alert]:
    """The newest alerts first, optionally only those of one `severity`, from one `source`, or
    raised or repeated at or after `since` (an aware datetime)."""
    ws.authorize("alert.read", "alerts")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput(
            f"unknown severity {severity[:20]!r}: use one of {', '.join(SEVERITIES)}"
        )
    if since is not None and since.tzinfo is None:
        raise InvalidInput("`since` must be a timezone-aware datetime")
    query = select(AlertRecord).order_by(AlertRecord.id.desc()).limit(limit)
    if severity is not None:
        query = query.where(AlertRecord.severity == severity)
    if source is not None:
        query = query.where(AlertRecord.source == source)
    if since is not None:
        query = query.where(or_(AlertRecord.created_at >= since, AlertRecord.last_at >= since))
    with ws.db.reading() as session:
        return [_alert(r) for r in session.execute(query).scalars()]
