"""The compliance engine: for each rule × agency × period, in-scope and NEV counts, share, status and shortfall.

Counting happens in SQL — one GROUP BY agency (and month, for the dashboards' series) per rule,
sent as a single UNION ALL — never a query per vehicle or agency. Whole months are summed from acquisition_tallies, which the database
keeps as acquisitions are written and exemptions requested and decided, so a year of a million
acquisitions bought in lots is about a hundred thousand rows; only the days of a month cut short
are read from acquisitions. Shares and shortfalls are exact fractions: 60% of 5 needs 3, and
exactly at the threshold passes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.models import Acquisition, AcquisitionTally, Agency
from fleet.base.periods import Period, months_touched, split_at_whole_months
from fleet.base.vocab import ACQUISITION_KINDS, NEV_POWER_TYPES
from rules.packs import Rule, RulePack


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    agency_id: int | None  # None: the aggregate over every agency selected (city-wide, or a county)
    agency: str | None
    in_scope: int  # acquisitions the rule covers, approved exemptions taken out
    nev: int  # in-scope NEVs; for a standard_share rule, in-scope vehicles meeting the standard
    exempt: int  # taken out of scope: approved exemption request or a no-NEV catalogue match
    pending: int  # exemption requested, not yet decided: still in scope, flagged
    share: Fraction | None  # nev / in_scope; None when nothing is in scope
    threshold: Fraction
    status: str  # "pass" | "fail" | "no_data"
    shortfall: int  # how many more NEVs would have been needed

    def as_dict(self) -> dict[str, Any]:
        """The shape of the command line's and the JSON API's results."""
        return {
            "rule": self.rule.qualified_id,
            "agency": self.agency,
            "in_scope": self.in_scope,
            "nev": self.nev,
            "exempt": self.exempt,
            "pending": self.pending,
            "share": None if self.share is None else round(float(self.share), 4),
            "threshold": round(float(self.threshold), 4),
            "status": self.status,
            "shortfall": self.shortfall,
        }


def make_result(rule: Rule, agency_id: int | None, agency: str | None, total: int, meets: int, exempt: int, pending: int) -> RuleResult:
    """A result from raw counts: `total` is every in-scope acquisition before exemptions."""
    in_scope = total - exempt
    share = Fraction(meets, in_scope) if in_scope else None
    # The same exact arithmetic in integers (p/q is the threshold): a city page makes some ten
    # thousand results, and Fraction's operators took a third of evaluate()'s time.
    p, q = rule.threshold.numerator, rule.threshold.denominator
    if share is None:
        status = "no_data"
    else:
        status = "pass" if meets * q >= p * in_scope else "fail"
    shortfall = max(0, -(-p * in_scope // q) - meets)
    return RuleResult(rule, agency_id, agency, in_scope, meets, exempt, pending, share, rule.threshold, status, shortfall)


# --- Where vehicles are counted from -------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The columns a rule asks about, in one of the two places vehicles are counted from: the
    acquisitions themselves, or their monthly tallies (fleet.base.models.AcquisitionTally), which stand
    for `weight` vehicles each and answer only for whole months."""

    agency_id: sa.ColumnElement[int]
    category: sa.ColumnElement[str]
    power: sa.ColumnElement[str]
    acquisition_kind: sa.ColumnElement[str]
    emission_standard: sa.ColumnElement[str]  # '' for none: a missing standard is not met, and NOT IN holds for it
    catalogued: sa.ColumnElement[bool]
    exemption_state: sa.ColumnElement[int]  # 2 approved request, 1 pending, 0 none (Acquisition.exemption_state)
    acquired: sa.ColumnElement[dt.date]  # the acquisition date, or the first day of its month
    weight: sa.ColumnElement[int]


