"""Batches whose job died, found and failed off the request: by a thread of each web process every
minute, and by `flask --app app housekeeping` (cron) where no web process runs.

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
from fleet.base.models import ImportBatch, utcnow
from fleet.domain.identity import forget_old_failures
from fleet.jobs.progress import RUNNING

log = logging.getLogger(__name__)

STALLED_AFTER = dt.timedelta(minutes=5)
# ImportBatch.message of a batch whose job died.
INTERRUPTED = "interrupted"
REAP_EVERY_SECONDS = 60.0


def fail_stalled(session: Session, *, now: dt.datetime | None = None) -> int:
    """Mark failed every running batch whose job has been silent for STALLED_AFTER; returns how many.

    A batch row locked by a live job is skipped (PostgreSQL); on SQLite a busy database leaves the
    check to the next round."""
    cutoff = (now or utcnow()) - STALLED_AFTER
    silent = sa.func.coalesce(ImportBatch.heartbeat_at, ImportBatch.uploaded_at) < cutoff
    try:
        stalled = session.scalars(
            sa.select(ImportBatch.id).where(ImportBatch.status.in_(RUNNING), silent).with_for_update(skip_locked=True)
        ).all()
        if stalled:
            session.execute(
                sa.update(ImportBatch)
                .where(ImportBatch.id.in_(stalled), ImportBatch.status.in_(RUNNING), silent)
                .values(status="failed", message=INTERRUPTED)
                .execution_options(synchronize_session="fetch")
            )
            log.warning("import batches %s failed: their jobs stopped answering", stalled)
        session.commit()
    except OperationalError:
        session.rollback()
        return 0
    return len(stalled)


def housekeeping(session: Session) -> dict[str, int]:
    """Everything that must happen now and then whoever is asking: dead jobs' batches failed, login
    counters nobody needs any more dropped."""
    failed = fail_stalled(session)
    forgotten = forget_old_failures(session)
    session.commit()
    return {"failed_batches": failed, "forgotten_login_counters": forgotten}


def start_reaper(app: Flask, *, every: float = REAP_EVERY_SECONDS) -> threading.Thread:
    """Run housekeeping every `every` seconds in a daemon thread of this process."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            with app.app_context():
                try:
                    housekeeping(db.get_session())
                except Exception:
                    log.exception("housekeeping failed; trying again in %s s", every)

    thread = threading.Thread(target=loop, name="fleet-reaper", daemon=True)
    thread.start()
    return thread
