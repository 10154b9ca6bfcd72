"""Lineage graphs over a served workspace, their renderings, and OpenLineage run events checked
against the openlineage-python client's own models."""

from __future__ import annotations

import http.server
import itertools
import json
import secrets
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aidlc.errors import ConfigError, InvalidInput, NotFound, PermissionDenied, UsageError
from aidlc.govern import openlineage as ol
from aidlc.govern.lineage import Edge, Lineage, Node, parse_ref, to_dot, to_mermaid, trace
from tests.cli.test_cli import run
from tests.serve.conftest import Served, served, served_template  # noqa: F401

# -- helpers ------------------------------------------------------------------------------------


def _source(env: Served) -> dict[str, Any]:
    """The ingest of the demo file (the raw file every model came from)."""
    from aidlc.data.versions import ingests

    with env.open("steward") as ws:
        (only,) = [i for i in ingests(ws) if i["version"] == 1]
    return only


def _path(graph: Lineage, *ids: str) -> list[str]:
    """The edge kinds along consecutive node ids (each edge must exist)."""
    kinds = []
    for a, b in itertools.pairwise(ids):
        (edge,) = [e for e in graph.edges if e.source == a and e.target == b]
        kinds.append(edge.kind)
    return kinds


def _run_of(env: Served, ref: str) -> str:
    from aidlc.registry import versions

    with env.open("auditor") as ws:
        run_id = versions.resolve(ws, ref).run_id
    assert run_id
    return run_id


# -- references ---------------------------------------------------------------------------------


def test_references_parse_to_their_kinds() -> None:
    sha = "ab" * 32
    assert parse_ref("bc@2").kind == "model" and parse_ref("bc@2").version == 2
    assert parse_ref("model:bc@production").version == "production"
    assert (parse_ref("dataset:breast-cancer@1").key, parse_ref("dataset:x@1").version) == (
        "breast-cancer",
        1,
    )
    assert parse_ref("dataset:x").version is None
    assert parse_ref("f" * 32).kind == "prediction"
    assert parse_ref(f"raw:{sha.upper()}").key == sha
    assert parse_ref("raw/breast-cancer/k/good.csv@1").kind == "raw-object"
    assert parse_ref("run:0123abcd").kind == "run"
    with pytest.raises(UsageError, match="raw:SHA256"):
        parse_ref("raw:abc")
    with pytest.raises(UsageError, match="32 hex"):
        parse_ref("prediction:xyz")
    with pytest.raises(UsageError, match="name a model"):
        parse_ref("thing:1")


# -- tracing ------------------------------------------------------------------------------------


def test_model_lineage_reaches_the_raw_file_through_dataset_and_run(
    served_template: Served,  # noqa: F811
) -> None:
    source = _source(served_template)
    run_id = _run_of(served_template, "bc@1")
    with served_template.open("auditor") as ws:
        graph = trace(ws, "bc@1")
    raw_id = f"raw:{source['sha256']}"
    assert graph.root == "model:bc@1"
    assert graph.problems == []
    assert _path(graph, raw_id, "dataset:breast-cancer@1", f"run:{run_id}", "model:bc@1") == [
        "ingest",
        "input",
        "output",
    ]
    raw = graph.nodes[raw_id].attrs
    assert raw["names"] == [source["source"]] and raw["sha256"] == source["sha256"]
    assert raw["ingests"][0]["raw_object"] == source["raw_object"]
    assert graph.nodes["model:bc@1"].attrs["verified"] is True
    (production,) = [e for e in graph.edges if e.target == "alias:bc:production"]
    assert production.attrs["current"] is True
    assert production.attrs["history"][0]["reason"] == "first production version"