ACQUISITIONS = Source(
    Acquisition.agency_id,
    Acquisition.category,
    Acquisition.power,
    Acquisition.acquisition_kind,
    sa.func.coalesce(Acquisition.emission_standard, ""),
    Acquisition.catalogue_entry_id.is_not(None),
    Acquisition.exemption_state,
    Acquisition.acquired_on,
    sa.literal(1, sa.Integer),
)
TALLIES = Source(
    AcquisitionTally.agency_id,
    AcquisitionTally.category,
    AcquisitionTally.power,
    AcquisitionTally.acquisition_kind,
    AcquisitionTally.emission_standard,
    AcquisitionTally.catalogued,
    AcquisitionTally.exemption_state,
    AcquisitionTally.month,
    AcquisitionTally.acquisitions,
)


def _sources(first: dt.date, last: dt.date) -> list[tuple[Source, dt.date, dt.date]]:
    """Where to count [first, last] from: the tallies for its whole months, acquisitions for the days
    of a month cut short (a rule taking effect mid-month, a year to date)."""
    whole, edges = split_at_whole_months(first, last)
    return ([(TALLIES, *whole)] if whole else []) + [(ACQUISITIONS, *edge) for edge in edges]


# --- The SQL conditions of a rule, shared with explain ------------------------------------------------


@dataclass(frozen=True)
class RuleConditions:
    in_scope: sa.ColumnElement[bool]  # before exemptions; agency kinds are the caller's to apply
    meets: sa.ColumnElement[bool]  # NEV, or meets an accepted standard
    catalogued: sa.ColumnElement[bool]  # exempt by a no-NEV catalogue match
    approved: sa.ColumnElement[bool]  # exempt by an approved request
    pending: sa.ColumnElement[bool]  # a request not yet decided

    @property
    def exempt(self) -> sa.ColumnElement[bool]:
        return sa.or_(self.catalogued, self.approved)


def rule_conditions(rule: Rule, first: dt.date, last: dt.date, source: Source = ACQUISITIONS) -> RuleConditions:
    """The rule as SQL over what was acquired between first and last (inclusive): acquisitions, or
    tallies when first and last bound whole months. A scope naming every acquisition kind is left
    out of the SQL: it holds anyway."""
    scope = [source.category.in_(sorted(rule.scope.categories)), source.acquired.between(first, last)]
    if rule.scope.acquisition_kinds != set(ACQUISITION_KINDS.values):
        scope.append(source.acquisition_kind.in_(sorted(rule.scope.acquisition_kinds)))
    if rule.scope.power_types is not None:
        scope.append(source.power.in_(sorted(rule.scope.power_types)))
    if rule.measure == "nev_share":
        meets = source.power.in_(sorted(NEV_POWER_TYPES))
    else:
        meets = source.emission_standard.in_(sorted(rule.standards))
    catalogued = approved = pending = sa.false()
    if rule.exemptions_allowed:
        # Only a vehicle that does not count can be exempted; an exempted NEV would lower the share.
        # A catalogue match exempts whatever the requests say.
        catalogued = sa.and_(source.catalogued, sa.not_(meets))
        requested = [sa.not_(meets), sa.not_(source.catalogued)]
        approved = sa.and_(*requested, source.exemption_state == 2)
        pending = sa.and_(*requested, source.exemption_state == 1)
    return RuleConditions(sa.and_(*scope), meets, catalogued, approved, pending)


def _count(condition: sa.ColumnElement[bool], weight: sa.ColumnElement[int] = ACQUISITIONS.weight) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, weight), else_=0)), 0)


def selected_agencies(
    agency_column: sa.ColumnElement[int], agency_id: int | None, county: str | None, agency_ids: Collection[int] | None = None
) -> list[sa.ColumnElement[bool]]:
    """Conditions keeping rows to one agency, to a county's agencies, to the agencies of agency_ids,
    or (none) to every agency."""
    if agency_id is not None:
        return [agency_column == agency_id]
    if county is not None:
        return [agency_column.in_(_agency_ids(county))]
    if agency_ids is not None:
        return [agency_column.in_(sorted(agency_ids))]
    return []


