"""The compliance engine: for each rule × agency × period, in-scope and NEV counts, share, status and shortfall.

Everything is counted in one SQL aggregate per call (SUM of CASE per rule, GROUP BY agency or month),
never a query per vehicle or agency, so a year of a million acquisitions stays fast. Shares and
shortfalls are exact fractions: 60% of 5 needs 3, and exactly at the threshold passes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.models import Acquisition, Agency, ExemptionRequest
from fleet.vocab import NEV_POWER_TYPES
from rules.packs import Rule, RulePack
from rules.periods import Period

STATUSES = ("pass", "fail", "no_data")


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
    if share is None:
        status = "no_data"
    else:
        status = "pass" if share >= rule.threshold else "fail"
    shortfall = max(0, math.ceil(rule.threshold * in_scope) - meets)
    return RuleResult(rule, agency_id, agency, in_scope, meets, exempt, pending, share, rule.threshold, status, shortfall)


# --- The SQL conditions of a rule, shared with explain ------------------------------------------------


@dataclass(frozen=True)
class RuleConditions:
    in_scope: sa.ColumnElement[bool]  # before exemptions
    meets: sa.ColumnElement[bool]  # NEV, or meets an accepted standard
    exempt: sa.ColumnElement[bool]
    pending: sa.ColumnElement[bool]


def rule_conditions(rule: Rule, first: dt.date, last: dt.date) -> RuleConditions:
    """The rule as SQL over acquisitions acquired between first and last (inclusive)."""
    a = Acquisition
    scope = [
        a.acquired_on.between(first, last),
        a.category.in_(sorted(rule.scope.categories)),
        a.acquisition_kind.in_(sorted(rule.scope.acquisition_kinds)),
    ]
    if rule.scope.power_types is not None:
        scope.append(a.power.in_(sorted(rule.scope.power_types)))
    if rule.scope.agency_kinds is not None:
        scope.append(a.agency_id.in_(sa.select(Agency.id).where(Agency.kind.in_(sorted(rule.scope.agency_kinds)))))
    if rule.measure == "nev_share":
        meets = a.power.in_(sorted(NEV_POWER_TYPES))
    else:
        # A missing standard is not a met standard; coalesce keeps NULL out of the NOT below.
        meets = sa.func.coalesce(a.emission_standard, "").in_(sorted(rule.standards))
    if rule.exemptions_allowed:
        approved = a.id.in_(sa.select(ExemptionRequest.acquisition_id).where(ExemptionRequest.status == "approved"))
        requested = a.id.in_(sa.select(ExemptionRequest.acquisition_id).where(ExemptionRequest.status == "pending"))
        # Only a vehicle that does not count can be exempted; an exempted NEV would lower the share.
        exempt = sa.and_(sa.not_(meets), sa.or_(a.catalogue_entry_id.is_not(None), approved))
        pending = sa.and_(sa.not_(meets), a.catalogue_entry_id.is_(None), sa.not_(approved), requested)
    else:
        exempt = pending = sa.false()
    return RuleConditions(sa.and_(*scope), meets, exempt, pending)


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _agency_filter(agency_id: int | None, county: str | None) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if agency_id is not None:
        where.append(Acquisition.agency_id == agency_id)
    if county is not None:
        where.append(Acquisition.agency_id.in_(sa.select(Agency.id).where(Agency.county == county)))
    return where


def _windows(pack: RulePack, start: dt.date, end: dt.date) -> list[tuple[Rule, dt.date, dt.date]]:
    """The rules in force in [start, end], each with the part of it in which it is."""
    windows = []
    for rule in pack.rules:
        window = rule.effective_within(start, end)
        if window is not None:
            windows.append((rule, *window))
    return windows


def _counts(
    session: Session,
    windows: list[tuple[Rule, dt.date, dt.date]],
    group_by: list[sa.ColumnElement[Any]],
    where: list[sa.ColumnElement[bool]],
    *,
    totals_only: bool = False,
) -> dict[tuple, dict[str, tuple[int, int, int, int]]]:
    """(group key) -> rule id -> (total, meets, exempt, pending), in one aggregate query."""
    if not windows:
        return {}
    columns: list[sa.ColumnElement[Any]] = []
    for rule, first, last in windows:
        c = rule_conditions(rule, first, last)
        columns.append(_count(c.in_scope))
        if not totals_only:
            columns += [
                _count(sa.and_(c.in_scope, c.meets)),
                _count(sa.and_(c.in_scope, c.exempt)) if rule.exemptions_allowed else sa.literal(0),
                _count(sa.and_(c.in_scope, c.pending)) if rule.exemptions_allowed else sa.literal(0),
            ]
    # The union of the scopes narrows the scan to the indexed date range and categories.
    categories = sorted(set().union(*(rule.scope.categories for rule, _, _ in windows)))
    query = (
        sa.select(*group_by, *columns)
        .where(
            Acquisition.acquired_on.between(min(w[1] for w in windows), max(w[2] for w in windows)),
            Acquisition.category.in_(categories),
            *where,
        )
        .group_by(*group_by)
    )
    width = 1 if totals_only else 4
    counts: dict[tuple, dict[str, tuple[int, int, int, int]]] = {}
    for row in session.execute(query):
        key = tuple(row[: len(group_by)])
        values = [int(v) for v in row[len(group_by) :]]
        counts[key] = {
            rule.id: tuple(values[i * width : i * width + width]) + (0,) * (4 - width)  # type: ignore[misc]
            for i, (rule, _, _) in enumerate(windows)
        }
    return counts


def _agencies(session: Session, agency_id: int | None, county: str | None) -> list[Agency]:
    query = sa.select(Agency).order_by(Agency.name)
    if agency_id is not None:
        query = query.where(Agency.id == agency_id)
    if county is not None:
        query = query.where(Agency.county == county)
    return list(session.scalars(query))


def _agency_rules(
    session: Session,
    agencies: list[Agency],
    windows: list[tuple[Rule, dt.date, dt.date]],
    year_start: dt.date,
    year_end: dt.date,
    where: list[sa.ColumnElement[bool]],
) -> dict[int, set[str]]:
    """Which rules each agency gets a result for: a rule naming agency kinds applies to every agency of
    those kinds (no_data when it bought nothing in scope); a rule open to any kind applies to an agency
    that acquired something in its scope during the calendar year, so a police bureau is not listed
    under buses unless it bought a bus."""
    open_rules = [w for w in windows if w[0].scope.agency_kinds is None]
    present: dict[tuple, dict[str, tuple[int, int, int, int]]] = {}
    if open_rules and agencies:
        year_windows = []
        for rule, _, _ in open_rules:
            window = rule.effective_within(year_start, year_end)
            if window is not None:
                year_windows.append((rule, *window))
        present = _counts(session, year_windows, [Acquisition.agency_id], where, totals_only=True)
    applicable: dict[int, set[str]] = {}
    for agency in agencies:
        ids = set()
        for rule, _, _ in windows:
            if rule.scope.agency_kinds is not None:
                if agency.kind in rule.scope.agency_kinds:
                    ids.add(rule.id)
            elif present.get((agency.id,), {}).get(rule.id, (0,))[0] > 0:
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
    where = _agency_filter(agency_id, county)
    by_agency = _counts(session, windows, [Acquisition.agency_id], where)
    agencies = _agencies(session, agency_id, county)
    year_start, year_end = dt.date(period.start.year, 1, 1), dt.date(period.end.year, 12, 31)
    applicable = _agency_rules(session, agencies, windows, year_start, year_end, where)

    results: list[RuleResult] = []
    for rule, _, _ in windows:
        if agency_id is None:
            sums = [sum(c[rule.id][i] for c in by_agency.values()) for i in range(4)]
            results.append(make_result(rule, None, None, *sums))
        for agency in agencies:
            if rule.id in applicable[agency.id]:
                counts = by_agency.get((agency.id,), {}).get(rule.id, (0, 0, 0, 0))
                results.append(make_result(rule, agency.id, agency.name, *counts))
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
    agency's when agency_id is given (only rules that can apply to it). One query for the year."""
    period = Period.year(year)
    windows = _windows(pack, period.start, period.end)
    where = _agency_filter(agency_id, county)
    month = sa.cast(sa.extract("month", Acquisition.acquired_on), sa.Integer)
    by_month = _counts(session, windows, [month], where)
    agency: Agency | None = None
    rule_ids = {rule.id for rule, _, _ in windows}
    if agency_id is not None:
        agency = session.get(Agency, agency_id)
        if agency is None:
            return {}
        rule_ids = _agency_rules(session, [agency], windows, period.start, period.end, where)[agency.id]

    series: dict[str, list[RuleResult]] = {}
    for month_period in period.months():
        results = []
        for rule in pack.rules:
            if rule.id not in rule_ids or rule.effective_within(month_period.start, month_period.end) is None:
                continue
            counts = by_month.get((month_period.start.month,), {}).get(rule.id, (0, 0, 0, 0))
            results.append(make_result(rule, agency_id, agency.name if agency else None, *counts))
        series[month_period.label] = results
    return series


def compliance_json(pack: RulePack, period: Period, results: Iterable[RuleResult]) -> dict[str, Any]:
    """{"pack", "period", "results"}: the command line's --json output and the JSON API's body."""
    return {"pack": pack.id, "period": period.label, "results": [r.as_dict() for r in results]}