def test_prediction_traces_back_to_the_raw_file(served: Served) -> None:  # noqa: F811
    from aidlc.serve import predlog

    pid = secrets.token_hex(16)
    rows = [
        {
            "prediction_id": secrets.token_hex(16),
            "at": datetime.now(UTC),
            "model": "bc",
            "version": 2,
            "route": "predict",
            "request_id": "r1",
        },
        {
            "prediction_id": pid,
            "at": datetime.now(UTC),
            "model": "bc",
            "version": 1,
            "route": "predict",
            "request_id": "r2",
        },
    ]
    with served.open("inference") as ws:
        predlog.write_batch(ws, "predictions", "bc", rows)
    source = _source(served)
    with served.open("auditor") as ws:
        graph = trace(ws, pid)
        with pytest.raises(NotFound, match="no logged prediction"):
            trace(ws, "0" * 32)
        read = ws.audit.events(action="lineage.read")
    assert graph.root == f"prediction:{pid}"
    assert graph.nodes[graph.root].attrs["request_id"] == "r2"
    run_id = _run_of(served, "bc@1")
    chain = [f"raw:{source['sha256']}", "dataset:breast-cancer@1", f"run:{run_id}", "model:bc@1"]
    assert _path(graph, *chain, graph.root) == ["ingest", "input", "output", "served"]
    assert [(e.actor, e.resource) for e in read] == [("auditor", f"prediction:{pid}")]


def test_a_time_ordered_prediction_id_decrypts_only_its_own_batch(served: Served) -> None:  # noqa: F811
    """Prediction ids carry their time, so lineage opens the one batch that covers it, not the
    whole log; an id without a time (older servers) is still found by the full scan."""
    from datetime import timedelta

    from aidlc.serve import predlog

    start = datetime.now(UTC) - timedelta(hours=12)
    wanted: dict[int, str] = {}
    legacy = secrets.token_hex(16)
    with served.open("inference") as ws:
        for hour in range(12):
            at = start + timedelta(hours=hour)
            ids = predlog.new_prediction_ids(3, now=at.timestamp())
            if hour == 0:
                ids[2] = legacy
            rows = [
                {"prediction_id": i, "at": at, "model": "bc", "version": 1, "route": "predict"}
                for i in ids
            ]
            predlog.write_batch(ws, "predictions", "bc", rows)
            wanted[hour] = ids[1]
    with served.open("auditor") as ws:
        assert trace(ws, wanted[5]).nodes[f"prediction:{wanted[5]}"].attrs["batch"] > 0
        trace(ws, legacy)
        read = ws.audit.events(action="lineage.read")
    assert [e.details["batches_decrypted"] for e in read] == [1, 12]
    assert predlog.prediction_time(wanted[5]) is not None
    assert abs(predlog.prediction_time(wanted[5]) - (start + timedelta(hours=5))) < timedelta(
        milliseconds=1
    )


def test_raw_file_forwards_to_every_model_and_its_alias_history(
    served_template: Served,  # noqa: F811
) -> None:
    source = _source(served_template)
    with served_template.open("approver") as ws:
        graph = trace(ws, f"raw:{source['sha256']}")
        by_object = trace(ws, source["raw_object"])
    assert graph.root == by_object.root == f"raw:{source['sha256']}"
    assert sorted(n for n in graph.nodes if n.startswith("model:")) == [
        "model:bc@1",
        "model:bc@2",
        "model:bc@3",
    ]
    assert [e.source for e in graph.upstream("dataset:breast-cancer@1")] == [graph.root]
    aliases = {(e.source, e.target): e.attrs["current"] for e in graph.edges if e.kind == "alias"}
    assert aliases == {
        ("model:bc@1", "alias:bc:candidate"): False,
        ("model:bc@1", "alias:bc:production"): True,
        ("model:bc@2", "alias:bc:candidate"): False,
        ("model:bc@2", "alias:bc:staging"): False,
        ("model:bc@3", "alias:bc:candidate"): True,
        ("model:bc@3", "alias:bc:staging"): True,
    }
    assert graph.nodes["alias:bc:staging"].attrs["version"] == 3
    assert len(by_object.edges) == len(graph.edges)
    with served_template.open("approver") as ws, pytest.raises(NotFound):
        trace(ws, "raw:" + "0" * 64)