def _agency_ids(county: str) -> sa.Select:
    return sa.select(Agency.id).where(Agency.county == county)


Window = tuple[Rule, dt.date, dt.date]
Counts = tuple[int, int, int, int]  # total (before exemptions), meets, exempt, pending
NO_COUNTS: Counts = (0, 0, 0, 0)
Key = tuple[int, int]  # agency id, month (0 when not by month)
Selection = tuple[int | None, str | None]  # agency id, county: the agencies counted (None, None: all)


def _windows(pack: RulePack, start: dt.date, end: dt.date) -> list[Window]:
    """The rules in force in [start, end], each with the part of it in which it is."""
    windows = []
    for rule in pack.rules:
        window = rule.effective_within(start, end)
        if window is not None:
            windows.append((rule, *window))
    return windows


def _pieces(first: dt.date, last: dt.date, *, by_month: bool) -> list[tuple[Source, dt.date, dt.date, sa.ColumnElement[dt.date] | None]]:
    """[first, last] as the parts a query sums, each with its source and, by month, the month it
    falls in: the tallies' whole months in one part, grouped by their own month column, and the days
    of a month cut short from acquisitions, one part per month."""
    pieces: list[tuple[Source, dt.date, dt.date, sa.ColumnElement[dt.date] | None]] = []
    for source, start, end in _sources(first, last):
        if not by_month:
            pieces.append((source, start, end, None))
        elif source is TALLIES:
            # The stored first-of-month date itself: extracting its month number parsed a date per
            # tally on SQLite (a third of the city's trend).
            pieces.append((source, start, end, source.acquired))
        else:
            for month in months_touched(start, end):
                pieces.append((source, max(start, month.start), min(end, month.end), sa.literal(month.start, sa.Date)))
    return pieces


def _add(counts: dict[Any, dict[str, Counts]], key: Any, rule_id: str, more: Counts) -> None:
    before = counts.setdefault(key, {}).get(rule_id, NO_COUNTS)
    counts[key][rule_id] = (before[0] + more[0], before[1] + more[1], before[2] + more[2], before[3] + more[3])


def _counted(rule: Rule, c: RuleConditions, source: Source) -> list[sa.ColumnElement[int]]:
    """SUMs of a part: in scope (before exemptions), meeting the measure, exempt, pending."""
    if not rule.exemptions_allowed:
        zero = sa.literal(0, sa.Integer)
        return [sa.func.sum(source.weight), _count(c.meets, source.weight), zero, zero]
    return [sa.func.sum(source.weight), _count(c.meets, source.weight), _count(c.exempt, source.weight), _count(c.pending, source.weight)]


def _counts(
    session: Session,
    windows: list[Window],
    selection: Selection,
    *,
    by_month: bool = False,
    totals_only: bool = False,
    agency_ids: Collection[int] | None = None,
) -> dict[Key, dict[str, Counts]]:
    """(agency id, month or 0) -> rule id -> (total, meets, exempt, pending).

    One SELECT … GROUP BY agency (and month, for a series) per rule and source, sent as a single
    UNION ALL: each part sums its rule's categories and dates over the tallies of the agencies
    selected (or reads the acquisitions of a month cut short), counting what meets the measure, what
    is exempt and what waits for a decision with a SUM(CASE). Agency kinds are applied by the
    caller, from the registry, to keep a lookup per row out of the scan."""
    if not windows:
        return {}
    parts = []
    for index, (rule, first, last) in enumerate(windows):
        for source, start, end, month in _pieces(first, last, by_month=by_month):
            c = rule_conditions(rule, start, end, source)
            counted = [sa.func.sum(source.weight)] if totals_only else _counted(rule, c, source)
            months = [] if month is None else [month]
            parts.append(
                sa.select(sa.literal(index, sa.Integer), source.agency_id, *months, *counted)
                .where(c.in_scope, *selected_agencies(source.agency_id, *selection, agency_ids))
                .group_by(source.agency_id, *months)
            )
    query = parts[0] if len(parts) == 1 else sa.union_all(*parts)
    counted_from = 3 if by_month else 2
    counts: dict[Key, dict[str, Counts]] = {}
    for row in session.execute(query):
        rule = windows[row[0]][0]
        total, meets, exempt, pending = (list(row[counted_from:]) + [0, 0, 0])[:4]
        _add(counts, (row[1], row[2].month if by_month else 0), rule.id, (int(total), int(meets), int(exempt), int(pending)))
    return counts


