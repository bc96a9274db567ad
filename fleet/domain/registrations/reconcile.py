"""Reconciliation: the self-reports checked against the registration record, one finding at a time.

Only what the loaded extracts cover is judged: a registration is looked at inside the period asked
for, and a reported acquisition is not_registered only when acquired inside a covered period and more
than the grace days before its end. Each finding has a stable code (FINDING_CODES) and is identified
by its code and VIN, which is what a reviewer's answer (explained, or correction asked) is kept by.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.models import (
    REVIEW_STATUSES,
    Acquisition,
    Agency,
    Registration,
    RegistrationExtract,
    RegistrationOwner,
    RegistrationReview,
    utcnow,
)
from fleet.base.periods import Period
from fleet.base.text import _l
from fleet.base.vocab import NEV_POWER_TYPES
from fleet.domain.registrations import codes
from fleet.domain.reporting import due_passed

FINDING_CODES = (
    "unreported",
    "pending_report",
    "power_mismatch",
    "owner_mismatch",
    "plate_mismatch",
    "usage_mismatch",
    "not_registered",
)
# What each code is called on pages and in mails.
FINDING_LABELS = {
    "unreported": _l("已登记未上报"),
    "pending_report": _l("已登记，尚未到报送期限"),
    "power_mismatch": _l("动力类型与登记不符"),
    "owner_mismatch": _l("登记所有人不是上报单位"),
    "plate_mismatch": _l("号牌与登记不符"),
    "usage_mismatch": _l("使用性质与车辆类别不符"),
    "not_registered": _l("上报有号牌但登记信息中没有"),
}
# SQLite allows 32766 bound parameters; VINs and plates are looked up in IN lists well below that.
_CHUNK = 5000

Range = tuple[dt.date, dt.date]


def coverage(session: Session, period: Period | None = None) -> list[Range]:
    """The dates the loaded extracts cover, as ranges joined where they touch, cut to the period."""
    ranges = sorted((first, last) for first, last in session.execute(sa.select(RegistrationExtract.first, RegistrationExtract.last)))
    joined: list[list[dt.date]] = []
    for first, last in ranges:
        if joined and first <= joined[-1][1] + dt.timedelta(days=1):
            joined[-1][1] = max(joined[-1][1], last)
        else:
            joined.append([first, last])
    if period is not None:
        joined = [[max(f, period.start), min(l, period.end)] for f, l in joined if f <= period.end and l >= period.start]
    return [(f, l) for f, l in joined]


@dataclass(frozen=True)
class Finding:
    """One disagreement between a self-report and the registration record."""

    code: str
    agency_id: int | None  # the agency it is about: the reporter, or the registered owner of an unreported vehicle
    agency: str | None
    vin: str
    plate: str | None
    registered_on: dt.date | None
    acquired_on: dt.date | None
    reported: str | None
    registered: str | None
    acquisition_id: int | None
    registration_id: int | None = None
    review: str | None = None  # a reviewer's answer: explained, correction_requested, or none yet
    comment: str | None = None

    @property
    def nev_reported_fuel_registered(self) -> bool:
        """An NEV in the report that the registration says burns fuel: the power mismatch that counts first."""
        return self.code == "power_mismatch" and self.reported in NEV_POWER_TYPES and self.registered not in NEV_POWER_TYPES

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "agency": self.agency,
            "vin": self.vin,
            "plate": self.plate,
            "registered_on": _iso(self.registered_on),
            "acquired_on": _iso(self.acquired_on),
            "reported": self.reported,
            "registered": self.registered,
            "acquisition_id": self.acquisition_id,
            "review": self.review,
        }


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


@dataclass(frozen=True)
class Reconciliation:
    period: Period
    coverage: list[Range]
    findings: list[Finding] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {code: sum(1 for f in self.findings if f.code == code) for code in FINDING_CODES}

    def as_json(self) -> dict[str, Any]:
        return {
            "period": {"first": self.period.start.isoformat(), "last": self.period.end.isoformat()},
            "coverage": [{"first": f.isoformat(), "last": l.isoformat()} for f, l in self.coverage],
            "findings": [f.as_json() for f in self.findings],
            "counts": self.counts,
        }


def _within(column: Any, ranges: Sequence[Range]) -> Any:
    return sa.or_(*(column.between(first, last) for first, last in ranges))


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


@dataclass(frozen=True)
class _Registered:
    id: int
    vin: str
    plate: str | None
    registered_on: dt.date
    usage: str
    power: str
    agency_id: int | None
    agency: str | None
    category: str


@dataclass(frozen=True)
class _Reported:
    id: int
    agency_id: int
    agency: str
    vin: str
    plate: str | None
    category: str
    power: str
    acquired_on: dt.date


_REPORTED_COLUMNS = (
    Acquisition.id, Acquisition.agency_id, Agency.name, Acquisition.vin, Acquisition.plate, Acquisition.category,
    Acquisition.power, Acquisition.acquired_on,
)


def _registrations(session: Session, ranges: Sequence[Range]) -> list[_Registered]:
    """The registrations of the ranges whose owner is settled: an agency's, or one a reviewer marked not ours.
    An owner still waiting for a reviewer says nothing yet."""
    not_ours = sa.select(RegistrationOwner.owner_key).where(RegistrationOwner.not_ours)
    category = codes.category_expression(Registration.usage, Registration.vehicle_type, Agency.kind, Agency.sector)
    query = (
        sa.select(
            Registration.id, Registration.vin, Registration.plate, Registration.registered_on, Registration.usage,
            Registration.power, Registration.agency_id, Agency.name, category,
        )
        .outerjoin(Agency, Agency.id == Registration.agency_id)
        .where(_within(Registration.registered_on, ranges))
        .where(sa.or_(Registration.agency_id.is_not(None), Registration.owner_key.in_(not_ours)))
        .order_by(Registration.registered_on, Registration.vin)
    )
    return [_Registered(*row) for row in session.execute(query)]


def _reported_by(session: Session, column: Any, values: Sequence[str]) -> dict[str, _Reported]:
    found: dict[str, _Reported] = {}
    for part in _chunks(sorted(set(values))):
        query = sa.select(*_REPORTED_COLUMNS).join(Agency, Agency.id == Acquisition.agency_id).where(column.in_(part))
        for row in session.execute(query):
            reported = _Reported(*row)
            found[reported.vin if column is Acquisition.vin else reported.plate] = reported
    return found


def _not_registered(session: Session, ranges: Sequence[Range]) -> list[_Reported]:
    """Reported acquisitions with a plate, acquired inside a covered range and more than the grace days
    before its end, that no loaded extract holds (by VIN or plate)."""
    windows = [(first, last - dt.timedelta(days=codes.GRACE_DAYS + 1)) for first, last in ranges]
    windows = [(first, last) for first, last in windows if first <= last]
    if not windows:
        return []
    by_vin = sa.select(Registration.id).where(Registration.vin == Acquisition.vin)
    by_plate = sa.select(Registration.id).where(Registration.plate == Acquisition.plate)
    query = (
        sa.select(*_REPORTED_COLUMNS)
        .join(Agency, Agency.id == Acquisition.agency_id)
        .where(Acquisition.plate.is_not(None), _within(Acquisition.acquired_on, windows))
        .where(~sa.exists(by_vin), ~sa.exists(by_plate))
        .order_by(Acquisition.acquired_on, Acquisition.vin)
    )
    return [_Reported(*row) for row in session.execute(query)]


_NOT_OURS = "not_ours"  # the registered owner as findings show it when a reviewer marked it not ours


def _pair(code: str, a: _Reported, r: _Registered, reported: str | None, registered: str | None) -> Finding:
    """A finding about a vehicle both reported (a) and registered (r)."""
    return Finding(code, a.agency_id, a.agency, r.vin, r.plate or a.plate, r.registered_on, a.acquired_on, reported,
                   registered, a.id, r.id)


def reconcile(
    session: Session, period: Period, *, today: dt.date, due_day: int, agency_id: int | None = None
) -> Reconciliation:
    """Every finding of the period (only its covered days), or of one agency's: what the self-reports
    miss (unreported, or pending_report before the reporting cycle's due date of the registration's
    month: due_day is the one in force, fleet.domain.reporting.due_day_in_force), misstate (power, owner, plate,
    usage) or report that no extract holds (not_registered)."""
    ranges = coverage(session, period)
    if not ranges:
        return Reconciliation(period, [])
    registered = _registrations(session, ranges)
    by_vin = _reported_by(session, Acquisition.vin, [r.vin for r in registered])
    plates = [r.plate for r in registered if r.vin not in by_vin and r.plate]
    by_plate = _reported_by(session, Acquisition.plate, plates) if plates else {}
    found: list[Finding] = []
    for r in registered:
        a = by_vin.get(r.vin) or (by_plate.get(r.plate) if r.plate else None)
        if a is None:
            if r.agency_id is not None:
                code = "unreported" if due_passed(r.registered_on, due_day, today) else "pending_report"
                found.append(Finding(code, r.agency_id, r.agency, r.vin, r.plate, r.registered_on, None, None, r.power, None, r.id))
            continue
        if r.agency_id != a.agency_id:
            found.append(_pair("owner_mismatch", a, r, a.agency, r.agency if r.agency_id is not None else _NOT_OURS))
        if not codes.same_power(a.power, r.power):
            found.append(_pair("power_mismatch", a, r, a.power, r.power))
        if a.plate and r.plate and a.plate != r.plate:
            found.append(_pair("plate_mismatch", a, r, a.plate, r.plate))
        if not codes.usage_agrees(a.category, r.usage):
            found.append(_pair("usage_mismatch", a, r, a.category, codes.USAGES.label(r.usage)))
    for a in _not_registered(session, ranges):
        if period.start <= a.acquired_on <= period.end:
            found.append(Finding("not_registered", a.agency_id, a.agency, a.vin, a.plate, None, a.acquired_on, a.plate, None, a.id))
    if agency_id is not None:
        found = [f for f in found if f.agency_id == agency_id]
    found = _with_reviews(session, found)
    order = {code: i for i, code in enumerate(FINDING_CODES)}
    found.sort(key=lambda f: (order[f.code], not f.nev_reported_fuel_registered, f.agency or "",
                              f.registered_on or f.acquired_on or dt.date.min, f.vin))
    return Reconciliation(period, ranges, found)


def _with_reviews(session: Session, found: list[Finding]) -> list[Finding]:
    if not found:
        return found
    reviews = {
        (code, vin): (status, comment)
        for code, vin, status, comment in session.execute(
            sa.select(RegistrationReview.code, RegistrationReview.vin, RegistrationReview.status, RegistrationReview.comment)
        )
    }
    result = []
    for f in found:
        status, comment = reviews.get((f.code, f.vin), (None, None))
        result.append(f if status is None else dataclasses.replace(f, review=status, comment=comment))
    return result


class ReviewError(ValueError):
    """A review that cannot be recorded (an unknown code or answer, an explanation without a comment)."""


def review_finding(
    session: Session, code: str, vin: str, *, status: str, comment: str | None, user_id: int | None
) -> RegistrationReview:
    """A reviewer's answer to a finding: explained (a comment is required) or correction_requested."""
    comment = (comment or "").strip() or None
    if code not in FINDING_CODES or status not in REVIEW_STATUSES:
        raise ReviewError(f"{code}/{status}")
    if status == "explained" and comment is None:
        raise ReviewError("comment")
    review = session.scalar(sa.select(RegistrationReview).where(RegistrationReview.code == code, RegistrationReview.vin == vin))
    if review is None:
        review = RegistrationReview(code=code, vin=vin)
        session.add(review)
    review.status, review.comment, review.reviewed_by_id, review.reviewed_at = status, comment, user_id, utcnow()
    session.flush()
    audit.record(session, "registrations.review", user_id=user_id, target_type="registration_review", target_id=review.id,
                 detail={"code": code, "vin": vin, "status": status, "comment": comment})
    return review
