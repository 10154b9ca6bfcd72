"""The datasets pages: every dataset with its validated versions, and one dataset's versions with
their validation reports and the files and rows the gate quarantined, with the reasons."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from aidlc.console.markup import Html, Page, badge, h, table
from aidlc.core import objects
from aidlc.core.workspace import Workspace
from aidlc.data import versions
from aidlc.errors import AidlcError

__all__ = ["dataset_page", "page"]

# The list page shows this many newest versions per dataset; the dataset's page shows them all.
LISTED_VERSIONS = 10


def _report(ws: Workspace, version: versions.DatasetVersion) -> dict[str, Any] | None:
    """The validation report stored beside a version's data (None when it is gone)."""
    zone, object_id, _ = objects.parse_ref(version.data_object)
    folder = object_id.rpartition("/")[0]
    try:
        doc = json.loads(objects.get_bytes(ws, zone, f"{folder}/report.json"))
    except (AidlcError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _outcome(report: dict[str, Any] | None) -> str:
    if report is None:
        return "unknown"
    if report.get("passed"):
        return "accepted"
    return "partial" if report.get("rows_quarantined") else "failed"


def _checks(report: dict[str, Any] | None) -> tuple[int, int, int]:
    """(passed, failed, not applicable) checks of a report."""
    checks = (report or {}).get("checks") or []
    passed = sum(1 for c in checks if c.get("passed") is True)
    failed = sum(1 for c in checks if c.get("passed") is False)
    return passed, failed, len(checks) - passed - failed


def _versions_table(
    name: str,
    items: list[tuple[versions.DatasetVersion, dict[str, Any] | None]],
    *,
    caption: str,
) -> Html:
    rows = []
    for v, report in items:
        rows.append(
            [
                h("a", {"href": f"/console/datasets/{name}#v{v.version}"}, v.ref),
                v.rows,
                f"{v.created_at:%Y-%m-%d %H:%M}",
                v.created_by,
                v.source_name,
                badge(_outcome(report)),
            ]
        )
    return table(
        ["version", "rows", "created (UTC)", "by", "source", "validation"],
        rows,
        caption=caption,
        empty="No validated version yet.",
    )


def page(ws: Workspace, query: Mapping[str, str]) -> Page:
    """Every dataset: contract version and its newest validated versions.

    Needs `object.read:validated` (data-steward, trainer)."""
    datasets = versions.list_datasets(ws)
    body: list[object] = [
        table(
            ["dataset", "contract version", "versions", "latest"],
            [
                [
                    h("a", {"href": f"/console/datasets/{d['name']}"}, d["name"]),
                    d["contract_version"],
                    d["versions"],
                    d["latest"] or "—",
                ]
                for d in datasets
            ],
            caption="Datasets",
            empty="No dataset yet: ingest a file with `aidlc data ingest FILE --dataset NAME`.",
        )
    ]
    for d in datasets:
        items = versions.list_versions(ws, d["name"])
        newest = [(v, _report(ws, v)) for v in list(reversed(items))[:LISTED_VERSIONS]]
        body.append(
            h(
                "section",
                {"aria-labelledby": f"ds-{d['name']}"},
                h("h2", {"id": f"ds-{d['name']}"}, d["name"]),
                _versions_table(d["name"], newest, caption=f"Newest versions of {d['name']}"),
            )
        )
    return Page("Datasets", h("div", {"class": "datasets"}, body))


def _report_section(v: versions.DatasetVersion, report: dict[str, Any] | None) -> Html:
    passed, failed, skipped = _checks(report)
    failing = [c for c in (report or {}).get("checks") or [] if c.get("passed") is False]
    return h(
        "section",
        {"id": f"v{v.version}", "aria-labelledby": f"v{v.version}-h"},
        h("h3", {"id": f"v{v.version}-h"}, v.ref, " ", badge(_outcome(report))),
        h(
            "p",
            None,
            f"{v.rows} rows from {v.source_name} (sha256 {v.source_sha256[:12]}), contract "
            f"v{v.contract_version}, ingested by {v.created_by} at "
            f"{v.created_at:%Y-%m-%d %H:%M} UTC.",
        ),
        h("p", {"class": "empty"}, "The validation report is no longer available.")
        if report is None
        else h(
            "p",
            {"class": "checks"},
            f"Checks: {passed} passed, {failed} failed, {skipped} not applicable",
            f"; {report.get('rows_quarantined')} rows quarantined."
            if report.get("rows_quarantined")
            else ".",
        ),
        table(
            ["check", "column", "observed", "threshold", "failing rows", "message"],
            [
                [
                    c.get("check"),
                    c.get("column") or "",
                    "" if c.get("observed") is None else str(c.get("observed")),
                    "" if c.get("threshold") is None else str(c.get("threshold")),
                    c.get("failing_rows") or "",
                    c.get("message") or "",
                ]
                for c in failing
            ],
            caption=f"Failed checks of {v.ref}",
            empty="No check failed.",
        )
        if report is not None
        else None,
    )


def _row_reasons(ws: Workspace, ref: str) -> list[tuple[str, int]]:
    """The most frequent reasons in a file of quarantined rows (`partial` ingests)."""
    import polars as pl

    try:
        frame = pl.read_parquet(io.BytesIO(objects.get_ref(ws, ref)), columns=["reasons"])
    except (AidlcError, pl.exceptions.PolarsError, OSError):
        return []
    counts: Counter[str] = Counter()
    for reasons in frame.get_column("reasons").to_list():
        for reason in str(reasons or "").split("; "):
            if reason:
                counts[reason] += 1
    return counts.most_common(10)


def _quarantine(ws: Workspace, name: str) -> Html:
    principal = ws.principal
    if principal is None or not principal.may("data.ingest"):
        return h(
            "p",
            {"class": "note"},
            "Quarantined files and their reasons are shown to the data-steward role.",
        )
    entries = [i for i in versions.ingests(ws, name) if i["quarantine_object"]]
    rows = []
    for i in reversed(entries):
        reason: object = i["reason"]
        if i["outcome"] == "partial":
            counted = _row_reasons(ws, i["quarantine_object"])
            reason = h(
                "ul",
                None,
                [h("li", None, f"{text} ({n} rows)") for text, n in counted]
                or [h("li", None, f"{i['failed_rows']} rows failed the contract")],
            )
        rows.append(
            [
                i["created_at"][:16].replace("T", " "),
                i["source"],
                badge(i["outcome"]),
                i["rows"] if i["rows"] is not None else "",
                i["failed_rows"] or "",
                reason,
                i["created_by"],
                h("code", None, i["quarantine_object"]),
            ]
        )
    return table(
        ["time (UTC)", "source", "outcome", "rows", "failed rows", "reasons", "by", "kept as"],
        rows,
        caption=f"Quarantine of {name}",
        empty="Nothing quarantined.",
    )


def dataset_page(ws: Workspace, name: str, query: Mapping[str, str]) -> Page:
    """One dataset: every version with its validation summary, and its quarantine (the latter
    for the data-steward role)."""
    # Each version's report is decrypted once, for the table and for its section.
    items = [(v, _report(ws, v)) for v in reversed(versions.list_versions(ws, name))]
    contract = versions.contract_version(ws, name)
    body = h(
        "div",
        {"class": "dataset"},
        h(
            "p",
            None,
            f"Contract version {contract.version} (fingerprint {contract.fingerprint[:12]}), "
            f"set by {contract.created_by}.",
        ),
        _versions_table(name, items, caption=f"Versions of {name}"),
        h("h2", None, "Validation reports"),
        [_report_section(v, report) for v, report in items]
        or h("p", {"class": "empty"}, "No validated version yet."),
        h("h2", None, "Quarantine"),
        _quarantine(ws, name),
    )
    return Page(f"Dataset {name}", body, links=[("All datasets", "/console/datasets")])
