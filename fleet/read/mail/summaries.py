"""What each recipient is told about a month: an agency's rules for the month and the year to date, its
reporting and exemptions; the city digest. Never how it is worded (fleet.read.mail.render) nor sent.

The month and its year to date are evaluated once for every agency (MonthResults), and each agency's
summary and attachment are built from those results, and so is every agency's forecast: a
province's run is three evaluations, not three per agency.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from fleet.base.models import Acquisition, Agency, ExemptionRequest, ImportBatch
from fleet.base.periods import Period
from fleet.domain import reporting
from fleet.domain.forecast import Projection
from fleet.domain.registrations.reconcile import reconcile
from fleet.domain.reporting import MonthState
from fleet.domain.timeliness import LateAcquisition, late_acquisitions
from fleet.read.dashboards import pending_exemptions
from fleet.read.forecasts import forecasts_by_agency
from rules.engine import evaluate
from rules.packs import Rule, RulePack
from rules.results import RuleResult

# The digest lists at most this many agencies behind and pending requests (the oldest first); the
# attachment and the exemptions page have them all.
DIGEST_LIST_LIMIT = 15


def year_to_date(month: Period) -> Period:
    return Period.year_to_date(month.end)


@dataclass
class MonthResults:
    """A month and its year to date, evaluated once for every agency, with the month's reporting."""

    pack: RulePack
    month: Period
    ytd: Period
    deadline_days: int
    month_results: list[RuleResult]  # as evaluate() gives them: each rule's city aggregate, then its agencies
    ytd_results: list[RuleResult]
    reporting: dict[int, MonthState]  # agency id -> the month's reporting state, for the agencies owing it
    late: list[LateAcquisition]  # reported in the month after the deadline, latest first
    # agency id -> its registrations of the year to date nobody reported by their month's due date
    unreported: dict[int, int]
    forecasts: dict[int, list[Projection]]  # agency id -> its forecast of the month's year
    @cached_property
    def _by_agency(self) -> dict[int, tuple[dict[str, RuleResult], dict[str, RuleResult]]]:
        grouped: dict[int, tuple[dict[str, RuleResult], dict[str, RuleResult]]] = {}
        for index, results in enumerate((self.month_results, self.ytd_results)):
            for r in results:
                if r.agency_id is not None:
                    grouped.setdefault(r.agency_id, ({}, {}))[index][r.rule.id] = r
        return grouped

    @cached_property
    def _late_by_agency(self) -> dict[int, list[LateAcquisition]]:
        grouped: dict[int, list[LateAcquisition]] = defaultdict(list)
        for late in self.late:
            grouped[late.agency_id].append(late)
        return grouped

    def of_agency(self, agency_id: int) -> tuple[dict[str, RuleResult], dict[str, RuleResult]]:
        """The agency's results of the month and of the year to date, by rule id."""
        return self._by_agency.get(agency_id, ({}, {}))

    def late_of(self, agency_id: int) -> list[LateAcquisition]:
        return self._late_by_agency.get(agency_id, [])

    @property
    def not_reported(self) -> list[MonthState]:
        """The agencies still owing the month (missing, returned or open), by name."""
        return [s for s in self.reporting.values() if s.state in reporting.OWED]


def month_results(
    session: Session, pack: RulePack, month: Period, *, deadline_days: int, due_day: int, today: dt.date
) -> MonthResults:
    """The month's figures; the reporting states, and the registrations nobody reported by their
    month's due date, as of `today`."""
    ytd = year_to_date(month)
    unreported: dict[int, int] = defaultdict(int)
    for finding in reconcile(session, ytd, today=today, due_day=due_day).findings:
        if finding.code == "unreported" and finding.agency_id is not None:
            unreported[finding.agency_id] += 1
    return MonthResults(
        pack=pack,
        month=month,
        ytd=ytd,
        deadline_days=deadline_days,
        month_results=evaluate(session, pack, month),
        ytd_results=evaluate(session, pack, ytd),
        reporting={s.agency_id: s for s in reporting.month_states(session, month, today=today, due_day=due_day)},
        late=late_acquisitions(session, month, deadline_days=deadline_days),
        unreported=dict(unreported),
        forecasts=forecasts_by_agency(session, pack, month.start.year),
    )


@dataclass(frozen=True)
class RuleLine:
    rule: Rule
    month: RuleResult | None  # None when the rule came into force after the month
    ytd: RuleResult


@dataclass(frozen=True)
class Need:
    rule: Rule
    shortfall: int


