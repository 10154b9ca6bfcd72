"""Cost and business metrics: cost per 1,000 predictions and per training run, and user KPIs.

Costs come from measured use priced with the unit prices of `costs:` in `aidlc.yaml`: the CPU
time of the logged predictions (their latency, one vCPU each) and the storage of their logs for
the window, and the wall time of the version's training run (one vCPU). KPIs are numbers the
applications push through `POST /v1/kpis` (`aidlc.serve.kpis`) and appear beside the model metrics.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from aidlc.core.config import CostsConfig
from aidlc.core.meta import KpiRecord

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

__all__ = ["costs", "kpi_summary"]

_MONTH_SECONDS = 30 * 86400


def costs(
    config: CostsConfig,
    *,
    predictions: int,
    latency_ms: float,
    log_bytes: int,
    window_seconds: float,
    training_seconds: float | None,
) -> dict[str, Any]:
    """Cost per 1,000 predictions and of the training run, in `config.currency`.

    >>> from aidlc.core.config import CostsConfig
    >>> c = costs(CostsConfig(cpu_hour=0.036), predictions=1000, latency_ms=3_600_000.0,
    ...           log_bytes=0, window_seconds=3600, training_seconds=1800)
    >>> c["per_1000_predictions"], c["training_run"]
    (0.036, 0.018)
    """
    compute = latency_ms / 3_600_000 * config.cpu_hour
    storage = log_bytes / 1e9 * config.gb_month * (window_seconds / _MONTH_SECONDS)
    per_1000 = (compute + storage) / predictions * 1000 if predictions else None
    training = None if training_seconds is None else training_seconds / 3600 * config.cpu_hour
    return {
        "currency": config.currency,
        "per_1000_predictions": None if per_1000 is None else round(per_1000, 9),
        "window_compute": round(compute, 9),
        "window_storage": round(storage, 9),
        "training_run": None if training is None else round(training, 9),
        "unit_prices": {"cpu_hour": config.cpu_hour, "gb_month": config.gb_month},
    }


def kpi_summary(ws: Workspace, model: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Per KPI in the window: count, mean, last value and its time."""
    with ws.db.reading() as session:
        recs = session.execute(
            select(KpiRecord)
            .where(KpiRecord.model == model, KpiRecord.at >= start, KpiRecord.at <= end)
            .order_by(KpiRecord.at, KpiRecord.id)
        ).scalars()
        out: dict[str, dict[str, Any]] = {}
        for r in recs:
            entry = out.setdefault(r.name, {"count": 0, "sum": 0.0})
            entry["count"] += 1
            entry["sum"] += r.value
            entry["last"] = r.value
            entry["last_at"] = r.at.isoformat()
    for entry in out.values():
        entry["mean"] = entry.pop("sum") / entry["count"]
    return out
