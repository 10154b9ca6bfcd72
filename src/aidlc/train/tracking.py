"""Experiment tracking: runs, their parameters, metrics, inputs and environment, and checkpoints.

`aidlc train` records a run through these functions, and so does custom training code through
the Python API (`with ws.start_run("churn") as run: run.log_metrics(...)`). Every change is a
service call: permission check, metadata and audit event in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
import shutil
import subprocess  # nosec B404: runs git with fixed arguments to record the commit, no shell
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from aidlc.core import objects
from aidlc.core.meta import RunMetricRecord, RunRecord
from aidlc.errors import Conflict, InvalidInput, NotFound, UsageError

if TYPE_CHECKING:
    import polars as pl
    from sqlalchemy.orm import Session

    from aidlc.core.workspace import Workspace
    from aidlc.data.versions import DatasetVersion

RUN_STATUSES = ("running", "interrupted", "finished", "failed")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}\Z")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")
_MAX_PARAMS = 1000
_CHECKPOINT_ZONE = "models"


@dataclass(frozen=True)
class RunInfo:
    """A run as `runs show` prints it."""

    id: str
    name: str
    kind: str
    status: str
    params: dict[str, Any]
    metrics: dict[str, float]
    datasets: list[dict[str, Any]]
    environment: dict[str, Any]
    seed: int | None
    config: str | None
    config_digest: str | None
    result: dict[str, Any]
    model_version: str | None
    started_at: datetime
    finished_at: datetime | None
    created_by: str

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_json(self, *, with_config: bool = True) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["started_at"] = self.started_at.isoformat()
        out["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        out["seconds"] = self.seconds
        if not with_config:
            out.pop("config")
        return out


# -- the environment a run records --------------------------------------------------------------


@cache
def installed_packages() -> tuple[tuple[str, str], ...]:
    """(name, version) of every installed distribution, sorted by normalised name."""
    from importlib import metadata

    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            seen.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
    return tuple(sorted(seen.items()))


def packages_digest(packages: Sequence[tuple[str, str]]) -> str:
    """SHA-256 over `name==version` lines: equal digests mean the same installed packages."""
    text = "".join(f"{n}=={v}\n" for n, v in packages)
    return hashlib.sha256(text.encode()).hexdigest()


def git_state(directory: Path) -> dict[str, Any]:
    """The commit checked out in `directory` and whether the work tree has changes.

    Both are None outside a git work tree or without git on PATH.
    """
    git = shutil.which("git")
    if git is None:
        return {"commit": None, "dirty": None}

    def run(*args: str) -> str | None:
        try:
            proc = subprocess.run(  # noqa: S603  # nosec B603: fixed git arguments, no shell
                [git, "-C", str(directory), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": bool(status and status.strip())}


def environment(directory: Path | None = None) -> dict[str, Any]:
    """What a run ran on: code commit, Python, platform and a digest of the installed packages."""
    from aidlc import __version__

    packages = installed_packages()
    return {
        "aidlc": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages_digest": packages_digest(packages),
        "packages": len(packages),
        "git": git_state(directory or Path.cwd()),
    }


# -- the service functions ----------------------------------------------------------------------


def _json_value(value: Any, what: str) -> Any:
    """Parameters are recorded as JSON scalars, lists or mappings of them; floats must be finite."""
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str) and len(value) > 10_000:
            raise InvalidInput(f"{what} is longer than 10,000 characters")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{what} is {value}; parameters must be finite")
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_value(value.item(), what)
    if isinstance(value, list | tuple):
        return [_json_value(v, what) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f"{what}.{k}") for k, v in value.items()}
    raise InvalidInput(f"{what} has type {type(value).__name__}; log JSON-like values only")


def _check_key(key: str, what: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidInput(
            f"invalid {what} name {str(key)[:60]!r}: 1-100 characters, letters, digits, _.:/-"
        )
    return key


def run_record(session: Session, run_id: str) -> RunRecord:
    """The run with id `run_id` (or a unique prefix of at least six hex digits), read in the
    caller's session."""
    if not re.fullmatch(r"[0-9a-f]{6,32}", run_id or ""):
        raise UsageError(f"{run_id[:40]!r} is not a run id (6 to 32 hex digits)")
    rec = session.get(RunRecord, run_id)
    if rec is not None:
        return rec
    matches = (
        session.execute(select(RunRecord).where(RunRecord.id.startswith(run_id)).limit(2))
        .scalars()
        .all()
    )
    if not matches:
        raise NotFound(f"no run {run_id}")
    if len(matches) > 1:
        raise UsageError(f"run id prefix {run_id} is ambiguous; give more digits")
    return matches[0]


