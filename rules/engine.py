"""The compliance engine: for each rule × agency × period, in-scope and NEV counts, share, status and shortfall.

Counting happens in SQL — one GROUP BY agency (or agency and month) per rule, sent as a single
UNION ALL and read from a covering index in the order it groups (the city's trend: one aggregate
per rule and month, without per-agency rows), plus one small query over the exemption requests —
never a query per vehicle or agency, so a year of a million acquisitions is counted in a few
hundred milliseconds. Shares and shortfalls are exact fractions: 60% of 5 needs 3, and exactly at
the threshold passes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.models import Acquisition, Agency, ExemptionRequest
from fleet.vocab import ACQUISITION_KINDS, NEV_POWER_TYPES, POWER_TYPES
from rules.packs import Rule, RulePack
from rules.periods import Period, months_touched

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


# --- The SQL conditions of a rule, shared with explain ------------------------------------------------


@dataclass(frozen=True)
class RuleConditions:
    in_scope: sa.ColumnElement[bool]  # before exemptions; agency kinds are the caller's to apply
    meets: sa.ColumnElement[bool]  # NEV, or meets an accepted standard
    catalogued: sa.ColumnElement[bool]  # exempt by a no-NEV catalogue match
    approved: sa.ColumnElement[bool]  # exempt by an approved request (needs the exemption state)
    pending: sa.ColumnElement[bool]  # a request not yet decided (needs the exemption state)

    @property
    def exempt(self) -> sa.ColumnElement[bool]:
        return sa.or_(self.catalogued, self.approved)


def exemption_states() -> sa.Subquery:
    """acquisition_id -> 2 when a request was approved, 1 when one is pending, 0 when all were rejected."""
    r = ExemptionRequest
    state = sa.func.max(sa.case((r.status == "approved", 2), (r.status == "pending", 1), else_=0))
    return sa.select(r.acquisition_id, state.label("state")).group_by(r.acquisition_id).subquery("exemption_states")


def rule_conditions(
    rule: Rule,
    first: dt.date,
    last: dt.date,
    state: sa.ColumnElement[int] | None = None,
) -> RuleConditions:
    """The rule as SQL over acquisitions acquired between first and last (inclusive).

    `state` is the exemption_states() column of a query that joins it; without it, approved and
    pending are false. A scope naming every acquisition kind is left out of the SQL: it holds anyway."""
    a = Acquisition
    scope = [a.category.in_(sorted(rule.scope.categories)), a.acquired_on.between(first, last)]
    if rule.scope.acquisition_kinds != set(ACQUISITION_KINDS.values):
        scope.append(a.acquisition_kind.in_(sorted(rule.scope.acquisition_kinds)))
    if rule.scope.power_types is not None:
        scope.append(a.power.in_(sorted(rule.scope.power_types)))
    if rule.measure == "nev_share":
        meets = a.power.in_(sorted(NEV_POWER_TYPES))
    else:
        # A missing standard is not a met standard; coalesce keeps NULL out of the NOT below.
        meets = sa.func.coalesce(a.emission_standard, "").in_(sorted(rule.standards))
    catalogued = approved = pending = sa.false()
    if rule.exemptions_allowed:
        # Only a vehicle that does not count can be exempted; an exempted NEV would lower the share.
        # The rare catalogue match is tested first, so most rows skip the IN of `meets`.
        catalogued = sa.and_(a.catalogue_entry_id.is_not(None), sa.not_(meets))
        if state is not None:
            approved = sa.and_(sa.not_(meets), a.catalogue_entry_id.is_(None), state == 2)
            pending = sa.and_(sa.not_(meets), a.catalogue_entry_id.is_(None), state == 1)
    return RuleConditions(sa.and_(*scope), meets, catalogued, approved, pending)


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def agencies_condition(session: Session, county: str | None = None) -> list[sa.ColumnElement[bool]]:
    """Acquisitions of a county's agencies, or of every agency, for a query grouped by agency.

    For every agency SQLite still gets an IN over them: it then reads the agency-first indexes
    (ix_acquisitions_agency_compliance, ix_acquisitions_reported) agency by agency, so the rows come
    in agency order and GROUP BY agency_id needs no sort (0.6 s -> 0.2 s for a year of a million
    acquisitions). PostgreSQL groups by hashing and would only pay a join for it."""
    if county is None and session.get_bind().dialect.name != "sqlite":
        return []
    return [Acquisition.agency_id.in_(_agency_ids(county))]


def _agency_filter(session: Session, agency_id: int | None, county: str | None) -> list[sa.ColumnElement[bool]]:
    if agency_id is not None:
        return [Acquisition.agency_id == agency_id]
    return agencies_condition(session, county)


def _agency_ids(county: str | None, kinds: Iterable[str] | None = None) -> sa.Select:
    query = sa.select(Agency.id)
    if county is not None:
        query = query.where(Agency.county == county)
    if kinds is not None:
        query = query.where(Agency.kind.in_(sorted(kinds)))
    return query


Window = tuple[Rule, dt.date, dt.date]
Counts = tuple[int, int, int, int]  # total (before exemptions), meets, exempt, pending
NO_COUNTS: Counts = (0, 0, 0, 0)
Key = tuple[int, int]  # agency id, month (0 when not by month)


def _windows(pack: RulePack, start: dt.date, end: dt.date) -> list[Window]:
    """The rules in force in [start, end], each with the part of it in which it is."""
    windows = []
    for rule in pack.rules:
        window = rule.effective_within(start, end)
        if window is not None:
            windows.append((rule, *window))
    return windows


def _month_slices(first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date, int]]:
    """[first, last] cut at month ends, each piece with its month number."""
    slices = []
    for month in months_touched(first, last):
        slices.append((max(first, month.start), min(last, month.end), month.start.month))
    return slices


def _scan(
    session: Session, windows: list[Window], where: list[sa.ColumnElement[bool]], *, by_month: bool, totals_only: bool
) -> dict[Key, dict[str, Counts]]:
    """One SELECT … GROUP BY agency per rule (per rule and month for a series), sent as a single
    UNION ALL: each part reads only its rule's categories and dates of the agencies selected from
    the covering index ix_acquisitions_agency_compliance, in agency order, and counts what meets the
    measure, and what the no-NEV catalogue exempts, with a SUM(CASE). Months are separate date
    ranges rather than a month computed per row, which halves the work on SQLite."""
    parts = []
    for index, (rule, first, last) in enumerate(windows):
        for start, end, month in _month_slices(first, last) if by_month else [(first, last, 0)]:
            c = rule_conditions(rule, start, end)
            counted = [sa.func.count()]
            if not totals_only:
                counted.append(_count(c.meets))
                counted.append(_count(c.catalogued) if rule.exemptions_allowed else sa.literal(0, sa.Integer))
            parts.append(
                sa.select(sa.literal(index, sa.Integer), Acquisition.agency_id, sa.literal(month, sa.Integer), *counted)
                .where(c.in_scope, *where)
                .group_by(Acquisition.agency_id)
            )
    query = parts[0] if len(parts) == 1 else sa.union_all(*parts)
    counts: dict[Key, dict[str, Counts]] = {}
    for row in session.execute(query):
        rule = windows[row[0]][0]
        total, meets, catalogued = (list(row[3:]) + [0, 0])[:3]
        counts.setdefault((row[1], int(row[2])), {})[rule.id] = (int(total), int(meets), int(catalogued), 0)
    return counts


def _aggregate_months(session: Session, windows: list[Window], county: str | None) -> dict[int, dict[str, Counts]]:
    """month -> rule id -> counts summed over the agencies selected that the rule can apply to.

    One SELECT per rule and month without per-agency rows, sent as a single UNION ALL. Each part
    names the power types too, so the database reads ix_acquisitions_compliance as one short range
    per category, power type and month; a rule naming agency kinds keeps to the agencies of those
    kinds with an IN. Whether a vehicle is an NEV is a matter of its power type, so an nev_share
    rule's part is grouped by category and power type — the index's own order, no sort — and
    counts NEVs and catalogue matches here, instead of a CASE on every row."""
    parts = []
    for index, (rule, first, last) in enumerate(windows):
        agencies: list[sa.ColumnElement[bool]] = []
        if county is not None or rule.scope.agency_kinds is not None:
            agencies.append(Acquisition.agency_id.in_(_agency_ids(county, rule.scope.agency_kinds)))
        powers = [] if rule.scope.power_types is not None else [Acquisition.power.in_(sorted(POWER_TYPES.values))]
        for start, end, month in _month_slices(first, last):
            c = rule_conditions(rule, start, end)
            head = [sa.literal(index, sa.Integer), sa.literal(month, sa.Integer)]
            if rule.measure == "nev_share":
                part = sa.select(
                    *head, Acquisition.power, sa.func.count(), sa.literal(0, sa.Integer), sa.func.count(Acquisition.catalogue_entry_id)
                ).group_by(Acquisition.category, Acquisition.power)
            else:
                catalogued = _count(c.catalogued) if rule.exemptions_allowed else sa.literal(0, sa.Integer)
                part = sa.select(*head, sa.cast(sa.null(), Acquisition.power.type), sa.func.count(), _count(c.meets), catalogued)
            parts.append(part.where(c.in_scope, *powers, *agencies))
    counts: dict[int, dict[str, Counts]] = {}
    for index, month, power, total, meets, catalogued in session.execute(sa.union_all(*parts)) if parts else []:
        if not total:
            continue
        rule = windows[index][0]
        if power is not None:  # a power type's group of an nev_share rule: `catalogued` is every catalogue match
            meets, catalogued = (total, 0) if power in NEV_POWER_TYPES else (0, catalogued if rule.exemptions_allowed else 0)
        before = counts.setdefault(int(month), {}).get(rule.id, NO_COUNTS)
        counts[int(month)][rule.id] = (before[0] + int(total), before[1] + int(meets), before[2] + int(catalogued), 0)
    return counts


def _requested(
    session: Session, windows: list[Window], where: list[sa.ColumnElement[bool]], *, by_month: bool
) -> dict[Key, dict[str, tuple[int, int]]]:
    """Approved and pending exemption requests per rule, read from the few requests outward."""
    exemptable = [w for w in windows if w[0].exemptions_allowed]
    if not exemptable:
        return {}
    states = exemption_states()
    # Few rows come here (only acquisitions with a request), so the month is computed per row.
    month = sa.cast(sa.extract("month", Acquisition.acquired_on), sa.Integer) if by_month else sa.literal(0, sa.Integer)
    group = [Acquisition.agency_id, month] if by_month else [Acquisition.agency_id]
    columns: list[sa.ColumnElement[Any]] = []
    for rule, first, last in exemptable:
        c = rule_conditions(rule, first, last, states.c.state)
        columns += [_count(sa.and_(c.in_scope, c.approved)), _count(sa.and_(c.in_scope, c.pending))]
    query = (
        sa.select(Acquisition.agency_id, month, *columns)
        .select_from(states)
        .join(Acquisition, Acquisition.id == states.c.acquisition_id)
        .where(states.c.state > 0, *where)
        .group_by(*group)
    )
    found: dict[Key, dict[str, tuple[int, int]]] = {}
    for row in session.execute(query):
        values = [int(v) for v in row[2:]]
        found[(row[0], int(row[1]))] = {rule.id: (values[2 * i], values[2 * i + 1]) for i, (rule, _, _) in enumerate(exemptable)}
    return found


def _counts(
    session: Session,
    windows: list[Window],
    where: list[sa.ColumnElement[bool]],
    *,
    by_month: bool = False,
    totals_only: bool = False,
) -> dict[Key, dict[str, Counts]]:
    """(agency id, month or 0) -> rule id -> (total, meets, exempt, pending).

    Two queries: the scan of acquisitions, and one driven by the exemption requests — joining the
    requests into the scan would make SQLite and PostgreSQL give up the index. Agency kinds are
    applied by the caller, from the registry, to keep a lookup per row out of the scan."""
    if not windows:
        return {}
    counts = _scan(session, windows, where, by_month=by_month, totals_only=totals_only)
    if totals_only:
        return counts
    for key, per_rule in _requested(session, windows, where, by_month=by_month).items():
        for rule_id, (approved, pending) in per_rule.items():
            total, meets, catalogued, _ = counts.get(key, {}).get(rule_id, NO_COUNTS)
            if total:
                counts[key][rule_id] = (total, meets, catalogued + approved, pending)
    return counts


AgencyRow = sa.Row[tuple[int, str, str]]  # id, name, kind


def _agencies(session: Session, agency_id: int | None, county: str | None) -> list[AgencyRow]:
    # Plain rows rather than ORM objects: a province has thousands of agencies.
    query = sa.select(Agency.id, Agency.name, Agency.kind).order_by(Agency.name)
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


def _agency_rules(
    session: Session,
    agencies: list[AgencyRow],
    windows: list[Window],
    year: tuple[dt.date, dt.date],
    where: list[sa.ColumnElement[bool]],
    year_counts: dict[Key, dict[str, Counts]] | None,
) -> dict[int, set[str]]:
    """Which rules each agency gets a result for: a rule naming agency kinds applies to every agency of
    those kinds (no_data when it bought nothing in scope); a rule open to any kind applies to an agency
    that acquired something in its scope during the calendar year, so a police bureau is not listed
    under buses unless it bought a bus. `year_counts` are counts over that year when the caller has them."""
    open_rules = [rule for rule, _, _ in windows if rule.scope.agency_kinds is None]
    present = year_counts
    if present is None and open_rules and agencies:
        year_windows = [(rule, *w) for rule in open_rules if (w := rule.effective_within(*year)) is not None]
        present = _counts(session, year_windows, where, totals_only=True)
    applicable: dict[int, set[str]] = {}
    for agency in agencies:
        ids = set()
        for rule, _, _ in windows:
            if rule.scope.agency_kinds is not None:
                if agency.kind in rule.scope.agency_kinds:
                    ids.add(rule.id)
            elif (present or {}).get((agency.id, 0), {}).get(rule.id, NO_COUNTS)[0] > 0:
                ids.add(rule.id)
        applicable[agency.id] = ids
    return applicable


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
    where = _agency_filter(session, agency_id, county)
    counts = _counts(session, windows, where)
    agencies = _agencies(session, agency_id, county)
    year = (dt.date(period.start.year, 1, 1), dt.date(period.end.year, 12, 31))
    applicable = _agency_rules(session, agencies, windows, year, where, counts if (period.start, period.end) == year else None)

    results: list[RuleResult] = []
    for rule, _, _ in windows:
        if agency_id is None:
            total = _sum(counts.get((a.id, 0), {}).get(rule.id, NO_COUNTS) for a in agencies if rule.applies_to_kind(a.kind))
            results.append(make_result(rule, None, None, *total))
        for agency in agencies:
            if rule.id in applicable[agency.id]:
                results.append(make_result(rule, agency.id, agency.name, *counts.get((agency.id, 0), {}).get(rule.id, NO_COUNTS)))
    return results


def monthly_series(
    session: Session,
    pack: RulePack,
    year: int,
    *,
    agency_id: int | None = None,
    county: str | None = None,
) -> dict[str, list[RuleResult]]:
    """"YYYY-MM" -> one result per rule in force that month: the aggregate (city, or county), or the
    agency's when agency_id is given (only rules that can apply to it), from the same two queries as evaluate."""
    period = Period.year(year)
    windows = _windows(pack, period.start, period.end)
    where = _agency_filter(session, agency_id, county)
    agencies = _agencies(session, agency_id, county)
    agency: AgencyRow | None = None
    rule_ids = {rule.id for rule, _, _ in windows}
    if agency_id is not None:
        if not agencies:
            return {}
        agency = agencies[0]
        counts = _counts(session, windows, where, by_month=True)
        by_month = {m: counts.get((agency.id, m), {}) for m in range(1, 13)}
        year_counts = {(agency.id, 0): {rule.id: _sum(m.get(rule.id, NO_COUNTS) for m in by_month.values()) for rule, _, _ in windows}}
        rule_ids = _agency_rules(session, agencies, windows, (period.start, period.end), where, year_counts)[agency.id]
    else:
        by_month = _aggregate_months(session, windows, county) if windows else {}
        kind_of = {a.id: a.kind for a in agencies}
        rules = {rule.id: rule for rule, _, _ in windows}
        for (agency_of, month_number), per_rule in _requested(session, windows, where, by_month=True).items():
            for rule_id, (approved, pending) in per_rule.items():
                if (approved or pending) and rules[rule_id].applies_to_kind(kind_of[agency_of]):
                    total, meets, catalogued, waiting = by_month[month_number][rule_id]
                    by_month[month_number][rule_id] = (total, meets, catalogued + approved, waiting + pending)

    series: dict[str, list[RuleResult]] = {}
    for month in period.months():
        results = []
        for rule in pack.rules:
            if rule.id not in rule_ids or rule.effective_within(month.start, month.end) is None:
                continue
            total = by_month.get(month.start.month, {}).get(rule.id, NO_COUNTS)
            results.append(make_result(rule, agency_id, agency.name if agency else None, *total))
        series[month.label] = results
    return series


def compliance_json(pack: RulePack, period: Period, results: Iterable[RuleResult]) -> dict[str, Any]:
    """{"pack", "period", "results"}: the command line's --json output and the JSON API's body."""
    return {"pack": pack.id, "period": period.label, "results": [r.as_dict() for r in results]}
