"""Stage step: keep the original bytes (by SHA-256) and record the upload as an import batch with its report."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.models import ImportBatch, UploadFile, User
from imports.report import ValidationReport


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def store_upload(session: Session, content: bytes) -> UploadFile:
    """The stored original; the same bytes are kept once however often they are uploaded."""
    digest = sha256_of(content)
    upload = session.get(UploadFile, digest)
    if upload is None:
        upload = UploadFile(sha256=digest, size=len(content), content=content)
        session.add(upload)
    return upload


def committed_batch(session: Session, sha256: str) -> ImportBatch | None:
    """The batch that already committed these exact bytes, if any."""
    return session.scalar(
        sa.select(ImportBatch)
        .where(ImportBatch.sha256 == sha256, ImportBatch.status == "committed")
        .order_by(ImportBatch.id)
        .limit(1)
    )


def stage_batch(
    session: Session,
    content: bytes,
    report: ValidationReport | None,
    *,
    file_name: str,
    user: User | None,
    agency_id: int | None,
) -> ImportBatch:
    """Keep the original and record the batch: `valid` when it may be committed, `invalid` otherwise;
    without a report yet, `received` (a background job validates it)."""
    upload = store_upload(session, content)
    batch = ImportBatch(
        uploaded_by_id=user.id if user is not None else None,
        agency_id=agency_id,
        file_name=file_name[-255:],  # the column's length; the end keeps the extension
        sha256=upload.sha256,
        status="received",
    )
    if report is not None:
        record_report(batch, report)
    session.add(batch)
    session.flush()
    return batch


def record_report(batch: ImportBatch, report: ValidationReport) -> None:
    """Put a validation report on its batch: the counts, the report itself, `valid` or `invalid`."""
    batch.status = "valid" if report.ok else "invalid"
    batch.rows, batch.valid_rows = report.rows, report.valid_rows
    batch.error_count, batch.warning_count = len(report.errors), len(report.warnings)
    batch.report = report.to_record()