def create_run(
    ws: Workspace,
    name: str,
    *,
    kind: str = "custom",
    config: str | None = None,
    config_digest: str | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    directory: Path | None = None,
) -> str:
    """Start a run record (status `running`) and return its id."""
    if not _NAME.match(name or ""):
        raise InvalidInput(
            f"invalid run name {str(name)[:60]!r}: 1-64 characters a-z, 0-9, '.', '_', '-'"
        )
    principal = ws.authorize("train.run", f"run:{name}")
    run_id = uuid.uuid4().hex[:16]
    env = environment(directory)
    with ws.transaction() as session:
        session.add(
            RunRecord(
                id=run_id,
                name=name,
                kind=kind,
                status="running",
                config=config,
                config_digest=config_digest,
                params=json.dumps(_json_value(dict(params or {}), "params")),
                environment=json.dumps(env),
                seed=seed,
                created_by=principal.name,
            )
        )
        ws.record(
            session,
            "run.start",
            f"run:{run_id}",
            {"name": name, "kind": kind, "config_digest": config_digest, "git": env["git"]},
        )
    return run_id


def _owned_running(ws: Workspace, session: Session, run_id: str, action: str) -> RunRecord:
    principal = ws.authorize("train.run", f"run:{run_id}")
    rec = run_record(session, run_id)
    if rec.created_by != principal.name:
        raise Conflict(f"run {rec.id} belongs to {rec.created_by}; only its trainer may {action}")
    return rec


def log_params(ws: Workspace, run_id: str, params: Mapping[str, Any]) -> None:
    """Merge `params` into the run's parameters (a key logged twice must keep its value)."""
    clean = {
        _check_key(k, "parameter"): _json_value(v, f"parameter {k}") for k, v in params.items()
    }
    with ws.transaction() as session:
        rec = _owned_running(ws, session, run_id, "log parameters")
        if rec.status != "running":
            raise Conflict(f"run {rec.id} is {rec.status}; parameters are fixed")
        current = json.loads(rec.params)
        changed = {k for k, v in clean.items() if k in current and current[k] != v}
        if changed:
            raise Conflict(
                f"parameters {', '.join(sorted(changed))} were already logged with other values"
            )
        current.update(clean)
        if len(current) > _MAX_PARAMS:
            raise InvalidInput(f"a run holds at most {_MAX_PARAMS} parameters")
        rec.params = json.dumps(current)
        ws.record(session, "run.params", f"run:{rec.id}", {"keys": sorted(clean)})


def log_metrics(ws: Workspace, run_id: str, metrics: Mapping[str, float], *, step: int = 0) -> None:
    """Record metric values (finite numbers) at `step`."""
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        _check_key(key, "metric")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"metric {key} is not a number") from None
        if not math.isfinite(number):
            raise InvalidInput(f"metric {key} is {number}; metrics must be finite")
        clean[key] = number
    if not isinstance(step, int) or step < 0:
        raise InvalidInput("a metric step is a non-negative integer")
    with ws.transaction() as session:
        rec = _owned_running(ws, session, run_id, "log metrics")
        if rec.status != "running":
            raise Conflict(f"run {rec.id} is {rec.status}; its metrics are final")
        for key, value in clean.items():
            session.add(RunMetricRecord(run_id=rec.id, key=key, step=step, value=value))
        ws.record(session, "run.metrics", f"run:{rec.id}", {"step": step, "metrics": clean})


def log_dataset(ws: Workspace, run_id: str, version: DatasetVersion) -> None:
    """Record that the run read a validated dataset version (its id and content hash)."""
    entry = {
        "ref": version.ref,
        "dataset": version.dataset,
        "version": version.version,
        "rows": version.rows,
        "data_sha256": version.data_sha256,
        "contract_version": version.contract_version,
        "source_name": version.source_name,
        "source_sha256": version.source_sha256,
    }
    with ws.transaction() as session:
        rec = _owned_running(ws, session, run_id, "log datasets")
        current = json.loads(rec.datasets)
        if entry not in current:
            current.append(entry)
            rec.datasets = json.dumps(current)
            ws.record(session, "run.dataset", f"run:{rec.id}", {"dataset": version.ref})


