"""Background work: validating and importing large uploads off the request, in a thread or on RQ workers.

The embedded default runs a job in a thread of the web process. With REDIS_URL set, jobs go to an RQ
queue, and workers on any machine sharing the database run them; a worker builds its own app from the
environment. Either way the batch's status and progress live in the database (ImportBatch.status,
.progress, .message), so any web process can show them.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from flask.cli import with_appcontext
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from fleet.base import db
from fleet.base.config import max_upload_bytes
from fleet.base.models import ImportBatch, UploadFile, User, utcnow
from imports.annotate import annotate_workbook
from imports.package import UnusableFile
from imports.pipeline import ImportFailed, Progress, commit_staged, validate_file
from imports.report import ValidationReport
from imports.stage import record_report

log = logging.getLogger(__name__)

# Statuses of a batch a job is working on; progress is written only while the batch is in one of them.
RUNNING = ("validating", "importing")
# Statuses of a batch that is not finished yet: the page shows progress instead of a result.
UNFINISHED = ("received", *RUNNING)
# Generous: a 100,000-row import takes well under a minute, but a worker may share a busy machine.
JOB_TIMEOUT_SECONDS = 1800
# A running job writes its heartbeat this often, and is taken for dead when it has been silent this
# long: its process was killed or lost its machine, and its transaction went with it. The heartbeat
# cannot be written while SQLite's single writer lock is held by the import's own commit, which
# takes seconds, not minutes.
HEARTBEAT_SECONDS = 10.0
STALLED_AFTER = dt.timedelta(minutes=5)
# ImportBatch.message of a batch whose job died.
INTERRUPTED = "interrupted"


def launch_import(batch_id: int, *, commit: bool = False) -> None:
    """Validate a stored upload in the background and, with commit=True, import it when it is clean.

    Returns at once; the batch's status and progress tell how the job goes."""
    app = current_app._get_current_object()
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        queue = _queue(redis_url, app.config["IMPORT_QUEUE"])
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


def _queue(redis_url: str, name: str):
    from redis import Redis
    from rq import Queue

    return Queue(name, connection=Redis.from_url(redis_url))


def _run_in_thread(app: Flask, batch_id: int, commit: bool) -> None:
    with app.app_context():
        _run(batch_id, commit)


@cache
def _worker_app() -> Flask:
    # Imported here: the app module imports this package while it builds the app.
    from app import create_app

    return create_app()


def run_import_job(batch_id: int, commit: bool = False) -> str:
    """The job itself (RQ calls it by name): run the batch's validation or import, record the outcome.

    Inside an app context (the thread, a worker in a test) it uses that app; an RQ worker process
    has none and builds the app from the environment, as the web processes do."""
    app = current_app._get_current_object() if has_app_context() else _worker_app()
    # A context of its own gives the job its own session, apart from the caller's.
    with app.app_context():
        return _run(batch_id, commit)


def _upload_scope(batch: ImportBatch) -> User | None:
    """Whose rows the batch may hold: an agency user's own agency; a reviewer's upload for an agency
    is checked as if that agency had sent it, so a row of another agency is flagged."""
    uploader = batch.uploaded_by
    if uploader is not None and uploader.role == "agency":
        return uploader
    if batch.agency_id is not None:
        # Not an account: a stand-in carrying the agency the upload is for, never added to the session.
        return User(role="agency", agency_id=batch.agency_id)
    return uploader


