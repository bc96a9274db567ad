"""A compliance result: counts, share, status and shortfall of one rule for one agency (or all), and its JSON shape.

Shares and shortfalls are exact: 60% of 5 needs 3, and exactly at the threshold passes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from fleet.base.periods import Period
from rules.packs import Rule, RulePack

Counts = tuple[int, int, int, int]  # total (before exemptions), meets, exempt, pending
NO_COUNTS: Counts = (0, 0, 0, 0)


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
    # thousand results, and Fraction's operators cost more than the counting around them.
    p, q = rule.threshold.numerator, rule.threshold.denominator
    if share is None:
        status = "no_data"
    else:
        status = "pass" if meets * q >= p * in_scope else "fail"
    shortfall = max(0, -(-p * in_scope // q) - meets)
    return RuleResult(rule, agency_id, agency, in_scope, meets, exempt, pending, share, rule.threshold, status, shortfall)


def sum_counts(counts: Iterable[Counts]) -> Counts:
    total = meets = exempt = pending = 0
    for t, m, e, p in counts:
        total, meets, exempt, pending = total + t, meets + m, exempt + e, pending + p
    return total, meets, exempt, pending


def compliance_json(pack: RulePack, period: Period, results: Iterable[RuleResult]) -> dict[str, Any]:
    """{"pack", "period", "results"}: the command line's --json output and the JSON API's body."""
    return {"pack": pack.id, "period": period.label, "results": [r.as_dict() for r in results]}
