"""Batches and report jobs whose job died, found and failed off the request, and finished report
workbooks dropped once kept long enough: by a thread of each web process every minute, and by
`flask --app app housekeeping` (cron) where no web process runs.

A running job writes its heartbeat every HEARTBEAT_SECONDS and is taken for dead when it has been
silent for STALLED_AFTER: its process was killed or lost its machine, and its transaction went with
it, so nothing of the file was written. The heartbeat cannot be written while SQLite's single writer
lock is held by the import's own commit, which takes seconds, not minutes. An import from the command
line runs its commit as `importing` too, so a killed `flask import` ends failed, not `valid` for ever.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from fleet.base import db
from fleet.base.models import ImportBatch, ReportJob, utcnow
from fleet.domain.identity import forget_old_failures
from fleet.jobs.progress import RUNNING
from fleet.jobs.reports import RUNNING as REPORT_RUNNING

log = logging.getLogger(__name__)

STALLED_AFTER = dt.timedelta(minutes=5)
# ImportBatch.message of a batch whose job died.
INTERRUPTED = "interrupted"
REAP_EVERY_SECONDS = 60.0


def fail_stalled(session: Session, *, now: dt.datetime | None = None) -> int:
    """Mark failed every running batch whose job has been silent for STALLED_AFTER; returns how many.

    A batch row locked by a live job is skipped (PostgreSQL); on SQLite a busy database leaves the
    check to the next round."""
    return _fail_silent(session, ImportBatch, RUNNING, ImportBatch.uploaded_at, now)


def fail_stalled_reports(session: Session, *, now: dt.datetime | None = None) -> int:
    """The same for report jobs: a report whose builder died says failed, and can be asked for again."""
    return _fail_silent(session, ReportJob, REPORT_RUNNING, ReportJob.created_at, now)


def _fail_silent(
    session: Session, model: type[ImportBatch | ReportJob], running: tuple[str, ...], started: sa.Column,
    now: dt.datetime | None,
) -> int:
    cutoff = (now or utcnow()) - STALLED_AFTER
    silent = sa.func.coalesce(model.heartbeat_at, started) < cutoff
    try:
        stalled = session.scalars(
            sa.select(model.id).where(model.status.in_(running), silent).with_for_update(skip_locked=True)
        ).all()
        if stalled:
            session.execute(
                sa.update(model)
                .where(model.id.in_(stalled), model.status.in_(running), silent)
                .values(status="failed", message=INTERRUPTED)
                .execution_options(synchronize_session="fetch")
            )
            log.warning("%s %s failed: their jobs stopped answering", model.__tablename__, stalled)
        session.commit()
    except OperationalError:
        session.rollback()
        return 0
    return len(stalled)


def drop_old_reports(session: Session, *, keep: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Report jobs finished (done or failed) longer than `keep` ago, deleted with their workbook: a
    city report is tens of megabytes, and anyone may ask for a fresh one; returns how many."""
    cutoff = (now or utcnow()) - keep
    dropped = session.execute(
        sa.delete(ReportJob).where(
            ReportJob.status.in_(("done", "failed")),
            # A job failed by the reaper has no finish time: its last sign of life stands for it.
            sa.func.coalesce(ReportJob.finished_at, ReportJob.heartbeat_at, ReportJob.created_at) < cutoff,
        )
    ).rowcount
    session.commit()
    return dropped


def housekeeping(session: Session, *, keep_reports: dt.timedelta) -> dict[str, int]:
    """Everything that must happen now and then whoever is asking: dead jobs' batches and reports
    failed, old report workbooks dropped, login counters nobody needs any more dropped."""
    failed = fail_stalled(session)
    failed_reports = fail_stalled_reports(session)
    dropped = drop_old_reports(session, keep=keep_reports)
    forgotten = forget_old_failures(session)
    session.commit()
    return {
        "failed_batches": failed, "failed_reports": failed_reports, "dropped_reports": dropped,
        "forgotten_login_counters": forgotten,
    }


def report_keep(config: dict) -> dt.timedelta:
    return dt.timedelta(days=config["REPORT_KEEP_DAYS"])


def start_reaper(app: Flask, *, every: float = REAP_EVERY_SECONDS) -> threading.Thread:
    """Run housekeeping every `every` seconds in a daemon thread of this process."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            with app.app_context():
                try:
                    housekeeping(db.get_session(), keep_reports=report_keep(app.config))
                except Exception:
                    log.exception("housekeeping failed; trying again in %s s", every)

    thread = threading.Thread(target=loop, name="fleet-reaper", daemon=True)
    thread.start()
    return thread
