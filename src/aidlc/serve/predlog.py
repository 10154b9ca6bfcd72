"""Prediction and feedback logs: sampled on the request path, written in batches off it.

Requests put rows on a bounded queue and return; one writer thread groups them per model and
writes each batch as a Parquet object, encrypted like every other object, in the `predictions`
zone, with a row in `prediction_batches` saying which model, how many rows and what time span.
`close()` drains the queue and writes what is left, so a clean shutdown loses nothing. When the
queue is full (the store is slower than traffic) rows are dropped and counted, never blocking a
request: the count is exported as a metric. A batch whose write fails (the store or database is
briefly away) is kept and tried again with the next one; what still fails at shutdown is counted
as lost and logged.
"""

from __future__ import annotations

import io
import logging
import queue
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aidlc.core.config import PredictionLogConfig

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

ZONE = "predictions"
KINDS = ("predictions", "feedback")
_STOP = object()
log = logging.getLogger("aidlc.serve")


@dataclass
class LogStats:
    queued: int = 0
    written: int = 0
    dropped: int = 0
    batches: int = 0
    failures: int = 0
    lost: int = 0


class PredictionLog:
    """The batched writer of one kind of log row (`predictions` or `feedback`)."""

    def __init__(
        self,
        ws: Workspace,
        config: PredictionLogConfig,
        kind: str = "predictions",
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown log kind {kind!r}")
        self.ws = ws
        self.config = config
        self.kind = kind
        self.stats = LogStats()
        self._on_drop = on_drop
        self._retry: list[dict[str, Any]] = []
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=config.queue_rows)
        self._thread = threading.Thread(target=self._run, name=f"aidlc-{kind}-log", daemon=True)
        self._lock = threading.Lock()
        self._closed = False
        self._thread.start()

    def sampled(self) -> bool:
        """Whether the next request is logged, at the configured sample rate."""
        rate = self.config.sample_rate
        return rate >= 1.0 or (rate > 0 and secrets.randbelow(1_000_000) < rate * 1_000_000)

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows (each with a `model` key); never blocks."""
        for row in rows:
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                self.stats.dropped += 1
                if self._on_drop is not None:
                    self._on_drop()
            else:
                self.stats.queued += 1

    def close(self, timeout: float = 60.0) -> None:
        """Write every queued row, then stop the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        pending: list[dict[str, Any]] = []
        started = time.monotonic()
        while True:
            wait = max(0.01, self.config.flush_seconds - (time.monotonic() - started))
            try:
                item = self._queue.get(timeout=wait if pending else self.config.flush_seconds)
            except queue.Empty:
                item = None
            if item is _STOP:
                while True:  # rows queued before the stop marker by racing requests
                    try:
                        extra = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if extra is not _STOP:
                        pending.append(extra)
                self._flush(pending)
                if self._retry:  # one last try for batches that failed earlier
                    self._flush([])
                if self._retry:
                    self.stats.lost += len(self._retry)
                    log.error(
                        "lost %d %s rows that could not be written", len(self._retry), self.kind
                    )
                return
            if item is not None:
                if not pending:
                    started = time.monotonic()
                pending.append(item)
            due = time.monotonic() - started >= self.config.flush_seconds
            if pending and (len(pending) >= self.config.batch_rows or due):
                self._flush(pending)
                pending = []

    def _flush(self, rows: list[dict[str, Any]]) -> None:
        rows, self._retry = self._retry + rows, []
        by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_model[str(row.get("model", ""))].append(row)
        for model, part in by_model.items():
            try:
                write_batch(self.ws, self.kind, model, part)
            except Exception:  # a failed write must not kill the writer: kept for the next try
                self.stats.failures += 1
                log.exception("could not write a %s batch of %d rows", self.kind, len(part))
                self._retry.extend(part)
            else:
                self.stats.written += len(part)
                self.stats.batches += 1
        excess = len(self._retry) - self.config.queue_rows
        if excess > 0:  # a long outage: keep the newest rows, bounded like the queue
            del self._retry[:excess]
            self.stats.lost += excess


def new_prediction_ids(count: int, *, now: float | None = None) -> list[str]:
    """`count` prediction ids: 32 hex digits, the first 12 the creation time in milliseconds
    (as in UUIDv7), the other 20 random (80 bits). The time lets lineage find a prediction's
    log batch without decrypting every batch; the caller who gets the id learns nothing it did
    not know (when it asked).

    >>> ids = new_prediction_ids(2, now=1_780_000_000.0)
    >>> [len(i) for i in ids], ids[0][:12], prediction_time(ids[0]).isoformat()
    ([32, 32], '019e70448800', '2026-05-28T20:26:40+00:00')
    """
    ms = int((time.time() if now is None else now) * 1000)
    prefix = f"{ms:012x}"
    pool = secrets.token_hex(10 * count)  # one read of the OS generator, not one per row
    return [prefix + pool[i : i + 20] for i in range(0, len(pool), 20)]


def prediction_time(prediction_id: str) -> datetime | None:
    """When a time-ordered prediction id was made, or None for an id that is not one (older
    ids were fully random: their leading digits decode to a time far off)."""
    try:
        at = datetime.fromtimestamp(int(prediction_id[:12], 16) / 1000, UTC)
    except (ValueError, OverflowError, OSError):  # not hex, or no representable time
        return None
    if not datetime(2025, 1, 1, tzinfo=UTC) <= at <= datetime.now(UTC) + timedelta(days=1):
        return None
    return at


def write_batch(ws: Workspace, kind: str, model: str, rows: list[dict[str, Any]]) -> str:
    """Write rows as one encrypted Parquet object and record the batch; returns its ref."""
    import polars as pl

    from aidlc.core import objects
    from aidlc.core.meta import PredictionBatchRecord

    times = [row["at"] for row in rows]
    frame = pl.DataFrame(rows, infer_schema_length=None)
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    first = min(times)
    object_id = f"{kind}/{model or '_'}/{first:%Y-%m-%d}/{first:%H%M%S}-{secrets.token_hex(6)}"
    info = objects.put_bytes(
        ws, ZONE, object_id, buffer.getvalue(), details={"rows": len(rows), "kind": kind}
    )
    with ws.transaction() as session:
        session.add(
            PredictionBatchRecord(
                kind=kind,
                model=model,
                object_ref=info.ref,
                rows=len(rows),
                first_at=first,
                last_at=max(times),
                created_by=ws.principal.name if ws.principal else "system",
            )
        )
    return info.ref


def read_batches(
    ws: Workspace, kind: str = "predictions", model: str | None = None
) -> list[dict[str, Any]]:
    """Every logged row of `kind` (for `model`), oldest batch first; for monitors and tests."""
    import polars as pl
    from sqlalchemy import select

    from aidlc.core import objects
    from aidlc.core.meta import PredictionBatchRecord

    ws.authorize("object.read:predictions", f"{ZONE}/{kind}")
    query = select(PredictionBatchRecord).where(PredictionBatchRecord.kind == kind)
    if model is not None:
        query = query.where(PredictionBatchRecord.model == model)
    with ws.db.reading() as session:
        refs = [
            r.object_ref
            for r in session.execute(query.order_by(PredictionBatchRecord.id)).scalars()
        ]
    rows: list[dict[str, Any]] = []
    for ref in refs:
        rows.extend(pl.read_parquet(io.BytesIO(objects.get_ref(ws, ref))).to_dicts())
    return rows


def now() -> datetime:
    return datetime.now(UTC)
