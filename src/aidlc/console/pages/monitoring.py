"""The monitoring page of one production model: drift per feature over time, reference vs current
histograms of the newest report and live performance over time, from its monitor reports."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aidlc.console import charts
from aidlc.console.markup import Html, Page, badge, h, table
from aidlc.core.workspace import Workspace
from aidlc.monitor import runner
from aidlc.registry import versions

__all__ = ["REPORTS_SHOWN", "page"]

# The charts cover this many newest reports.
REPORTS_SHOWN = 30
_EFFECT = {"wasserstein": "normalised Wasserstein distance", "jensenshannon": "Jensen-Shannon"}
_THRESHOLD = {"wasserstein": "wasserstein_threshold", "jensenshannon": "jensenshannon_threshold"}


def _production_models(ws: Workspace) -> list[str]:
    return [m["name"] for m in versions.list_models(ws) if "production" in m.get("aliases", {})]


def _picker(models: list[str], chosen: str | None) -> Html:
    return h(
        "form",
        {"method": "get", "action": "/console/monitoring", "class": "picker"},
        h("label", {"for": "model"}, "Model"),
        h(
            "select",
            {"id": "model", "name": "model"},
            [h("option", {"value": m, "selected": m == chosen}, m) for m in models],
        ),
        h("button", {"type": "submit"}, "Show"),
    )


def _drift(name: str, docs: list[tuple[datetime, dict[str, Any]]]) -> Html:
    series: dict[str, list[tuple[datetime | float, float]]] = {}
    effects: set[str] = set()
    for moment, doc in docs:
        for f in (doc.get("drift") or {}).get("features", []):
            if f.get("score") is None:
                continue
            series.setdefault(f["name"], []).append((moment, float(f["score"])))
            effects.add(f.get("effect", ""))
    if not series:
        return h("p", {"class": "empty"}, "No report judged drift yet (too few logged rows).")
    config = docs[-1][1].get("config") or {}
    threshold = None
    y_label = "drift score (effect size)"
    note = "Numeric features are scored by normalised Wasserstein distance, categorical ones by "
    note += "Jensen-Shannon distance; each has its own threshold (see the report table)."
    if len(effects) == 1:
        (effect,) = effects
        y_label = f"drift score ({_EFFECT.get(effect, effect)})"
        value = config.get(_THRESHOLD.get(effect, ""))
        threshold = float(value) if isinstance(value, int | float) else None
        note = f"Dashed line: the drift threshold ({threshold}); small samples are judged by a "
        note += "statistical test alone, so the verdict is in the report table."
    return h(
        "figure",
        {"class": "chart"},
        charts.line_chart(
            series,
            label=f"Drift score per feature over time for {name}",
            y_label=y_label,
            threshold=threshold,
            css_class="chart drift",
        ),
        h("figcaption", None, note),
        charts.chart_table(
            series,
            caption=f"Drift score per feature and report time (UTC) for {name}",
            series_label="feature",
        ),
    )


def _performance(name: str, docs: list[tuple[datetime, dict[str, Any]]]) -> Html:
    series: dict[str, list[tuple[datetime | float, float]]] = {}
    training: dict[str, float] = {}
    for moment, doc in docs:
        perf = doc.get("performance") or {}
        if not perf.get("labelled"):
            continue
        for metric, value in (perf.get("metrics") or {}).items():
            if isinstance(value, int | float):
                series.setdefault(metric, []).append((moment, float(value)))
        training.update(
            {k: v for k, v in (perf.get("training") or {}).items() if isinstance(v, int | float)}
        )
    if not series:
        return h(
            "p",
            {"class": "empty"},
            "No labelled predictions yet: send labels to /v1/feedback to measure performance.",
        )
    return h(
        "figure",
        {"class": "chart"},
        charts.line_chart(
            series,
            label=f"Live performance over time for {name}",
            y_label="metric value",
            css_class="chart performance",
        ),
        h(
            "figcaption",
            None,
            "Training values: "
            + (", ".join(f"{k} {v:.4g}" for k, v in sorted(training.items())) or "none recorded")
            + ".",
        ),
        charts.chart_table(
            series,
            caption=f"Live performance per metric and report time (UTC) for {name}",
            series_label="metric",
        ),
    )


def _histograms(doc: dict[str, Any]) -> Html:
    drift = doc.get("drift")
    if not drift:
        return h("p", {"class": "empty"}, "The newest report did not judge drift.")
    features = sorted(drift["features"], key=lambda f: (not f["drifted"], -(f["score"] or 0)))

    def figure(f: dict[str, Any]) -> Html:
        return h(
            "figure",
            {"class": "chart", "data-feature": f["name"]},
            h(
                "figcaption",
                None,
                f["name"],
                " ",
                badge("drift" if f["drifted"] else "stable"),
                f" — {f['rule']}",
            ),
            charts.histogram_pair(f["name"], f["bins"], f["reference"], f["current"]),
            h(
                "details",
                {"class": "chart-data"},
                h("summary", None, "The numbers behind the chart"),
                table(
                    ["bin", "reference share", "current share"],
                    [
                        [b, f"{r:.4f}", f"{c:.4f}"]
                        for b, r, c in zip(f["bins"], f["reference"], f["current"], strict=False)
                    ],
                    caption=f"Shares per bin of {f['name']}",
                ),
            ),
        )

    drifted = [figure(f) for f in features if f["drifted"]]
    stable = [figure(f) for f in features if not f["drifted"]]
    return h(
        "div",
        {"class": "histograms"},
        drifted,
        h("details", None, h("summary", None, f"Stable features ({len(stable)})"), stable)
        if stable
        else None,
    )


def page(ws: Workspace, query: Mapping[str, str]) -> Page:
    """`?model=NAME` (default: the first model in production). Needs `monitor.read` (monitor,
    approver, auditor) and `model.read`."""
    models = _production_models(ws)
    name = query.get("model") or (models[0] if models else None)
    if name is not None:
        versions.check_model_name(name)
    if name is None:
        body = h("p", {"class": "empty"}, "No model is in production, so nothing is monitored.")
        return Page("Monitoring", body)
    reports = list(reversed(runner.list_reports(ws, model=name, limit=REPORTS_SHOWN)))
    picker = _picker(models if name in models else [*models, name], name)
    if not reports:
        body = h(
            "div",
            None,
            picker,
            h(
                "p",
                {"class": "empty"},
                f"No monitor reports for {name} yet. Run `aidlc monitor run --model {name}`.",
            ),
        )
        return Page(f"Monitoring {name}", body)
    docs: list[tuple[datetime, dict[str, Any]]] = []
    for r in reports:
        doc = runner.get_report(ws, r.id)
        if isinstance(doc, dict):
            docs.append((r.window_end, doc))
    latest = reports[-1]
    summary = table(
        ["report", "window end (UTC)", "version", "rows", "verdict", "drifted", "breaches"],
        [
            [
                r.id,
                f"{r.window_end:%Y-%m-%d %H:%M}",
                r.version,
                r.rows,
                badge(r.verdict),
                ", ".join(r.summary.get("drifted", [])) or "—",
                ", ".join(r.summary.get("breaches", [])) or "—",
            ]
            for r in reversed(reports)
        ],
        caption=f"Monitor reports of {name}, newest first",
    )
    body = h(
        "div",
        {"class": "monitoring"},
        picker,
        h("h2", None, "Drift per feature over time"),
        _drift(name, docs),
        h("h2", None, f"Reference vs current, report {latest.id}"),
        _histograms(docs[-1][1]) if docs else None,
        h("h2", None, "Performance over time"),
        _performance(name, docs),
        h("h2", None, "Reports"),
        summary,
    )
    return Page(f"Monitoring {name}", body)
