"""The monitor inside the server: KPIs pushed over HTTP, and the scheduler running beside it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.monitor.helpers import serve_rows
from tests.serve.conftest import Served


def test_kpis_pushed_over_http_appear_in_the_report(
    served: Served, client_for: Any, records: list[dict[str, Any]]
) -> None:
    from aidlc.monitor import runner

    client = client_for()
    body = {"model": "bc", "kpis": [{"name": "revenue", "value": 120.5},
                                    {"name": "revenue", "value": 79.5},
                                    {"name": "churned", "value": 3}]}  # fmt: skip
    ok = client.post("/v1/kpis", json=body, headers=served.headers("inference"))
    assert ok.status_code == 202 and ok.json() == {"accepted": 3}
    bad = [
        ({"model": "bc", "kpis": [{"name": "1x", "value": 1}]}, 422),
        ({"model": "bc", "kpis": [{"name": "x", "value": "NaN"}]}, 422),
        ({"model": "bc", "kpis": [{"name": "x", "value": 1, "at": "yesterday"}]}, 422),
        ({"model": "bc", "kpis": []}, 422),
        ({"model": "bc"}, 422),
        ({"model": "nope", "kpis": [{"name": "x", "value": 1}]}, 404),
    ]
    for payload, status in bad:
        got = client.post("/v1/kpis", json=payload, headers=served.headers("inference"))
        assert got.status_code == status, (payload, got.text)
    assert client.post("/v1/kpis", json=body).status_code == 401
    assert client.post("/v1/kpis", json=body, headers=served.headers("auditor")).status_code == 403

    serve_rows(served, records)
    with served.open("monitor") as ws:
        (outcome,) = runner.run(ws)
    kpis = outcome.document["kpis"]
    assert kpis["revenue"]["count"] == 2 and kpis["revenue"]["mean"] == 100.0
    assert kpis["revenue"]["last"] == 79.5 and kpis["churned"]["last"] == 3.0
    html = runner.get_report(served.open("monitor"), outcome.report.id, html=True)
    assert "KPI revenue" in str(html)


def test_the_server_runs_the_schedules_beside_it(
    served: Served, records: list[dict[str, Any]]
) -> None:
    """A scheduler companion starts and stops with the server; at its fire time it runs the
    monitor as the server's principal, and a second worker's scheduler does not run it again."""
    from aidlc.core.config import ScheduleConfig
    from aidlc.monitor import jobs, runner
    from aidlc.monitor.schedule import Scheduler
    from aidlc.serve.app import Server

    serve_rows(served, records)
    fire = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    clock = {"now": fire - timedelta(seconds=30)}
    ws = served.open("service")
    other = served.open("service")
    schedule = ScheduleConfig(name="every-minute", cron="* * * * *", window="1h")
    first = Scheduler([jobs.monitor_job(ws, schedule)], clock=lambda: clock["now"], max_sleep=0.05)
    second = Scheduler(
        [jobs.monitor_job(other, schedule)], clock=lambda: clock["now"], max_sleep=0.05
    )
    server = Server(ws, ws.config.serve, companions=[first, second])
    server.start()
    try:
        clock["now"] = fire + timedelta(seconds=1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with served.open("monitor") as m:
                if runner.list_reports(m):
                    break
            time.sleep(0.1)
        time.sleep(1.0)  # give the other scheduler its chance to (wrongly) run it too
    finally:
        server.close()
        other.close()
    with served.open("monitor") as m:
        reports = runner.list_reports(m)
    assert len(reports) == 1
    assert reports[0].created_by == "service" and reports[0].window_end == fire
    from aidlc.core.meta import ScheduleRunRecord

    with served.open("monitor") as m, m.db.reading() as session:
        rec = session.get(ScheduleRunRecord, "every-minute")
        assert rec is not None and rec.status == "ok" and rec.started_at == fire


def test_the_serve_factory_adds_the_scheduler_only_for_a_monitor(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    config = served.root / "aidlc.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["monitor"] = {"schedules": [{"name": "nightly", "cron": "cron(0 2 * * ? *)"}]}
    config.write_text(yaml.safe_dump(doc))
    from aidlc.cli import serve

    monkeypatch.chdir(served.root)
    for who, expected in (("service", 1), ("inference", 0)):
        monkeypatch.setenv("AIDLC_TOKEN", served.tokens[who])
        app = serve.from_environment()
        assert len(app.state.server.companions) == expected, who
        app.state.server.ws.close()


@pytest.mark.slow
def test_a_real_aidlc_serve_runs_its_schedule_with_two_workers(
    served: Served, tmp_path: Any, records: list[dict[str, Any]]
) -> None:
    """`aidlc serve --workers 2` with a per-minute schedule: the monitor runs at the next minute
    boundary as the server's principal, once although both workers run a scheduler."""
    import yaml

    from aidlc.monitor import runner
    from tests.serve.test_server_process import predict, serving

    config = served.root / "aidlc.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["monitor"] = {"schedules": [{"name": "minutely", "cron": "* * * * *", "window": "1h"}]}
    config.write_text(yaml.safe_dump(doc))
    with serving(served.root, served.tokens["service"], "--workers", "2", logs=tmp_path) as srv:
        with srv.client() as client:
            for i in range(0, 200, 50):
                assert (
                    predict(client, served.tokens["inference"], records[i : i + 50]).status_code
                    == 200
                )
        deadline = time.monotonic() + 150
        reports: list[Any] = []
        while time.monotonic() < deadline and not reports:
            time.sleep(2)
            with served.open("monitor") as m:
                reports = runner.list_reports(m)
        time.sleep(3)  # the other worker's scheduler had its chance at the same fire time
        with served.open("monitor") as m:
            reports = runner.list_reports(m)
        assert srv.stop() == 0
    assert reports, "no scheduled monitor run within 150 s"
    fire_times = [r.window_end for r in reports]
    assert len(fire_times) == len(set(fire_times))  # each fire time ran once
    assert all(r.created_by == "service" for r in reports)
    assert all(t.second == 0 and t.microsecond == 0 for t in fire_times)
