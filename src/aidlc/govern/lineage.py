"""Lineage: the graph from raw files through dataset versions and runs to model versions, and on
to aliases, rollouts, monitor reports and single predictions, read from the records that made them.

A model version's upstream comes from its *signed* statement, so an edited registry row shows up
as a problem instead of as a different history. Renderers give JSON, Mermaid and Graphviz DOT.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from aidlc.core import objects
from aidlc.core.meta import (
    DatasetRecord,
    DatasetVersionRecord,
    IngestRecord,
    ModelVersionRecord,
    MonitorReportRecord,
    PredictionBatchRecord,
    RegisteredModel,
    RunRecord,
)
from aidlc.errors import AidlcError, NotFound, UsageError
from aidlc.registry import approval, versions
from aidlc.serve import rollout

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec
    from sqlalchemy.orm import Session

    from aidlc.core.workspace import Workspace

NODE_KINDS = ("raw", "dataset", "run", "model", "alias", "deployment", "report", "prediction")
# Every edge points downstream, from what went in to what came out.
EDGE_KINDS = ("ingest", "input", "output", "alias", "candidate", "production", "monitor", "served")
REPORTS_SHOWN = 20

_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_PREDICTION = re.compile(r"^[0-9a-f]{32}\Z")
_RUN = re.compile(r"^[0-9a-f]{6,32}\Z")


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label, "attrs": self.attrs}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "kind": self.kind,
            "attrs": self.attrs,
        }


@dataclass
class Lineage:
    """A lineage graph around `root`; `problems` lists records that disagree with each other."""

    root: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, node: Node) -> Node:
        return self.nodes.setdefault(node.id, node)

    def link(self, source: str, target: str, kind: str, **attrs: Any) -> None:
        if not any(
            e.source == source and e.target == target and e.kind == kind for e in self.edges
        ):
            self.edges.append(Edge(source, target, kind, attrs))

    def upstream(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.target == node_id]

    def downstream(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.source == node_id]

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "nodes": [n.to_json() for n in self.nodes.values()],
            "edges": [e.to_json() for e in self.edges],
            "problems": list(self.problems),
        }


# -- references ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """What `aidlc lineage REF` names: kind, and the key to find it by."""

    kind: str
    key: str
    version: int | str | None = None


def parse_ref(ref: str) -> Ref:
    """Read a lineage reference.

    `NAME@V`, `NAME@ALIAS`, `NAME` or `model:NAME@V` is a model version; `dataset:NAME@V` (or
    `dataset:NAME`, the latest) a dataset version; `run:ID` a training run; 32 hex digits (or
    `prediction:ID`) a prediction; `raw:SHA256` or a raw object (`raw/...@N`) a raw file.

    >>> parse_ref("bc@2"), parse_ref("dataset:churn@3").kind, parse_ref("raw:" + "a" * 64).kind
    (Ref(kind='model', key='bc', version=2), 'dataset', 'raw')
    """
    ref = (ref or "").strip()
    prefix, sep, rest = ref.partition(":")
    if not sep:
        prefix, rest = "", ref
    if prefix == "dataset":
        from aidlc.data.versions import parse_ref as dataset_ref

        name, version = dataset_ref(rest)
        return Ref("dataset", name, version)
    if prefix == "run":
        if not _RUN.match(rest):
            raise UsageError(f"{ref[:80]!r}: a run is run:ID (6 to 32 hex digits)")
        return Ref("run", rest)
    if prefix == "prediction" or (not prefix and _PREDICTION.match(rest)):
        if not _PREDICTION.match(rest):
            raise UsageError(f"{ref[:80]!r}: a prediction id is 32 hex digits")
        return Ref("prediction", rest)
    if prefix == "raw":
        if not _SHA256.match(rest.lower()):
            raise UsageError(f"{ref[:80]!r}: a raw file is raw:SHA256 (64 hex digits)")
        return Ref("raw", rest.lower())
    if not prefix and ref.startswith("raw/"):
        return Ref("raw-object", ref)
    if prefix in ("", "model"):
        name, selector = versions.parse_model_ref(rest)
        return Ref("model", name, selector)
    raise UsageError(
        f"{ref[:80]!r}: name a model (NAME@V), dataset:NAME@V, run:ID, a prediction id, "
        "raw:SHA256 or a raw object (raw/...@N)"
    )


# -- building -----------------------------------------------------------------------------------


def trace(ws: Workspace, ref: str) -> Lineage:
    """The lineage of `ref` (see `parse_ref`): upstream to the raw files it came from, and
    downstream to what was made from it.

    A model version shows both directions; a dataset version its raw file and everything trained
    on it; a raw file everything made from it; a prediction the chain that produced it.
    """
    parsed = parse_ref(ref)
    ws.authorize("lineage.read", f"lineage:{ref[:100]}")
    with ws.db.reading() as session:
        builder = _Builder(ws, session)
        return builder.build(parsed)


class _Builder:
    """Walks the records of one read transaction into a `Lineage`."""

    def __init__(self, ws: Workspace, session: Session) -> None:
        self.ws = ws
        self.session = session
        self.graph = Lineage(root="")
        self._key: ec.EllipticCurvePublicKey | None = None
        self._history: dict[str, list[approval.AliasEvent]] = {}
        self._deployments: dict[str, list[rollout.Deployment]] = {}
        self._done: set[tuple[str, str]] = set()
        self.batches_read = 0  # prediction log batches decrypted to find a prediction

    def build(self, ref: Ref) -> Lineage:
        if ref.kind == "model":
            model, mrec = versions.version_record(self.session, ref.key, ref.version)
            root = self.model_up(model, mrec)
            self.model_down(model, mrec)
        elif ref.kind == "dataset":
            name, drec = self._dataset(
                ref.key, ref.version if isinstance(ref.version, int) else None
            )
            root = self.dataset_up(name, drec)
            self.dataset_down(name, drec)
        elif ref.kind == "run":
            from aidlc.train.tracking import run_record

            run = run_record(self.session, ref.key)
            root = self.run_up(run)
            self.run_down(run)
        elif ref.kind == "prediction":
            root = self.prediction(ref.key)
        else:
            root = self.raw_down(self._raw_sha(ref))
        self.graph.root = root
        return self.graph

    def _once(self, direction: str, node_id: str) -> bool:
        """True the first time a node is walked in a direction (graphs can rejoin)."""
        if (direction, node_id) in self._done:
            return False
        self._done.add((direction, node_id))
        return True

    # -- models ---------------------------------------------------------------------------------

    def _statement(self, name: str, rec: ModelVersionRecord) -> tuple[dict[str, Any], bool]:
        """The signed statement and True; when it does not verify, the row's copy and False,
        with a problem noted."""
        if self._key is None:
            self._key = versions.public_key(self.ws)
        try:
            return versions.verified_statement(rec, name, self._key), True
        except AidlcError as exc:
            self.graph.problems.append(f"{exc.message}: its lineage is not trustworthy")
            try:
                return dict(json.loads(rec.statement)), False
            except ValueError:
                return {}, False

    def _model_node(self, model: RegisteredModel, rec: ModelVersionRecord) -> str:
        node_id = f"model:{model.name}@{rec.version}"
        self.graph.add(
            Node(
                node_id,
                "model",
                f"model {model.name}@{rec.version} ({rec.status})",
                {
                    "model": model.name,
                    "version": rec.version,
                    "status": rec.status,
                    "kind": rec.kind,
                    "model_digest": rec.model_digest,
                    "trained_by": rec.trained_by,
                    "created_at": rec.created_at.isoformat(),
                },
            )
        )
        return node_id

    def model_up(self, model: RegisteredModel, rec: ModelVersionRecord) -> str:
        node_id = self._model_node(model, rec)
        if not self._once("up", node_id):
            return node_id
        statement, verified = self._statement(model.name, rec)
        self.graph.nodes[node_id].attrs["verified"] = verified
        lineage = statement.get("lineage") or {}
        label = f"{model.name}@{rec.version}"
        run_id = lineage.get("run")
        consumer = node_id
        if run_id:
            run = self.session.get(RunRecord, run_id)
            if run is None:
                self.graph.problems.append(f"{label} names run {run_id}, which is not recorded")
                consumer = self.graph.add(
                    Node(f"run:{run_id}", "run", f"run {run_id} (missing)", {"missing": True})
                ).id
            else:
                consumer = self._run_node(run)
                self._once("up", consumer)  # its inputs come from the signed statement below
            self.graph.link(consumer, node_id, "output")
        raw_files = lineage.get("raw_files") or []
        for i, dataset_ref in enumerate(lineage.get("datasets") or []):
            name, _, version = str(dataset_ref).rpartition("@")
            try:
                dname, drec = self._dataset(name, int(version))
            except (NotFound, ValueError):
                self.graph.problems.append(f"{label} names dataset {dataset_ref}, not recorded")
                continue
            dataset_id = self.dataset_up(dname, drec)
            self.graph.link(dataset_id, consumer, "input")
            signed = raw_files[i] if i < len(raw_files) else {}
            if signed.get("sha256") != drec.source_sha256:
                self.graph.problems.append(
                    f"{label}: its statement says {dataset_ref} came from raw file "
                    f"{str(signed.get('sha256'))[:16]}, the dataset record says "
                    f"{drec.source_sha256[:16]}"
                )
        return node_id

    def model_down(self, model: RegisteredModel, rec: ModelVersionRecord) -> None:
        node_id = self._model_node(model, rec)
        if not self._once("down", node_id):
            return
        v = rec.version
        if model.name not in self._history:
            self._history[model.name] = approval.history(self.ws, model.name)
            self._deployments[model.name] = rollout.deployments(self.ws, model.name)
        current: dict[str, int | None] = {}
        held: dict[str, list[dict[str, Any]]] = {}
        for event in self._history[model.name]:
            current[event.alias] = event.version
            if v in (event.version, event.previous):
                held.setdefault(event.alias, []).append(event.to_json())
        for alias, events in held.items():
            alias_id = f"alias:{model.name}:{alias}"
            self.graph.add(
                Node(
                    alias_id,
                    "alias",
                    f"alias {model.name}:{alias} (now {current.get(alias) or 'unset'})",
                    {"model": model.name, "alias": alias, "version": current.get(alias)},
                )
            )
            self.graph.link(
                node_id, alias_id, "alias", current=current.get(alias) == v, history=events
            )
        for d in self._deployments[model.name]:
            if v not in (d.candidate, d.production):
                continue
            deployment_id = f"deployment:{d.id}"
            self.graph.add(
                Node(
                    deployment_id,
                    "deployment",
                    f"{d.mode} {d.id} of {model.name}@{d.candidate} ({d.status})",
                    d.to_json(),
                )
            )
            role = "candidate" if d.candidate == v else "production"
            self.graph.link(node_id, deployment_id, role)
        reports = list(
            self.session.execute(
                select(MonitorReportRecord)
                .where(MonitorReportRecord.model == model.name, MonitorReportRecord.version == v)
                .order_by(MonitorReportRecord.id.desc())
                .limit(REPORTS_SHOWN + 1)
            ).scalars()
        )
        if len(reports) > REPORTS_SHOWN:
            self.graph.nodes[node_id].attrs["reports_omitted"] = True
        for r in reports[:REPORTS_SHOWN]:
            report_id = f"report:{r.id}"
            self.graph.add(
                Node(
                    report_id,
                    "report",
                    f"monitor report {r.id}: {r.verdict} over {r.rows} predictions",
                    {
                        "id": r.id,
                        "verdict": r.verdict,
                        "rows": r.rows,
                        "window_start": r.window_start.isoformat(),
                        "window_end": r.window_end.isoformat(),
                        "object": r.object_ref,
                    },
                )
            )
            self.graph.link(node_id, report_id, "monitor")

    # -- runs -----------------------------------------------------------------------------------

    def _run_node(self, run: RunRecord) -> str:
        node_id = f"run:{run.id}"
        environment = json.loads(run.environment or "{}")
        self.graph.add(
            Node(
                node_id,
                "run",
                f"run {run.id} {run.name} ({run.status})",
                {
                    "id": run.id,
                    "name": run.name,
                    "status": run.status,
                    "config_digest": run.config_digest,
                    "git": environment.get("git"),
                    "started_at": run.started_at.isoformat(),
                    "created_by": run.created_by,
                },
            )
        )
        return node_id

    def run_up(self, run: RunRecord) -> str:
        node_id = self._run_node(run)
        if not self._once("up", node_id):
            return node_id
        for entry in json.loads(run.datasets or "[]"):
            try:
                name, rec = self._dataset(str(entry.get("dataset")), int(entry.get("version")))
            except (NotFound, TypeError, ValueError):
                self.graph.problems.append(f"run {run.id} read {entry.get('ref')}, not recorded")
                continue
            self.graph.link(self.dataset_up(name, rec), node_id, "input")
        return node_id

    def run_down(self, run: RunRecord) -> None:
        node_id = self._run_node(run)
        if not self._once("down", node_id):
            return
        rows = self.session.execute(
            select(RegisteredModel, ModelVersionRecord)
            .join(ModelVersionRecord, ModelVersionRecord.model_id == RegisteredModel.id)
            .where(ModelVersionRecord.run_id == run.id)
            .order_by(RegisteredModel.name, ModelVersionRecord.version)
        ).all()
        for model, rec in rows:
            self.graph.link(node_id, self._model_node(model, rec), "output")
            self.model_down(model, rec)

    # -- datasets and raw files -----------------------------------------------------------------

    def _dataset(self, name: str, version: int | None) -> tuple[str, DatasetVersionRecord]:
        from aidlc.data.versions import resolve_record

        return name, resolve_record(self.session, name, version)

    def _dataset_node(self, name: str, rec: DatasetVersionRecord) -> str:
        node_id = f"dataset:{name}@{rec.version}"
        self.graph.add(
            Node(
                node_id,
                "dataset",
                f"dataset {name}@{rec.version} ({rec.rows} rows)",
                {
                    "dataset": name,
                    "version": rec.version,
                    "rows": rec.rows,
                    "data_sha256": rec.data_sha256,
                    "contract_version": rec.contract_version,
                    "data_object": rec.data_object,
                    "created_at": rec.created_at.isoformat(),
                    "created_by": rec.created_by,
                },
            )
        )
        return node_id

    def _raw_node(self, sha256: str) -> str:
        node_id = f"raw:{sha256}"
        if node_id in self.graph.nodes:
            return node_id
        ingests = list(
            self.session.execute(
                select(IngestRecord)
                .where(IngestRecord.source_sha256 == sha256)
                .order_by(IngestRecord.id)
            ).scalars()
        )
        names = sorted({i.source_name for i in ingests})
        self.graph.add(
            Node(
                node_id,
                "raw",
                f"raw file {', '.join(names) or '?'} (sha256 {sha256[:12]})",
                {
                    "sha256": sha256,
                    "names": names,
                    "size": ingests[0].source_size if ingests else None,
                    "ingests": [
                        {
                            "id": i.id,
                            "dataset": i.dataset_name,
                            "outcome": i.outcome,
                            "version": i.version,
                            "raw_object": i.raw_object,
                            "quarantine_object": i.quarantine_object,
                            "at": i.created_at.isoformat(),
                            "by": i.created_by,
                        }
                        for i in ingests
                    ],
                },
            )
        )
        return node_id

    def dataset_up(self, name: str, rec: DatasetVersionRecord) -> str:
        node_id = self._dataset_node(name, rec)
        if self._once("up", node_id):
            self.graph.link(self._raw_node(rec.source_sha256), node_id, "ingest")
        return node_id

    def dataset_down(self, name: str, rec: DatasetVersionRecord) -> None:
        node_id = self._dataset_node(name, rec)
        if not self._once("down", node_id):
            return
        ref = f"{name}@{rec.version}"
        # The JSON columns are searched as text first, then parsed to confirm the match.
        runs = self.session.execute(
            select(RunRecord)
            .where(RunRecord.datasets.contains(f'"{ref}"', autoescape=True))
            .order_by(RunRecord.started_at)
        ).scalars()
        for run in runs:
            if any(e.get("ref") == ref for e in json.loads(run.datasets or "[]")):
                self.graph.link(node_id, self._run_node(run), "input")
                self.run_down(run)
        # Versions registered without a run name their data in the statement only.
        rows = self.session.execute(
            select(RegisteredModel, ModelVersionRecord)
            .join(ModelVersionRecord, ModelVersionRecord.model_id == RegisteredModel.id)
            .where(
                ModelVersionRecord.run_id.is_(None),
                ModelVersionRecord.statement.contains(f'"{ref}"', autoescape=True),
            )
        ).all()
        for model, mrec in rows:
            lineage = self._statement(model.name, mrec)[0].get("lineage") or {}
            if ref in (lineage.get("datasets") or []):
                self.graph.link(node_id, self._model_node(model, mrec), "input")
                self.model_down(model, mrec)

    def _raw_sha(self, ref: Ref) -> str:
        if ref.kind == "raw":
            query = select(IngestRecord.source_sha256).where(IngestRecord.source_sha256 == ref.key)
        elif "@" in ref.key:
            query = select(IngestRecord.source_sha256).where(IngestRecord.raw_object == ref.key)
        else:
            query = select(IngestRecord.source_sha256).where(
                IngestRecord.raw_object.startswith(f"{ref.key}@", autoescape=True)
            )
        sha = self.session.execute(query.limit(1)).scalar_one_or_none()
        if sha is None:
            raise NotFound(f"no ingested raw file {ref.key[:100]!r}")
        return str(sha)

    def raw_down(self, sha256: str) -> str:
        node_id = self._raw_node(sha256)
        rows = self.session.execute(
            select(DatasetRecord.name, DatasetVersionRecord)
            .join(IngestRecord, IngestRecord.id == DatasetVersionRecord.ingest_id)
            .join(DatasetRecord, DatasetRecord.id == DatasetVersionRecord.dataset_id)
            .where(IngestRecord.source_sha256 == sha256)
            .order_by(DatasetRecord.name, DatasetVersionRecord.version)
        ).all()
        for name, rec in rows:
            self.graph.link(node_id, self._dataset_node(name, rec), "ingest")
            self.dataset_down(name, rec)
        return node_id

    # -- predictions ----------------------------------------------------------------------------

    def prediction(self, prediction_id: str) -> str:
        row, batch = self._find_prediction(prediction_id)
        model, rec = versions.version_record(self.session, str(row["model"]), int(row["version"]))
        model_id = self.model_up(model, rec)
        node_id = f"prediction:{prediction_id}"
        at = row.get("at")
        self.graph.add(
            Node(
                node_id,
                "prediction",
                f"prediction {prediction_id}",
                {
                    "prediction_id": prediction_id,
                    "at": at.isoformat() if isinstance(at, datetime) else at,
                    "route": row.get("route"),
                    "request_id": row.get("request_id"),
                    "batch": batch.id,
                    "object": batch.object_ref,
                },
            )
        )
        self.graph.link(model_id, node_id, "served")
        # Finding a prediction decrypts logged traffic: that read is put on the record.
        with self.ws.transaction() as session:
            self.ws.record(
                session,
                "lineage.read",
                f"prediction:{prediction_id}",
                {"batch": batch.id, "batches_decrypted": self.batches_read},
            )
        return node_id

    def _find_prediction(self, prediction_id: str) -> tuple[dict[str, Any], PredictionBatchRecord]:
        """Find the batch holding a prediction, reading only the columns that identify rows:
        the batches whose time span covers the time in the id first (a few), then, for ids
        without a time (older servers), every batch newest first."""
        import polars as pl

        from aidlc.serve.predlog import prediction_time

        query = (
            select(PredictionBatchRecord)
            .where(PredictionBatchRecord.kind == "predictions")
            .order_by(PredictionBatchRecord.id.desc())
        )
        at = prediction_time(prediction_id)
        likely: list[PredictionBatchRecord] = []
        if at is not None:
            # The id is made a moment before the row's `at`; a minute covers clock steps.
            slack = timedelta(minutes=1)
            likely = list(
                self.session.execute(
                    query.where(
                        PredictionBatchRecord.first_at <= at + slack,
                        PredictionBatchRecord.last_at >= at - slack,
                    )
                ).scalars()
            )
        seen = {b.id for b in likely}
        rest = (b for b in self.session.execute(query).scalars() if b.id not in seen)
        self.batches_read = 0
        wanted = ["prediction_id", "model", "version", "at", "route", "request_id"]
        for batch in itertools.chain(likely, rest):
            self.batches_read += 1
            try:
                data = objects.get_ref(self.ws, batch.object_ref, action="lineage.read")
            except NotFound:  # erased or expired: its rows cannot be traced any more
                continue
            present = pl.read_parquet_schema(io.BytesIO(data))
            frame = pl.read_parquet(io.BytesIO(data), columns=[c for c in wanted if c in present])
            hits = frame.filter(pl.col("prediction_id") == prediction_id)
            if hits.height:
                return hits.row(0, named=True), batch
        raise NotFound(
            f"no logged prediction {prediction_id}",
            hint="only sampled predictions are logged, and expired logs are gone",
        )


# -- rendering ----------------------------------------------------------------------------------

_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 .,_@:/()+=-]")
_SHAPES = {"raw": ("[/", "/]"), "dataset": ("[(", ")]"), "model": ("[[", "]]")}


def mermaid_text(text: str) -> str:
    """`text` for a quoted Mermaid label: every character that could end or restyle the label
    becomes an entity code.

    >>> mermaid_text('a"b]<c>')
    'a#34;b#93;#60;c#62;'
    """
    return "".join(c if _MERMAID_SAFE.match(c) else f"#{ord(c)};" for c in text)


def dot_text(text: str) -> str:
    """`text` for a double-quoted DOT string.

    >>> dot_text('a"b\\\\c' + chr(10) + 'd')
    'a\\\\"b\\\\\\\\c\\\\nd'
    """
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return "".join(c for c in out if c >= " " or c == "\t")


def to_mermaid(graph: Lineage) -> str:
    """A Mermaid flowchart (`graph LR`); node ids are generated, labels entity-escaped."""
    ids = {node_id: f"n{i}" for i, node_id in enumerate(graph.nodes)}
    lines = ["graph LR"]
    for node_id, node in graph.nodes.items():
        left, right = _SHAPES.get(node.kind, ("[", "]"))
        lines.append(f'  {ids[node_id]}{left}"{mermaid_text(node.label)}"{right}')
    for e in graph.edges:
        lines.append(f"  {ids[e.source]} -->|{e.kind}| {ids[e.target]}")
    if graph.root in ids:
        lines.append(f"  style {ids[graph.root]} stroke-width:3px")
    return "\n".join(lines) + "\n"


_DOT_SHAPES = {"raw": "note", "dataset": "cylinder", "model": "box3d", "run": "box"}


def to_dot(graph: Lineage) -> str:
    """A Graphviz digraph; node ids are generated, labels escaped for quoted strings."""
    ids = {node_id: f"n{i}" for i, node_id in enumerate(graph.nodes)}
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for node_id, node in graph.nodes.items():
        shape = _DOT_SHAPES.get(node.kind, "ellipse")
        bold = ", penwidth=3" if node_id == graph.root else ""
        lines.append(f'  {ids[node_id]} [label="{dot_text(node.label)}", shape={shape}{bold}];')
    for e in graph.edges:
        lines.append(f'  {ids[e.source]} -> {ids[e.target]} [label="{e.kind}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