def test_dataset_lineage_shows_its_raw_file_and_every_run(
    served_template: Served,  # noqa: F811
) -> None:
    with served_template.open("monitor") as ws:
        graph = trace(ws, "dataset:breast-cancer@1")
    runs = [e.target for e in graph.downstream("dataset:breast-cancer@1")]
    assert len(runs) == 3 and all(r.startswith("run:") for r in runs)
    assert [e.kind for e in graph.upstream("dataset:breast-cancer@1")] == ["ingest"]


def test_model_lineage_shows_rollouts_and_monitor_reports(served: Served) -> None:  # noqa: F811
    from aidlc.core.meta import MonitorReportRecord
    from aidlc.serve import rollout

    with served.open("approver") as ws:
        deployment = rollout.deploy(ws, "bc@2", canary=10, reason="try it")
    now = datetime.now(UTC)
    with served.open("monitor") as ws:
        with ws.db.transaction() as session:
            session.add(
                MonitorReportRecord(
                    model="bc",
                    version=1,
                    window_start=now,
                    window_end=now,
                    rows=120,
                    verdict="breach",
                    summary="{}",
                    object_ref="reports/monitor/r1.json@1",
                    html_ref="reports/monitor/r1.html@1",
                    created_by="monitor",
                )
            )
        graph = trace(ws, "bc@1")
    canary = f"deployment:{deployment.id}"
    assert [(e.source, e.kind) for e in graph.upstream(canary)] == [("model:bc@1", "production")]
    assert graph.nodes[canary].label == f"canary {deployment.id} of bc@2 (active)"
    assert graph.nodes[canary].attrs["percent"] == 10.0
    (report,) = [n for n in graph.nodes.values() if n.kind == "report"]
    assert report.label == f"monitor report {report.attrs['id']}: breach over 120 predictions"
    assert _path(graph, "model:bc@1", report.id) == ["monitor"]


def test_an_altered_statement_is_reported_not_trusted(served: Served) -> None:  # noqa: F811
    from sqlalchemy import select

    from aidlc.core.meta import ModelVersionRecord

    with served.open("auditor") as ws:
        with ws.db.transaction() as session:
            rec = session.execute(
                select(ModelVersionRecord).where(ModelVersionRecord.version == 2)
            ).scalar_one()
            statement = json.loads(rec.statement)
            statement["lineage"]["raw_files"][0]["sha256"] = "f" * 64
            rec.statement = json.dumps(statement, sort_keys=True)
        graph = trace(ws, "bc@2")
    assert graph.nodes["model:bc@2"].attrs["verified"] is False
    assert graph.problems[0] == (
        "bc@2: its registry record is not signed by this workspace: its lineage is not trustworthy"
    )
    assert "raw file ffffffffffffffff" in graph.problems[1]


def test_inference_may_not_read_lineage(served_template: Served) -> None:  # noqa: F811
    with served_template.open("inference") as ws:
        with pytest.raises(PermissionDenied, match=r"inference may not lineage\.read"):
            trace(ws, "bc@1")
        (denied,) = ws.audit.events(action="lineage.read")
    assert (denied.actor, denied.outcome, denied.resource) == (
        "inference",
        "denied",
        "lineage:bc@1",
    )


@pytest.mark.slow
def test_the_command_denies_inference_with_exit_4(served_template: Served) -> None:  # noqa: F811
    proc = run(
        "lineage", "bc@1", token=served_template.tokens["inference"], workspace=served_template.root
    )
    assert proc.returncode == 4
    assert "inference may not lineage.read" in proc.stderr
    assert proc.stdout == ""


# -- rendering ----------------------------------------------------------------------------------


