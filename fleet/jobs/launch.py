"""Where a job runs: on an RQ queue when REDIS_URL is set, else in a thread of this process."""

from __future__ import annotations

import threading
import uuid

from flask import Flask, current_app

from fleet.jobs.run import run_import_job

# Generous: a 100,000-row import takes well under a minute, but a worker may share a busy machine.
JOB_TIMEOUT_SECONDS = 1800


def launch_import(batch_id: int, *, commit: bool = False) -> None:
    """Validate a stored upload in the background and, with commit=True, import it when it is clean.

    Returns at once; the batch's status and progress tell how the job goes."""
    app = current_app._get_current_object()
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        queue = queue_for(redis_url, app.config["IMPORT_QUEUE"])
        queue.enqueue(
            run_import_job,
            batch_id,
            commit,
            job_id=f"{queue.name}-batch{batch_id}-{uuid.uuid4().hex}",
            job_timeout=JOB_TIMEOUT_SECONDS,
            description=f"import batch {batch_id}",
        )
        return
    thread = threading.Thread(
        target=_run_in_thread, args=(app, batch_id, commit), name=f"import-batch-{batch_id}", daemon=True
    )
    thread.start()


def queue_for(redis_url: str, name: str):
    from redis import Redis
    from rq import Queue

    return Queue(name, connection=Redis.from_url(redis_url))


def _run_in_thread(app: Flask, batch_id: int, commit: bool) -> None:
    with app.app_context():
        run_import_job(batch_id, commit)