@contextmanager
def temporary_copy(content: bytes, file_name: str) -> Iterator[Path]:
    """Uploaded bytes in a temporary file named like the upload's type: the reader works on paths.
    The user's file name itself is never used on disk."""
    suffix = Path(file_name).suffix.lower() or ".xlsx"
    with tempfile.TemporaryDirectory(prefix="fleet-import-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(content)
        yield path


def _stored_file(session: Session, batch: ImportBatch):
    """The batch's original bytes in a temporary file."""
    content = session.scalar(sa.select(UploadFile.content).where(UploadFile.sha256 == batch.sha256))
    return temporary_copy(content, batch.file_name)


def _validate(session: Session, batch: ImportBatch, progress: Progress) -> str | None:
    """Validate a received batch and put the report on it; returns why the file cannot be used, if so."""
    with _stored_file(session, batch) as path:
        try:
            report = validate_file(
                session, path, user=_upload_scope(batch), file_name=batch.file_name, progress=progress,
                max_bytes=max_upload_bytes(current_app.config), skip_locked=batch.skip_locked,
            )
        except UnusableFile as exc:
            # A fault of the reader (internal_error) leaves the file's verdict open: the batch failed.
            batch.status = "failed" if exc.code == "internal_error" else "invalid"
            return exc.message
        record_report(batch, report)
        _annotate(batch, path, report, progress)
    return None


def _commit(session: Session, batch: ImportBatch, progress: Progress) -> None:
    """Validate a valid batch again and commit it: it ends committed, or invalid when no longer clean."""
    with _stored_file(session, batch) as path:
        outcome = commit_staged(
            session, batch, path, user=_upload_scope(batch), progress=progress,
            max_bytes=max_upload_bytes(current_app.config), skip_locked=batch.skip_locked,
        )
        if not outcome.report.ok:
            _annotate(batch, path, outcome.report, progress)
            session.commit()


def _annotate(batch: ImportBatch, path: Path, report: ValidationReport, progress: Progress) -> None:
    """Make the annotated workbook of a large file with findings now, off the request that will
    download it; a small file's is made on download."""
    if (report.errors or report.warnings) and path.stat().st_size > current_app.config["IMPORT_BACKGROUND_BYTES"]:
        progress("annotate", 0.95)
        batch.annotated_workbook = annotate_workbook(path, report, file_name=batch.file_name)


def _run(batch_id: int, commit: bool) -> str:
    session = db.get_session()
    batch = session.get(ImportBatch, batch_id)
    expected = ("valid", "importing") if commit else ("received", "validating")
    if batch is None or batch.status not in expected:
        # Another worker got there first, or the batch is gone: nothing to do.
        log.warning("import job for batch %s skipped (status %s)", batch_id, batch.status if batch else None)
        return batch.status if batch else "missing"
    batch.status, batch.progress, batch.message = ("importing" if commit else "validating"), 0, None
    batch.heartbeat_at = utcnow()
    session.commit()
    message = None
    try:
        with ProgressWriter(db.engine(), batch_id) as progress:
            try:
                if commit:
                    _commit(session, batch, progress)
                else:
                    message = _validate(session, batch, progress)
            except BaseException:
                # Release the transaction's locks before the progress thread is joined.
                session.rollback()
                raise
    except ImportFailed:
        # commit_staged has rolled back and recorded the failure on the batch.
        log.exception("import of batch %s failed", batch_id)
        return session.get(ImportBatch, batch_id).status
    except Exception:
        log.exception("import job for batch %s failed", batch_id)
        session.execute(
            sa.update(ImportBatch).where(ImportBatch.id == batch_id).values(status="failed", message=None)
        )
        session.commit()
        return "failed"
    # While running, the message held the step (written by the progress thread, behind the ORM's
    # back); now it holds only what the user must read.
    session.flush()
    session.execute(sa.update(ImportBatch).where(ImportBatch.id == batch_id).values(progress=100, message=message))
    session.commit()
    return session.get(ImportBatch, batch_id).status


class ProgressWriter:
    """Keeps ImportBatch.progress current from a thread of its own with its own connection.

    The import writes in one transaction; a progress update from the importing thread could wait on
    that very transaction's locks (SQLite's single writer, PostgreSQL's row lock on the batch) and
    never return. So the pipeline's callback only records the latest step, and this thread writes it:
    if it has to wait, the import does not. An update only touches a batch still running, so a late
    write never undoes the final status."""

    def __init__(
        self, engine: sa.Engine, batch_id: int, *, interval: float = 0.5, heartbeat: float = HEARTBEAT_SECONDS
    ) -> None:
        self.engine = engine
        self.batch_id = batch_id
        self.interval = interval
        self.heartbeat = heartbeat
        self._latest: tuple[str, int] | None = None
        self._written: tuple[str, int] | None = None
        self._beat = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"progress-batch-{batch_id}", daemon=True)

    def __call__(self, step: str, fraction: float) -> None:
        self._latest = (step, max(0, min(100, int(fraction * 100))))

    def __enter__(self) -> ProgressWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        latest = self._latest
        due = time.monotonic() - self._beat >= self.heartbeat
        if (latest is None or latest == self._written) and not due:
            return
        values: dict[str, object] = {"heartbeat_at": utcnow()}
        if latest is not None:
            values.update(progress=latest[1], message=latest[0])
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    sa.update(ImportBatch)
                    .where(ImportBatch.id == self.batch_id, ImportBatch.status.in_(RUNNING))
                    .values(**values)
                )
        except OperationalError:
            # The database was busy (SQLite's writer lock held by the import): the next tick retries.
            log.debug("progress of batch %s not written this time", self.batch_id)
            return
        self._written = latest
        self._beat = time.monotonic()


def fail_stalled(session: Session, *, now: dt.datetime | None = None) -> int:
    """Mark failed every running batch whose job has been silent for STALLED_AFTER; returns how many.

    Called where batches are shown, so a job whose process died is reported instead of running for
    ever. A batch row locked by a live job is skipped (PostgreSQL); on SQLite a busy database leaves
    the check to the next page."""
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


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty instead of waiting for jobs.")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Run an RQ worker for background imports (needs REDIS_URL)."""
    from rq import Worker

    redis_url = current_app.config.get("REDIS_URL")
    if not redis_url:
        raise click.UsageError("REDIS_URL is not set: without Redis, imports run in a thread of the web process.")
    queue = _queue(redis_url, current_app.config["IMPORT_QUEUE"])
    Worker([queue], connection=queue.connection).work(burst=burst)
