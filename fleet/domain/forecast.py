"""Where a year is heading: the acquisitions so far plus the planned vehicles not yet bought, per rule.

Plain arithmetic over counts, no database: fleet.domain.plans gathers the counts. A rule's scope is
asked through rules.packs.Rule.covers and a result made by rules.engine.make_result, so a projection
is judged exactly as the compliance of the acquisitions themselves (exact fractions, pending
exemptions in scope, approved ones out).

The fewest changes that make every rule pass is a small integer programme: a planned enforcement car
turned NEV helps both the 60% enforcement rule and the 50% official-car rule, an official car only
the latter. Choosing greedily by how many rules a vehicle helps is not always optimal once ceilings
and exemptions play in, so the planned non-NEVs are grouped by what changing one of them does to
every rule, groups that share no rule are solved apart, and within a group of rules every count of
changes per group is tried (the last group's count found by bisection: changing a vehicle to NEV
never lowers a share, so passing is monotone). A Puyang agency has at most two such groups in one
set of rules (official and enforcement cars), a bus or taxi operator one.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleet.base.vocab import NEV_POWER_TYPES
from rules.packs import Rule
from rules.results import NO_COUNTS, Counts, RuleResult, make_result

# The power a planned non-NEV becomes when the plan is changed: any NEV counts alike.
CHANGED_TO = "纯电动"
# Forecast states (issue contract).
ON_TRACK, AT_RISK, OFF_TRACK, NO_PLAN = "on_track", "at_risk", "off_track", "no_plan"


@dataclass(frozen=True)
class PlannedVehicles:
    """Planned vehicles of one kind not bought yet: `count` of them."""

    category: str
    acquisition_kind: str
    power: str
    first_day: dt.date  # of the planned month or quarter
    last_day: dt.date
    exemption_state: int  # as Acquisition.exemption_state: 2 approved, 1 pending, 0 none
    count: int


def planned_counts(rule: Rule, vehicles: PlannedVehicles, power: str | None = None) -> Counts:
    """What one planned vehicle adds to a rule's (total, meets, exempt, pending), as the engine counts
    an acquisition; power overrides the planned power (a vehicle changed to NEV)."""
    power = power or vehicles.power
    if not rule.covers_between(vehicles.category, vehicles.acquisition_kind, power, vehicles.first_day, vehicles.last_day):
        return NO_COUNTS
    if power in NEV_POWER_TYPES:
        return (1, 1, 0, 0)
    if rule.exemptions_allowed and vehicles.exemption_state == 2:
        return (1, 0, 1, 0)
    if rule.exemptions_allowed and vehicles.exemption_state == 1:
        return (1, 0, 0, 1)
    return (1, 0, 0, 0)


def _plus(counts: Counts, more: Counts, times: int = 1) -> Counts:
    return tuple(a + times * b for a, b in zip(counts, more))  # type: ignore[return-value]


def actual_counts(result: RuleResult | None) -> Counts:
    """A result's counts as the engine sums them: total before exemptions, meets, exempt, pending."""
    if result is None:
        return NO_COUNTS
    return (result.in_scope + result.exempt, result.nev, result.exempt, result.pending)


@dataclass(frozen=True)
class Projection:
    """One rule's year as planned: the acquisitions so far, the plan not yet bought, and the sum."""

    rule: Rule
    agency_id: int | None  # None: city-wide
    agency: str | None
    actual: Counts
    planned: Counts
    projected: RuleResult
    planned_non_nev: int  # planned non-NEVs in scope that could become NEVs
    planned_nev_remaining: int  # planned NEVs in scope not bought yet
    nev_needed: int  # fewest planned non-NEVs to change (the projected shortfall when changes cannot do it)
    reachable: bool  # whether changing planned non-NEVs can make the rule pass
    forecast: str
    non_nev_powers: tuple[str, ...] = field(default=())  # the powers of those planned non-NEVs

    @property
    def actual_in_scope(self) -> int:
        return self.actual[0] - self.actual[2]

    @property
    def planned_in_scope(self) -> int:
        return self.planned[0] - self.planned[2]

    def as_dict(self, *, forecast: bool) -> dict[str, Any]:
        """The row of `plans check --json` (status) or of `forecast --json` (forecast)."""
        share = self.projected.share
        row: dict[str, Any] = {
            "rule": self.rule.qualified_id,
            "agency": self.agency,
            "actual_in_scope": self.actual_in_scope,
            "actual_nev": self.actual[1],
            "planned_in_scope": self.planned_in_scope,
            "planned_nev": self.planned[1],
            "projected_share": None if share is None else round(float(share), 4),
            "threshold": round(float(self.rule.threshold), 4),
        }
        if forecast:
            row["forecast"] = self.forecast
        else:
            row["status"] = self.projected.status
        row["nev_needed"] = self.nev_needed
        row["planned_non_nev"] = self.planned_non_nev
        row["reachable"] = self.reachable
        return row


def _passes(rule: Rule, counts: Counts) -> bool:
    return make_result(rule, None, None, *counts).status != "fail"


