"""The import pipeline as one straight line: check -> read -> map -> normalise -> validate -> stage -> commit.

validate_file is the dry run; import_file keeps the original, records the batch and commits a clean
file in one transaction. Both report progress through an optional callable(step, fraction).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from fleet.base.config import DEFAULT_MAX_UPLOAD_MB
from fleet.base.models import ImportBatch, User, utcnow
from fleet.base.text import _
from imports.annotate import findings_sheet_titles
from imports.commit import commit_batch
from imports.normalise import normalise
from imports.package import ReaderFault, UnusableFile, check_package
from imports.policy import import_policy
from imports.read import read_table
from imports.report import ValidationReport
from imports.schema import ImportPolicy
from imports.stage import committed_batch, record_report, sha256_of, stage_batch
from imports.template import INSTRUCTION_SHEET
from imports.validate import Validated, validate_table

Progress = Callable[[str, float], None]
log = logging.getLogger(__name__)


def own_sheets() -> frozenset[str]:
    """Sheets of ours in files that come back: the template filled in, an annotated file corrected (its
    findings sheet titled in the language it was written in)."""
    return frozenset({INSTRUCTION_SHEET, *findings_sheet_titles()})


class ImportFailed(RuntimeError):
    """Committing a clean batch failed; nothing of it was written and the batch is marked failed."""

    def __init__(self, batch_id: int, message: str) -> None:
        super().__init__(message)
        self.batch_id = batch_id
        self.message = message


@dataclass
class ImportOutcome:
    report: ValidationReport
    batch: ImportBatch | None
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicate_of: int | None = None  # the batch that already committed the same file

    def as_json(self) -> dict:
        return {
            **self.report.as_json(),
            "batch": self.batch.id if self.batch is not None else None,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicate_of": self.duplicate_of,
        }


def reader_fault(file_name: str) -> ReaderFault:
    """The error for a fault of the program while reading a file: logged with its traceback under an id
    that the message shows the user (call it while handling the exception)."""
    error_id = uuid.uuid4().hex[:12]
    log.exception("reading %r failed: internal_error %s", file_name, error_id)
    return ReaderFault(error_id)


def _no_progress(step: str, fraction: float) -> None:
    pass


def _max_bytes(max_bytes: int | None) -> int:
    return max_bytes if max_bytes is not None else DEFAULT_MAX_UPLOAD_MB * 1024 * 1024


def _validated(
    session: Session,
    path: Path,
    *,
    user: User | None,
    file_name: str | None,
    progress: Progress,
    max_bytes: int | None,
    policy: ImportPolicy | None,
    skip_locked: bool = False,
) -> Validated:
    progress("check", 0.0)
    check_package(path, max_bytes=_max_bytes(max_bytes))
    progress("read", 0.05)
    try:
        raw = read_table(path, name=file_name or path.name, own_sheets=own_sheets())
    except UnusableFile:
        raise
    except Exception as exc:
        # The reader refuses a broken file as UnusableFile itself; anything else is a fault of ours.
        raise reader_fault(file_name or path.name) from exc
    progress("normalise", 0.35)
    frame = normalise(raw.frame, date1904=raw.date1904)
    progress("validate", 0.5)
    validated = validate_table(
        session,
        raw,
        frame,
        file_name=file_name or path.name,
        policy=policy or import_policy(session),
        user=user,
        skip_locked=skip_locked,
    )
    progress("validated", 0.7)
    return validated


def validate_file(
    session: Session,
    path: Path,
    *,
    user: User | None = None,
    file_name: str | None = None,
    progress: Progress | None = None,
    max_bytes: int | None = None,
    policy: ImportPolicy | None = None,
    skip_locked: bool = False,
) -> ValidationReport:
    """The dry run: every error and warning of the file, nothing stored. Raises UnusableFile.

    max_bytes defaults to MAX_UPLOAD_MB's default (the app passes its own); policy to the active rule pack's."""
    progress = progress or _no_progress
    report = _validated(
        session, path, user=user, file_name=file_name, progress=progress, max_bytes=max_bytes, policy=policy,
        skip_locked=skip_locked,
    ).report
    progress("done", 1.0)
    return report


def _single_agency(validated: Validated, user: User | None) -> int | None:
    ids = validated.agency_ids.dropna().unique()
    if len(ids) == 1:
        return int(ids[0])
    return user.agency_id if user is not None else None


def import_file(
    session: Session,
    path: Path,
    *,
    user: User | None = None,
    file_name: str | None = None,
    progress: Progress | None = None,
    max_bytes: int | None = None,
    policy: ImportPolicy | None = None,
    skip_locked: bool = False,
    reported_on: dt.date | None = None,
) -> ImportOutcome:
    """Validate, keep the original, and commit when clean. Owns its transactions: the batch is recorded
    (and kept) first; the acquisitions are written in one further transaction or not at all.

    Raises UnusableFile (nothing stored) and ImportFailed (the commit failed; batch marked failed)."""
    progress = progress or _no_progress
    progress("check", 0.0)
    check_package(path, max_bytes=_max_bytes(max_bytes))
    content = path.read_bytes()
    earlier = committed_batch(session, sha256_of(content))
    if earlier is not None:
        progress("done", 1.0)
        return ImportOutcome(ValidationReport.from_record(earlier.report), None, duplicate_of=earlier.id)

    validated = _validated(
        session, path, user=user, file_name=file_name, progress=progress, max_bytes=max_bytes, policy=policy,
        skip_locked=skip_locked,
    )
    progress("stage", 0.75)
    batch = stage_batch(
        session,
        content,
        validated.report,
        file_name=file_name or path.name,
        user=user,
        agency_id=_single_agency(validated, user),
    )
    if validated.report.ok:
        # Committed as `importing` with a heartbeat, not `valid`: should this process die during the
        # commit, the reaper (fleet.jobs.reaper) finds the batch silent and fails it.
        batch.status, batch.heartbeat_at = "importing", utcnow()
    session.commit()
    if not validated.report.ok:
        progress("done", 1.0)
        return ImportOutcome(validated.report, batch)

    return _commit(
        session, batch, validated, user_id=user.id if user is not None else None, reported_on=reported_on, progress=progress
    )


def _commit(
    session: Session,
    batch: ImportBatch,
    validated: Validated,
    *,
    user_id: int | None,
    reported_on: dt.date | None,
    progress: Progress,
) -> ImportOutcome:
    progress("commit", 0.8)
    try:
        counts = commit_batch(session, batch, validated, reported_on=reported_on or dt.date.today(), user_id=user_id)
        session.commit()
    except Exception as exc:
        session.rollback()
        # The database's own words (SQL, parameters) go to the log with an id, never to the user.
        error_id = uuid.uuid4().hex[:12]
        log.exception("commit of batch %s failed (error id %s)", batch.id, error_id)
        batch.status = "failed"
        if isinstance(exc, OperationalError) and "locked" in str(exc.orig):
            batch.message = _("数据库正忙（另一项导入正在写入），本批次未写入任何数据。请稍后重新导入。")
        else:
            batch.message = _("导入时发生内部错误（错误编号 %(id)s），本批次未写入任何数据。", id=error_id)
        session.commit()
        raise ImportFailed(batch.id, _("导入失败，数据库未作任何更改：%(reason)s", reason=batch.message)) from exc
    progress("done", 1.0)
    return ImportOutcome(validated.report, batch, counts.inserted, counts.updated, counts.unchanged)


def commit_staged(
    session: Session,
    batch: ImportBatch,
    path: Path,
    *,
    user: User | None = None,
    progress: Progress | None = None,
    max_bytes: int | None = None,
    policy: ImportPolicy | None = None,
    skip_locked: bool = False,
    reported_on: dt.date | None = None,
) -> ImportOutcome:
    """Commit a batch staged earlier for a preview (the web flow); path holds its stored original.

    The file is validated again, since the registry and other agencies' vehicles may have changed
    since the preview: still clean, it is committed in one transaction; no longer clean, the batch
    becomes `invalid` with the new report. `user` limits the rows as in import_file; the audit names
    the user, or the uploader when the user is not an account (a reviewer's upload for an agency)."""
    progress = progress or _no_progress
    validated = _validated(
        session, path, user=user, file_name=batch.file_name, progress=progress, max_bytes=max_bytes, policy=policy,
        skip_locked=skip_locked,
    )
    report = validated.report
    record_report(batch, report)
    if not report.ok:
        session.commit()
        progress("done", 1.0)
        return ImportOutcome(report, batch)
    user_id = user.id if user is not None and user.id is not None else batch.uploaded_by_id
    return _commit(session, batch, validated, user_id=user_id, reported_on=reported_on, progress=progress)
