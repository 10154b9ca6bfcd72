"""The scheduled jobs of a workspace: its `monitor.schedules`, and pending retraining.

`aidlc serve` runs them beside the server (when its principal holds the monitor role) and
`aidlc monitor schedule` runs them on their own, for example as a trainer-and-monitor principal
that can also carry out retraining. Several processes may run the same schedules (workers,
replicas): each fire time is claimed in the metadata database first, so it runs once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aidlc.core.config import ScheduleConfig
from aidlc.core.meta import ScheduleRunRecord
from aidlc.errors import AidlcError
from aidlc.monitor.schedule import Job, Scheduler, parse_cron

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

__all__ = ["RETRAIN_JOB", "claim", "finish", "monitor_job", "run_all", "scheduler_for"]

log = logging.getLogger("aidlc.monitor")
# Pending retraining requests are picked up this often by a principal that may train.
RETRAIN_JOB = ("retrain-pending", "rate(1 minute)")


def claim(ws: Workspace, name: str, fire_time: datetime) -> bool:
    """Take the run of schedule `name` at `fire_time`; False if another process already has."""
    with ws.transaction() as session:
        rec = session.get(ScheduleRunRecord, name, with_for_update=True)
        if rec is not None and rec.started_at >= fire_time:
            return False
        if rec is None:
            rec = ScheduleRunRecord(name=name, started_at=fire_time, status="running", detail="")
            session.add(rec)
        else:
            rec.started_at, rec.finished_at, rec.status, rec.detail = fire_time, None, "running", ""
        return True


def finish(ws: Workspace, name: str, status: str, detail: str) -> None:
    with ws.transaction() as session:
        rec = session.get(ScheduleRunRecord, name)
        if rec is not None:
            rec.finished_at = datetime.now(UTC)
            rec.status, rec.detail = status, detail[:1000]


def monitor_job(ws: Workspace, schedule: ScheduleConfig) -> Job:
    """A job running `monitor run` for the schedule's model(s) and window."""
    from aidlc.monitor import runner

    def work(fire_time: datetime) -> None:
        if not claim(ws, schedule.name, fire_time):
            return
        try:
            model = None if schedule.model == "*" else schedule.model
            outcomes = runner.run(ws, model=model, window=schedule.window, now=fire_time)
        except AidlcError as exc:
            finish(ws, schedule.name, "failed", exc.message)
            raise
        verdicts = ", ".join(f"{o.report.model}: {o.report.verdict}" for o in outcomes)
        finish(ws, schedule.name, "ok", verdicts or "no model in production")

    return Job(schedule.name, parse_cron(schedule.cron), work)


def _retrain_job(ws: Workspace) -> Job:
    from aidlc.monitor import retrain

    name, cron = RETRAIN_JOB

    def work(fire_time: datetime) -> None:
        done = retrain.run_pending(ws)
        if done:
            log.info("retraining: %s", ", ".join(f"{r.id} {r.status}" for r in done))

    return Job(name, parse_cron(cron), work)


def jobs_for(ws: Workspace) -> list[Job]:
    """The jobs this workspace's principal may run: schedules (monitor role), retraining
    (trainer role)."""
    principal = ws.principal
    jobs: list[Job] = []
    if principal is not None and principal.may("monitor.run"):
        jobs.extend(monitor_job(ws, s) for s in ws.config.monitor.schedules)
    if principal is not None and principal.may("train.run") and principal.may("model.register"):
        jobs.append(_retrain_job(ws))
    return jobs


def scheduler_for(ws: Workspace) -> Scheduler:
    """A scheduler of `jobs_for(ws)` (not started)."""
    return Scheduler(jobs_for(ws))


def run_all(ws: Workspace) -> list[str]:
    """Run every job once now (for an external cron calling `aidlc monitor schedule --once`)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    ran = []
    for job in jobs_for(ws):
        try:
            job.run(now)
        except AidlcError as exc:
            log.warning("scheduled job %s failed: %s", job.name, exc.message)
        ran.append(job.name)
    return ran
