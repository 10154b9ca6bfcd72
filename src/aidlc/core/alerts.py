"""Alerts: recorded, audited and logged. Gates, the registry, the server and monitors raise them.

The default sink is the log (one JSON line on the `aidlc.alerts` logger); richer sinks (webhook,
SMTP, SNS) and rules plug in behind `raise_alert` without changing its callers.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from aidlc.core.meta import AlertRecord

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from aidlc.core.workspace import Workspace

SEVERITIES = ("INFO", "WARNING", "CRITICAL")
log = logging.getLogger("aidlc.alerts")


@dataclass(frozen=True)
class Alert:
    id: int
    severity: str
    source: str
    title: str
    details: dict[str, Any]
    created_at: datetime
    created_by: str

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


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
    """Record an alert inside the caller's transaction (with its audit event) and log it."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    actor = ws.principal.name if ws.principal else "system"
    rec = AlertRecord(
        severity=severity,
        source=source,
        title=title[:300],
        details=json.dumps(details or {}, sort_keys=True, default=str),
        dedup_key=(dedup_key or f"{source}:{title}")[:300],
        created_by=actor,
    )
    session.add(rec)
    session.flush()
    ws.record(
        session,
        "alert.raise",
        f"alert:{rec.id}",
        {"severity": severity, "source": source, "title": title[:300]},
    )
    log.warning(
        json.dumps(
            {"alert": rec.id, "severity": severity, "source": source, "title": title[:300]},
            sort_keys=True,
        )
    )
    return rec.id


def list_alerts(ws: Workspace, *, limit: int = 100) -> list[Alert]:
    """The newest alerts first."""
    ws.authorize("alert.read", "alerts")
    with ws.db.reading() as session:
        recs = session.execute(
            select(AlertRecord).order_by(AlertRecord.id.desc()).limit(limit)
        ).scalars()
        return [
            Alert(
                r.id,
                r.severity,
                r.source,
                r.title,
                json.loads(r.details),
                r.created_at,
                r.created_by,
            )
            for r in recs
        ]