def finish_run(
    ws: Workspace,
    run_id: str,
    status: str,
    *,
    result: Mapping[str, Any] | None = None,
) -> None:
    """Close a run as `finished`, `failed` or `interrupted`, merging `result` into its record."""
    if status not in RUN_STATUSES or status == "running":
        raise UsageError(f"a run ends as finished, failed or interrupted, not {status!r}")
    with ws.transaction() as session:
        rec = _owned_running(ws, session, run_id, "end it")
        merged = json.loads(rec.result)
        merged.update(_json_value(dict(result or {}), "result"))
        rec.result = json.dumps(merged)
        rec.status = status
        rec.finished_at = datetime.now(UTC)
        ws.record(session, "run.finish", f"run:{rec.id}", {"status": status})


def reopen_run(ws: Workspace, run_id: str) -> RunInfo:
    """Mark an interrupted run as running again (for `aidlc train --resume`)."""
    with ws.transaction() as session:
        rec = _owned_running(ws, session, run_id, "resume it")
        if rec.status != "interrupted":
            raise Conflict(f"run {rec.id} is {rec.status}; only an interrupted run can resume")
        rec.status = "running"
        rec.finished_at = None
        ws.record(session, "run.resume", f"run:{rec.id}")
    return get_run(ws, rec.id)


def set_model_version(ws: Workspace, run_id: str, ref: str) -> None:
    """Link the run to the model version registered from it."""
    ws.authorize("model.register", f"run:{run_id[:40]}")
    with ws.transaction() as session:
        rec = run_record(session, run_id)
        rec.model_version = ref
        ws.record(session, "run.model", f"run:{rec.id}", {"model_version": ref})


def save_checkpoint(ws: Workspace, run_id: str, data: bytes) -> str:
    """Store a checkpoint (encrypted, in the `models` zone) and point the run at it."""
    with ws.db.reading() as session:
        rec = run_record(session, run_id)
    info = objects.put_bytes(
        ws, _CHECKPOINT_ZONE, f"runs/{rec.id}/checkpoint", data, details={"run": rec.id}
    )
    with ws.transaction() as session:
        rec = _owned_running(ws, session, rec.id, "checkpoint it")
        rec.checkpoint_object = info.ref
        ws.record(session, "run.checkpoint", f"run:{rec.id}", {"object": info.ref})
    return info.ref


def load_checkpoint(ws: Workspace, run_id: str) -> bytes | None:
    """The run's latest checkpoint, or None when it never checkpointed."""
    with ws.db.reading() as session:
        rec = run_record(session, run_id)
    if rec.checkpoint_object is None:
        return None
    return objects.get_ref(ws, rec.checkpoint_object)


def _info(rec: RunRecord, metrics: dict[str, float]) -> RunInfo:
    return RunInfo(
        id=rec.id,
        name=rec.name,
        kind=rec.kind,
        status=rec.status,
        params=json.loads(rec.params),
        metrics=metrics,
        datasets=json.loads(rec.datasets),
        environment=json.loads(rec.environment),
        seed=rec.seed,
        config=rec.config,
        config_digest=rec.config_digest,
        result=json.loads(rec.result),
        model_version=rec.model_version,
        started_at=rec.started_at,
        finished_at=rec.finished_at,
        created_by=rec.created_by,
    )


