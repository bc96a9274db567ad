"""The compliance report with its whole vehicle detail when it is too large for a request
(REPORT_VEHICLE_ROWS_ONLINE): asked for as a ReportJob, built by a background job (fleet.jobs.reports)
into a temporary file, streamed, and kept on the job for download."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from fleet.base.models import ReportJob, User
from fleet.base.periods import Period
from fleet.read.reports import compliance_workbook
from rules.active import active_pack
from rules.results import RuleResult


def vehicle_rows(results: list[RuleResult], *, agency_id: int | None) -> int:
    """Rows of the report's vehicle detail: every in-scope vehicle once per rule."""
    return sum(r.in_scope + r.exempt for r in results if (r.agency_id is None) == (agency_id is None))


def job_period(job: ReportJob) -> Period:
    return Period.parse_month(job.period) if len(job.period) == 7 else Period.year(int(job.period))


def request_report(
    session: Session, user: User, period: Period, *, agency_id: int | None, county: str | None, locale: str,
    vehicle_rows: int, file_name: str,
) -> ReportJob:
    """A queued job for the report; the caller commits and launches it."""
    job = ReportJob(
        requested_by_id=user.id, agency_id=agency_id, county=county, period=period.label, locale=locale,
        vehicle_rows=vehicle_rows, file_name=file_name, status="queued", progress=0,
    )
    session.add(job)
    session.flush()
    return job


def build_report(session: Session, job: ReportJob, *, deadline_days: int, progress: Callable[[int], None]) -> bytes:
    """The job's workbook, vehicle detail included; `progress` is told the vehicle rows written so far."""
    with tempfile.TemporaryDirectory(prefix="fleet-report-") as folder:
        path = Path(folder) / "report.xlsx"
        compliance_workbook(
            session, active_pack(session), job_period(job), deadline_days=deadline_days, agency_id=job.agency_id,
            county=job.county, locale=job.locale, target=path, progress=progress,
        )
        return path.read_bytes()
