"""OpenLineage run events for ingests, training runs and monitor runs, and their delivery: JSON
lines appended to a private file in the workspace, or POSTed to a lineage server (Marquez, ...).

Events follow the OpenLineage 2-0-2 RunEvent schema with standard facets only, so any consumer
reads them; the client library is not needed to write them.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from aidlc import __version__
from aidlc.errors import ConfigError, InvalidInput

log = logging.getLogger("aidlc.lineage")

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace
    from aidlc.data.versions import DatasetVersion
    from aidlc.monitor.runner import ReportInfo
    from aidlc.train.tracking import RunInfo

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
PRODUCER = f"https://pypi.org/project/aidlc/{__version__}/"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
DEFAULT_FILE = Path(".aidlc/openlineage/events.jsonl")
_FACETS = "https://openlineage.io/spec/facets"
_SCHEMAS = {
    "version": f"{_FACETS}/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
    "schema": f"{_FACETS}/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "outputStatistics": f"{_FACETS}/1-0-2/OutputStatisticsOutputDatasetFacet.json"
    "#/$defs/OutputStatisticsOutputDatasetFacet",
    "jobType": f"{_FACETS}/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "processing_engine": f"{_FACETS}/1-1-1/ProcessingEngineRunFacet.json"
    "#/$defs/ProcessingEngineRunFacet",
    "errorMessage": f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
}
# How a run's final state maps to an OpenLineage event type.
_RUN_END = {"finished": "COMPLETE", "failed": "FAIL", "interrupted": "ABORT"}


@dataclass(frozen=True)
class Transport:
    """Where events go: `file` (JSON lines, mode 0600; `path` relative to the workspace,
    default .aidlc/openlineage/events.jsonl), `http` (POST each event to `url`) or `none`."""

    kind: Literal["none", "file", "http"] = "file"
    path: Path | None = None
    url: str | None = None
    timeout_seconds: float = 5.0
    api_key: str | None = None  # sent as a bearer token; the caller reads it from the environment

    def __post_init__(self) -> None:
        if self.kind == "http" and urlsplit(self.url or "").scheme not in ("http", "https"):
            raise ConfigError("an OpenLineage http transport needs an http(s) url")


def facet(kind: str, /, **fields: Any) -> dict[str, Any]:
    """A standard facet: its fields plus the `_producer` and `_schemaURL` the spec requires.

    >>> facet("version", datasetVersion="3")["_schemaURL"].endswith("DatasetVersionDatasetFacet")
    True
    """
    return {"_producer": PRODUCER, "_schemaURL": _SCHEMAS[kind], **fields}


def dataset(
    namespace: str,
    name: str,
    *,
    version: str | None = None,
    columns: Sequence[str] | None = None,
    rows: int | None = None,
    size: int | None = None,
) -> dict[str, Any]:
    """An input or output dataset with the facets that are known (output statistics apply to
    outputs only: `run_event` moves them to `outputFacets`)."""
    facets: dict[str, Any] = {}
    if version is not None:
        facets["version"] = facet("version", datasetVersion=str(version))
    if columns:
        facets["schema"] = facet("schema", fields=[{"name": c} for c in columns])
    out: dict[str, Any] = {"namespace": namespace, "name": name, "facets": facets}
    if rows is not None or size is not None:
        stats = {k: v for k, v in (("rowCount", rows), ("size", size)) if v is not None}
        out["outputFacets"] = {"outputStatistics": facet("outputStatistics", **stats)}
    return out


def run_uuid(ws: Workspace, kind: str, key: str | int) -> str:
    """A stable UUID for one of our runs, so that its START and COMPLETE events pair up."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aidlc:{ws.id}:{kind}:{key}"))


