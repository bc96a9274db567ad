"""Dashboard figures: what the city, agency and rule pages show, summed from each agency's figures.

Everything is counted by the database (the rule engine's GROUP BYs over the monthly acquisition
tallies, by agency and month); no function loads a year's acquisitions into Python. The one
exception is on purpose: an agency page lists the vehicles behind its own figures.

Each agency's figures are kept until its tallies change (fleet.read.agency_figures), so the page after an
upload counts the uploading agency again, not the province. The pages themselves only change when
data does, so they are also kept whole in a FigureCache keyed by data_version().
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

import sqlalchemy as sa
from cachetools import LRUCache
from sqlalchemy.orm import Session

from fleet.base.models import (
    Acquisition,
    AcquisitionVersion,
    Agency,
    AuditEntry,
    ExemptionRequest,
    NoNevCatalogueEntry,
    PurchasePlan,
)
from fleet.base.periods import Period
from fleet.base.vocab import NEV_POWER_TYPES
from fleet.domain import reporting
from fleet.domain.reporting import MonthState
from fleet.domain.selection import AgencyRow, agency_rows, selected_agencies
from fleet.domain.timeliness import LateAcquisition, LateCount, late_acquisitions
from fleet.read.agency_figures import AgencyFigures, AgencyYear
from rules.engine import year_results
from rules.explain import VehicleLine, explain
from rules.packs import Rule, RulePack
from rules.results import RuleResult

T = TypeVar("T")

# Vehicles an agency page lists under each rule and under late reports: an operator buys tens of
# thousands a year, and the page says how many there are in all.
LISTED = 100
# Months of reporting states an agency page shows.
REPORTING_MONTHS = 6


@dataclass(frozen=True)
class AcquisitionCounts:
    """A year's acquisitions counted once, by category × power type and by the agency's county."""

    by_category_power: dict[tuple[str, str], int]
    by_county: dict[str, tuple[int, int]]  # county -> (all, NEV)

    @property
    def total(self) -> int:
        return sum(self.by_category_power.values())

    @property
    def nev(self) -> int:
        return sum(n for (_, power), n in self.by_category_power.items() if power in NEV_POWER_TYPES)

    @property
    def share(self) -> float | None:
        return self.nev / self.total if self.total else None


@dataclass(frozen=True)
class RuleOverview:
    """One rule over the agencies selected: the aggregate and each agency the rule applies to."""

    rule: Rule
    total: RuleResult
    agencies: list[RuleResult]

    @property
    def passing(self) -> int:
        return sum(1 for r in self.agencies if r.status == "pass")

    @property
    def assessed(self) -> int:
        """Agencies with something in scope, so a pass or a fail."""
        return sum(1 for r in self.agencies if r.status != "no_data")


@dataclass(frozen=True)
class CityDashboard:
    pack: RulePack
    year: int
    county: str | None
    month: Period  # the reporting month "not reported" refers to: the last month, due this month
    rules: list[RuleOverview]
    trend: dict[str, list[RuleResult]]  # "YYYY-MM" -> the aggregate of each rule in force
    counts: AcquisitionCounts
    pending_exemptions: int
    not_reported: list[MonthState]  # the month's missing, returned and open agencies, in that order
    reporting_summary: dict[str, int]  # the month's agencies by state (the review grid's summary)
    due: dt.date
    late: list[LateCount]  # agencies with late reports in the year, most late first
    accepted_only: bool = False  # the rules counted accepted months only

    @property
    def late_total(self) -> int:
        return sum(c.late for c in self.late)


@dataclass(frozen=True)
class AgencyDashboard:
    pack: RulePack
    agency: Agency
    year: int
    month: Period
    results: list[RuleResult]  # the rules that apply to the agency
    trend: dict[str, list[RuleResult]]
    vehicles: dict[str, list[VehicleLine]]  # rule qualified id -> the first LISTED vehicles behind its result
    counts: AcquisitionCounts
    pending_exemptions: int
    reporting: list[MonthState]  # the agency's last months, latest first
    late: list[LateAcquisition]  # the first LISTED of them
    late_total: int


@dataclass(frozen=True)
class RuleDashboard:
    pack: RulePack
    rule: Rule
    year: int
    county: str | None
    overview: RuleOverview | None  # None when the rule is not in force in the year
    trend: dict[str, RuleResult]  # "YYYY-MM" -> the aggregate, months the rule is in force


def still_needed(result: RuleResult) -> int | None:
    """How many more counting vehicles (NEVs, or vehicles meeting the standard) the agency must still buy
    this year, buying nothing else in scope, for the rule to pass; None when buying cannot make it pass.

    This is not the shortfall, because each purchase also enlarges the scope: 2 NEVs among 5
    enforcement cars (60%) miss 1 — the shortfall — yet buying must add 3, as 4 of 7 is only 57% and
    5 of 8 is 62.5%.
    Under a 100% rule a non-NEV already bought can only be exempted, never outweighed."""
    if result.status != "fail":
        return 0
    threshold = Fraction(result.threshold)
    if threshold >= 1:
        return None
    # Smallest k with (nev + k) >= threshold × (in_scope + k), in exact arithmetic.
    return max(0, math.ceil((threshold * result.in_scope - result.nev) / (1 - threshold)))


def _acquisition_counts(agencies: list[AgencyRow], figures: Mapping[int, AgencyYear]) -> AcquisitionCounts:
    """The agencies' acquisitions by category and power type, and by the agency's county."""
    by_category_power: dict[tuple[str, str], int] = {}
    by_county: dict[str, tuple[int, int]] = {}
    for agency in agencies:
        figure = figures[agency.id]
        if not figure.acquired:
            continue
        for key, count in figure.by_category_power.items():
            by_category_power[key] = by_category_power.get(key, 0) + count
        total, nev = by_county.get(agency.county, (0, 0))
        by_county[agency.county] = (total + figure.acquired, nev + figure.nev)
    return AcquisitionCounts(by_category_power, by_county)


def pending_exemptions(session: Session, *, county: str | None = None, agency_id: int | None = None) -> int:
    """Exemption requests waiting for a reviewer's decision."""
    query = (
        sa.select(sa.func.count())
        .select_from(ExemptionRequest)
        .join(Acquisition, Acquisition.id == ExemptionRequest.acquisition_id)
        .where(ExemptionRequest.status == "pending", *selected_agencies(Acquisition.agency_id, agency_id, county))
    )
    return session.scalar(query) or 0


