"""The prediction log writer: batches, time-based flushes, sampling, back-pressure, shutdown."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from aidlc.core.config import PredictionLogConfig
from aidlc.serve.predlog import PredictionLog, read_batches


def _rows(n, start=0, model="bc"):
    at = datetime.now(UTC)
    return [
        {"prediction_id": f"{i:032x}", "at": at, "model": model} for i in range(start, start + n)
    ]


def _batches(served):
    from sqlalchemy import select

    from aidlc.core.meta import PredictionBatchRecord

    with served.open("monitor") as ws, ws.db.reading() as session:
        return [
            (r.kind, r.model, r.rows)
            for r in session.execute(
                select(PredictionBatchRecord).order_by(PredictionBatchRecord.id)
            ).scalars()
        ]


def test_rows_are_written_in_batches_per_model_and_drained_on_close(served):
    ws = served.open("service")
    log = PredictionLog(ws, PredictionLogConfig(batch_rows=100, flush_seconds=3600))
    log.add(_rows(250))
    log.add(_rows(7, start=1000, model="other"))
    log.close()
    ws.close()
    assert log.stats.written == 257 and log.stats.failures == 0
    batches = _batches(served)
    assert sorted(b[2] for b in batches if b[1] == "bc") == [50, 100, 100]
    assert [b for b in batches if b[1] == "other"] == [("predictions", "other", 7)]
    with served.open("monitor") as ws:
        ids = [r["prediction_id"] for r in read_batches(ws, "predictions", model="bc")]
    assert sorted(ids) == [f"{i:032x}" for i in range(250)]


def test_a_partial_batch_is_written_after_flush_seconds(served):
    ws = served.open("service")
    log = PredictionLog(ws, PredictionLogConfig(batch_rows=1000, flush_seconds=0.2))
    try:
        log.add(_rows(3))
        deadline = time.monotonic() + 10
        while log.stats.written < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.stats.written == 3 and log.stats.batches == 1
    finally:
        log.close()
        ws.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking(served):
    ws = served.open("service")
    drops = []
    log = PredictionLog(
        ws,
        PredictionLogConfig(batch_rows=10_000, flush_seconds=3600, queue_rows=50),
        on_drop=lambda: drops.append(1),
    )
    started = time.perf_counter()
    log.add(_rows(500))
    assert time.perf_counter() - started < 1.0  # never waits for the store
    log.close()
    ws.close()
    assert log.stats.queued + log.stats.dropped == 500
    assert log.stats.dropped == len(drops) > 0
    assert log.stats.written == log.stats.queued


def test_sampling_follows_the_configured_rate(served):
    ws = served.open("service")
    try:
        never = PredictionLog(ws, PredictionLogConfig(sample_rate=0.0))
        always = PredictionLog(ws, PredictionLogConfig(sample_rate=1.0))
        some = PredictionLog(ws, PredictionLogConfig(sample_rate=0.3))
        assert not any(never.sampled() for _ in range(1000))
        assert all(always.sampled() for _ in range(1000))
        hits = sum(some.sampled() for _ in range(20_000))
        assert 5400 < hits < 6600  # 6000 expected; more than 8 standard deviations of room
        for log in (never, always, some):
            log.close()
    finally:
        ws.close()


def test_a_failed_write_is_retried_with_the_next_batch(served):
    """Writes fail while the writer lacks permission, then succeed: nothing is lost."""
    from aidlc.core import auth

    ws = served.open("service")
    service = ws.principal
    ws.principal = auth.Principal(service.id, service.name, service.kind, frozenset({"monitor"}))
    log = PredictionLog(ws, PredictionLogConfig(batch_rows=5, flush_seconds=3600))
    log.add(_rows(5))
    deadline = time.monotonic() + 10
    while log.stats.failures < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.stats.failures >= 1 and log.stats.written == 0
    ws.principal = service  # the store is back
    log.add(_rows(7, start=5))
    log.close()
    ws.close()
    assert log.stats.written == 12 and log.stats.lost == 0
    with served.open("monitor") as ws:
        ids = sorted(r["prediction_id"] for r in read_batches(ws, "predictions"))
    assert ids == [f"{i:032x}" for i in range(12)]


def test_rows_that_never_write_are_counted_lost_at_shutdown(served):
    ws = served.open("monitor")  # may not write predictions at all
    log = PredictionLog(ws, PredictionLogConfig(batch_rows=5, flush_seconds=3600))
    log.add(_rows(12))
    log.close()
    ws.close()
    assert log.stats.written == 0 and log.stats.lost == 12 and log.stats.failures >= 2
    assert not log._thread.is_alive()


@given(st.text(max_size=40))
def test_prediction_time_never_raises(text: str) -> None:
    from aidlc.serve.predlog import prediction_time

    at = prediction_time(text)
    assert at is None or at.tzinfo is not None


def test_prediction_ids_are_unique_time_ordered_hex() -> None:
    import re
    import time

    from aidlc.serve.predlog import new_prediction_ids, prediction_time

    ids = new_prediction_ids(10_000)
    assert len(set(ids)) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert abs(prediction_time(ids[0]).timestamp() - time.time()) < 5
    assert prediction_time("f" * 32) is None and prediction_time("0" * 32) is None
