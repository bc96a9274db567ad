"""The monthly reporting cycle (月报): every agency owes a report per month, due on a day of the next month.

Only what people did is stored (MonthlyReport: a submission, a zero report, a return, an acceptance);
`open` and `missing` are derived from the due date and today, so nothing has to run at midnight for
a month to become missing. An agency owes the months ending after it was registered.

A month's state for an agency:
- `open`: the due date has not passed and nothing is submitted;
- `submitted` / `nil`: submitted, with acquisitions / as a zero report (零报告);
- `returned`: sent back by a reviewer with a comment (or reopened after acceptance), to submit again;
- `accepted`: accepted by a reviewer; the month is locked (no upload adds or changes its acquisitions);
- `missing`: the due date has passed and nothing is submitted.
A zero report no longer holds once the month has acquisitions: the month is owed again.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.models import Acquisition, AcquisitionTally, Agency, AuditEntry, MonthlyReport, User, utcnow
from fleet.base.periods import Period
from fleet.base.text import _
from rules.active import active_pack

STATES = ("open", "submitted", "nil", "returned", "accepted", "missing")
# States in which the agency still has to (re)submit.
OWED = ("open", "returned", "missing")
# States a reviewer can decide on.
DECIDABLE = ("submitted", "nil")
REVIEWER_ROLES = ("reviewer", "admin")


class ReportingRefused(Exception):
    """An action the cycle does not allow; `code` is the stable error code of the command line and API."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def due_date(month: Period | dt.date, due_day: int) -> dt.date:
    """The day a month's report is due: `due_day` of the following month (its last day when shorter).

    `month` is the month (a Period) or any day in it. The report is on time when submitted on the due
    date itself; the month is missing from the next day."""
    start = month.start if isinstance(month, Period) else month
    year, number = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return dt.date(year, number, min(due_day, calendar.monthrange(year, number)[1]))


def due_passed(month: Period | dt.date, due_day: int, today: dt.date) -> bool:
    """Whether the month's reporting due date is behind `today` (a report now would be late)."""
    return today > due_date(month, due_day)


def due_day_in_force(session: Session, setting: int) -> int:
    """The due day in force: the active rule pack's `reporting.due_day` when it sets one, else the
    REPORTING_DUE_DAY setting."""
    pack_day = active_pack(session).reporting_due_day
    return pack_day if pack_day is not None else setting


def local_time(moment: dt.datetime | None, zone: str) -> dt.datetime | None:
    """A stored time (naive UTC, as every timestamp of the database) in the users' time zone."""
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone))


def month_of(day: dt.date) -> Period:
    return Period.month(day.year, day.month)


@dataclass(frozen=True)
class MonthState:
    """One agency's month: what the grid, the agency page, the API and the mail show."""

    agency_id: int
    agency: str
    county: str
    kind: str
    month: Period
    due: dt.date
    state: str
    late: bool
    submitted_at: dt.datetime | None  # naive UTC as stored
    acquisitions: int  # acquired in the month, as now recorded
    on_behalf: bool  # submitted by a reviewer for the agency
    submitted_by: str | None
    comment: str | None  # the reviewer's last comment (a return's reason, a reopening's)
    returns: int  # how often the month was sent back (returned or reopened)

    def as_json(self, zone: str) -> dict[str, object]:
        """The entry of `reporting status --json` and GET /api/v1/reporting (a contract)."""
        submitted = local_time(self.submitted_at, zone)
        return {
            "agency": self.agency,
            "state": self.state,
            "late": self.late,
            "submitted_at": submitted.isoformat() if submitted else None,
            "acquisitions": self.acquisitions,
        }


def _derive(report: MonthlyReport | None, acquisitions: int, due: dt.date, today: dt.date) -> tuple[str, bool]:
    """The state and late flag from what is stored, the month's acquisitions, the due date and today."""
    if report is None or (report.status == "nil" and acquisitions > 0):
        return ("missing" if today > due else "open"), False
    return report.status, report.late


def _owing(months_end: dt.date) -> sa.ColumnElement[bool]:
    """Agencies registered by the end of the month owe it."""
    return Agency.created_at < dt.datetime.combine(months_end + dt.timedelta(days=1), dt.time.min)


