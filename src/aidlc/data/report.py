"""Validation reports for people: a Rich table for the terminal and a self-contained HTML page.

Both render the JSON form of a report (`ValidationReport.to_json()`), which is also what is
stored beside each version or quarantined file, so a report looks the same today and in a year.
"""

from __future__ import annotations

import html
from typing import Any

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border:1px solid #c9ced6;padding:.35rem .55rem;text-align:left;vertical-align:top}
th{background:#eef1f5}.pass{color:#0b6b2f;font-weight:600}.fail{color:#a4161a;font-weight:600}
.na{color:#5b6470}code{font-family:ui-monospace,monospace;font-size:.9em}
.verdict{padding:.6rem .9rem;border-radius:.3rem;display:inline-block}
.ok{background:#e3f4e8}.bad{background:#fbe5e6}
"""


_STYLE = {"FAIL": "red", "ok": "green", "n/a": "dim"}


def _outcome(passed: Any) -> tuple[str, str]:
    if passed is None:
        return "n/a", "na"
    return ("ok", "pass") if passed else ("FAIL", "fail")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def render_html(report: dict[str, Any], *, title: str = "Validation report") -> str:
    """A self-contained HTML page (no scripts, no external assets), every value escaped."""
    esc = html.escape
    passed = bool(report.get("passed"))
    rows = []
    for check in report.get("checks", []):
        label, css = _outcome(check.get("passed"))
        indices = ", ".join(str(i) for i in check.get("row_indices", [])[:20])
        rows.append(
            "<tr>"
            f"<td>{esc(_cell(check.get('check')))}</td><td>{esc(_cell(check.get('column')))}</td>"
            f'<td class="{css}">{label}</td>'
            f"<td>{esc(_cell(check.get('observed')))}</td>"
            f"<td>{esc(_cell(check.get('threshold')))}</td>"
            f"<td>{esc(_cell(check.get('failing_rows')))}</td>"
            f"<td><code>{esc(indices)}</code></td>"
            f"<td>{esc(_cell(check.get('message')))}</td></tr>"
        )
    samples = report.get("samples") or []
    sample_html = ""
    if samples:
        columns = list(samples[0].keys())
        head = "".join(f"<th>{esc(str(c))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(_cell(s.get(c)))}</td>" for c in columns) + "</tr>"
            for s in samples
        )
        sample_html = (
            "<h2>Sample failing rows</h2><p>Values of pii and sensitive columns are masked.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
    error = report.get("error")
    verdict = "passed" if passed else ("unusable: " + str(error) if error else "failed")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>"
        f'<p class="verdict {"ok" if passed else "bad"}">{esc(verdict)} — '
        f"{esc(_cell(report.get('rows')))} rows</p>"
        "<table><thead><tr><th>check</th><th>column</th><th>outcome</th><th>observed</th>"
        "<th>threshold</th><th>failing rows</th><th>first failing rows</th><th>message</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{sample_html}</body></html>"
    )


def render_table(report: dict[str, Any]) -> Any:
    """A Rich table of the checks (failures first)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table("check", "column", "outcome", "observed", "threshold", "failing rows", "rows")
    checks = sorted(
        report.get("checks", []), key=lambda c: (c.get("passed") is not False, c.get("check", ""))
    )
    for check in checks:
        label, _ = _outcome(check.get("passed"))
        style = _STYLE[label]
        # Data values may contain Rich markup; escape everything that came from the file.
        table.add_row(
            escape(_cell(check.get("check"))),
            escape(_cell(check.get("column"))),
            f"[{style}]{label}[/]",
            escape(_cell(check.get("observed"))),
            escape(_cell(check.get("threshold"))),
            _cell(check.get("failing_rows")),
            ", ".join(str(i) for i in check.get("row_indices", [])[:8]),
        )
    return table
