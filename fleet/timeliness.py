"""Timeliness (SPEC §4.3): acquisitions reported late, and agencies that reported nothing in a month.

An acquisition is late when it was first reported (Acquisition.reported_on) more than the deadline
(REPORTING_DEADLINE_DAYS, 30 by default) after it was acquired. Periods select acquisitions by the
date they were reported, so a month's figures are final once the month is over.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from fleet.models import Acquisition, Agency, ImportBatch
from rules.engine import agencies_condition
from rules.periods import Period


class days_between(FunctionElement[int]):
    """Whole days from the second date to the first. Date arithmetic is the one thing SQLite and
    PostgreSQL spell differently, so it is compiled per dialect here instead of in each query."""

    type = sa.Integer()
    name = "days_between"
    inherit_cache = True


@compiles(days_between)
def _days_between(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    # PostgreSQL: date - date is an integer number of days.
    return f"({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return f"CAST(julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)}) AS INTEGER)"


@dataclass(frozen=True)
class LateAcquisition:
    acquisition_id: int
    agency_id: int
    agency: str
    vin: str
    plate: str | None
    category: str
    acquired_on: dt.date
    reported_on: dt.date
    days: int  # from acquisition to report
    days_late: int  # beyond the deadline


@dataclass(frozen=True)
class LateCount:
    agency_id: int
    agency: str
    reported: int  # acquisitions first reported in the period
    late: int  # of which late


def _delay() -> sa.ColumnElement[int]:
    return days_between(Acquisition.reported_on, Acquisition.acquired_on)


def _filters(
    session: Session, period: Period, agency_id: int | None = None, county: str | None = None
) -> list[sa.ColumnElement[bool]]:
    """Acquisitions first reported in the period by the agencies selected, in a form that reads
    ix_acquisitions_reported (agency_id, reported_on, …) agency by agency."""
    where = [Acquisition.reported_on.between(period.start, period.end)]
    if agency_id is not None:
        where.append(Acquisition.agency_id == agency_id)
    if county is not None or agency_id is None:
        where += agencies_condition(session, county)
    return where


def late_acquisitions(
    session: Session, period: Period, *, deadline_days: int, agency_id: int | None = None, county: str | None = None
) -> list[LateAcquisition]:
    """Acquisitions reported in the period more than deadline_days after their date, latest first."""
    delay = _delay()
    query = (
        sa.select(
            Acquisition.id,
            Acquisition.agency_id,
            Agency.name,
            Acquisition.vin,
            Acquisition.plate,
            Acquisition.category,
            Acquisition.acquired_on,
            Acquisition.reported_on,
            delay,
        )
        .join(Agency, Agency.id == Acquisition.agency_id)
        .where(delay > deadline_days, *_filters(session, period, agency_id, county))
        .order_by(delay.desc(), Agency.name, Acquisition.vin)
    )
    return [LateAcquisition(*row, days_late=row[-1] - deadline_days) for row in session.execute(query)]


def late_counts(
    session: Session, period: Period, *, deadline_days: int, agency_id: int | None = None, county: str | None = None
) -> list[LateCount]:
    """Per agency that reported anything in the period: how many acquisitions, and how many late.
    Counted from the report-date index alone; agency names are looked up once afterwards."""
    query = (
        sa.select(
            Acquisition.agency_id,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((_delay() > deadline_days, 1), else_=0)), 0),
        )
        .where(*_filters(session, period, agency_id, county))
        .group_by(Acquisition.agency_id)
    )
    counts = {agency_id: (int(reported), int(late)) for agency_id, reported, late in session.execute(query)}
    names = session.execute(sa.select(Agency.id, Agency.name).where(Agency.id.in_(list(counts))).order_by(Agency.name))
    return [LateCount(agency_id, name, *counts[agency_id]) for agency_id, name in names]


def agencies_not_reported(session: Session, month: Period, *, county: str | None = None) -> list[Agency]:
    """Agencies with neither an acquisition first reported in the month nor a committed upload of
    their own in it (an upload that only confirmed known vehicles still counts as reporting).

    The agencies that did report are read once, one index range per agency, rather than checked by
    a correlated EXISTS, for which SQLite picked ix_acquisitions_agency_acquired and read every
    acquisition of every agency (1.7 s on a million)."""
    # The IN over the agencies makes both databases read one short index range per agency.
    reported = sa.select(Acquisition.agency_id).where(
        Acquisition.agency_id.in_(sa.select(Agency.id)), Acquisition.reported_on.between(month.start, month.end)
    )
    uploaded = sa.select(ImportBatch.agency_id).where(
        # NOT IN over a NULL would exclude every agency; an upload without an agency reports for none.
        ImportBatch.agency_id.is_not(None),
        ImportBatch.status == "committed",
        ImportBatch.committed_at >= dt.datetime.combine(month.start, dt.time.min),
        ImportBatch.committed_at < dt.datetime.combine(month.end + dt.timedelta(days=1), dt.time.min),
    )
    query = sa.select(Agency).where(Agency.id.not_in(reported), Agency.id.not_in(uploaded)).order_by(Agency.name)
    if county is not None:
        query = query.where(Agency.county == county)
    return list(session.scalars(query))