@dataclass
class AgencySummary:
    agency: Agency
    month: Period
    ytd: Period
    lines: list[RuleLine]
    pending: list[ExemptionRequest]
    reporting: MonthState | None  # the month's reporting state; None when the agency did not owe it
    late: list[LateAcquisition]
    deadline_days: int
    unreported: int = 0  # vehicles the registration record says the agency owns and never reported
    month_label: str = ""
    ytd_label: str = ""
    forecasts: list[Projection] = field(default_factory=list)  # where the year heads with the purchase plan

    @property
    def needs(self) -> list[Need]:
        return [Need(line.rule, line.ytd.shortfall) for line in self.lines if line.ytd.shortfall]

    @property
    def assessed(self) -> bool:
        """Whether any rule has something in scope in the year to date: with nothing, there is
        nothing to be met (no data is not compliance)."""
        return any(line.ytd.status != "no_data" for line in self.lines)

    @property
    def unassessed(self) -> list[RuleLine]:
        """The rules with nothing in scope in the year to date."""
        return [line for line in self.lines if line.ytd.status == "no_data"]


@dataclass(frozen=True)
class StatusCounts:
    passed: int = 0
    failed: int = 0
    no_data: int = 0


@dataclass(frozen=True)
class RuleCounts:
    rule: Rule
    month: StatusCounts
    ytd: StatusCounts


@dataclass
class CityDigest:
    month: Period
    ytd: Period
    rule_counts: list[RuleCounts]
    behind: list[RuleResult]
    uploads: list[ImportBatch]
    pending: list[ExemptionRequest]  # the oldest DIGEST_LIST_LIMIT
    pending_total: int
    not_reported: list[MonthState]  # the month's agencies missing, returned or still open
    late_count: int
    deadline_days: int
    month_label: str = ""
    ytd_label: str = ""


def _pending_requests(session: Session, limit: int | None = None) -> list[ExemptionRequest]:
    query = (
        sa.select(ExemptionRequest)
        .join(ExemptionRequest.acquisition)
        .where(ExemptionRequest.status == "pending")
        .options(selectinload(ExemptionRequest.acquisition).selectinload(Acquisition.agency))
        .order_by(ExemptionRequest.requested_at, ExemptionRequest.id)
    )
    return list(session.scalars(query.limit(limit)))


def pending_requests_by_agency(session: Session) -> dict[int, list[ExemptionRequest]]:
    """Every pending exemption request by agency, the oldest first: one query for a run's every agency."""
    grouped: dict[int, list[ExemptionRequest]] = defaultdict(list)
    for request in _pending_requests(session):
        grouped[request.acquisition.agency_id].append(request)
    return grouped


def agency_summary(
    session: Session, results: MonthResults, agency: Agency, pending: list[ExemptionRequest]
) -> AgencySummary:
    """An agency's month: each applicable rule for the month and the year to date, reporting, and its
    pending exemption requests (of pending_requests_by_agency)."""
    # The engine has decided which rules apply to the agency (its kind, or what it bought this year).
    of_month, of_ytd = results.of_agency(agency.id)
    lines = [RuleLine(rule, of_month.get(rule.id), of_ytd[rule.id]) for rule in results.pack.rules if rule.id in of_ytd]
    return AgencySummary(
        agency=agency,
        month=results.month,
        ytd=results.ytd,
        lines=lines,
        pending=pending,
        reporting=results.reporting.get(agency.id),
        late=results.late_of(agency.id),
        deadline_days=results.deadline_days,
        forecasts=results.forecasts.get(agency.id, []),
        unreported=results.unreported.get(agency.id, 0),
    )


def _counts(results: list[RuleResult]) -> StatusCounts:
    statuses = [r.status for r in results]
    return StatusCounts(statuses.count("pass"), statuses.count("fail"), statuses.count("no_data"))


def city_digest(session: Session, results: MonthResults) -> CityDigest:
    """The bureau's month: rules × pass/fail, who is furthest behind, uploads, exemptions, silence."""
    month = results.month
    month_results = [r for r in results.month_results if r.agency_id is not None]
    ytd_results = [r for r in results.ytd_results if r.agency_id is not None]
    rule_counts = [
        RuleCounts(
            rule,
            _counts([r for r in month_results if r.rule.id == rule.id]),
            _counts([r for r in ytd_results if r.rule.id == rule.id]),
        )
        for rule in results.pack.rules
    ]
    behind = sorted((r for r in ytd_results if r.shortfall), key=lambda r: (-r.shortfall, r.agency, r.rule.id))
    uploads = session.scalars(
        sa.select(ImportBatch)
        .where(ImportBatch.uploaded_at >= _midnight(month.start), ImportBatch.uploaded_at < _midnight(month.end, 1))
        .options(selectinload(ImportBatch.agency))
        .order_by(ImportBatch.uploaded_at, ImportBatch.id)
    )
    return CityDigest(
        month=month,
        ytd=results.ytd,
        rule_counts=rule_counts,
        behind=behind[:DIGEST_LIST_LIMIT],
        uploads=list(uploads),
        pending=_pending_requests(session, limit=DIGEST_LIST_LIMIT),
        pending_total=pending_exemptions(session),
        not_reported=results.not_reported,
        late_count=len(results.late),
        deadline_days=results.deadline_days,
    )


def _midnight(day: dt.date, plus_days: int = 0) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=plus_days), dt.time())
