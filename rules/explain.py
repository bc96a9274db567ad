"""Explanation: the vehicles behind a compliance result, each marked as counted, not counted, exempt or pending.

The lines come from the same SQL conditions as the engine (rules.counting.rule_conditions), so they always
add up to the result they explain: lines = in_scope + exempt, counted lines = nev.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.models import Acquisition, Agency, ExemptionRequest, NoNevCatalogueEntry
from fleet.base.periods import Period
from rules.counting import rule_conditions
from rules.packs import Rule, RulePack

MARKS = ("nev", "not_nev", "met", "not_met", "exempt", "pending")
# SQLite allows 32766 bound parameters; stay well below for IN lists.
_CHUNK = 5000


@dataclass(frozen=True)
class VehicleLine:
    acquisition_id: int
    vin: str
    plate: str | None
    category: str
    power: str
    acquisition_kind: str
    acquired_on: dt.date
    reported_on: dt.date
    emission_standard: str | None
    brand_model: str | None
    agency_id: int
    agency: str
    # nev / not_nev for an NEV-share rule, met / not_met for an emission-standard rule; exempt (taken
    # out of scope) and pending (exemption requested, still in scope and not counted) for either.
    mark: str
    counts: bool  # counts toward the rule's numerator (an NEV, or a vehicle meeting the standard)
    # {"source": "request", "id", "status", "reason_category", "reason"} or
    # {"source": "catalogue", "id", "description", "reason"}; None without an exemption.
    exemption: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["acquired_on"] = self.acquired_on.isoformat()
        data["reported_on"] = self.reported_on.isoformat()
        return data


def explain(
    session: Session,
    pack: RulePack,
    rule_qualified_id: str,
    period: Period,
    agency_id: int | None = None,
    *,
    county: str | None = None,
    limit: int | None = None,
) -> list[VehicleLine]:
    """Every acquisition in the rule's scope in the period (of one agency, a county's agencies or the
    whole city), exempt ones included, by agency name, date and VIN; the first `limit` of them when
    given (there are result.in_scope + result.exempt in all). An unknown rule raises PackError."""
    chunks = explain_chunks(session, pack, rule_qualified_id, period, agency_id, county=county, limit=limit)
    return [line for lines in chunks for line in lines]


def explain_by_agency(
    session: Session, pack: RulePack, rule_qualified_id: str, period: Period, agency_ids: Sequence[int]
) -> dict[int, list[VehicleLine]]:
    """explain()'s lines of several agencies read in one pass, by agency (each agency's in explain()'s
    order): what a run of many agencies' reports reads instead of one query per agency. Agencies
    with nothing in scope are left out."""
    rule = pack.rule(rule_qualified_id)
    found: dict[int, list[VehicleLine]] = {}
    for start in range(0, len(agency_ids), _CHUNK):
        chunk = sorted(set(agency_ids[start : start + _CHUNK]))
        for lines in _chunks(session, rule, period, None, None, None, _CHUNK, agency_ids=chunk):
            for line in lines:
                found.setdefault(line.agency_id, []).append(line)
    return found


def explain_chunks(
    session: Session,
    pack: RulePack,
    rule_qualified_id: str,
    period: Period,
    agency_id: int | None = None,
    *,
    county: str | None = None,
    limit: int | None = None,
    chunk: int = _CHUNK,
) -> Iterator[list[VehicleLine]]:
    """explain()'s lines, read from the database `chunk` rows at a time, so that a city's million
    vehicles are never all held (a report writes each chunk as it comes). An unknown rule raises
    PackError at once."""
    rule = pack.rule(rule_qualified_id)
    return _chunks(session, rule, period, agency_id, county, limit, chunk)


def _chunks(
    session: Session, rule: Rule, period: Period, agency_id: int | None, county: str | None, limit: int | None, chunk: int,
    *, agency_ids: Sequence[int] | None = None,
) -> Iterator[list[VehicleLine]]:
    window = rule.effective_within(period.start, period.end)
    if window is None:
        return
    c = rule_conditions(rule, *window)
    a = Acquisition
    query = (
        sa.select(
            a.id,
            a.vin,
            a.plate,
            a.category,
            a.power,
            a.acquisition_kind,
            a.acquired_on,
            a.reported_on,
            a.emission_standard,
            a.brand_model,
            a.agency_id,
            Agency.name,
            a.catalogue_entry_id,
            sa.case((c.meets, True), else_=False),
            sa.case((c.exempt, True), else_=False),
            sa.case((c.pending, True), else_=False),
        )
        .join(Agency, Agency.id == a.agency_id)
        .where(c.in_scope)
    )
    if rule.scope.agency_kinds is not None:
        query = query.where(Agency.kind.in_(sorted(rule.scope.agency_kinds)))
    if agency_id is not None:
        # One agency's vehicles in the order of its (agency, date) index, so that the first `limit`
        # are read as such instead of sorting all of an operator's year.
        query = query.where(a.agency_id == agency_id).order_by(a.acquired_on, a.vin)
    elif agency_ids is not None:
        query = query.where(a.agency_id.in_(agency_ids)).order_by(a.agency_id, a.acquired_on, a.vin)
    else:
        query = query.order_by(Agency.name, a.acquired_on, a.vin)
    if county is not None:
        query = query.where(Agency.county == county)
    for rows in session.execute(query.limit(limit), execution_options={"yield_per": chunk}).partitions():
        yield _lines(session, rule, rows)


def _lines(session: Session, rule: Rule, rows: Sequence[sa.Row]) -> list[VehicleLine]:
    flagged = [row[0] for row in rows if row[14] or row[15]]
    requests = _requests(session, flagged)
    catalogue = _catalogue(session, {row[12] for row in rows if row[14] and row[12] is not None})
    counted, not_counted = ("nev", "not_nev") if rule.measure == "nev_share" else ("met", "not_met")
    lines = []
    for row in rows:
        (acq_id, vin, plate, category, power, kind, acquired_on, reported_on, standard, brand_model, ag_id, ag_name,
         entry_id, meets, exempt, pending) = row
        exemption = None
        if exempt:
            mark = "exempt"
            exemption = requests.get(acq_id) if entry_id is None else catalogue.get(entry_id)
        elif pending:
            mark = "pending"
            exemption = requests.get(acq_id)
        else:
            mark = counted if meets else not_counted
        lines.append(
            VehicleLine(
                acq_id, vin, plate, category, power, kind, acquired_on, reported_on, standard, brand_model, ag_id, ag_name,
                mark, bool(meets), exemption,
            )
        )
    return lines


def _requests(session: Session, acquisition_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The deciding request of each acquisition: an approved one, else the latest pending one."""
    found: dict[int, dict[str, Any]] = {}
    rank = {"approved": 0, "pending": 1}
    for start in range(0, len(acquisition_ids), _CHUNK):
        chunk = acquisition_ids[start : start + _CHUNK]
        query = sa.select(ExemptionRequest).where(
            ExemptionRequest.acquisition_id.in_(chunk), ExemptionRequest.status.in_(list(rank))
        )
        for request in session.scalars(query.order_by(ExemptionRequest.requested_at, ExemptionRequest.id)):
            current = found.get(request.acquisition_id)
            if current is None or rank[request.status] <= rank[current["status"]]:
                found[request.acquisition_id] = {
                    "source": "request",
                    "id": request.id,
                    "status": request.status,
                    "reason_category": request.reason_category,
                    "reason": request.reason,
                }
    return found


def _catalogue(session: Session, entry_ids: set[int]) -> dict[int, dict[str, Any]]:
    if not entry_ids:
        return {}
    query = sa.select(NoNevCatalogueEntry).where(NoNevCatalogueEntry.id.in_(sorted(entry_ids)))
    return {
        e.id: {"source": "catalogue", "id": e.id, "description": e.description, "reason": e.reason}
        for e in session.scalars(query)
    }