def forecast_state(rule: Rule, counts: Counts, planned_nev_remaining: int, *, has_plan: bool) -> str:
    """on_track: the year passes as planned, even if one planned NEV were bought as a non-NEV;
    at_risk: it passes only if every remaining planned NEV is bought; off_track: it fails even so;
    no_plan: there is no plan to go by. Nothing in scope cannot fail: on_track."""
    if not has_plan:
        return NO_PLAN
    if not _passes(rule, counts):
        return OFF_TRACK
    if planned_nev_remaining and not _passes(rule, _plus(counts, (0, -1, 0, 0))):
        return AT_RISK
    return ON_TRACK


def project(
    rules: Sequence[Rule],
    actual: dict[str, Counts],
    planned: Iterable[PlannedVehicles],
    *,
    agency_id: int | None,
    agency: str | None,
    has_plan: bool,
) -> tuple[list[Projection], int | None]:
    """Each rule's projection (actual: rule id -> counts so far) and the fewest planned non-NEVs to
    change so that every rule passes (None when changing them all is not enough)."""
    planned = [p for p in planned if p.count > 0]
    projections = []
    changeable = [p for p in planned if p.power not in NEV_POWER_TYPES]
    for rule in rules:
        plan = NO_COUNTS
        nev_remaining = non_nev = 0
        powers: set[str] = set()
        for vehicles in planned:
            counts = planned_counts(rule, vehicles)
            plan = _plus(plan, counts, vehicles.count)
            if counts[0] and counts[1]:
                nev_remaining += vehicles.count
            elif counts[0] and not counts[2]:
                non_nev += vehicles.count
                powers.add(vehicles.power)
        total = _plus(actual.get(rule.id, NO_COUNTS), plan)
        fewest = fewest_changes([rule], {rule.id: total}, changeable)
        result = make_result(rule, agency_id, agency, *total)
        projections.append(
            Projection(
                rule=rule,
                agency_id=agency_id,
                agency=agency,
                actual=actual.get(rule.id, NO_COUNTS),
                planned=plan,
                projected=result,
                planned_non_nev=non_nev,
                planned_nev_remaining=nev_remaining,
                nev_needed=result.shortfall if fewest is None else fewest,
                reachable=fewest is not None,
                forecast=forecast_state(rule, total, nev_remaining, has_plan=has_plan),
                non_nev_powers=tuple(sorted(powers)),
            )
        )
    totals = {p.rule.id: _plus(p.actual, p.planned) for p in projections}
    return projections, fewest_changes(list(rules), totals, changeable)


Effect = tuple[Counts, ...]  # per rule: what changing one vehicle of a group does to its counts


def _effect(rules: Sequence[Rule], vehicles: PlannedVehicles) -> Effect:
    return tuple(
        tuple(a - b for a, b in zip(planned_counts(rule, vehicles, CHANGED_TO), planned_counts(rule, vehicles)))  # type: ignore[misc]
        for rule in rules
    )


def fewest_changes(rules: Sequence[Rule], counts: dict[str, Counts], changeable: Iterable[PlannedVehicles]) -> int | None:
    """The fewest planned non-NEVs to change to NEV so that every rule passes, given each rule's
    projected counts; 0 when all pass, None when changing every one is not enough."""
    groups: dict[Effect, int] = {}
    for vehicles in changeable:
        effect = _effect(rules, vehicles)
        if any(any(e) for e in effect):
            groups[effect] = groups.get(effect, 0) + vehicles.count
    # Rules linked through a group that changes both are solved together; the others apart.
    components = _components(len(rules), list(groups))
    total = 0
    for rule_indexes in components:
        members = [(effect, n) for effect, n in groups.items() if any(any(effect[i]) for i in rule_indexes)]
        part = _solve([rules[i] for i in rule_indexes], [counts[rules[i].id] for i in rule_indexes],
                      [(tuple(effect[i] for i in rule_indexes), n) for effect, n in members])
        if part is None:
            return None
        total += part
    return total


def _components(rule_count: int, effects: list[Effect]) -> list[list[int]]:
    parent = list(range(rule_count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for effect in effects:
        touched = [i for i, e in enumerate(effect) if any(e)]
        for i in touched[1:]:
            parent[root(i)] = root(touched[0])
    components: dict[int, list[int]] = {}
    for i in range(rule_count):
        components.setdefault(root(i), []).append(i)
    return list(components.values())


def _solve(rules: list[Rule], counts: list[Counts], groups: list[tuple[Effect, int]]) -> int | None:
    """Exhaustive over the counts changed per group (the largest group last, by bisection)."""

    def passes(changes: Sequence[int]) -> bool:
        for r, rule in enumerate(rules):
            after = counts[r]
            for (effect, _n), x in zip(groups, changes):
                after = _plus(after, effect[r], x)
            if not _passes(rule, after):
                return False
        return True

    if not groups:
        return 0 if passes(()) else None
    groups = sorted(groups, key=lambda g: g[1])
    if not passes([n for _e, n in groups]):
        return None
    best: int | None = None
    *first, (_last_effect, last_n) = groups
    for chosen in itertools.product(*(range(n + 1) for _e, n in first)):
        spent = sum(chosen)
        if best is not None and spent >= best:
            continue
        if not passes([*chosen, last_n]):
            continue
        low, high = 0, last_n  # passes with high changes of the last group; find the fewest
        while low < high:
            middle = (low + high) // 2
            if passes([*chosen, middle]):
                high = middle
            else:
                low = middle + 1
        if best is None or spent + low < best:
            best = spent + low
    return best

