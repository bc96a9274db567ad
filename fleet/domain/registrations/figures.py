"""The figures "with the registrations": each rule's result as if the self-reports said what the
registration record says — unreported registrations added to scope with their registered power, and
power mismatches counted as registered. The rule engine counts them (rules.engine.evaluate with an
extra source of rows); nothing here does rule arithmetic.

A finding a reviewer marked explained changes nothing: the reviewer accepted the report as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.models import Acquisition, Agency, Registration
from fleet.base.periods import Period
from fleet.base.vocab import ACQUISITION_KINDS
from fleet.domain.registrations import codes
from fleet.domain.registrations.reconcile import Finding
from rules.counting import Source
from rules.engine import evaluate
from rules.packs import RulePack
from rules.results import RuleResult

# SQLite allows 32766 bound parameters: ids go in IN lists well below that.
_CHUNK = 5000
# An unreported vehicle's acquisition kind is unknown; the first kind (新增) is what the record shows:
# a vehicle newly registered to the agency.
_NEW = ACQUISITION_KINDS.values[0]
_COLUMNS = ("agency_id", "category", "power", "acquisition_kind", "emission_standard", "catalogued",
            "exemption_state", "acquired", "weight")


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _labelled(*columns: Any) -> list[Any]:
    return [column.label(name) for column, name in zip(columns, _COLUMNS)]


def _reported(power: Any, weight: int) -> list[Any]:
    return _labelled(
        Acquisition.agency_id, Acquisition.category, power, Acquisition.acquisition_kind,
        sa.func.coalesce(Acquisition.emission_standard, ""), Acquisition.catalogue_entry_id.is_not(None),
        Acquisition.exemption_state, Acquisition.acquired_on, sa.literal(weight, sa.Integer),
    )


def adjustments(findings: Iterable[Finding]) -> Source | None:
    """The rows that turn the reported figures into the registration record's, or None when there are none."""
    findings = [f for f in findings if f.review != "explained"]
    unreported = [f.registration_id for f in findings if f.code == "unreported"]
    mismatched = [f for f in findings if f.code == "power_mismatch"]
    parts: list[sa.Select] = []
    category = codes.category_expression(Registration.usage, Registration.vehicle_type, Agency.kind, Agency.sector)
    for ids in _chunks(unreported):
        columns = _labelled(
            Registration.agency_id, category, Registration.power, sa.literal(_NEW, sa.String),
            sa.func.coalesce(Registration.emission_standard, ""), sa.false(), sa.literal(0, sa.SmallInteger),
            Registration.registered_on, sa.literal(1, sa.Integer),
        )
        parts.append(sa.select(*columns).join(Agency, Agency.id == Registration.agency_id).where(Registration.id.in_(ids)))
    for part in _chunks(mismatched):
        acquisitions = [f.acquisition_id for f in part]
        registrations = [f.registration_id for f in part]
        # What was reported comes out, and the same vehicle goes back in with its registered power.
        parts.append(sa.select(*_reported(Acquisition.power, -1)).where(Acquisition.id.in_(acquisitions)))
        same_vehicle = sa.or_(Registration.vin == Acquisition.vin, Registration.plate == Acquisition.plate)
        parts.append(
            sa.select(*_reported(Registration.power, 1))
            .join(Registration, sa.and_(same_vehicle, Registration.id.in_(registrations)))
            .where(Acquisition.id.in_(acquisitions))
        )
    if not parts:
        return None
    rows = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("with_registrations")
    return Source(*(rows.c[name] for name in _COLUMNS))


def with_registrations(
    session: Session,
    pack: RulePack,
    period: Period,
    findings: Iterable[Finding],
    *,
    agency_id: int | None = None,
    county: str | None = None,
    accepted_only: bool = False,
) -> list[RuleResult]:
    """evaluate() of the period counted from what the registration record says where it disagrees with
    the reports. `findings` are reconcile()'s over the calendar year (at least), which decides whether
    a rule open to any agency kind applies."""
    extra = adjustments(findings)
    return evaluate(session, pack, period, agency_id=agency_id, county=county, accepted_only=accepted_only, extra=extra)


def year_of(period: Period) -> Period:
    """The calendar year (or years) around a period: what its findings must cover for with_registrations."""
    if period.start.year == period.end.year:
        return Period.year(period.start.year)
    return Period("year", dt.date(period.start.year, 1, 1), dt.date(period.end.year, 12, 31), period.label)
