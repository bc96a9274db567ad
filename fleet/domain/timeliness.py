"""Timeliness: acquisitions reported later than REPORTING_DEADLINE_DAYS after their date (whether an agency
reported a month at all is the reporting cycle's: fleet.domain.reporting).

An acquisition is late when it was first reported (Acquisition.reported_on) more than the deadline
(REPORTING_DEADLINE_DAYS, 30 by default) after it was acquired. Periods select acquisitions by the
date they were reported, so a month's figures are final once the month is over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from fleet.base.models import Acquisition, AcquisitionTally, Agency
from fleet.base.periods import Period, split_at_whole_months
from fleet.domain.selection import selected_agencies


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


def days_late(acquired_on: dt.date, reported_on: dt.date, deadline_days: int) -> int:
    """Days an acquisition was first reported beyond the deadline; 0 when it was on time."""
    return max(0, (reported_on - acquired_on).days - deadline_days)


def _delay() -> sa.ColumnElement[int]:
    return days_between(Acquisition.reported_on, Acquisition.acquired_on)


def _filters(
    first: dt.date, last: dt.date, agency_id: int | None, county: str | None, agency_ids: Collection[int] | None = None
) -> list[sa.ColumnElement[bool]]:
    """Acquisitions first reported from first to last by the agencies selected."""
    return [Acquisition.reported_on.between(first, last), *selected_agencies(Acquisition.agency_id, agency_id, county, agency_ids)]


def late_acquisitions(
    session: Session,
    period: Period,
    *,
    deadline_days: int,
    agency_id: int | None = None,
    county: str | None = None,
    limit: int | None = None,
) -> list[LateAcquisition]:
    """Acquisitions reported in the period more than deadline_days after their date, latest first;
    the first `limit` of them when given (late_counts counts them all)."""
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
        .where(delay > deadline_days, *_filters(period.start, period.end, agency_id, county))
        .order_by(delay.desc(), Agency.name, Acquisition.vin)
        .limit(limit)
    )
    return [LateAcquisition(*row, days_late=row[-1] - deadline_days) for row in session.execute(query)]


def late_counts(
    session: Session,
    period: Period,
    *,
    deadline_days: int,
    agency_id: int | None = None,
    county: str | None = None,
    agency_ids: Collection[int] | None = None,
) -> list[LateCount]:
    """Per agency that reported anything in the period: how many acquisitions, and how many late.
    Whole months of report dates are summed from the tallies, which keep each vehicle's days from
    acquisition to report; the days of a month cut short are counted from acquisitions. Agency names
    are looked up once afterwards."""
    t = AcquisitionTally
    whole, edges = split_at_whole_months(period.start, period.end)
    parts = []
    if whole:
        parts.append(
            sa.select(t.agency_id, sa.func.sum(t.acquisitions), sa.func.sum(sa.case((t.report_delay > deadline_days, t.acquisitions), else_=0)))
            .where(t.reported_month.between(*whole), *selected_agencies(t.agency_id, agency_id, county, agency_ids))
            .group_by(t.agency_id)
        )
    for first, last in edges:
        parts.append(
            sa.select(Acquisition.agency_id, sa.func.count(), sa.func.sum(sa.case((_delay() > deadline_days, 1), else_=0)))
            .where(*_filters(first, last, agency_id, county, agency_ids))
            .group_by(Acquisition.agency_id)
        )
    counts: dict[int, tuple[int, int]] = {}
    for agency, reported, late in session.execute(sa.union_all(*parts)):
        before = counts.get(agency, (0, 0))
        counts[agency] = (before[0] + int(reported), before[1] + int(late))
    names = session.execute(sa.select(Agency.id, Agency.name).where(Agency.id.in_(list(counts))).order_by(Agency.name))
    return [LateCount(agency_id, name, *counts[agency_id]) for agency_id, name in names]
