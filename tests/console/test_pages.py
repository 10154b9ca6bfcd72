"""The console's read-only pages and charts, called directly as signed-in principals: the numbers
they show are the workspace's own (reports, audit proofs, compliance, lineage), hostile names are
inert, and roles without the right are refused."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.monitor.helpers import send_feedback, serve_rows, shifted
from tests.serve.conftest import Served, served, served_template

__all__ = ["served", "served_template"]

HOSTILE = "<script>alert(1)</script>"
SVG = "{http://www.w3.org/2000/svg}"
DRIFT = {"mean_radius": 1.4, "mean_perimeter": 1.4, "mean_area": 1.8}


def _svg(html: str, css_class: str) -> ET.Element:
    """The first inline SVG of that class, parsed as XML (so it is well formed, too)."""
    found = re.search(rf'<svg role="img" class="{css_class}".*?</svg>', html, re.S)
    assert found, f"no svg of class {css_class}"
    return ET.fromstring(found.group(0))


def _rows() -> list[dict[str, Any]]:
    from aidlc.demo import breast_cancer

    return breast_cancer.frame().drop(["patient_id", "diagnosis"]).to_dicts()


def _contrast(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    lum = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (lum + 0.05)


# -- charts ---------------------------------------------------------------------------------------


def test_charts_escape_hostile_labels_and_are_deterministic() -> None:
    from types import SimpleNamespace as N

    from aidlc.console import charts

    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    series = {HOSTILE: [(t0, 0.1), (t0 + timedelta(hours=1), 0.3)], "b": [(t0, 0.2)]}
    line = charts.line_chart(series, label=f"x {HOSTILE}", y_label=HOSTILE, threshold=0.25)
    assert line == charts.line_chart(series, label=f"x {HOSTILE}", y_label=HOSTILE, threshold=0.25)
    hist = charts.histogram_pair(HOSTILE, [HOSTILE, "1 … 2"], [0.5, 0.5], [0.25, 0.75])
    graph = charts.dag(
        [N(id="r", kind="raw", label=HOSTILE), N(id="d", kind="dataset", label="d")],
        [N(source="r", target="d", kind="ingest")],
    )
    table = charts.chart_table(series, caption=HOSTILE)
    for html in (line, hist, graph, table):
        assert "<script" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    root = ET.fromstring(line)
    groups = root.findall(f"{SVG}g[@class='series']")
    assert [g.get("data-series") for g in groups] == [HOSTILE, "b"]
    assert [c.get("data-y") for c in groups[0].iter(f"{SVG}circle")] == ["0.1", "0.3"]
    assert root.find(f"{SVG}g[@class='threshold']") is not None
    bars = ET.fromstring(hist).iter(f"{SVG}rect")
    assert [r.get("data-value") for r in bars if r.get("data-value")] == [
        "0.5", "0.25", "0.5", "0.75"
    ]  # fmt: skip
    assert charts.line_chart({}, label="L", y_label="y") == '<p class="empty">L: no data yet.</p>'


def test_palette_lines_contrast_with_white_and_forty_series_look_different() -> None:
    from aidlc.console import charts

    assert min(_contrast(c) for c in charts.PALETTE) >= 4.5
    assert len({charts._style(i) for i in range(40)}) == 40


# -- monitoring -----------------------------------------------------------------------------------


def _monitor_twice(served: Served) -> list[Any]:
    """A stable report, then one over drifted traffic a minute later; labels for the first."""
    from aidlc.demo import breast_cancer
    from aidlc.monitor import runner

    rows = _rows()
    ids = serve_rows(served, rows)
    send_feedback(served, dict(zip(ids, breast_cancer.frame()["diagnosis"].to_list(), strict=True)))
    now = datetime.now(UTC)
    with served.open("monitor") as ws:
        (first,) = runner.run(ws, now=now, retrain=False)
    serve_rows(served, shifted(rows[:300], DRIFT))
    with served.open("monitor") as ws:
        (second,) = runner.run(ws, now=now + timedelta(minutes=1), retrain=False)
    return [first, second]


def test_monitoring_charts_show_the_reports_numbers(served: Served) -> None:
    from aidlc.console.pages import monitoring

    first, second = _monitor_twice(served)
    with served.open("auditor") as ws:
        body = monitoring.page(ws, {}).body
    features = second.document["drift"]["features"]
    drift = _svg(body, "chart drift")
    assert drift.get("aria-label") == "Drift score per feature over time for bc"
    groups = drift.findall(f"{SVG}g[@class='series']")
    assert sorted(g.get("data-series") for g in groups) == sorted(f["name"] for f in features)
    threshold = second.document["config"]["wasserstein_threshold"]
    assert drift.find(f"{SVG}g[@class='threshold']/{SVG}title").text == f"threshold {threshold:.4g}"
    area = next(g for g in groups if g.get("data-series") == "mean_area")
    scores = [float(c.get("data-y")) for c in area.iter(f"{SVG}circle")]
    expected = [
        next(f["score"] for f in r.document["drift"]["features"] if f["name"] == "mean_area")
        for r in (first, second)
    ]
    assert scores == expected and scores[1] > threshold > scores[0]
    assert "mean_area" in second.document["drift"]["drifted"]
    # the newest report's histograms, bar for bar
    block = re.search(r'<figure class="chart" data-feature="mean_area">.*?</figure>', body, re.S)
    assert block is not None
    bars = ET.fromstring(re.search(r"<svg.*?</svg>", block.group(0), re.S).group(0))  # type: ignore[union-attr]
    mean_area = next(f for f in features if f["name"] == "mean_area")
    for side in ("reference", "current"):
        shown = [
            float(r.get("data-value"))
            for r in bars.iter(f"{SVG}rect")
            if r.get("data-series") == side
        ]
        assert shown == mean_area[side]
    # performance over time: the labelled metrics of both reports
    perf = _svg(body, "chart performance")
    metrics = {g.get("data-series"): g for g in perf.findall(f"{SVG}g[@class='series']")}
    assert set(metrics) == set(second.document["performance"]["metrics"])
    accuracy = [float(c.get("data-y")) for c in metrics["accuracy"].iter(f"{SVG}circle")]
    assert accuracy == [r.document["performance"]["metrics"]["accuracy"] for r in (first, second)]
    assert body.count("<details") >= 3  # each chart's numbers as a table


def test_monitoring_without_reports_says_so(served: Served) -> None:
    from aidlc.console.pages import monitoring

    with served.open("auditor") as ws:
        page = monitoring.page(ws, {})
    assert page.title == "Monitoring bc"
    assert "No monitor reports for bc yet" in page.body and "<svg" not in page.body


# -- audit ----------------------------------------------------------------------------------------


def _linked_seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<a href="/console/audit/(\d+)">', html)]


def test_audit_search_filters_give_exactly_the_matching_events(served: Served) -> None:
    from aidlc.console.pages import audit
    from aidlc.errors import InvalidInput, PermissionDenied

    with served.open("inference") as ws, pytest.raises(PermissionDenied):
        audit.page(ws, {})  # a denial, audited: something for the outcome filter to find
    with served.open("auditor") as ws:
        every = ws.audit.events()
        newest = sorted(every, key=lambda e: -e.seq)

        def expect(keep: Any) -> list[int]:
            return [e.seq for e in newest if keep(e)][: audit.PAGE_SIZE]

        cases = {
            (("actor", "approver"),): expect(lambda e: e.actor == "approver"),
            (("q", "APPROVE"),): expect(
                lambda e: any("approve" in s.lower() for s in (e.action, e.resource, e.actor))
            ),
            (("outcome", "denied"),): expect(lambda e: e.outcome == "denied"),
            (("action", "model.*"), ("actor", "approver")): expect(
                lambda e: e.action.startswith("model.") and e.actor == "approver"
            ),
        }
        for query, wanted in cases.items():
            assert wanted, query
            assert _linked_seqs(audit.page(ws, dict(query)).body) == wanted, query
        denied = audit.page(ws, {"outcome": "denied"}).body
        assert "audit.read" in denied and "inference" in denied
        # pages of 50, newest first, continued by `before`
        first = audit.page(ws, {}).body
        assert _linked_seqs(first) == [e.seq for e in newest[:50]]
        after = int(re.search(r"before=(\d+)", first).group(1))  # type: ignore[union-attr]
        assert _linked_seqs(audit.page(ws, {"before": str(after)}).body) == [
            e.seq for e in newest[50:100]
        ]
        assert 'Chain verification: <span class="badge ok">ok</span>' in first
        with pytest.raises(InvalidInput, match="outcome must be one of"):
            audit.page(ws, {"outcome": "maybe"})


def test_event_page_shows_a_proof_that_verifies(served: Served) -> None:
    from aidlc.console.pages import audit
    from aidlc.core import merkle

    with served.open("auditor") as ws:
        body = audit.event_page(ws, 5, {}).body
        event = ws.audit.event(5)

    def field(name: str) -> str:
        found = re.search(rf'data-field="{name}">([^<]*)<', body)
        assert found, name
        return found.group(1)

    leaf = bytes.fromhex(field("leaf-hash"))
    path_html = re.search(r'data-field="audit-path">(.*?)</ol>', body, re.S).group(1)  # type: ignore[union-attr]
    path = [bytes.fromhex(p) for p in re.findall(r"<code>([0-9a-f]{64})</code>", path_html)]
    size, root = int(field("tree-size")), bytes.fromhex(field("root-hash"))
    assert int(field("leaf-index")) == 4 and path
    assert leaf == merkle.leaf_hash(merkle.encode_event(event.to_json()))
    assert merkle.verify_inclusion(leaf, 4, size, path, root)
    assert not merkle.verify_inclusion(leaf, 3, size, path, root)
    assert '<span class="badge ok">verified</span>' in body
    assert "aidlc audit prove 5" in body


def test_a_tampered_event_makes_the_chain_status_failed(served: Served) -> None:
    from aidlc.console.pages import audit

    with served.open("admin") as ws, ws.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'eve' WHERE seq = 2"))
    with served.open("auditor") as ws:
        body = audit.page(ws, {}).body
    assert '<span class="badge bad">failed</span>' in body
    assert "event 2: event 2 was edited or moved" in unescape(body)


# -- compliance, lineage, datasets ----------------------------------------------------------------


def test_compliance_page_shows_the_reports_statuses(served: Served) -> None:
    from aidlc.console.pages import compliance as page
    from aidlc.govern import compliance

    with served.open("auditor") as ws:
        body = page.page(ws, {"framework": "soc2"}).body
        report = compliance.report(ws, "soc2")
    shown = dict(
        re.findall(r'id="control-([a-z-]+)" class="control" data-status="([a-z_]+)"', body)
    )
    assert shown == {c.id: c.status for c in report.controls}
    assert "aidlc compliance check --framework soc2" in body
    assert "CC8.1" in body


def test_lineage_draws_raw_file_to_production_alias(served: Served) -> None:
    from aidlc.console.pages import lineage

    with served.open("auditor") as ws:
        page = lineage.page(ws, {})
    assert page.title == "Lineage of bc@1"
    svg = _svg(page.body, "chart dag")
    nodes = {
        n.get("data-id"): n.get("data-kind")
        for n in svg.iter(f"{SVG}g")
        if n.get("data-kind") and n.get("class", "").startswith("node")
    }
    edges = {
        (e.get("data-source"), e.get("data-target"))
        for e in svg.iter(f"{SVG}g")
        if e.get("data-source")
    }
    raw = next(i for i, k in nodes.items() if k == "raw")
    run = next(i for i, k in nodes.items() if k == "run")
    chain = [raw, "dataset:breast-cancer@1", run, "model:bc@1", "alias:bc:production"]
    assert [nodes[i] for i in chain] == ["raw", "dataset", "run", "model", "alias"]
    assert {(a, b) for a, b in itertools.pairwise(chain)} <= edges
    assert 'data-id="alias:bc:production"' in page.body  # also in the nested list


def test_datasets_pages_show_versions_reports_and_quarantine_escaped(
    served: Served, tmp_path: Path
) -> None:
    from aidlc.console.pages import datasets
    from aidlc.data.contract import parse_contract
    from aidlc.data.ingest import ingest
    from aidlc.demo import breast_cancer

    _, bad = breast_cancer.write_files(tmp_path)
    contract = parse_contract(breast_cancer.contract(breast_cancer.frame()), source="demo")
    with served.open("steward") as ws:
        result = ingest(ws, bad, "breast-cancer", contract=contract, source_name=f"{HOSTILE}.csv")
        listing = datasets.page(ws, {}).body
        detail = datasets.dataset_page(ws, "breast-cancer", {}).body
    assert result.outcome == "rejected"
    assert "breast-cancer@1" in listing and '<span class="badge ok">accepted</span>' in listing
    assert "<script" not in detail and "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in detail
    assert unescape(result.reason) in unescape(detail) or result.reason in unescape(detail)
    assert re.search(r"Checks: \d+ passed, 0 failed", detail)
    with served.open("trainer") as ws:
        seen = datasets.dataset_page(ws, "breast-cancer", {}).body
    assert "shown to the data-steward role" in seen and "alert(1)" not in seen


@pytest.mark.parametrize(
    ("who", "module", "action"),
    [
        ("inference", "audit", "audit.read"),
        ("inference", "monitoring", "monitor.read"),
        ("steward", "lineage", "lineage.read"),
        ("trainer", "compliance", "compliance.read"),
        ("approver", "datasets", "object.read:validated"),
    ],
)
def test_a_role_without_the_right_is_refused(
    served: Served, who: str, module: str, action: str
) -> None:
    import importlib

    from aidlc.errors import PermissionDenied

    page = importlib.import_module(f"aidlc.console.pages.{module}").page
    with served.open(who) as ws, pytest.raises(PermissionDenied, match=re.escape(action)):
        page(ws, {})