def test_every_format_parses_from_the_command_line(served_template: Served) -> None:  # noqa: F811
    from typer.testing import CliRunner

    from aidlc.cli import app

    token, root = served_template.tokens["auditor"], served_template.root

    def invoke(*args: str) -> str:  # in process: a second interpreter costs seconds here
        env = {"AIDLC_TOKEN": token, "AIDLC_WORKSPACE": str(root), "COLUMNS": "200"}
        result = CliRunner().invoke(app, ["lineage", "bc@1", *args], env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    doc = json.loads(invoke("--format", "json"))
    assert doc["root"] == "model:bc@1" and doc["problems"] == []
    assert {n["kind"] for n in doc["nodes"]} == {"raw", "dataset", "run", "model", "alias"}
    assert json.loads(invoke("--json")) == doc
    mermaid = invoke("-f", "mermaid")
    assert mermaid.startswith("graph LR\n")
    assert mermaid.count("-->|") == len(doc["edges"])
    dot = invoke("-f", "dot")
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert dot.count(" -> ") == len(doc["edges"])
    tree = invoke()
    assert "came from" in tree and "led to" in tree
    assert "ingest raw file breast_cancer.csv" in tree
    assert "alias bc:production (now 1) (current)" in tree


def _hostile() -> Lineage:
    graph = Lineage(root="raw:x")
    evil = 'evil"] --> n9[pwned\n<script>\\'
    graph.add(Node("raw:x", "raw", evil))
    graph.add(Node("dataset:d@1", "dataset", "dataset [d]@1; x"))
    graph.edges.append(Edge("raw:x", "dataset:d@1", "ingest"))
    return graph


def test_hostile_labels_are_escaped_in_mermaid() -> None:
    assert to_mermaid(_hostile()).splitlines() == [
        "graph LR",
        '  n0[/"evil#34;#93; --#62; n9#91;pwned#10;#60;script#62;#92;"/]',
        '  n1[("dataset #91;d#93;@1#59; x")]',
        "  n0 -->|ingest| n1",
        "  style n0 stroke-width:3px",
    ]


def test_hostile_labels_are_escaped_in_dot() -> None:
    lines = to_dot(_hostile()).splitlines()
    assert lines[3] == (
        '  n0 [label="evil\\"] --> n9[pwned\\n<script>\\\\", shape=note, penwidth=3];'
    )
    assert lines[5] == '  n0 -> n1 [label="ingest"];'
    assert len(lines) == 7  # no label broke out onto a line of its own


# -- OpenLineage --------------------------------------------------------------------------------


def _client_event(event: dict[str, Any]) -> Any:
    """Our event rebuilt with the openlineage-python client's models (its validators run)."""
    from openlineage.client import event_v2 as ev
    from openlineage.client.generated import (
        dataset_version_dataset,
        error_message_run,
        job_type_job,
        output_statistics_output_dataset,
        processing_engine_run,
        schema_dataset,
    )

    classes = {
        "version": dataset_version_dataset.DatasetVersionDatasetFacet,
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
        "jobType": job_type_job.JobTypeJobFacet,
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
        "errorMessage": error_message_run.ErrorMessageRunFacet,
    }

    def facets(raw: dict[str, Any] | None) -> dict[str, Any]:
        out = {}
        for key, value in (raw or {}).items():
            fields = {k: v for k, v in value.items() if not k.startswith("_")}
            if key == "schema":
                cols = [schema_dataset.SchemaDatasetFacetFields(**f) for f in fields["fields"]]
                out[key] = schema_dataset.SchemaDatasetFacet(
                    fields=cols, producer=value["_producer"]
                )
            else:
                out[key] = classes[key](**fields, producer=value["_producer"])
        return out

    def datasets(items: list[dict[str, Any]], cls: Any, extra: str) -> list[Any]:
        return [
            cls(
                d["namespace"],
                d["name"],
                facets=facets(d.get("facets")),
                **({extra: facets(d[extra])} if extra in d else {}),
            )
            for d in items
        ]

    return ev.RunEvent(
        eventType=ev.RunState(event["eventType"]),
        eventTime=event["eventTime"],
        run=ev.Run(runId=event["run"]["runId"], facets=facets(event["run"]["facets"])),
        job=ev.Job(event["job"]["namespace"], event["job"]["name"], facets(event["job"]["facets"])),
        inputs=datasets(event["inputs"], ev.InputDataset, "inputFacets"),
        outputs=datasets(event["outputs"], ev.OutputDataset, "outputFacets"),
        producer=event["producer"],
    )


def _same_as_client(event: dict[str, Any]) -> None:
    from openlineage.client.serde import Serde

    theirs = Serde.to_dict(_client_event(event))
    for d in theirs["inputs"] + theirs["outputs"]:  # the client writes empty nested fields
        for f in d.get("facets", {}).get("schema", {}).get("fields", []):
            assert f.pop("fields") == []
    assert theirs == json.loads(json.dumps(event))


def test_ingest_and_training_events_match_the_openlineage_client(
    served_template: Served,  # noqa: F811
) -> None:
    from aidlc.data.versions import resolve
    from aidlc.train.tracking import get_run

    source = _source(served_template)
    with served_template.open("steward") as ws:
        version = resolve(ws, "breast-cancer@1")
        ingest = ol.ingest_event(ws, version)
    with served_template.open("trainer") as ws:
        events = ol.training_events(ws, get_run(ws, _run_of(served_template, "bc@2")))
    for event in (ingest, *events):
        _same_as_client(event)
    assert (
        ingest["schemaURL"] == "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    )
    (raw,) = ingest["inputs"]
    assert raw["name"] == f"raw/breast-cancer/{source['source']}"
    assert raw["facets"]["version"]["datasetVersion"] == source["sha256"]
    (out,) = ingest["outputs"]
    assert out["name"] == "datasets/breast-cancer"
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == version.rows
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == version.columns
    start, complete = events
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert complete["inputs"][0]["facets"]["version"]["datasetVersion"] == "1"
    assert complete["outputs"][0]["name"] == "models/bc"
    assert complete["outputs"][0]["facets"]["version"]["datasetVersion"] == "2"
    assert start["job"] == complete["job"] and start["job"]["name"] == "train.bc"


def test_failed_run_and_monitor_events_match_the_openlineage_client(
    served_template: Served,  # noqa: F811
) -> None:
    from dataclasses import replace

    from aidlc.monitor.runner import ReportInfo
    from aidlc.train.tracking import get_run

    now = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    report = ReportInfo(7, "bc", 1, now, now, 120, "ok", {}, now, "monitor")
    with served_template.open("trainer") as ws:
        info = get_run(ws, _run_of(served_template, "bc@1"))
        failed = ol.training_events(ws, replace(info, status="failed", result={"error": "Boom"}))
        running = ol.training_events(ws, replace(info, status="running"))
        monitor = ol.monitor_event(ws, report, namespace="aidlc://prod")
    _same_as_client(failed[1])
    _same_as_client(monitor)
    assert failed[1]["eventType"] == "FAIL"
    assert failed[1]["run"]["facets"]["errorMessage"]["message"] == "Boom"
    assert failed[1]["outputs"][0]["name"] == "models/bc"
    assert [e["eventType"] for e in running] == ["START"]
    assert monitor["job"] == {
        "namespace": "aidlc://prod",
        "name": "monitor.bc",
        "facets": {
            "jobType": ol.facet(
                "jobType", processingType="BATCH", integration="AIDLC", jobType="MONITOR"
            )
        },
    }
    assert [d["name"] for d in monitor["inputs"]] == ["models/bc", "predictions/bc"]
    assert monitor["outputs"][0]["facets"]["version"]["datasetVersion"] == "7"
    assert monitor["eventTime"] == "2026-11-26T06:00:00+00:00"


def test_file_transport_appends_private_json_lines(served: Served) -> None:  # noqa: F811
    run_id = "0b7e3c9e-5d4b-4a57-9d55-3c4b4c1d2a10"
    with served.open("trainer") as ws:
        first = ol.emit(ws, "START", "train.x", run_id, [], [], transport=ol.Transport())
        second = ol.emit(ws, "COMPLETE", "train.x", run_id, [], [], transport=ol.Transport())
        ol.emit(ws, "START", "x", run_id, [], [], transport=ol.Transport(kind="none"))
        with pytest.raises(InvalidInput, match="UUID"):
            ol.emit(ws, "START", "x", "abc", [], [], transport=ol.Transport())
        with pytest.raises(InvalidInput, match="event type"):
            ol.emit(ws, "DONE", "x", run_id, [], [], transport=ol.Transport())
    path = served.root / ".aidlc" / "openlineage" / "events.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [json.loads(line) for line in path.read_text().splitlines()] == [first, second]
    assert first["job"]["namespace"] == "aidlc://ws"
    _same_as_client(first)


class _Collector(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, bytes, str | None]]] = []
    status = 201

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append((self.path, body, self.headers.get("Authorization")))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, type[_Collector]]]:
    handler = type("Handler", (_Collector,), {"bodies": [], "status": 201})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/lineage", handler
    server.shutdown()
    server.server_close()