AgencyRow = sa.Row[tuple[int, str, str, str]]  # id, name, kind, county


@dataclass(frozen=True)
class AgencyYearCounts:
    """What the rules count for one agency over a calendar year, and the year's sum per rule, added up
    once when counted rather than on every page that shows it.

    The months are an array, [month - 1, rule, (total, meets, exempt, pending)] over `rule_ids`: a
    city page adds up some two thousand agencies' months on every request after an upload, which is
    one numpy sum per agency kind instead of tens of thousands of tuple additions."""

    rule_ids: tuple[str, ...]
    months: np.ndarray  # shape (12, len(rule_ids), 4)
    year: Mapping[str, Counts]

    @classmethod
    def of(cls, rule_ids: tuple[str, ...], months: Mapping[int, Mapping[str, Counts]]) -> AgencyYearCounts:
        index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
        array = np.zeros((12, len(rule_ids), 4), dtype=np.int64)
        for month, per_rule in months.items():
            for rule_id, counts in per_rule.items():
                array[month - 1, index[rule_id]] = counts
        array.setflags(write=False)  # kept between requests and shared by threads
        # Every count holds an acquisition in scope (total > 0); a rule without any has no entry.
        sums = array.sum(axis=0).tolist()
        return cls(rule_ids, array, {rule_id: tuple(sums[i]) for i, rule_id in enumerate(rule_ids) if sums[i][0]})

    def month(self, month: int) -> dict[str, Counts]:
        """rule id -> counts of the month (1–12), for the rules with something in scope."""
        rows = self.months[month - 1].tolist()
        return {rule_id: tuple(rows[i]) for i, rule_id in enumerate(self.rule_ids) if rows[i][0]}


NO_YEAR_COUNTS = AgencyYearCounts.of((), {})


def agency_rows(session: Session, *, agency_id: int | None = None, county: str | None = None) -> list[AgencyRow]:
    """The agencies selected (one, a county's, or all), by name, as plain rows rather than ORM
    objects: a province has thousands of agencies."""
    query = sa.select(Agency.id, Agency.name, Agency.kind, Agency.county).order_by(Agency.name)
    if agency_id is not None:
        query = query.where(Agency.id == agency_id)
    if county is not None:
        query = query.where(Agency.county == county)
    return list(session.execute(query))


def _sum(counts: Iterable[Counts]) -> Counts:
    total = meets = exempt = pending = 0
    for t, m, e, p in counts:
        total, meets, exempt, pending = total + t, meets + m, exempt + e, pending + p
    return total, meets, exempt, pending


def _agency_rules(agencies: list[AgencyRow], windows: list[Window], present: dict[Key, dict[str, Counts]]) -> dict[int, set[str]]:
    """Which rules each agency gets a result for: a rule naming agency kinds applies to every agency of
    those kinds (no_data when it bought nothing in scope); a rule open to any kind applies to an agency
    that acquired something in its scope during the calendar year (`present`: counts over that year),
    so a police bureau is not listed under buses unless it bought a bus."""
    open_to_any = [rule.id for rule, _, _ in windows if rule.scope.agency_kinds is None]
    by_kind: dict[str, set[str]] = {}  # agency kind -> the rules naming it; a province has thousands of agencies, a few kinds
    applicable: dict[int, set[str]] = {}
    for agency in agencies:
        if (ids := by_kind.get(agency.kind)) is None:
            ids = by_kind[agency.kind] = {
                rule.id for rule, _, _ in windows if rule.scope.agency_kinds is not None and agency.kind in rule.scope.agency_kinds
            }
        found = present.get((agency.id, 0))
        if found and open_to_any:
            ids = ids | {rule_id for rule_id in open_to_any if found.get(rule_id, NO_COUNTS)[0] > 0}
        applicable[agency.id] = ids
    return applicable


