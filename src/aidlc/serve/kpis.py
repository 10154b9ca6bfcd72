"""Business KPIs that applications push beside a model's predictions (`POST /v1/kpis`).

Accepted like feedback, on the serving side; monitors read them into their reports.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aidlc.core import auth
from aidlc.core.meta import KpiRecord
from aidlc.errors import InvalidInput

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

__all__ = ["MAX_KPIS", "push_kpis"]

MAX_KPIS = 1000
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}\Z")


def _check(item: Any, i: int) -> tuple[str, float, datetime | None]:
    if not isinstance(item, dict) or not set(item) <= {"name", "value", "at"}:
        raise InvalidInput(f"kpis[{i}] must be an object with name, value and optional at")
    name, value = item.get("name"), item.get("value")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"kpis[{i}].name must be 1-100 letters, digits, '_', '.', '-' starting with a letter"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"kpis[{i}].value must be a finite number")
    at = item.get("at")
    when: datetime | None = None
    if at is not None:
        try:
            when = datetime.fromisoformat(str(at))
        except ValueError:
            raise InvalidInput(f"kpis[{i}].at must be an ISO 8601 time") from None
        if when.tzinfo is None:
            raise InvalidInput(f"kpis[{i}].at must carry a time zone")
    return name, float(value), when


def push_kpis(
    ws: Workspace, model: str, items: Any, principal: auth.Principal | None = None
) -> int:
    """Record KPI values for `model`; returns how many. Invalid input records nothing.

    `principal` is the caller when a server records on its behalf (it must hold `kpi.write`).
    """
    from aidlc.registry.versions import check_model_name
    from aidlc.serve.predlog import now

    check_model_name(model)
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_KPIS:
        raise InvalidInput(f"kpis must be a list of 1 to {MAX_KPIS} items")
    checked = [_check(item, i) for i, item in enumerate(items)]
    caller = ws.authorize("kpi.write", f"model:{model}", principal=principal)
    moment = now()
    with ws.transaction() as session:
        for name, value, at in checked:
            session.add(
                KpiRecord(
                    model=model, name=name, value=value, at=at or moment, created_by=caller.name
                )
            )
        ws.record(
            session, "kpi.write", f"model:{model}", {"count": len(checked), "by": caller.name}
        )
    return len(checked)
