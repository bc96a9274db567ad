"""Counting in SQL: what each rule covers, meets, exempts and leaves pending, by agency (and month).

One SELECT … GROUP BY agency (and month, for the dashboards' series) per rule, sent as a single
UNION ALL — never a query per vehicle or agency. Whole months are summed from acquisition_tallies,
which the database keeps as acquisitions are written and exemptions requested and decided; only the
days of a month cut short are read from acquisitions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.models import Acquisition, AcquisitionTally, MonthlyReport
from fleet.base.periods import months_touched, split_at_whole_months
from fleet.base.vocab import ACQUISITION_KINDS, NEV_POWER_TYPES
from fleet.domain.selection import selected_agencies
from rules.packs import Rule, RulePack
from rules.results import NO_COUNTS, Counts

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


def _sources(first: dt.date, last: dt.date, extra: Source | None = None) -> list[tuple[Source, dt.date, dt.date]]:
    """Where to count [first, last] from: the tallies for its whole months, acquisitions for the days
    of a month cut short (a rule taking effect mid-month, a year to date), and the rows of an extra
    source, which add to (weight 1) or take from (weight -1) what was reported: another view of the
    same figures, such as the registration record's (fleet.domain.registrations.figures)."""
    whole, edges = split_at_whole_months(first, last)
    extras = [] if extra is None else [(extra, first, last)]
    return ([(TALLIES, *whole)] if whole else []) + [(ACQUISITIONS, *edge) for edge in edges] + extras


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


Window = tuple[Rule, dt.date, dt.date]
Key = tuple[int, int]  # agency id, month (0 when not by month)
Selection = tuple[int | None, str | None]  # agency id, county: the agencies counted (None, None: all)


def rule_windows(pack: RulePack, start: dt.date, end: dt.date) -> list[Window]:
    """The rules in force in [start, end], each with the part of it in which it is."""
    windows = []
    for rule in pack.rules:
        window = rule.effective_within(start, end)
        if window is not None:
            windows.append((rule, *window))
    return windows


def _pieces(
    first: dt.date, last: dt.date, *, by_month: bool, extra: Source | None = None
) -> list[tuple[Source, dt.date, dt.date, sa.ColumnElement[dt.date] | None]]:
    """[first, last] as the parts a query sums, each with its source and, by month, the month it
    falls in: the tallies' whole months in one part, grouped by their own month column, and the days
    of a month cut short from acquisitions, one part per month."""
    pieces: list[tuple[Source, dt.date, dt.date, sa.ColumnElement[dt.date] | None]] = []
    for source, start, end in _sources(first, last, extra):
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


def _in_accepted_month(source: Source, start: dt.date, end: dt.date) -> sa.ColumnElement[bool]:
    """Vehicles acquired in a month whose report the agency had accepted (official figures)."""
    report = MonthlyReport
    if source is TALLIES:
        month = report.month == source.acquired  # a tally's date is the first of its month
    else:
        month = sa.or_(*(sa.and_(report.month == m.start, source.acquired.between(m.start, m.end)) for m in months_touched(start, end)))
    return sa.exists().where(report.agency_id == source.agency_id, report.status == "accepted", month)


def count_rules(
    session: Session,
    windows: list[Window],
    selection: Selection,
    *,
    by_month: bool = False,
    totals_only: bool = False,
    agency_ids: Collection[int] | None = None,
    accepted_only: bool = False,
    extra: Source | None = None,
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
        for source, start, end, month in _pieces(first, last, by_month=by_month, extra=extra):
            c = rule_conditions(rule, start, end, source)
            counted = [sa.func.sum(source.weight)] if totals_only else _counted(rule, c, source)
            months = [] if month is None else [month]
            accepted = [_in_accepted_month(source, start, end)] if accepted_only else []
            parts.append(
                sa.select(sa.literal(index, sa.Integer), source.agency_id, *months, *counted)
                .where(c.in_scope, *selected_agencies(source.agency_id, *selection, agency_ids), *accepted)
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