def _results(
    windows: list[Window], agencies: list[AgencyRow], counts: dict[Key, dict[str, Counts]], present: dict[Key, dict[str, Counts]], *, aggregate: bool
) -> list[RuleResult]:
    """Each rule's aggregate (when asked) and the result of each agency it applies to, from counts by
    agency over the period (keys (agency id, 0))."""
    applicable = _agency_rules(agencies, windows, present)
    # The aggregates, from the agencies that bought something (a few thousand counts) rather than
    # from every agency under every rule.
    kind_of = {a.id: a.kind for a in agencies}
    rules = {rule.id: rule for rule, _, _ in windows}
    totals: dict[str, Counts] = {}
    for (agency_of, _), per_rule in counts.items():
        kind = kind_of.get(agency_of)
        for rule_id, found in per_rule.items():
            if kind is not None and rules[rule_id].applies_to_kind(kind):
                totals[rule_id] = _sum((totals.get(rule_id, NO_COUNTS), found))
    results: list[RuleResult] = []
    for rule, _, _ in windows:
        if aggregate:
            results.append(make_result(rule, None, None, *totals.get(rule.id, NO_COUNTS)))
        for agency in agencies:
            if rule.id in applicable[agency.id]:
                results.append(make_result(rule, agency.id, agency.name, *counts.get((agency.id, 0), {}).get(rule.id, NO_COUNTS)))
    return results


def evaluate(
    session: Session,
    pack: RulePack,
    period: Period,
    *,
    agency_id: int | None = None,
    county: str | None = None,
) -> list[RuleResult]:
    """Results for each rule in force in the period: first the aggregate (agency None) over the
    agencies selected — the whole city, or a county's agencies — then each agency the rule can apply
    to, by name. With agency_id only that agency's results are returned, without an aggregate."""
    windows = _windows(pack, period.start, period.end)
    if not windows:
        return []
    selection = (agency_id, county)
    counts = _counts(session, windows, selection)
    agencies = agency_rows(session, agency_id=agency_id, county=county)
    year = (dt.date(period.start.year, 1, 1), dt.date(period.end.year, 12, 31))
    present = counts
    if (period.start, period.end) != year and agencies:
        # Whether a rule open to any kind applies depends on the whole calendar year.
        year_windows = [(rule, *w) for rule, _, _ in windows if rule.scope.agency_kinds is None and (w := rule.effective_within(*year))]
        present = _counts(session, year_windows, selection, totals_only=True) if year_windows else {}
    return _results(windows, agencies, counts, present, aggregate=agency_id is None)


def agency_months(session: Session, pack: RulePack, year: int, agency_ids: Collection[int] | None = None) -> dict[int, AgencyYearCounts]:
    """What the rules in force count over a calendar year, by agency and month, for the agencies of
    agency_ids (or every agency) that acquired something a rule covers. The dashboards keep these per
    agency and count again only the agencies whose tallies changed (fleet.read.agency_figures);
    year_results() turns them into results."""
    period = Period.year(year)
    windows = _windows(pack, period.start, period.end)
    rule_ids = tuple(rule.id for rule, _, _ in windows)
    months: dict[int, dict[int, dict[str, Counts]]] = {}
    for (agency, month), per_rule in _counts(session, windows, (None, None), by_month=True, agency_ids=agency_ids).items():
        months.setdefault(agency, {})[month] = per_rule
    return {agency: AgencyYearCounts.of(rule_ids, of_agency) for agency, of_agency in months.items()}