def month_states(
    session: Session,
    month: Period,
    *,
    today: dt.date,
    due_day: int,
    agency_id: int | None = None,
    county: str | None = None,
    kind: str | None = None,
    agency_ids: Collection[int] | None = None,
) -> list[MonthState]:
    """Each agency's state for the month, by agency name: three queries (agencies, reports, tallies)."""
    agencies = sa.select(Agency.id, Agency.name, Agency.county, Agency.kind).where(_owing(month.end)).order_by(Agency.name)
    if agency_id is not None:
        agencies = agencies.where(Agency.id == agency_id)
    if county is not None:
        agencies = agencies.where(Agency.county == county)
    if kind is not None:
        agencies = agencies.where(Agency.kind == kind)
    if agency_ids is not None:
        agencies = agencies.where(Agency.id.in_(sorted(agency_ids)))
    rows = session.execute(agencies).all()
    ids = [row.id for row in rows]
    reports = _reports(session, ids, [month.start])
    counts = _acquisition_counts(session, ids, [month.start])
    due = due_date(month, due_day)
    return [
        _state(row.id, row.name, row.county, row.kind, month, due, reports.get((row.id, month.start)), counts.get((row.id, month.start), 0), today)
        for row in rows
    ]


def agency_history(session: Session, agency: Agency, months: Iterable[Period], *, today: dt.date, due_day: int) -> list[MonthState]:
    """One agency's states over the months given (those it owes), in the order given."""
    owed = [m for m in months if agency.created_at < dt.datetime.combine(m.end + dt.timedelta(days=1), dt.time.min)]
    starts = [m.start for m in owed]
    reports = _reports(session, [agency.id], starts)
    counts = _acquisition_counts(session, [agency.id], starts)
    return [
        _state(
            agency.id, agency.name, agency.county, agency.kind, m, due_date(m, due_day),
            reports.get((agency.id, m.start)), counts.get((agency.id, m.start), 0), today,
        )
        for m in owed
    ]  # fmt: skip


def recent_months(today: dt.date, count: int) -> list[Period]:
    """The `count` months before today's, latest first: the months an agency page and the grid offer."""
    months = []
    year, number = today.year, today.month
    for _i in range(count):
        year, number = (year - 1, 12) if number == 1 else (year, number - 1)
        months.append(Period.month(year, number))
    return months


def _state(
    agency_id: int, name: str, county: str, kind: str, month: Period, due: dt.date,
    report: MonthlyReport | None, acquisitions: int, today: dt.date,
) -> MonthState:  # fmt: skip
    state, late = _derive(report, acquisitions, due, today)
    held = report is not None and state not in ("open", "missing")
    return MonthState(
        agency_id=agency_id,
        agency=name,
        county=county,
        kind=kind,
        month=month,
        due=due,
        state=state,
        late=late,
        submitted_at=report.submitted_at if held else None,
        acquisitions=acquisitions,
        on_behalf=bool(report.on_behalf) if held else False,
        submitted_by=report.submitted_by.username if held and report.submitted_by else None,
        comment=report.comment if report is not None else None,
        returns=report.returns if report is not None else 0,
    )


def _reports(session: Session, agency_ids: list[int], months: list[dt.date]) -> dict[tuple[int, dt.date], MonthlyReport]:
    if not agency_ids or not months:
        return {}
    query = sa.select(MonthlyReport).where(MonthlyReport.month.in_(months))
    # A province's thousands of agencies are every agency: no list of ids in the SQL then.
    if len(agency_ids) < 500:
        query = query.where(MonthlyReport.agency_id.in_(agency_ids))
    return {(r.agency_id, r.month): r for r in session.scalars(query)}


def _acquisition_counts(session: Session, agency_ids: list[int], months: list[dt.date]) -> dict[tuple[int, dt.date], int]:
    """Acquisitions by agency and month acquired, summed from the monthly tallies."""
    if not agency_ids or not months:
        return {}
    t = AcquisitionTally
    query = sa.select(t.agency_id, t.month, sa.func.sum(t.acquisitions)).where(t.month.in_(months)).group_by(t.agency_id, t.month)
    if len(agency_ids) < 500:
        query = query.where(t.agency_id.in_(agency_ids))
    return {(agency_id, month): int(count) for agency_id, month, count in session.execute(query) if count}


@dataclass(frozen=True)
class StateGrid:
    """Months × agencies: the reviewers' grid."""

    months: list[Period]  # oldest first, ending with the month chosen
    by_month: dict[str, dict[int, MonthState]]  # "YYYY-MM" -> agency id -> state
    chosen: list[MonthState]  # the chosen month's states, by agency name
    chosen_due: dt.date


def state_grid(
    session: Session, month: Period, count: int, *, today: dt.date, due_day: int, county: str | None = None, kind: str | None = None
) -> StateGrid:
    """The states of the `count` months up to `month` for the agencies of the county and kind given."""
    months = list(reversed(recent_months(month.end + dt.timedelta(days=1), count)))
    by_month = {
        m.label: {s.agency_id: s for s in month_states(session, m, today=today, due_day=due_day, county=county, kind=kind)}
        for m in months
    }
    return StateGrid(months, by_month, list(by_month[month.label].values()), due_date(month, due_day))


