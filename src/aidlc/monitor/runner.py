"""`aidlc monitor run`: one model's live traffic in a window against its training baseline.

For the production version of each model: merge the summaries of the prediction log batches in
the window (each batch is summarised once and the summary cached as an encrypted object), judge
drift of every feature and of the predictions against the signed baseline, compute live data
quality, performance from feedback labels, cost and KPIs, evaluate the alert rules, store the
report (JSON and a self-contained HTML page) and, on a breach, hand over to the retraining
policy. Memory is bounded by one batch and the profiles, whatever the window.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select

from aidlc.core import objects
from aidlc.core.alerts import raise_alert
from aidlc.core.config import AlertRule, parse_duration
from aidlc.core.meta import (
    BatchProfileRecord,
    MonitorReportRecord,
    PredictionBatchRecord,
    StoredObject,
)
from aidlc.data.profile import DatasetProfile
from aidlc.errors import InvalidInput, NotFound, UsageError
from aidlc.monitor import business, drift, performance, quality

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

__all__ = ["MonitorOutcome", "ReportInfo", "get_report", "list_reports", "run"]

ZONE = "reports"
log = logging.getLogger("aidlc.monitor")
_SEVERITY = {"INFO": 0, "WARNING": 1, "CRITICAL": 2}
# Which rules count as which kind of breach, for the retraining policy's triggers.
BREACH_KIND = {
    "drift_score": "drift",
    "psi": "drift",
    "drifted_share": "drift",
    "prediction_drift": "drift",
    "performance_drop": "performance",
}


@dataclass(frozen=True)
class ReportInfo:
    id: int
    model: str
    version: int
    window_start: datetime
    window_end: datetime
    rows: int
    verdict: str
    summary: dict[str, Any]
    created_at: datetime
    created_by: str

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("window_start", "window_end", "created_at"):
            out[key] = out[key].isoformat()
        return out


@dataclass(frozen=True)
class MonitorOutcome:
    """What one model's monitor run found and did."""

    report: ReportInfo
    document: dict[str, Any]
    alerts: list[int]
    retraining: dict[str, Any] | None


def _info(rec: MonitorReportRecord) -> ReportInfo:
    return ReportInfo(
        rec.id,
        rec.model,
        rec.version,
        rec.window_start,
        rec.window_end,
        rec.rows,
        rec.verdict,
        json.loads(rec.summary),
        rec.created_at,
        rec.created_by,
    )


# -- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    name: str
    version: int
    task: str
    classes: list[str] | None
    features: dict[str, str]
    metrics: dict[str, float]
    run_id: str | None
    reference: DatasetProfile
    predictions: DatasetProfile | None


def _production(ws: Workspace, name: str) -> _Model:
    from aidlc.registry import versions

    try:
        version = versions.resolve(ws, f"{name}@production")
    except NotFound:
        raise NotFound(
            f"model {name!r} has no production version to monitor",
            hint=f"deploy one with `aidlc deploy {name}@VERSION`",
        ) from None
    card = orjson.loads(versions.read_document(ws, version.ref, "model-card.json"))
    baseline = orjson.loads(versions.read_document(ws, version.ref, "baseline.json"))
    if not isinstance(baseline, dict) or not baseline.get("features"):
        raise NotFound(
            f"{version.ref} has no baseline profile to compare live traffic with",
            hint="versions trained with `aidlc train` record their training data's profile",
        )
    reference = DatasetProfile.from_json(baseline["features"])
    predictions = (
        DatasetProfile.from_json(baseline["predictions"]) if baseline.get("predictions") else None
    )
    features: dict[str, str] = {}
    for feature in card["features"]:
        column = reference.columns.get(feature)
        features[feature] = "numeric" if column and column.kind == "numeric" else "categorical"
    return _Model(
        name,
        version.version,
        version.task,
        card.get("classes"),
        features,
        dict(version.metrics),
        version.run_id,
        reference,
        predictions,
    )


def _batches(
    ws: Workspace, kind: str, model: str, start: datetime, end: datetime
) -> list[PredictionBatchRecord]:
    with ws.db.reading() as session:
        return list(
            session.execute(
                select(PredictionBatchRecord)
                .where(
                    PredictionBatchRecord.kind == kind,
                    PredictionBatchRecord.model == model,
                    PredictionBatchRecord.last_at >= start,
                    PredictionBatchRecord.first_at <= end,
                )
                .order_by(PredictionBatchRecord.id)
            ).scalars()
        )


