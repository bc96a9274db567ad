"""The compliance engine: for each rule × agency × period, in-scope and NEV counts, share, status and shortfall.

The counts come from SQL (rules/counting.py); a result's arithmetic is rules/results.py. This module
decides which rules apply to which agency and puts the two together: evaluate() for any period,
agency_months() and year_results() for the dashboards, which keep each agency's year of counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

import numpy as np
from sqlalchemy.orm import Session

from fleet.base.periods import Period
from fleet.domain.selection import AgencyRow, agency_rows
from rules.counting import Key, Source, Window, count_rules, rule_windows
from rules.packs import RulePack
from rules.results import NO_COUNTS, Counts, RuleResult, make_result, sum_counts
from rules.year_counts import AgencyYearCounts


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
                totals[rule_id] = sum_counts((totals.get(rule_id, NO_COUNTS), found))
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
    accepted_only: bool = False,
    extra: Source | None = None,
) -> list[RuleResult]:
    """Results for each rule in force in the period: first the aggregate (agency None) over the
    agencies selected — the whole city, or a county's agencies — then each agency the rule can apply
    to, by name. With agency_id only that agency's results are returned, without an aggregate.
    accepted_only counts only the months each agency's report of which is accepted.
    `extra` adds rows to what was reported (rules.counting.Source, weight 1 or -1); its rows must
    cover the calendar year, which decides whether a rule open to any agency kind applies."""
    windows = rule_windows(pack, period.start, period.end)
    if not windows:
        return []
    selection = (agency_id, county)
    counts = count_rules(session, windows, selection, accepted_only=accepted_only, extra=extra)
    agencies = agency_rows(session, agency_id=agency_id, county=county)
    year = (dt.date(period.start.year, 1, 1), dt.date(period.end.year, 12, 31))
    present = counts
    if (period.start, period.end) != year and agencies:
        # Whether a rule open to any kind applies depends on the whole calendar year.
        year_windows = [(rule, *w) for rule, _, _ in windows if rule.scope.agency_kinds is None and (w := rule.effective_within(*year))]
        present = count_rules(session, year_windows, selection, totals_only=True, extra=extra) if year_windows else {}
    return _results(windows, agencies, counts, present, aggregate=agency_id is None)


def agency_months(session: Session, pack: RulePack, year: int, agency_ids: Collection[int] | None = None) -> dict[int, AgencyYearCounts]:
    """What the rules in force count over a calendar year, by agency and month, for the agencies of
    agency_ids (or every agency) that acquired something a rule covers. The dashboards keep these per
    agency and count again only the agencies whose tallies changed (fleet.read.agency_figures);
    year_results() turns them into results."""
    period = Period.year(year)
    windows = rule_windows(pack, period.start, period.end)
    rule_ids = tuple(rule.id for rule, _, _ in windows)
    months: dict[int, dict[int, dict[str, Counts]]] = {}
    for (agency, month), per_rule in count_rules(session, windows, (None, None), by_month=True, agency_ids=agency_ids).items():
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
    windows = rule_windows(pack, period.start, period.end)
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