def run_event(
    event_type: str,
    job_name: str,
    run_id: str,
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    event_time: datetime | None = None,
    job_type: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """An OpenLineage RunEvent as a JSON-ready dict.

    >>> e = run_event("START", "ingest.churn", "0b7e3c9e-5d4b-4a57-9d55-3c4b4c1d2a10", [], [],
    ...               namespace="aidlc://demo", event_time=datetime(2026, 1, 2, tzinfo=UTC))
    >>> e["eventType"], e["eventTime"], e["job"]["name"]
    ('START', '2026-01-02T00:00:00+00:00', 'ingest.churn')
    """
    if event_type not in EVENT_TYPES:
        raise InvalidInput(f"unknown OpenLineage event type {event_type[:20]!r}")
    try:
        run_id = str(uuid.UUID(run_id))
    except ValueError:
        raise InvalidInput(f"an OpenLineage run id is a UUID, not {run_id[:40]!r}") from None
    when = (event_time or datetime.now(UTC)).astimezone(UTC)
    run_facets: dict[str, Any] = {
        "processing_engine": facet(
            "processing_engine",
            version=__version__,
            name="aidlc",
            openlineageAdapterVersion="2-0-2",
        )
    }
    if error is not None:
        run_facets["errorMessage"] = facet(
            "errorMessage", message=error[:2000], programmingLanguage="PYTHON"
        )
    job_facets: dict[str, Any] = {}
    if job_type is not None:
        job_facets["jobType"] = facet(
            "jobType", processingType="BATCH", integration="AIDLC", jobType=job_type
        )
    return {
        "eventType": event_type,
        "eventTime": when.isoformat(),
        "run": {"runId": run_id, "facets": run_facets},
        "job": {"namespace": namespace, "name": job_name, "facets": job_facets},
        "inputs": [_side(d, "inputFacets") for d in inputs],
        "outputs": [_side(d, "outputFacets") for d in outputs],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def _side(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    """An input (`inputFacets`) or output (`outputFacets`) dataset, shaped as the client does."""
    return {
        "namespace": d["namespace"],
        "name": d["name"],
        "facets": dict(d.get("facets") or {}),
        key: dict(d.get(key) or {}),
    }


def send(ws: Workspace, event: Mapping[str, Any], transport: Transport) -> None:
    """Deliver one event. A file line is written with one `write`, so concurrent writers do not
    interleave; an http endpoint must answer 2xx (redirects are not followed)."""
    line = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if transport.kind == "none":
        return
    if transport.kind == "file":
        _append(_file(ws, transport), (line + "\n").encode())
    else:
        _post(transport, line.encode())


def emit(
    ws: Workspace,
    event_type: str,
    job_name: str,
    run_id: str,
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    *,
    transport: Transport,
    namespace: str | None = None,
    event_time: datetime | None = None,
    job_type: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """Build a RunEvent (`run_event`) and deliver it (`send`); returns the event."""
    event = run_event(
        event_type,
        job_name,
        run_id,
        inputs,
        outputs,
        namespace=namespace or default_namespace(ws),
        event_time=event_time,
        job_type=job_type,
        error=error,
    )
    send(ws, event, transport)
    return event


def default_namespace(ws: Workspace) -> str:
    return f"aidlc://{ws.config.workspace}"


# -- events of our records ----------------------------------------------------------------------


def _raw(ns: str, dataset_name: str, source_name: str, sha256: str) -> dict[str, Any]:
    # One logical raw dataset per file name; each ingested content is a version of it.
    return dataset(ns, f"raw/{dataset_name}/{source_name}", version=sha256)


def _validated(
    ns: str, name: str, version: int, columns: Sequence[str] | None = None
) -> dict[str, Any]:
    return dataset(ns, f"datasets/{name}", version=str(version), columns=columns)


def ingest_event(
    ws: Workspace, version: DatasetVersion, *, namespace: str | None = None
) -> dict[str, Any]:
    """The COMPLETE event of the ingest that made a validated dataset version: the raw file in,
    the dataset version (schema, row count) out."""
    ns = namespace or default_namespace(ws)
    output = _validated(ns, version.dataset, version.version, version.columns)
    output["outputFacets"] = {"outputStatistics": facet("outputStatistics", rowCount=version.rows)}
    return run_event(
        "COMPLETE",
        f"ingest.{version.dataset}",
        run_uuid(ws, "ingest", version.ingest_id),
        [_raw(ns, version.dataset, version.source_name, version.source_sha256)],
        [output],
        namespace=ns,
        event_time=version.created_at,
        job_type="INGEST",
    )


def training_events(
    ws: Workspace, run: RunInfo, *, namespace: str | None = None
) -> list[dict[str, Any]]:
    """START, then (once the run ended) COMPLETE, FAIL or ABORT, for a training run: the
    dataset versions it read in, the model version it registered out."""
    ns = namespace or default_namespace(ws)
    run_id = run_uuid(ws, "run", run.id)
    inputs = [_validated(ns, str(d["dataset"]), int(d["version"])) for d in run.datasets]
    job = f"train.{run.name}"
    events = [
        run_event(
            "START",
            job,
            run_id,
            inputs,
            [],
            namespace=ns,
            event_time=run.started_at,
            job_type="TRAIN",
        )
    ]
    end = _RUN_END.get(run.status)
    if end is not None:
        outputs = []
        if run.model_version:
            name, _, number = run.model_version.rpartition("@")
            outputs.append(dataset(ns, f"models/{name}", version=number))
        error = str(run.result.get("error", "training failed")) if end == "FAIL" else None
        events.append(
            run_event(
                end,
                job,
                run_id,
                inputs,
                outputs,
                namespace=ns,
                event_time=run.finished_at or run.started_at,
                job_type="TRAIN",
                error=error,
            )
        )
    return events


def monitor_event(
    ws: Workspace, report: ReportInfo, *, namespace: str | None = None
) -> dict[str, Any]:
    """The COMPLETE event of a monitor run: the model version and its prediction log in, the
    report out."""
    ns = namespace or default_namespace(ws)
    return run_event(
        "COMPLETE",
        f"monitor.{report.model}",
        run_uuid(ws, "report", report.id),
        [
            dataset(ns, f"models/{report.model}", version=str(report.version)),
            dataset(ns, f"predictions/{report.model}"),
        ],
        [dataset(ns, f"reports/{report.model}", version=str(report.id))],
        namespace=ns,
        event_time=report.created_at,
        job_type="MONITOR",
    )


# -- transports ---------------------------------------------------------------------------------


def _file(ws: Workspace, transport: Transport) -> Path:
    path = transport.path or DEFAULT_FILE
    return path if path.is_absolute() else ws.root / path


def _append(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_NOFOLLOW: a planted symlink must not redirect events into another file.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write OpenLineage events to {path}: {exc.strerror}") from None
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
            os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirected POST arrives as a GET without the event, yet answers 2xx.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post(transport: Transport, body: bytes) -> None:
    url = transport.url or ""
    headers = {"Content-Type": "application/json", "User-Agent": f"aidlc/{__version__}"}
    if transport.api_key:
        headers["Authorization"] = f"Bearer {transport.api_key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    opener = urllib.request.build_opener(_NoRedirects)
    origin = f"{urlsplit(url).scheme}://{urlsplit(url).netloc.rpartition('@')[2]}"
    try:
        # Only http(s) URLs get here: `Transport` checks the scheme.
        with opener.open(request, timeout=transport.timeout_seconds) as response:  # nosec B310
            status = int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        status = error.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise ConnectionError(f"OpenLineage endpoint {origin} unreachable ({reason})") from None
    if not 200 <= status < 300:
        raise ConnectionError(f"OpenLineage endpoint {origin} answered HTTP {status}")


def configured_transport(ws: Workspace) -> Transport:
    """The transport `lineage:` in aidlc.yaml chooses."""
    cfg = ws.config.lineage
    return Transport(
        kind=cfg.transport,
        path=Path(cfg.file),
        url=cfg.url,
        timeout_seconds=cfg.timeout_seconds,
        api_key=os.environ.get(cfg.api_key_env) if cfg.api_key_env else None,
    )


def publish(ws: Workspace, events: list[dict[str, Any]]) -> int:
    """Send events through the configured transport; returns how many went. Lineage never
    fails the run it describes: a transport that is down is logged and the events are lost."""
    transport = configured_transport(ws)
    if transport.kind == "none":
        return 0
    sent = 0
    for event in events:
        try:
            send(ws, event, transport)
        except (ConfigError, ConnectionError, OSError) as exc:
            log.warning("an OpenLineage event could not be sent: %s", exc)
            break
        sent += 1
    return sent
