"""A monitor report as one self-contained HTML page: no script, no external asset, every value
escaped; reference vs current histograms per feature drawn as inline SVG."""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["render"]

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1b1b;max-width:70rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #bbb;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#eee}
.bad{color:#a00000;font-weight:600}.ok{color:#0a5c0a}.muted{color:#555}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}
figure{margin:.5rem 0 1.5rem}figcaption{font-weight:600}
"""
_REF, _CUR = "#4063a8", "#d9822b"


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def _histogram(feature: dict[str, Any]) -> str:
    bins: list[str] = feature.get("bins") or []
    ref: list[float] = feature.get("reference") or []
    cur: list[float] = feature.get("current") or []
    if not bins:
        return '<p class="muted">no histogram</p>'
    width, height, pad = 640, 160, 24
    step = (width - 2 * pad) / len(bins)
    top = max([*ref, *cur, 1e-12])
    bars = []
    for i, label in enumerate(bins):
        for j, (share, color) in enumerate(((ref[i] if i < len(ref) else 0.0, _REF),
                                            (cur[i] if i < len(cur) else 0.0, _CUR))):  # fmt: skip
            h = (height - 2 * pad) * share / top
            x = pad + i * step + j * step / 2
            y = height - pad - h
            bars.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step / 2 - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{escape(label)}: '
                f"{'reference' if j == 0 else 'current'} {share:.1%}</title></rect>"
            )
    name = escape(feature["name"])
    return (
        f'<svg role="img" aria-label="Histogram of {name}: reference and current shares per bin" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="#777"/>{"".join(bars)}</svg>'
    )


def _verdict(drifted: bool) -> str:
    return '<span class="bad">drift</span>' if drifted else '<span class="ok">stable</span>'


def render(doc: dict[str, Any]) -> str:
    """The HTML page of a report document (as `monitor.runner` builds it)."""
    title = f"Monitor report: {doc['model']}@{doc['version']}"
    window = doc["window"]
    q = doc["quality"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Window {escape(window['start'])} to {escape(window['end'])}: {doc['rows']} logged "
        f"predictions in {window['batches']} batches. Verdict: <strong>"
        f"{escape(doc['verdict'])}</strong>.</p>",
    ]
    if doc["breaches"]:
        parts.append("<h2>Breaches</h2><table><tr><th>rule</th><th>metric</th><th>value</th>"
                     "<th>severity</th></tr>")  # fmt: skip
        for f in doc["breaches"]:
            parts.append(
                f"<tr><td>{escape(f['rule'])}</td><td>{escape(f['metric'])}</td>"
                f"<td>{_num(f['value'])}</td><td>{escape(f['severity'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append(
        "<h2>Data quality</h2><table>"
        f"<tr><th>out-of-distribution rate</th><td>{_num(q['ood_rate'])}</td></tr>"
        f"<tr><th>anomaly rate</th><td>{_num(q['anomaly_rate'])}</td></tr>"
        f"<tr><th>largest null rate</th><td>{_num(q['null_rate'])}</td></tr>"
        f"<tr><th>schema violation rate</th><td>{_num(q['schema_violation_rate'])}</td></tr>"
        f"<tr><th>mean latency (ms)</th><td>{_num(q['mean_latency_ms'])}</td></tr></table>"
    )
    perf = doc.get("performance") or {}
    parts.append(f"<h2>Performance</h2><p>{perf.get('labelled', 0)} labelled predictions.</p>")
    if perf.get("metrics"):
        parts.append("<table><tr><th>metric</th><th>live</th><th>training</th></tr>")
        for k, v in perf["metrics"].items():
            parts.append(
                f"<tr><td>{escape(k)}</td><td>{_num(v)}</td>"
                f"<td>{_num(perf['training'].get(k))}</td></tr>"
            )
        parts.append("</table>")
    costs = doc.get("costs") or {}
    kpis = doc.get("kpis") or {}
    parts.append(
        "<h2>Cost and KPIs</h2><table>"
        f"<tr><th>cost per 1,000 predictions</th><td>{_num(costs.get('per_1000_predictions'))} "
        f"{escape(str(costs.get('currency', '')))}</td></tr>"
        f"<tr><th>training run</th><td>{_num(costs.get('training_run'))} "
        f"{escape(str(costs.get('currency', '')))}</td></tr>"
    )
    for name, k in kpis.items():
        parts.append(
            f"<tr><th>KPI {escape(name)}</th><td>mean {_num(k['mean'])}, last {_num(k['last'])} "
            f"({k['count']} values)</td></tr>"
        )
    parts.append("</table>")
    d = doc.get("drift")
    if d is None:
        parts.append(
            "<h2>Drift</h2><p>Not judged: fewer logged rows than <code>monitor.min_rows</code>.</p>"
        )
    else:
        parts.append(
            f"<h2>Drift</h2><p>{len(d['drifted'])} of {len(d['features'])} features drifted "
            f"(share {_num(d['share'])}); data set drift: {d['dataset_drift']}.</p>"
            f"<p class='legend'><span style='background:{_REF}'></span>reference (training)"
            f"<span style='background:{_CUR}'></span>current (window)</p>"
            "<table><tr><th>feature</th><th>verdict</th><th>rule</th><th>PSI</th>"
            "<th>Jensen-Shannon</th><th>Wasserstein (norm.)</th><th>test</th><th>p</th></tr>"
        )
        for f in d["features"]:
            parts.append(
                f"<tr><td>{escape(f['name'])}</td><td>{_verdict(f['drifted'])}</td>"
                f"<td>{escape(f['rule'])}</td><td>{_num(f['psi'])}</td>"
                f"<td>{_num(f['jensenshannon'])}</td><td>{_num(f['wasserstein'])}</td>"
                f"<td>{escape(f['test'])} {_num(f['statistic'])}</td>"
                f"<td>{_num(f['p_value'])}</td></tr>"
            )
        parts.append("</table>")
        pred = doc.get("prediction_drift")
        shown = ([pred] if pred else []) + sorted(
            d["features"], key=lambda f: (not f["drifted"], -(f["score"] or 0))
        )
        for f in shown:
            label = "predictions" if f is pred else f["name"]
            parts.append(
                f"<figure><figcaption>{escape(label)}: {_verdict(f['drifted'])}</figcaption>"
                f"{_histogram(f)}</figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
