"""Charts for the console as inline SVG built on the server: line charts over time, reference vs
current histograms and a left-to-right DAG. No script; every label escaped; the same numbers are
offered as tables, and colour never carries meaning alone (dash patterns, fills, kind captions).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from aidlc.console.markup import Html, h, table

__all__ = [
    "DASHES",
    "PALETTE",
    "chart_table",
    "dag",
    "histogram_pair",
    "line_chart",
]

# Line colours, each at least 4.5:1 against white (so also fine for the legend's text).
PALETTE: tuple[str, ...] = (
    "#1f4e9c",  # blue
    "#b3261e",  # red
    "#1b6e2d",  # green
    "#6f3b96",  # purple
    "#8a5300",  # brown
    "#0b6670",  # teal
    "#a3166b",  # magenta
    "#3d3d3d",  # grey
)
# Dash patterns; 5 is coprime with the 8 colours, so the first 40 series all look different.
DASHES: tuple[str | None, ...] = (None, "8 4", "2 3", "10 3 2 3", "4 2 1 2")
_AXIS = "#555555"
_REFERENCE, _CURRENT = "#1f4e9c", "#8a5300"

X = datetime | float


def _style(i: int) -> tuple[str, str | None]:
    return PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]


def _x(value: X) -> float:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(value)


def _x_text(value: X) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return _num(value)


def _num(value: float) -> str:
    return f"{value:.4g}"


def _f(value: float) -> str:
    """A coordinate: one decimal, so output is byte-for-byte deterministic."""
    return f"{value:.1f}"


def _nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value`.

    >>> _nice_top(0.37), _nice_top(7.0), _nice_top(0.0)
    (0.5, 10.0, 1.0)
    """
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10 * power


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def line_chart(
    series: Mapping[str, Sequence[tuple[X, float]]],
    *,
    label: str,
    y_label: str,
    threshold: float | None = None,
    css_class: str = "chart line",
    x_label: str = "time (UTC)",
    width: int = 720,
    height: int = 300,
) -> Html:
    """A multi-series line chart: one `<g class="series">` per series (colour and dash pattern
    from the palette), a point marker with a tooltip per value, a legend, and `threshold` as a
    dashed horizontal line. Non-finite values are left out.

    >>> svg = line_chart({"a<b": [(1.0, 0.2), (2.0, 0.4)]}, label="Demo", y_label="score")
    >>> svg.startswith('<svg role="img" class="chart line" aria-label="Demo"'), "a&lt;b" in svg
    (True, True)
    """
    clean = {
        name: sorted(((x, y) for x, y in points if math.isfinite(y)), key=lambda p: _x(p[0]))
        for name, points in series.items()
    }
    clean = {name: points for name, points in clean.items() if points}
    if not clean:
        return h("p", {"class": "empty"}, f"{label}: no data yet.")
    left, right, top, plot_h = 56, 16, 16, height - 60
    names = list(clean)
    columns = max(1, (width - left - right) // 220)
    legend_rows = math.ceil(len(names) / columns)
    total_h = height + legend_rows * 18
    xs = sorted({_x(x) for points in clean.values() for x, _ in points})
    x_min, x_max = xs[0], xs[-1]
    y_values = [y for points in clean.values() for _, y in points]
    y_min = min(0.0, min(y_values))
    y_max = _nice_top(max([*y_values, threshold or 0.0]) * 1.05)
    plot_w = width - left - right

    def px(x: X) -> float:
        if x_max == x_min:
            return left + plot_w / 2
        return left + (_x(x) - x_min) / (x_max - x_min) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y_min) / (y_max - y_min) * plot_h

    parts: list[object] = [h("title", None, label)]
    # axes and y grid
    for i in range(5):
        y = y_min + (y_max - y_min) * i / 4
        parts.append(
            h(
                "line",
                {
                    "x1": left,
                    "x2": width - right,
                    "y1": _f(py(y)),
                    "y2": _f(py(y)),
                    "stroke": "#dddddd",
                },
            )
        )
        parts.append(
            h(
                "text",
                {
                    "x": left - 6,
                    "y": _f(py(y) + 4),
                    "text-anchor": "end",
                    "font-size": 11,
                    "fill": _AXIS,
                },
                _num(y),
            )
        )
    parts.append(
        h(
            "line",
            {
                "x1": left,
                "x2": width - right,
                "y1": _f(top + plot_h),
                "y2": _f(top + plot_h),
                "stroke": _AXIS,
            },
        )
    )
    labelled = {_x(x): x for points in clean.values() for x, _ in points}
    shown = xs if len(xs) <= 5 else [xs[round(i * (len(xs) - 1) / 4)] for i in range(5)]
    for value in shown:
        parts.append(
            h(
                "text",
                {
                    "x": _f(px(value)),
                    "y": _f(top + plot_h + 16),
                    "text-anchor": "middle",
                    "font-size": 11,
                    "fill": _AXIS,
                },
                _x_text(labelled[value]),
            )
        )
    parts.append(
        h(
            "text",
            {
                "x": _f(left + plot_w / 2),
                "y": _f(top + plot_h + 34),
                "text-anchor": "middle",
                "font-size": 12,
                "fill": _AXIS,
            },
            x_label,
        )
    )
    parts.append(
        h(
            "text",
            {
                "x": 14,
                "y": _f(top + plot_h / 2),
                "text-anchor": "middle",
                "font-size": 12,
                "fill": _AXIS,
                "transform": f"rotate(-90 14 {_f(top + plot_h / 2)})",
            },
            y_label,
        )
    )
    if threshold is not None:
        ty = py(threshold)
        parts.append(
            h(
                "g",
                {"class": "threshold"},
                h("title", None, f"threshold {_num(threshold)}"),
                h(
                    "line",
                    {
                        "x1": left,
                        "x2": width - right,
                        "y1": _f(ty),
                        "y2": _f(ty),
                        "stroke": "#000000",
                        "stroke-width": 1.5,
                        "stroke-dasharray": "6 4",
                    },
                ),
                h(
                    "text",
                    {
                        "x": width - right,
                        "y": _f(ty - 4),
                        "text-anchor": "end",
                        "font-size": 11,
                        "fill": "#000000",
                    },
                    f"threshold {_num(threshold)}",
                ),
            )
        )
    for i, name in enumerate(names):
        colour, dash = _style(i)
        points = clean[name]
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{_f(px(x))},{_f(py(y))}" for j, (x, y) in enumerate(points)
        )
        markers = [
            h(
                "circle",
                {
                    "cx": _f(px(x)),
                    "cy": _f(py(y)),
                    "r": 3,
                    "fill": colour,
                    "data-x": _x_text(x),
                    "data-y": repr(float(y)),
                },
                h("title", None, f"{name} at {_x_text(x)}: {_num(y)}"),
            )
            for x, y in points
        ]
        parts.append(
            h(
                "g",
                {"class": "series", "data-series": name},
                h("title", None, name),
                h(
                    "path",
                    {
                        "d": path,
                        "fill": "none",
                        "stroke": colour,
                        "stroke-width": 2,
                        "stroke-dasharray": dash,
                    },
                ),
                markers,
            )
        )
    legend_top = height - 8
    items = []
    for i, name in enumerate(names):
        colour, dash = _style(i)
        lx = left + (i % columns) * 220
        ly = legend_top + (i // columns) * 18
        items.append(
            h(
                "g",
                None,
                h(
                    "line",
                    {
                        "x1": lx,
                        "x2": lx + 28,
                        "y1": ly - 4,
                        "y2": ly - 4,
                        "stroke": colour,
                        "stroke-width": 2,
                        "stroke-dasharray": dash,
                    },
                ),
                h(
                    "text",
                    {"x": lx + 34, "y": ly, "font-size": 12, "fill": "#1b1b1b"},
                    _truncate(name, 28),
                ),
            )
        )
    parts.append(h("g", {"class": "legend"}, items))
    return h(
        "svg",
        {
            "role": "img",
            "class": css_class,
            "aria-label": label,
            "width": width,
            "height": total_h,
            "viewBox": f"0 0 {width} {total_h}",
            "xmlns": "http://www.w3.org/2000/svg",
        },
        parts,
    )


def chart_table(
    series: Mapping[str, Sequence[tuple[X, float]]],
    *,
    caption: str,
    series_label: str = "series",
    summary: str = "The numbers behind the chart",
) -> Html:
    """The numbers of a line chart in a `<details>` table: a row per series, a column per x.

    >>> "<th scope=\\"col\\">1</th>" in chart_table({"a": [(1.0, 2.0)]}, caption="c")
    True
    """
    xs: dict[float, X] = {}
    for points in series.values():
        for x, _ in points:
            xs.setdefault(_x(x), x)
    order = sorted(xs)
    rows = []
    for name, points in series.items():
        by_x = {_x(x): y for x, y in points}
        rows.append([name, *(_num(by_x[k]) if k in by_x else "" for k in order)])
    headers = [series_label, *(_x_text(xs[k]) for k in order)]
    return h(
        "details",
        {"class": "chart-data"},
        h("summary", None, summary),
        table(headers, rows, caption=caption),
    )


def histogram_pair(
    name: str,
    bins: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    label: str | None = None,
    width: int = 640,
    height: int = 180,
) -> Html:
    """Reference and current shares per bin, side by side: reference bars filled, current bars
    outlined (so the two differ without colour), each with a tooltip; a legend says which.

    >>> svg = histogram_pair("x", ["0 … 1"], [0.5], [0.25])
    >>> svg.count('data-series="reference"'), svg.count('data-series="current"')
    (1, 1)
    """
    if not bins:
        return h("p", {"class": "empty"}, f"No histogram for {name}.")
    label = label or f"Histogram of {name}: reference and current share per bin"
    pad, top, bottom = 40, 28, 26
    plot_h = height - top - bottom
    step = (width - 2 * pad) / len(bins)
    peak = max([*reference, *current, 1e-12])
    bars: list[object] = [h("title", None, label)]
    bars.append(
        h(
            "g",
            {"class": "legend"},
            h("rect", {"x": pad, "y": 8, "width": 12, "height": 12, "fill": _REFERENCE}),
            h(
                "text",
                {"x": pad + 18, "y": 18, "font-size": 12, "fill": "#1b1b1b"},
                "reference (training), filled",
            ),
            h(
                "rect",
                {
                    "x": pad + 220,
                    "y": 9,
                    "width": 11,
                    "height": 11,
                    "fill": "#ffffff",
                    "stroke": _CURRENT,
                    "stroke-width": 2,
                },
            ),
            h(
                "text",
                {"x": pad + 238, "y": 18, "font-size": 12, "fill": "#1b1b1b"},
                "current (window), outlined",
            ),
        )
    )
    for i, bin_label in enumerate(bins):
        for j, (side, shares) in enumerate((("reference", reference), ("current", current))):
            share = float(shares[i]) if i < len(shares) else 0.0
            bar_h = plot_h * share / peak
            x = pad + i * step + j * step / 2
            y = top + plot_h - bar_h
            look: dict[str, object] = (
                {"fill": _REFERENCE}
                if side == "reference"
                else {"fill": "#ffffff", "stroke": _CURRENT, "stroke-width": 2}
            )
            bars.append(
                h(
                    "rect",
                    {
                        "class": side,
                        "data-series": side,
                        "data-bin": bin_label,
                        "data-value": repr(share),
                        "x": _f(x),
                        "y": _f(y),
                        "width": _f(max(step / 2 - 2, 1)),
                        "height": _f(bar_h),
                        **look,
                    },
                    h("title", None, f"{bin_label}: {side} {share:.1%}"),
                )
            )
    bars.append(
        h(
            "line",
            {"x1": pad, "y1": top + plot_h, "x2": width - pad, "y2": top + plot_h, "stroke": _AXIS},
        )
    )
    first, last = bins[0], bins[-1]
    bars.append(
        h("text", {"x": pad, "y": height - 8, "font-size": 11, "fill": _AXIS}, _truncate(first, 30))
    )
    bars.append(
        h(
            "text",
            {
                "x": width - pad,
                "y": height - 8,
                "font-size": 11,
                "fill": _AXIS,
                "text-anchor": "end",
            },
            _truncate(last, 30),
        )
    )
    return h(
        "svg",
        {
            "role": "img",
            "class": "chart histogram",
            "aria-label": label,
            "width": width,
            "height": height,
            "viewBox": f"0 0 {width} {height}",
            "xmlns": "http://www.w3.org/2000/svg",
        },
        bars,
    )


class DagNode(Protocol):
    """What `dag` needs of a node (a `govern.lineage.Node` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def label(self) -> str: ...


class DagEdge(Protocol):
    """What `dag` needs of an edge (a `govern.lineage.Edge` fits)."""

    @property
    def source(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def kind(self) -> str: ...


# Columns left to right; kinds not listed go after these, in order of first appearance.
KIND_ORDER = ("raw", "dataset", "run", "model", "alias", "deployment", "report", "prediction")
_KIND_FILL = {
    "raw": "#eef1f5",
    "dataset": "#e3f0fb",
    "run": "#fdf1e0",
    "model": "#e6f4ea",
    "alias": "#f3e8fa",
    "deployment": "#fde8ec",
    "report": "#eef6f6",
    "prediction": "#f4f4f4",
}
_NODE_W, _NODE_H, _COL_GAP, _ROW_GAP, _MARGIN = 200, 44, 70, 16, 12


def _columns(nodes: Sequence[DagNode], order: Sequence[str]) -> list[list[DagNode]]:
    kinds = list(order) + [n.kind for n in nodes if n.kind not in order]
    used = [k for k in dict.fromkeys(kinds) if any(n.kind == k for n in nodes)]
    return [[n for n in nodes if n.kind == kind] for kind in used]


def dag(
    nodes: Iterable[DagNode],
    edges: Iterable[DagEdge],
    *,
    label: str = "Lineage graph",
    hrefs: Mapping[str, str] | None = None,
    order: Sequence[str] = KIND_ORDER,
) -> Html:
    """A layered left-to-right drawing of a DAG: one column per node kind (in `order`), nodes in
    a column ordered by the mean row of their upstream nodes, edges as curves with an arrow.
    Each node shows its kind and its label (cut to fit; the whole label in its `<title>`), and
    links to `hrefs[node.id]` when given. Edges between unknown nodes are left out.

    >>> from types import SimpleNamespace as N
    >>> svg = dag([N(id="a", kind="raw", label="<a>"), N(id="b", kind="dataset", label="b")],
    ...           [N(source="a", target="b", kind="ingest")])
    >>> svg.count('class="node'), svg.count('class="edge'), "&lt;a&gt;" in svg
    (2, 1, True)
    """
    node_list = sorted(nodes, key=lambda n: n.id)
    if not node_list:
        return h("p", {"class": "empty"}, "Nothing to draw.")
    known = {n.id for n in node_list}
    edge_list = [e for e in edges if e.source in known and e.target in known]
    upstream: dict[str, list[str]] = {}
    for e in edge_list:
        upstream.setdefault(e.target, []).append(e.source)
    row: dict[str, float] = {}
    col: dict[str, int] = {}
    columns = _columns(node_list, order)
    for c, members in enumerate(columns):

        def key(n: DagNode) -> tuple[float, str]:
            above = [row[s] for s in upstream.get(n.id, []) if s in row]
            return (sum(above) / len(above) if above else math.inf, n.id)

        members.sort(key=key)
        for r, n in enumerate(members):
            row[n.id], col[n.id] = float(r), c
    tallest = max(len(m) for m in columns)
    width = 2 * _MARGIN + len(columns) * _NODE_W + (len(columns) - 1) * _COL_GAP
    height = 2 * _MARGIN + tallest * _NODE_H + (tallest - 1) * _ROW_GAP
    pos: dict[str, tuple[float, float]] = {}
    for c, members in enumerate(columns):
        # centre short columns vertically
        offset = (tallest - len(members)) * (_NODE_H + _ROW_GAP) / 2
        for r, n in enumerate(members):
            pos[n.id] = (
                _MARGIN + c * (_NODE_W + _COL_GAP),
                _MARGIN + offset + r * (_NODE_H + _ROW_GAP),
            )
    by_id = {n.id: n for n in node_list}
    parts: list[object] = [
        h("title", None, label),
        h(
            "defs",
            None,
            h(
                "marker",
                {
                    "id": "dag-arrow",
                    "viewBox": "0 0 10 10",
                    "refX": 10,
                    "refY": 5,
                    "markerWidth": 7,
                    "markerHeight": 7,
                    "orient": "auto-start-reverse",
                },
                h("path", {"d": "M0,0 L10,5 L0,10 z", "fill": _AXIS}),
            ),
        ),
    ]
    for e in edge_list:
        sx, sy = pos[e.source]
        tx, ty = pos[e.target]
        x1, y1 = sx + _NODE_W, sy + _NODE_H / 2
        x2, y2 = tx, ty + _NODE_H / 2
        bend = max((x2 - x1) / 2, 20)
        d = (
            f"M{_f(x1)},{_f(y1)} C{_f(x1 + bend)},{_f(y1)} {_f(x2 - bend)},{_f(y2)} "
            f"{_f(x2)},{_f(y2)}"
        )
        parts.append(
            h(
                "g",
                {
                    "class": f"edge edge-{e.kind}",
                    "data-source": e.source,
                    "data-target": e.target,
                    "data-kind": e.kind,
                },
                h("title", None, f"{by_id[e.source].label} → {by_id[e.target].label} ({e.kind})"),
                h(
                    "path",
                    {
                        "d": d,
                        "fill": "none",
                        "stroke": _AXIS,
                        "stroke-width": 1.5,
                        "marker-end": "url(#dag-arrow)",
                    },
                ),
            )
        )
    for n in node_list:
        x, y = pos[n.id]
        box = h(
            "g",
            {"class": f"node node-{n.kind}", "data-id": n.id, "data-kind": n.kind},
            h("title", None, n.label),
            h(
                "rect",
                {
                    "x": _f(x),
                    "y": _f(y),
                    "width": _NODE_W,
                    "height": _NODE_H,
                    "rx": 6,
                    "fill": _KIND_FILL.get(n.kind, "#f4f4f4"),
                    "stroke": _AXIS,
                },
            ),
            h(
                "text",
                {"x": _f(x + 8), "y": _f(y + 15), "font-size": 10, "fill": "#444444"},
                n.kind,
            ),
            h(
                "text",
                {"x": _f(x + 8), "y": _f(y + 33), "font-size": 12, "fill": "#1b1b1b"},
                _truncate(n.label, 30),
            ),
        )
        href = (hrefs or {}).get(n.id)
        parts.append(h("a", {"href": href}, box) if href else box)
    return h(
        "svg",
        {
            "role": "img",
            "class": "chart dag",
            "aria-label": label,
            "width": width,
            "height": height,
            "viewBox": f"0 0 {width} {height}",
            "xmlns": "http://www.w3.org/2000/svg",
        },
        parts,
    )