def _latest_metrics(session: Session, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per run, each metric's value at its highest step (the latest one logged on ties)."""
    out: dict[str, dict[str, float]] = {r: {} for r in run_ids}
    if not run_ids:
        return out
    rows = session.execute(
        select(RunMetricRecord)
        .where(RunMetricRecord.run_id.in_(list(run_ids)))
        .order_by(RunMetricRecord.step, RunMetricRecord.id)
    ).scalars()
    for m in rows:
        out[m.run_id][m.key] = m.value
    return out


def get_run(ws: Workspace, run_id: str) -> RunInfo:
    ws.authorize("run.read", f"run:{run_id[:40]}")
    with ws.db.reading() as session:
        rec = run_record(session, run_id)
        return _info(rec, _latest_metrics(session, [rec.id])[rec.id])


def metric_history(ws: Workspace, run_id: str) -> list[dict[str, Any]]:
    """Every logged value of every metric of a run, in logging order."""
    ws.authorize("run.read", f"run:{run_id[:40]}")
    with ws.db.reading() as session:
        rec = run_record(session, run_id)
        rows = session.execute(
            select(RunMetricRecord)
            .where(RunMetricRecord.run_id == rec.id)
            .order_by(RunMetricRecord.step, RunMetricRecord.id)
        ).scalars()
        return [{"key": m.key, "step": m.step, "value": m.value} for m in rows]


def list_runs(
    ws: Workspace, *, name: str | None = None, status: str | None = None, limit: int = 50
) -> list[RunInfo]:
    ws.authorize("run.read", "runs")
    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"unknown run status {status[:20]!r}; one of {', '.join(RUN_STATUSES)}")
    if not 1 <= limit <= 10_000:
        raise UsageError("--limit is between 1 and 10,000")
    with ws.db.reading() as session:
        query = select(RunRecord)
        if name:
            query = query.where(RunRecord.name == name)
        if status:
            query = query.where(RunRecord.status == status)
        recs = list(
            session.execute(
                query.order_by(RunRecord.started_at.desc(), RunRecord.id).limit(limit)
            ).scalars()
        )
        metrics = _latest_metrics(session, [r.id for r in recs])
        return [_info(r, metrics[r.id]) for r in recs]


def compare_runs(ws: Workspace, run_ids: Sequence[str]) -> dict[str, Any]:
    """Side by side: the parameters and metrics of several runs, with what differs marked."""
    if len(run_ids) < 2:
        raise UsageError("compare needs at least two runs")
    runs = [get_run(ws, r) for r in run_ids]
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})

    def rows(keys: list[str], pick: Any) -> list[dict[str, Any]]:
        out = []
        for key in keys:
            values = [pick(r).get(key) for r in runs]
            same = all(json.dumps(v) == json.dumps(values[0]) for v in values)
            out.append({"key": key, "values": values, "differs": not same})
        return out

    return {
        "runs": [{"id": r.id, "name": r.name, "status": r.status} for r in runs],
        "params": rows(param_keys, lambda r: r.params),
        "metrics": rows(metric_keys, lambda r: r.metrics),
        "datasets": [[d["ref"] for d in r.datasets] for r in runs],
    }


# -- the Python API for custom training code ----------------------------------------------------


class Run:
    """An open run for training code that is not `aidlc train`; see `start_run`."""

    def __init__(self, ws: Workspace, run_id: str, name: str) -> None:
        self.ws = ws
        self.id = run_id
        self.name = name

    def log_params(self, params: Mapping[str, Any]) -> None:
        log_params(self.ws, self.id, params)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int = 0) -> None:
        log_metrics(self.ws, self.id, metrics, step=step)

    def read_dataset(self, ref: str) -> pl.DataFrame:
        """The rows of a validated dataset version, recorded as an input of this run."""
        from aidlc.data import versions

        version = versions.resolve(self.ws, ref)
        log_dataset(self.ws, self.id, version)
        return versions.read_version(self.ws, version.ref)

    def register_model(self, name: str, model: Any, **kwargs: Any) -> Any:
        """Register `model` (an XGBoost, LightGBM or allowlisted scikit-learn estimator) as a
        signed version of registered model `name`; see `aidlc.registry.versions.register_model`.
        """
        # The Python API's one call from training into the registry, made late so that the
        # registry (which loads models with training's preprocessing code) stays above train.
        from aidlc.registry.versions import register_model

        return register_model(self.ws, name, model, run=self, **kwargs)

    def info(self) -> RunInfo:
        return get_run(self.ws, self.id)


@contextmanager
def start_run(
    ws: Workspace,
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> Iterator[Run]:
    """Open a run; it ends `finished`, or `failed` (with the exception's type) on an error, or
    `interrupted` on Ctrl-C."""
    run_id = create_run(ws, name, kind="custom", params=params, seed=seed)
    run = Run(ws, run_id, name)
    try:
        yield run
    except KeyboardInterrupt:
        finish_run(ws, run_id, "interrupted")
        raise
    except BaseException as exc:
        finish_run(ws, run_id, "failed", result={"error": type(exc).__name__})
        raise
    finish_run(ws, run_id, "finished")