def test_http_transport_posts_each_event(
    served_template: Served,  # noqa: F811
    collector: tuple[str, type[_Collector]],
    tmp_path: Path,
) -> None:
    url, handler = collector
    transport = ol.Transport(kind="http", url=url, api_key="k-123")
    run_id = "0b7e3c9e-5d4b-4a57-9d55-3c4b4c1d2a10"
    with served_template.open("trainer") as ws:
        event = ol.emit(ws, "START", "train.x", run_id, [], [], transport=transport)
        handler.status = 500
        with pytest.raises(ConnectionError, match=r"answered HTTP 500"):
            ol.emit(ws, "START", "train.x", run_id, [], [], transport=transport)
    ((path, body, auth), _) = handler.bodies
    assert (path, json.loads(body), auth) == ("/api/v1/lineage", event, "Bearer k-123")
    with pytest.raises(ConfigError, match="http"):
        ol.Transport(kind="http", url="file:///etc/passwd")


def test_cli_runs_emit_openlineage_events_through_the_configured_transport(
    served: Served,  # noqa: F811
) -> None:
    """`aidlc monitor run` and `aidlc data ingest` append their run events to the file transport
    of aidlc.yaml (valid for the openlineage client); `transport: none` emits nothing."""
    import yaml

    from aidlc.demo import breast_cancer
    from tests.cli.test_cli import run

    events_file = served.root / ".aidlc" / "openlineage" / "events.jsonl"
    monitor = run("monitor", "run", token=served.tokens["monitor"], workspace=served.root)
    assert monitor.returncode == 0, monitor.stderr
    import polars as pl

    fresh = (
        breast_cancer.frame()
        .head(50)
        .with_columns(pl.format("P-9{}", pl.col("patient_id").str.slice(3)).alias("patient_id"))
    )  # new patients: not duplicates of the first version
    good = served.root.parent / "more.csv"
    fresh.write_csv(good)
    ingested = run(
        "data", "ingest", str(good), "--dataset", "breast-cancer",
        token=served.tokens["steward"], workspace=served.root,
    )  # fmt: skip
    assert ingested.returncode == 0, ingested.stderr
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert [(e["job"]["name"].split(":")[0], e["eventType"]) for e in events] == [
        (events[0]["job"]["name"].split(":")[0], "COMPLETE"),
        (events[1]["job"]["name"].split(":")[0], "COMPLETE"),
    ]
    assert "monitor" in events[0]["job"]["name"] and "ingest" in events[1]["job"]["name"]
    for event in events:
        assert _client_event(event) is not None
    assert stat.S_IMODE(events_file.stat().st_mode) == 0o600

    config = served.root / "aidlc.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["lineage"] = {"transport": "none"}
    config.write_text(yaml.safe_dump(doc))
    again = run("monitor", "run", token=served.tokens["monitor"], workspace=served.root)
    assert again.returncode == 0
    assert len(events_file.read_text().splitlines()) == 2
