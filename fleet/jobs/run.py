"""The job: validate a stored upload, or commit a validated one, and record how it ended on the batch."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from fleet.base import db
from fleet.base.config import max_upload_bytes
from fleet.base.models import ImportBatch, UploadFile, User, utcnow
from fleet.jobs.progress import RUNNING, ProgressWriter
from imports.annotate import annotate_workbook
from imports.package import UnusableFile
from imports.pipeline import ImportFailed, Progress, commit_staged, validate_file
from imports.report import ValidationReport
from imports.stage import record_report

log = logging.getLogger(__name__)

# Statuses of a batch that is not finished yet: the page shows progress instead of a result.
UNFINISHED = ("received", *RUNNING)


def run_import_job(batch_id: int, commit: bool = False) -> str:
    """The job itself (RQ calls it by name): run the batch's validation or import, record the outcome.

    Runs inside the app context of whoever runs it: the thread's, or the RQ worker's (fleet/cli/worker.py)."""
    # A context of its own gives the job its own session, apart from the caller's.
    with current_app._get_current_object().app_context():
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
