"""Dashboard figures: what the city, agency and rule pages show, gathered from the engine and SQL aggregates.

Everything is counted by the database (the rule engine's aggregates and GROUP BY queries here, over
the monthly acquisition tallies); no function loads a year's acquisitions into Python. The one
exception is on purpose: an agency page lists the vehicles behind its own figures.

The figures only change when data does, so pages also keep them in a FigureCache keyed by
data_version(): a page is counted once per change and then served from memory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.models import Acquisition, AcquisitionTally, AcquisitionVersion, Agency, AuditEntry, ExemptionRequest, NoNevCatalogueEntry
from fleet.timeliness import LateAcquisition, LateCount, agencies_not_reported, late_acquisitions, late_counts
from fleet.vocab import CATEGORIES, NEV_POWER_TYPES
from rules.engine import RuleResult, evaluate, monthly_series, selected_agencies
from rules.explain import VehicleLine, explain
from rules.packs import Rule, RulePack
from rules.periods import Period

T = TypeVar("T")

# Vehicles an agency page lists under each rule and under late reports: an operator buys tens of
# thousands a year, and the page says how many there are in all.
LISTED = 100


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
    month: Period  # the reporting month "not reported" refers to
    rules: list[RuleOverview]
    trend: dict[str, list[RuleResult]]  # "YYYY-MM" -> the aggregate of each rule in force
    counts: AcquisitionCounts
    pending_exemptions: int
    not_reported: list[Agency]
    late: list[LateCount]  # agencies with late reports in the year, most late first

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
    reported_this_month: bool
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


def acquisition_counts(
    session: Session, year: int, *, county: str | None = None, agency_id: int | None = None
) -> AcquisitionCounts:
    """A calendar year's acquisitions by category and power type, and by the agency's county.

    Two GROUP BYs over the year's tallies, each read from an index in the order it groups (every
    category named, so that one reads a range per category). Counties are the agencies' counties,
    as the engine's county filter selects them; agencies are few, so their counties are looked up
    apart rather than joined."""
    t = AcquisitionTally
    in_year = [t.month.between(dt.date(year, 1, 1), dt.date(year, 12, 1)), *selected_agencies(t.agency_id, agency_id, county)]
    by_power = (
        sa.select(t.category, t.power, sa.func.sum(t.acquisitions))
        .where(t.category.in_(CATEGORIES.values), *in_year)
        .group_by(t.category, t.power)
    )
    nev = sa.func.sum(sa.case((t.power.in_(sorted(NEV_POWER_TYPES)), t.acquisitions), else_=0))
    by_agency = sa.select(t.agency_id, sa.func.sum(t.acquisitions), nev).where(*in_year).group_by(t.agency_id)
    by_category_power = {(category, power): int(count) for category, power, count in session.execute(by_power)}
    county_of = {agency: place for agency, place in session.execute(sa.select(Agency.id, Agency.county))}
    by_county: dict[str, tuple[int, int]] = {}
    for agency, count, nev_count in session.execute(by_agency):
        total, nevs = by_county.get(county_of[agency], (0, 0))
        by_county[county_of[agency]] = (total + int(count), nevs + int(nev_count))
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
    session: Session, pack: RulePack, year: int, *, today: dt.date, deadline_days: int, county: str | None = None
) -> CityDashboard:
    """The city page (or one county's agencies): every rule's results and the year's figures."""
    month = Period.month(today.year, today.month)
    late = [c for c in late_counts(session, Period.year(year), deadline_days=deadline_days, county=county) if c.late]
    return CityDashboard(
        pack=pack,
        year=year,
        county=county,
        month=month,
        rules=_overviews(evaluate(session, pack, Period.year(year), county=county)),
        trend=monthly_series(session, pack, year, county=county),
        counts=acquisition_counts(session, year, county=county),
        pending_exemptions=pending_exemptions(session, county=county),
        not_reported=agencies_not_reported(session, month, county=county),
        late=sorted(late, key=lambda c: (-c.late, c.agency)),
    )


def agency_dashboard(
    session: Session, pack: RulePack, agency: Agency, year: int, *, today: dt.date, deadline_days: int
) -> AgencyDashboard:
    """An agency's page: its rules with what it still needs, the vehicles behind them, its late reports."""
    period = Period.year(year)
    month = Period.month(today.year, today.month)
    results = evaluate(session, pack, period, agency_id=agency.id)
    not_reported = agencies_not_reported(session, month, county=agency.county)
    return AgencyDashboard(
        pack=pack,
        agency=agency,
        year=year,
        month=month,
        results=results,
        trend=monthly_series(session, pack, year, agency_id=agency.id),
        vehicles={
            r.rule.qualified_id: explain(session, pack, r.rule.qualified_id, period, agency.id, limit=LISTED) for r in results
        },
        counts=acquisition_counts(session, year, agency_id=agency.id),
        pending_exemptions=pending_exemptions(session, agency_id=agency.id),
        reported_this_month=all(a.id != agency.id for a in not_reported),
        late=late_acquisitions(session, period, deadline_days=deadline_days, agency_id=agency.id, limit=LISTED),
        late_total=sum(c.late for c in late_counts(session, period, deadline_days=deadline_days, agency_id=agency.id)),
    )


def rule_dashboard(session: Session, pack: RulePack, rule: Rule, year: int, *, county: str | None = None) -> RuleDashboard:
    """A rule's page: every agency's result and the month-by-month aggregate, for that rule alone."""
    # A pack of this one rule makes the engine's aggregate count only what the page shows.
    single = dataclasses.replace(pack, rules=(rule,))
    overviews = _overviews(evaluate(session, single, Period.year(year), county=county))
    series = monthly_series(session, single, year, county=county)
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

    New acquisitions raise the highest acquisition id; a changed one leaves a version row behind;
    every decision, catalogue change, agency change and pack switch is in the audit log. Exemption
    requests and catalogue entries are few, so they are summed up as well, for writers that skip the
    audit log. An edited pack file is read again with a new modification time."""
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
        sa.select(highest(Acquisition.id), highest(AcquisitionVersion.id), highest(AuditEntry.id), highest(Agency.id))
    ).one()
    return (
        pack.id,
        pack.path.stat().st_mtime_ns,
        *keys,
        *session.execute(requests).one(),
        *session.execute(catalogue).one(),
    )


class FigureCache:
    """Dashboard figures kept until the data they were counted from changes; the oldest go first.

    Keys include data_version(), so a stale entry is never found again, only aged out. Shared by the
    threads of one process; two threads missing the same key at once both count, which is harmless."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
