"""The report job: a compliance report with its whole vehicle detail, written off the request.

Launched like an import (fleet.jobs.launch): on the RQ queue when REDIS_URL is set, else in a thread
of this process; progress, heartbeat and the finished workbook go to the ReportJob row."""

from __future__ import annotations

import logging
import threading
import uuid

import sqlalchemy as sa
from flask import Flask, current_app

from fleet.base import db
from fleet.base.models import ReportJob, utcnow
from fleet.jobs.launch import JOB_TIMEOUT_SECONDS, queue_for
from fleet.jobs.progress import ProgressWriter
from fleet.read.report_jobs import build_report

log = logging.getLogger(__name__)

RUNNING = ("running",)
UNFINISHED = ("queued", *RUNNING)


def launch_report(job_id: int) -> None:
    """Start building the report; returns at once (the job's status and progress tell how it goes)."""
    app = current_app._get_current_object()
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        queue = queue_for(redis_url, app.config["IMPORT_QUEUE"])
        queue.enqueue(
            run_report_job, job_id, job_id=f"{queue.name}-report{job_id}-{uuid.uuid4().hex}",
            job_timeout=JOB_TIMEOUT_SECONDS, description=f"compliance report {job_id}",
        )
        return
    threading.Thread(target=_run_in_thread, args=(app, job_id), name=f"report-{job_id}", daemon=True).start()


def _run_in_thread(app: Flask, job_id: int) -> None:
    with app.app_context():
        run_report_job(job_id)


def run_report_job(job_id: int) -> str:
    """The job itself (RQ calls it by name): build the workbook and keep it on the job, or record the failure."""
    with current_app._get_current_object().app_context():
        session = db.get_session()
        job = session.get(ReportJob, job_id)
        if job is None or job.status != "queued":
            log.warning("report job %s skipped (status %s)", job_id, job.status if job else None)
            return job.status if job else "missing"
        job.status, job.heartbeat_at = "running", utcnow()
        session.commit()
        total = max(job.vehicle_rows, 1)
        try:
            with ProgressWriter(db.engine(), job_id, model=ReportJob, running=RUNNING) as progress:
                content = build_report(
                    session, job, deadline_days=current_app.config["REPORTING_DEADLINE_DAYS"],
                    # The last percent is the file's closing and storing.
                    progress=lambda rows: progress("vehicles", min(rows / total, 0.99)),
                )
        except Exception:
            log.exception("report job %s failed", job_id)
            session.rollback()
            session.execute(sa.update(ReportJob).where(ReportJob.id == job_id).values(status="failed", finished_at=utcnow()))
            session.commit()
            return "failed"
        session.execute(
            sa.update(ReportJob).where(ReportJob.id == job_id)
            .values(status="done", progress=100, message=None, content=content, finished_at=utcnow())
        )
        session.commit()
        return "done"