def year_results(
    pack: RulePack, year: int, agencies: list[AgencyRow], counts: Mapping[int, AgencyYearCounts], *, agency_id: int | None = None
) -> tuple[list[RuleResult], dict[str, list[RuleResult]]]:
    """evaluate() of a calendar year over `agencies`, and its month-by-month series, from the counts
    of agency_months() rather than the database.

    The series maps "YYYY-MM" to one result per rule in force that month: the aggregate over the
    agencies, or with agency_id (agencies holding that agency alone) the agency's own, for the rules
    that apply to it."""
    period = Period.year(year)
    windows = _windows(pack, period.start, period.end)
    rules = {rule.id: rule for rule, _, _ in windows}
    year_counts: dict[Key, dict[str, Counts]] = {}
    # The months of the agencies each rule's aggregate counts, added up as arrays by agency kind (and
    # by the rules they were counted for, the same for every agency counted under one pack).
    month_arrays: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
    for agency in agencies:
        of_agency = counts.get(agency.id)
        if of_agency is None:
            continue
        in_force = {rule_id: found for rule_id, found in of_agency.year.items() if rule_id in rules}
        if in_force:
            year_counts[(agency.id, 0)] = in_force
        if not of_agency.year:
            continue
        key = (agency.kind, of_agency.rule_ids)
        if (summed := month_arrays.get(key)) is None:
            month_arrays[key] = of_agency.months.copy()
        else:
            summed += of_agency.months
    month_sums: dict[str, np.ndarray] = {}  # rule id -> [month - 1, (total, meets, exempt, pending)]
    for (kind, counted_for), summed in month_arrays.items():
        for i, rule_id in enumerate(counted_for):
            rule = rules.get(rule_id)
            if rule is not None and (agency_id is not None or rule.applies_to_kind(kind)):
                column = summed[:, i]
                month_sums[rule_id] = month_sums[rule_id] + column if rule_id in month_sums else column
    by_month = {rule_id: [tuple(row) for row in summed.tolist()] for rule_id, summed in month_sums.items()}
    results = _results(windows, agencies, year_counts, year_counts, aggregate=agency_id is None) if windows else []
    rule_ids = set(rules)
    name = None
    if agency_id is not None:
        rule_ids = {r.rule.id for r in results}
        name = agencies[0].name if agencies else None
    series: dict[str, list[RuleResult]] = {}
    for month in period.months():
        series[month.label] = [
            make_result(rule, agency_id, name, *(by_month[rule.id][month.start.month - 1] if rule.id in by_month else NO_COUNTS))
            for rule in pack.rules
            if rule.id in rule_ids and rule.effective_within(month.start, month.end) is not None
        ]
    return results, series


def monthly_series(
    session: Session,
    pack: RulePack,
    year: int,
    *,
    agency_id: int | None = None,
    county: str | None = None,
) -> dict[str, list[RuleResult]]:
    """"YYYY-MM" -> one result per rule in force that month: the aggregate (city, or county), or the
    agency's when agency_id is given (only rules that can apply to it), counted as evaluate counts."""
    agencies = agency_rows(session, agency_id=agency_id, county=county)
    if agency_id is not None and not agencies:
        return {}
    selected = [a.id for a in agencies] if agency_id is not None or county is not None else None
    return year_results(pack, year, agencies, agency_months(session, pack, year, selected), agency_id=agency_id)[1]


def compliance_json(pack: RulePack, period: Period, results: Iterable[RuleResult]) -> dict[str, Any]:
    """{"pack", "period", "results"}: the command line's --json output and the JSON API's body."""
    return {"pack": pack.id, "period": period.label, "results": [r.as_dict() for r in results]}