def _read_rows(ws: Workspace, ref: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    import polars as pl

    data = objects.get_ref(ws, ref)
    if columns is not None:  # older batches may lack newer columns (scores)
        present = pl.read_parquet_schema(io.BytesIO(data))
        columns = [c for c in columns if c in present]
    return pl.read_parquet(io.BytesIO(data), columns=columns).to_dicts()


def _summary(ws: Workspace, batch: PredictionBatchRecord, m: _Model) -> quality.BatchSummary | None:
    """The cached summary of one batch for the model version, made on first use."""
    with ws.db.reading() as session:
        cached = session.get(BatchProfileRecord, (batch.id, m.version))
        ref = cached.object_ref if cached else None
    if ref is not None:
        doc = orjson.loads(objects.get_ref(ws, ref))
        return None if doc is None else quality.BatchSummary.from_json(doc)
    rows = [r for r in _read_rows(ws, batch.object_ref) if r.get("version") == m.version]
    summary = quality.summarise_rows(rows, m.features, m.task).get(m.version) if rows else None
    doc = summary.to_json() if summary else None
    info = objects.put_bytes(
        ws, ZONE, f"monitor/batches/{batch.id}-v{m.version}", orjson.dumps(doc)
    )
    with ws.transaction() as session:
        if session.get(BatchProfileRecord, (batch.id, m.version)) is None:
            session.add(
                BatchProfileRecord(batch_id=batch.id, version=m.version, object_ref=info.ref)
            )
    return summary


def _labels(
    ws: Workspace, m: _Model, start: datetime, end: datetime, lookback: timedelta
) -> tuple[list[tuple[Any, Any]], list[float | None]]:
    """(prediction, label) pairs of the version for labels that arrived in the window; labels
    are matched with predictions made up to one window before the window starts."""
    labels: dict[str, Any] = {}
    for batch in _batches(ws, "feedback", m.name, start, end):
        for row in _read_rows(ws, batch.object_ref, ["prediction_id", "label"]):
            try:
                labels[str(row["prediction_id"])] = orjson.loads(row["label"])
            except (orjson.JSONDecodeError, TypeError):
                continue
    pairs: list[tuple[Any, Any]] = []
    scores: list[float | None] = []
    if not labels:
        return pairs, scores
    for batch in _batches(ws, "predictions", m.name, start - lookback, end):
        wanted = ["prediction_id", "version", "output", "score"]
        for row in _read_rows(ws, batch.object_ref, wanted):
            label = labels.get(str(row["prediction_id"]), _MISSING)
            if label is _MISSING or row.get("version") != m.version:
                continue
            pairs.append((orjson.loads(row["output"]), label))
            score = row.get("score")  # logged when the request computed probabilities
            scores.append(float(score) if isinstance(score, int | float) else None)
    return pairs, scores


_MISSING = object()


def _log_bytes(ws: Workspace, batches: list[PredictionBatchRecord]) -> int:
    ids = [objects.parse_ref(b.object_ref)[1] for b in batches]
    if not ids:
        return 0
    with ws.db.reading() as session:
        sizes = session.execute(
            select(StoredObject.size).where(
                StoredObject.zone == "predictions", StoredObject.object_id.in_(ids)
            )
        ).scalars()
        return int(sum(sizes))


def _training_seconds(ws: Workspace, run_id: str | None) -> float | None:
    if run_id is None:
        return None
    from aidlc.train import tracking

    try:
        return tracking.get_run(ws, run_id).seconds
    except NotFound:
        return None


# -- rules ---------------------------------------------------------------------------------------


def _fired(rule: AlertRule, value: float) -> bool:
    if rule.above is not None:
        return value > rule.above
    return rule.below is not None and value < rule.below


def _observations(doc: dict[str, Any]) -> dict[str, float]:
    """The numbers alert rules watch, from a report document."""
    q = doc["quality"]
    out = {"performance_drop": doc["performance"]["drop"] if doc.get("performance") else 0.0}
    if doc["verdict"] != "insufficient":  # rates of a handful of rows are noise
        out["ood_rate"] = q["ood_rate"]
        out["anomaly_rate"] = q["anomaly_rate"]
        out["null_rate"] = q["null_rate"]
        out["schema_violation_rate"] = q["schema_violation_rate"]
        d = doc["drift"]
        out["drift_score"] = d["max_score"]
        out["psi"] = d["max_psi"]
        out["drifted_share"] = d["share"]
        pred = doc.get("prediction_drift")
        out["prediction_drift"] = pred["score"] if pred and pred["drifted"] else 0.0
    return out


# -- the run -------------------------------------------------------------------------------------


def run(
    ws: Workspace,
    *,
    model: str | None = None,
    window: str | None = None,
    now: datetime | None = None,
    retrain: bool = True,
) -> list[MonitorOutcome]:
    """Monitor `model` (or every model with a production version) over the last `window`."""
    from aidlc.registry import versions

    try:
        seconds = parse_duration(window or ws.config.monitor.window)
    except ValueError as exc:
        raise UsageError(f"--window: {exc}") from None
    end = now or datetime.now(UTC)
    if end.tzinfo is None:
        raise UsageError("now must be an aware UTC time")
    start = end - timedelta(seconds=seconds)
    if model is not None:
        names = [versions.check_model_name(model)]
    else:
        ws.authorize("monitor.run", "models")
        names = [
            m["name"] for m in versions.list_models(ws) if "production" in m.get("aliases", {})
        ]
    return [_run_one(ws, name, start, end, retrain) for name in names]


def _run_one(
    ws: Workspace, name: str, start: datetime, end: datetime, retrain: bool
) -> MonitorOutcome:
    ws.authorize("monitor.run", f"model:{name}")
    cfg = ws.config.monitor
    m = _production(ws, name)
    batches = _batches(ws, "predictions", name, start, end)
    current: quality.BatchSummary | None = None
    for batch in batches:
        part = _summary(ws, batch, m)
        if part is not None:
            current = part if current is None else current.merge(part)
    counts = current.quality if current else quality.QualityCounts()
    rows = counts.rows
    doc: dict[str, Any] = {
        "format": 1,
        "model": name,
        "version": m.version,
        "task": m.task,
        "window": {"start": start.isoformat(), "end": end.isoformat(), "batches": len(batches)},
        "rows": rows,
        "config": cfg.drift.model_dump(),
        "quality": counts.rates(list(m.features)),
    }
    if current is None or rows < cfg.min_rows:
        doc["verdict"] = "insufficient"
        doc["drift"] = None
        doc["prediction_drift"] = None
    else:
        result = drift.compare_profiles(
            m.reference, current.profile, cfg.drift, columns=list(m.features)
        )
        doc["drift"] = {
            **result.to_json(),
            "max_score": result.max_score,
            "max_psi": result.max_psi,
        }
        pred_ref = m.predictions.columns.get(quality.PREDICTION) if m.predictions else None
        pred_cur = current.profile.columns.get(quality.PREDICTION)
        doc["prediction_drift"] = (
            drift.compare_column(pred_ref, pred_cur, cfg.drift).to_json()
            if pred_ref is not None and pred_cur is not None and pred_cur.count
            else None
        )
    pairs, scores = _labels(ws, m, start, end, end - start)
    doc["performance"] = performance.evaluate(m.task, m.classes, pairs, m.metrics, scores).to_json()
    doc["costs"] = business.costs(
        ws.config.costs,
        predictions=rows,
        latency_ms=counts.latency_ms,
        log_bytes=_log_bytes(ws, batches),
        window_seconds=(end - start).total_seconds(),
        training_seconds=_training_seconds(ws, m.run_id),
    )
    doc["kpis"] = business.kpi_summary(ws, name, start, end)
    doc["training_metrics"] = m.metrics
    doc.setdefault("verdict", "ok")
    observed = _observations(doc)
    fired: list[dict[str, Any]] = [
        {"rule": r.name, "metric": r.metric, "value": observed[r.metric], "severity": r.severity}
        for r in ws.config.alerts.rules
        if r.metric in observed and _fired(r, observed[r.metric])
    ]
    doc["observations"] = observed
    doc["breaches"] = fired
    if doc["verdict"] == "ok" and any(_SEVERITY[f["severity"]] >= 1 for f in fired):
        doc["verdict"] = "breach"
    return _store(ws, m, doc, start, end, retrain)


def _store(
    ws: Workspace, m: _Model, doc: dict[str, Any], start: datetime, end: datetime, retrain: bool
) -> MonitorOutcome:
    from aidlc.monitor import html

    stamp = f"{end:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    base = f"monitor/{m.name}/{stamp}"
    doc["created_at"] = datetime.now(UTC).isoformat()
    json_ref = objects.put_bytes(
        ws, ZONE, f"{base}.json", orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    ).ref
    html_ref = objects.put_bytes(ws, ZONE, f"{base}.html", html.render(doc).encode()).ref
    summary = {
        "drifted": doc["drift"]["drifted"] if doc.get("drift") else [],
        "breaches": [f["rule"] for f in doc["breaches"]],
        "performance_drop": doc["performance"]["drop"],
        "labelled": doc["performance"]["labelled"],
    }
    who = ws.principal.name if ws.principal else "system"
    alerts: list[int] = []
    with ws.transaction() as session:
        rec = MonitorReportRecord(
            model=m.name,
            version=m.version,
            window_start=start,
            window_end=end,
            rows=doc["rows"],
            verdict=doc["verdict"],
            summary=json.dumps(summary, sort_keys=True),
            object_ref=json_ref,
            html_ref=html_ref,
            created_by=who,
        )
        session.add(rec)
        session.flush()
        ws.record(
            session,
            "monitor.run",
            f"model:{m.name}@{m.version}",
            {"report": rec.id, "verdict": doc["verdict"], "rows": doc["rows"], **summary},
        )
        for f in doc["breaches"]:
            alerts.append(
                raise_alert(
                    ws,
                    session,
                    severity=f["severity"],
                    source="monitor",
                    title=_title(m, f, doc),
                    details={"report": rec.id, "value": f["value"], "metric": f["metric"]},
                    dedup_key=f"monitor:{m.name}:{f['rule']}",
                )
            )
        report = _info(rec)
    retraining = None
    kinds = {
        BREACH_KIND.get(f["metric"], "quality")
        for f in doc["breaches"]
        if _SEVERITY[f["severity"]] >= 1
    }
    if retrain and kinds:
        from aidlc.monitor import retrain as retraining_module

        retraining = retraining_module.on_breach(ws, m.name, sorted(kinds), report.id)
    log.info("monitor %s@%d: %s over %d rows", m.name, m.version, doc["verdict"], doc["rows"])
    return MonitorOutcome(report, doc, alerts, retraining)


def _title(m: _Model, fired: dict[str, Any], doc: dict[str, Any]) -> str:
    metric, value = fired["metric"], fired["value"]
    if metric in ("drift_score", "drifted_share") and doc.get("drift"):
        names = ", ".join(doc["drift"]["drifted"][:5])
        return f"{m.name}@{m.version}: drift in {names} ({metric} {value:.3g})"
    return f"{m.name}@{m.version}: {metric} {value:.3g} ({fired['rule']})"


# -- reading reports -----------------------------------------------------------------------------


def list_reports(ws: Workspace, *, model: str | None = None, limit: int = 50) -> list[ReportInfo]:
    """Monitor reports, newest first."""
    ws.authorize("monitor.read", f"model:{model or '*'}")
    query = select(MonitorReportRecord).order_by(MonitorReportRecord.id.desc()).limit(limit)
    if model is not None:
        query = query.where(MonitorReportRecord.model == model)
    with ws.db.reading() as session:
        return [_info(r) for r in session.execute(query).scalars()]


def get_report(ws: Workspace, report_id: int, *, html: bool = False) -> dict[str, Any] | str:
    """A report's JSON document, or its HTML page."""
    ws.authorize("monitor.read", f"report:{report_id}")
    with ws.db.reading() as session:
        rec = session.get(MonitorReportRecord, report_id)
        if rec is None:
            raise NotFound(
                f"no monitor report {report_id}", hint="list them: aidlc monitor reports"
            )
        ref = rec.html_ref if html else rec.object_ref
    data = objects.get_ref(ws, ref, action="monitor.read")
    if html:
        return data.decode("utf-8")
    try:
        doc: dict[str, Any] = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidInput(f"monitor report {report_id} is not JSON") from None
    return doc
