"""Commands for the background work: the RQ worker, and housekeeping for cron."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from fleet.base import db
from fleet.cli.console import emit_json
from fleet.jobs import housekeeping, queue_for, report_keep


def _app_worker(app: Flask):
    """An RQ worker that runs each job inside this app's context: jobs never build an app of their own."""
    from rq import Worker

    class AppWorker(Worker):
        def perform_job(self, job, queue):  # type: ignore[no-untyped-def]
            with app.app_context():
                return super().perform_job(job, queue)

    return AppWorker


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty instead of waiting for jobs.")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Run an RQ worker for background imports (needs REDIS_URL)."""
    redis_url = current_app.config.get("REDIS_URL")
    if not redis_url:
        raise click.UsageError("REDIS_URL is not set: without Redis, imports run in a thread of the web process.")
    queue = queue_for(redis_url, current_app.config["IMPORT_QUEUE"])
    worker = _app_worker(current_app._get_current_object())
    worker([queue], connection=queue.connection).work(burst=burst)


@click.command("housekeeping")
@with_appcontext
def housekeeping_command() -> None:
    """Fail import batches and report jobs whose job died (silent for 5 minutes), drop report
    workbooks older than REPORT_KEEP_DAYS and stale login counters.

    Each web process does this every minute; run it from cron where imports run without one."""
    emit_json(housekeeping(db.get_session(), keep_reports=report_keep(current_app.config)))