@dataclass(frozen=True)
class MonthDetail:
    """One agency's month as its page shows it."""

    state: MonthState
    acquisitions: list[Acquisition]  # the first `listed` acquired in the month
    history: list[AuditEntry]  # what was done about the month, oldest first


def month_detail(session: Session, agency: Agency, month: Period, *, today: dt.date, due_day: int, listed: int) -> MonthDetail | None:
    """The month's state, the acquisitions it covers and its history; None when the agency does not owe it."""
    states = month_states(session, month, today=today, due_day=due_day, agency_id=agency.id)
    if not states:
        return None
    acquisitions = session.scalars(
        sa.select(Acquisition)
        .where(Acquisition.agency_id == agency.id, Acquisition.acquired_on.between(month.start, month.end))
        .order_by(Acquisition.acquired_on, Acquisition.vin)
        .limit(listed)
    ).all()
    history = session.scalars(
        sa.select(AuditEntry)
        .join(MonthlyReport, MonthlyReport.id == AuditEntry.target_id)
        .where(
            AuditEntry.target_type == "monthly_report",
            MonthlyReport.agency_id == agency.id,
            MonthlyReport.month == month.start,
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    ).all()
    return MonthDetail(states[0], list(acquisitions), list(history))


def summary(states: Iterable[MonthState]) -> dict[str, int]:
    """How many agencies are in each state (every state named, zero included)."""
    counts = dict.fromkeys(STATES, 0)
    for entry in states:
        counts[entry.state] += 1
    return counts


# --- actions ---------------------------------------------------------------------------------------


def _report(session: Session, agency: Agency, month: Period) -> MonthlyReport | None:
    return session.scalar(sa.select(MonthlyReport).where(MonthlyReport.agency_id == agency.id, MonthlyReport.month == month.start))


def _current(session: Session, agency: Agency, month: Period, *, today: dt.date, due_day: int) -> MonthState:
    states = month_states(session, month, today=today, due_day=due_day, agency_id=agency.id)
    if not states:
        raise ReportingRefused(
            "not_owed", _("%(agency)s 在 %(month)s 尚未登记，无需报送。", agency=agency.name, month=month.label)
        )
    return states[0]


def _require_reviewer(user: User) -> None:
    if user.role not in REVIEWER_ROLES:
        raise ReportingRefused("not_reviewer", _("只有审核员可以审核月报。"))


def _audit(session: Session, action: str, user: User | None, report: MonthlyReport, **detail: object) -> None:
    audit.record(
        session, action, user_id=user.id if user is not None else None, target_type="monthly_report", target_id=report.id,
        detail={"agency": report.agency.name, "month": report.month.strftime("%Y-%m"), **detail},
    )  # fmt: skip


def submit(
    session: Session, agency: Agency, month: Period, *, user: User | None, nil: bool = False, today: dt.date, due_day: int
) -> MonthState:
    """Submit the month's report (提交本月报送), or a zero report (零报告) with nil=True, for the agency.

    A reviewer may submit on the agency's behalf (recorded as such), and so may the command line
    without a user. A month with acquisitions cannot be a zero report, and a month without any can
    only be one. The caller commits."""
    if user is not None and user.role == "agency" and user.agency_id != agency.id:
        raise ReportingRefused("not_allowed", _("只能报送本单位的月报。"))
    if month.end >= today:
        raise ReportingRefused("month_not_over", _("%(month)s 尚未结束，结束后才能报送。", month=month.label))
    current = _current(session, agency, month, today=today, due_day=due_day)
    if current.state == "accepted":
        raise ReportingRefused("month_locked", _("%(month)s 的月报已通过审核并锁定。", month=month.label))
    if current.state in DECIDABLE:
        raise ReportingRefused("already_submitted", _("%(month)s 的月报已报送，正在等待审核。", month=month.label))
    if nil and current.acquisitions:
        raise ReportingRefused(
            "has_acquisitions",
            _("%(month)s 有 %(count)s 条购置记录，不能报送零报告。", month=month.label, count=current.acquisitions),
        )
    if not nil and not current.acquisitions:
        raise ReportingRefused(
            "nil_required", _("%(month)s 没有购置记录：请确认后报送零报告。", month=month.label)
        )
    report = _report(session, agency, month)
    if report is None:
        report = MonthlyReport(agency=agency, month=month.start, returns=0)
        session.add(report)
    report.status = "nil" if nil else "submitted"
    report.submitted_at = utcnow()
    report.submitted_by = user
    report.on_behalf = user is None or user.role != "agency"
    report.late = today > current.due
    report.acquisitions = current.acquisitions
    report.reviewed_at = report.reviewed_by_id = None
    session.flush()
    _audit(session, "reporting.submit", user, report, nil=nil, on_behalf=report.on_behalf, late=report.late)
    return _current(session, agency, month, today=today, due_day=due_day)


def _decided(session: Session, report: MonthlyReport, user: User, status: str, comment: str | None) -> None:
    report.status = status
    report.reviewed_at = utcnow()
    report.reviewed_by_id = user.id
    report.comment = comment
    session.flush()


def accept(
    session: Session, agency: Agency, month: Period, *, user: User, comment: str | None = None, today: dt.date, due_day: int
) -> MonthState:
    """Accept a submitted month: it is locked from now on. The caller commits."""
    _require_reviewer(user)
    current = _current(session, agency, month, today=today, due_day=due_day)
    if current.state not in DECIDABLE:
        raise ReportingRefused("not_submitted", _("%(month)s 的月报未报送，无法审核通过。", month=month.label))
    report = _report(session, agency, month)
    _decided(session, report, user, "accepted", comment)
    _audit(session, "reporting.accept", user, report, comment=comment)
    return _current(session, agency, month, today=today, due_day=due_day)


def _reason(comment: str | None, code: str, message: str) -> str:
    text = (comment or "").strip()
    if not text:
        raise ReportingRefused(code, message)
    return text


def return_report(
    session: Session, agency: Agency, month: Period, *, user: User, comment: str | None, today: dt.date, due_day: int
) -> MonthState:
    """Send a submitted month back to the agency with a comment saying what to correct. The caller commits."""
    _require_reviewer(user)
    current = _current(session, agency, month, today=today, due_day=due_day)
    if current.state not in DECIDABLE:
        raise ReportingRefused("not_submitted", _("%(month)s 的月报未报送，无法退回。", month=month.label))
    text = _reason(comment, "comment_required", _("退回月报须说明原因。"))
    report = _report(session, agency, month)
    _decided(session, report, user, "returned", text)
    report.returns += 1
    _audit(session, "reporting.return", user, report, comment=text)
    return _current(session, agency, month, today=today, due_day=due_day)


def reopen(
    session: Session, agency: Agency, month: Period, *, user: User, comment: str | None, today: dt.date, due_day: int
) -> MonthState:
    """Unlock an accepted month with a reason: it goes back to the agency as returned. The caller commits."""
    _require_reviewer(user)
    current = _current(session, agency, month, today=today, due_day=due_day)
    if current.state != "accepted":
        raise ReportingRefused("not_accepted", _("%(month)s 的月报未通过审核，无需重新开放。", month=month.label))
    text = _reason(comment, "reason_required", _("重新开放月报须说明原因。"))
    report = _report(session, agency, month)
    _decided(session, report, user, "returned", text)
    report.returns += 1
    _audit(session, "reporting.reopen", user, report, reason=text)
    return _current(session, agency, month, today=today, due_day=due_day)


def locked_months(session: Session, agency_ids: Collection[int]) -> set[tuple[int, dt.date]]:
    """(agency id, first day of month) of every accepted month of the agencies: no upload may change them."""
    if not agency_ids:
        return set()
    query = sa.select(MonthlyReport.agency_id, MonthlyReport.month).where(
        MonthlyReport.status == "accepted", MonthlyReport.agency_id.in_(sorted(agency_ids))
    )
    return {(agency_id, month) for agency_id, month in session.execute(query)}


def returned_months(session: Session, *, today: dt.date, due_day: int, agency_ids: Collection[int] | None = None) -> list[MonthState]:
    """Every month that is returned to its agency now (returned or reopened), oldest month first."""
    query = sa.select(MonthlyReport.month, MonthlyReport.agency_id).where(MonthlyReport.status == "returned")
    if agency_ids is not None:
        query = query.where(MonthlyReport.agency_id.in_(sorted(agency_ids)))
    by_month: dict[dt.date, list[int]] = {}
    for month, agency_id in session.execute(query.order_by(MonthlyReport.month)):
        by_month.setdefault(month, []).append(agency_id)
    states = []
    for start, ids in by_month.items():
        states += month_states(session, month_of(start), today=today, due_day=due_day, agency_ids=ids)
    return [s for s in states if s.state == "returned"]


def accepted_months(session: Session, year: int) -> dict[int, set[int]]:
    """agency id -> the months (1–12) of the year whose report is accepted: what official figures count."""
    query = sa.select(MonthlyReport.agency_id, MonthlyReport.month).where(
        MonthlyReport.status == "accepted", MonthlyReport.month.between(dt.date(year, 1, 1), dt.date(year, 12, 1))
    )
    months: dict[int, set[int]] = {}
    for agency_id, month in session.execute(query):
        months.setdefault(agency_id, set()).add(month.month)
    return months
