"""What the pages and mails show of the registration record: the findings of a year and each rule's
result "with registrations" beside the reported one, where the two differ."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from fleet.base.periods import Period
from fleet.domain.registrations.figures import with_registrations
from fleet.domain.registrations.reconcile import Finding, Range, reconcile
from rules.packs import RulePack
from rules.results import RuleResult


@dataclass(frozen=True)
class RegistrationView:
    """A year as the registration record sees it, for the agencies selected."""

    coverage: list[Range]
    findings: list[Finding]
    # (rule id, agency id or None for the aggregate) -> the result counted with the registrations
    results: dict[tuple[str, int | None], RuleResult] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.code] = counts.get(f.code, 0) + 1
        return counts

    def differs(self, reported: RuleResult) -> RuleResult | None:
        """The result with the registrations when it says something else than the reported one."""
        other = self.results.get((reported.rule.id, reported.agency_id))
        if other is None or (other.share, other.status, other.in_scope) == (reported.share, reported.status, reported.in_scope):
            return None
        return other


def registration_view(
    session: Session,
    pack: RulePack,
    year: int,
    *,
    today: dt.date,
    due_day: int,
    agency_id: int | None = None,
    county: str | None = None,
) -> RegistrationView | None:
    """The year's findings (one agency's, or all) and its results with the registrations; None when no
    loaded extract covers any day of the year."""
    period = Period.year(year)
    every = reconcile(session, period, today=today, due_day=due_day)
    if not every.coverage:
        return None
    results = {
        (r.rule.id, r.agency_id): r
        for r in with_registrations(session, pack, period, every.findings, agency_id=agency_id, county=county)
    }
    findings = [f for f in every.findings if agency_id is None or f.agency_id == agency_id]
    return RegistrationView(every.coverage, findings, results)