def available_years(session: Session, today: dt.date) -> list[int]:
    """The years a filter offers, latest first: from the first acquisition to this year."""
    first = session.scalar(sa.select(sa.func.min(Acquisition.acquired_on)))
    start = min(first.year, today.year) if first else today.year
    return list(range(today.year, start - 1, -1))


def _overviews(results: list[RuleResult]) -> list[RuleOverview]:
    """evaluate()'s results grouped by rule: each rule's aggregate with its agencies, in pack order."""
    overviews = {r.rule.id: RuleOverview(r.rule, r, []) for r in results if r.agency_id is None}
    for result in results:
        if result.agency_id is not None:
            overviews[result.rule.id].agencies.append(result)
    return list(overviews.values())


def city_dashboard(
    session: Session,
    pack: RulePack,
    year: int,
    *,
    today: dt.date,
    deadline_days: int,
    due_day: int,
    county: str | None = None,
    kept: AgencyFigures | None = None,
    accepted_only: bool = False,
) -> CityDashboard:
    """The city page (or one county's agencies): every rule's results and the year's figures, summed
    from each agency's figures — those `kept` holds, counting again only the agencies that changed.
    accepted_only: the rules count only the months each agency's report of which is accepted."""
    month = reporting.recent_months(today, 1)[0]
    agencies = agency_rows(session, county=county)
    figures = (kept or AgencyFigures()).year(
        session, pack, year, deadline_days=deadline_days, agency_ids=None if county is None else [a.id for a in agencies]
    )
    counts = {a.id: figures[a.id].counts for a in agencies}
    if accepted_only:
        accepted = reporting.accepted_months(session, year)
        counts = {agency_id: c.only_months(accepted.get(agency_id, ())) for agency_id, c in counts.items()}
    results, trend = year_results(pack, year, agencies, counts)
    states = reporting.month_states(session, month, today=today, due_day=due_day, county=county)
    order = {state: position for position, state in enumerate(("missing", "returned", "open"))}
    late = [LateCount(a.id, a.name, figures[a.id].reported, figures[a.id].late) for a in agencies if figures[a.id].late]
    return CityDashboard(
        pack=pack,
        year=year,
        county=county,
        month=month,
        rules=_overviews(results),
        trend=trend,
        counts=_acquisition_counts(agencies, figures),
        pending_exemptions=pending_exemptions(session, county=county),
        not_reported=sorted((s for s in states if s.state in order), key=lambda s: (order[s.state], s.agency)),
        reporting_summary=reporting.summary(states),
        due=reporting.due_date(month, due_day),
        late=sorted(late, key=lambda c: (-c.late, c.agency)),
        accepted_only=accepted_only,
    )


