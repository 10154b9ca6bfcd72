"""Reports render hostile values inert: HTML escaped, Rich markup escaped."""

from __future__ import annotations

import io

from rich.console import Console

from aidlc.data.report import render_html, render_table

HOSTILE = {
    "passed": False,
    "rows": 3,
    "checks": [
        {
            "check": "allowed",
            "column": "plan<script>",
            "passed": False,
            "observed": "<img src=x onerror=alert(1)>",
            "threshold": "[red]basic[/red]",
            "failing_rows": 1,
            "row_indices": [2],
            "message": "value </td><script>alert(1)</script> not allowed",
        },
        {
            "check": "not_null",
            "column": "plan",
            "passed": True,
            "observed": 0,
            "threshold": 0,
            "failing_rows": 0,
            "row_indices": [],
            "message": "no nulls",
        },
        {
            "check": "drift",
            "column": None,
            "passed": None,
            "observed": None,
            "threshold": 0.2,
            "failing_rows": 0,
            "row_indices": [],
            "message": "no baseline",
        },
    ],
    "samples": [{"plan": "<b>x</b>", "email": "***"}],
}


def test_html_report_is_self_contained_and_escapes_every_value():
    page = render_html(HOSTILE, title="<title>")
    assert "<script" not in page and "<img" not in page and "<b>x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "http" not in page  # no external assets
    assert "n/a" in page and "FAIL" in page


def test_rich_table_escapes_markup_from_data():
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(render_table(HOSTILE))
    text = buffer.getvalue()
    assert "[red]basic[/red]" in text
    assert "FAIL" in text and "ok" in text and "n/a" in text