def agency_dashboard(
    session: Session,
    pack: RulePack,
    agency: Agency,
    year: int,
    *,
    today: dt.date,
    deadline_days: int,
    due_day: int,
    kept: AgencyFigures | None = None,
) -> AgencyDashboard:
    """An agency's page: its rules with what it still needs, the vehicles behind them, its late reports."""
    period = Period.year(year)
    month = Period.month(today.year, today.month)
    agencies = agency_rows(session, agency_id=agency.id)
    figures = (kept or AgencyFigures()).year(session, pack, year, deadline_days=deadline_days, agency_ids=[agency.id])
    results, trend = year_results(pack, year, agencies, {agency.id: figures[agency.id].counts}, agency_id=agency.id)
    return AgencyDashboard(
        pack=pack,
        agency=agency,
        year=year,
        month=month,
        results=results,
        trend=trend,
        vehicles={
            r.rule.qualified_id: explain(session, pack, r.rule.qualified_id, period, agency.id, limit=LISTED) for r in results
        },
        counts=_acquisition_counts(agencies, figures),
        pending_exemptions=pending_exemptions(session, agency_id=agency.id),
        reporting=reporting.agency_history(session, agency, reporting.recent_months(today, REPORTING_MONTHS), today=today, due_day=due_day),
        late=late_acquisitions(session, period, deadline_days=deadline_days, agency_id=agency.id, limit=LISTED),
        late_total=figures[agency.id].late,
    )


def rule_dashboard(
    session: Session,
    pack: RulePack,
    rule: Rule,
    year: int,
    *,
    deadline_days: int,
    county: str | None = None,
    kept: AgencyFigures | None = None,
) -> RuleDashboard:
    """A rule's page: every agency's result and the month-by-month aggregate, for that rule alone."""
    agencies = agency_rows(session, county=county)
    figures = (kept or AgencyFigures()).year(
        session, pack, year, deadline_days=deadline_days, agency_ids=None if county is None else [a.id for a in agencies]
    )
    # A pack of this one rule makes the aggregate and the series count only what the page shows.
    single = dataclasses.replace(pack, rules=(rule,))
    results, series = year_results(single, year, agencies, {a.id: figures[a.id].counts for a in agencies})
    overviews = _overviews(results)
    return RuleDashboard(
        pack=pack,
        rule=rule,
        year=year,
        county=county,
        overview=overviews[0] if overviews else None,
        trend={month: results[0] for month, results in series.items() if results},
    )


def data_version(session: Session, pack: RulePack) -> tuple[Hashable, ...]:
    """A value that changes whenever a figure of the dashboards may have changed, read from primary
    keys and small tables only (milliseconds on a million acquisitions).

    Every write that moves a figure raises an agency's tally version (triggers, migration 0004), so
    their sum changes — deletions included, which a highest id may not show; new acquisitions raise
    the highest acquisition id and a changed one leaves a version row behind, for what the pages list
    beside the figures; every decision, catalogue change, agency change and pack switch is in the
    audit log. Exemption requests and catalogue entries are few, so they are summed up as well, for
    writers that skip the audit log; a new purchase plan (the forecast) raises the highest plan id.
    An edited pack file is read again with a new modification time."""
    def highest(column: sa.ColumnElement[int]) -> sa.ScalarSelect:
        return sa.select(sa.func.max(column)).scalar_subquery()

    requests = sa.select(
        sa.func.count(), sa.func.max(ExemptionRequest.id), sa.func.max(ExemptionRequest.decided_at),
        sa.func.sum(sa.case((ExemptionRequest.status == "approved", 1), else_=0)),
        sa.func.sum(sa.case((ExemptionRequest.status == "pending", 1), else_=0)),
    )
    catalogue = sa.select(
        sa.func.count(), sa.func.max(NoNevCatalogueEntry.id),
        sa.func.sum(sa.case((NoNevCatalogueEntry.active, 1), else_=0)),
    )
    keys = session.execute(
        sa.select(
            highest(Acquisition.id), highest(AcquisitionVersion.id), highest(AuditEntry.id), highest(Agency.id),
            highest(PurchasePlan.id), sa.select(sa.func.sum(Agency.tally_version)).scalar_subquery(),
        )
    ).one()
    return (
        pack.id,
        pack.path.stat().st_mtime_ns,
        *keys,
        *session.execute(requests).one(),
        *session.execute(catalogue).one(),
    )


class FigureCache:
    """Dashboard figures kept until the data they were counted from changes; the least recently used
    go first.

    Keys include data_version(), so a stale entry is never found again, only aged out. Shared by the
    threads of one process; two threads missing the same key at once both count, which is harmless."""

    def __init__(self, size: int = 32) -> None:
        self._items: LRUCache[Hashable, object] = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            found = self._items.get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._items[key] = value
        return value


_MISSING = object()
