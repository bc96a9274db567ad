"""Reporting reminders: who must be reminded of which month on a day, the messages, and sending them.

Three reminders, each sent once per recipient (SentReminder records it, as SentSummary does the
monthly summaries):
- `due`: from REMINDER_DAYS_BEFORE days before a month's due date up to the due date, to each agency
  that still owes the month (open or returned);
- `missed`: from the day after the due date, to each agency whose month is missing or still returned;
  only months whose due date is at most MISSED_WINDOW_DAYS behind, so a first run does not remind of
  every month since the agencies were registered;
- `returned`: each time a reviewer returns (or reopens) a month, with the comment.
The recipients are the agency contacts of the monthly summaries, in the same languages.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import render_template
from sqlalchemy.orm import Session

from fleet.base.models import SentReminder, utcnow
from fleet.base.periods import Period
from fleet.base.text import _, one_locale
from fleet.domain import reporting
from fleet.read.mail.message import build_message
from fleet.read.mail.recipients import Delivery, planned_deliveries
from fleet.read.mail.render import Content, month_label
from fleet.read.mail.send import Mailer, SendError, SmtpSettings

log = logging.getLogger(__name__)

# A run that missed days (the machine was down) still sends a missed reminder up to a week late.
MISSED_WINDOW_DAYS = 7


@dataclass(frozen=True)
class Reminder:
    """One reminder to one recipient about one agency's month."""

    delivery: Delivery
    state: reporting.MonthState
    kind: str  # the SentReminder kind: due-<id>, missed-<id>, returned-<id>-<n>
    reason: str  # due | missed | returned

    @property
    def month(self) -> str:
        return self.state.month.label

    def describe(self) -> dict[str, Any]:
        return {
            "recipient": self.delivery.recipient,
            "agency": self.state.agency,
            "month": self.month,
            "kind": self.reason,
            "state": self.state.state,
            "due": self.state.due.isoformat(),
        }


def _candidate_months(today: dt.date, due_day: int, days_before: int) -> list[Period]:
    """The months whose due date is at most days_before ahead of today or MISSED_WINDOW_DAYS behind it."""
    months = reporting.recent_months(today, 3)
    return [
        m for m in months
        if -MISSED_WINDOW_DAYS <= (reporting.due_date(m, due_day) - today).days <= days_before
    ]  # fmt: skip


def _reason(state: reporting.MonthState, today: dt.date, days_before: int) -> str | None:
    if state.state not in reporting.OWED:
        return None
    if today <= state.due:
        return "due" if (state.due - today).days <= days_before else None
    return "missed"


def reminders_due(session: Session, *, today: dt.date, due_day: int, days_before: int) -> list[Reminder]:
    """Every reminder the day calls for, before those already sent are skipped."""
    deliveries: dict[int, list[Delivery]] = {}
    for delivery in planned_deliveries(session)[0]:
        if delivery.agency_id is not None:
            deliveries.setdefault(delivery.agency_id, []).append(delivery)
    reminders: list[Reminder] = []
    for month in _candidate_months(today, due_day, days_before):
        for state in reporting.month_states(session, month, today=today, due_day=due_day, agency_ids=list(deliveries)):
            reason = _reason(state, today, days_before)
            if reason is not None:
                kind = f"{reason}-{state.agency_id}"
                reminders += [Reminder(d, state, kind, reason) for d in deliveries[state.agency_id]]
    # Returns are told whatever the month, once each: the n-th return of a month is its own reminder.
    for state in reporting.returned_months(session, today=today, due_day=due_day, agency_ids=list(deliveries)):
        kind = f"returned-{state.agency_id}-{state.returns}"
        reminders += [Reminder(d, state, kind, "returned") for d in deliveries[state.agency_id]]
    return reminders


def _sent(session: Session) -> set[tuple[str, str, str]]:
    rows = session.execute(sa.select(SentReminder.month, SentReminder.recipient, SentReminder.kind))
    return {(month, recipient.casefold(), kind) for month, recipient, kind in rows}


def reminder_content(reminder: Reminder) -> Content:
    """The reminder's message in the recipient's language."""
    state = reminder.state
    with one_locale(reminder.delivery.locale):
        label = month_label(state.month)
        subjects = {
            "due": _("月报提醒：%(month)s 的月报请于 %(due)s 前报送 · %(agency)s"),
            "missed": _("月报逾期：%(month)s 的月报已过报送截止日 %(due)s · %(agency)s"),
            "returned": _("月报退回：%(month)s 的月报需修改后重新报送 · %(agency)s"),
        }
        subject = subjects[reminder.reason] % {"month": label, "due": state.due.isoformat(), "agency": state.agency}
        context = {"reminder": reminder, "state": state, "month_label": label, "subject": subject}
        return Content(
            locale=reminder.delivery.locale,
            subject=subject,
            text=render_template("email/reporting_reminder.txt", **context),
            html=render_template("email/reporting_reminder.html", **context),
        )


@dataclass
class ReminderReport:
    """What a run did; the command prints it and exits 1 when a message failed (retried next run)."""

    date: str
    dry_run: bool = False
    sent: list[dict[str, Any]] = field(default_factory=list)
    would_send: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"date": self.date, "sent": self.sent, "skipped": self.skipped, "failed": self.failed}
        if self.dry_run:
            payload["dry_run"] = True
            payload["would_send"] = self.would_send
        return payload


def send_reminders(
    session: Session,
    settings: SmtpSettings,
    *,
    today: dt.date,
    due_day: int,
    days_before: int,
    dry_run: bool = False,
) -> ReminderReport:
    """Send the day's reminders not sent before, recording each (its own commit) right after it went out."""
    report = ReminderReport(today.isoformat(), dry_run=dry_run)
    already = _sent(session)
    due = []
    for reminder in reminders_due(session, today=today, due_day=due_day, days_before=days_before):
        if (reminder.month, reminder.delivery.recipient.casefold(), reminder.kind) in already:
            report.skipped.append({**reminder.describe(), "reason": "already_sent"})
        else:
            due.append(reminder)
    if dry_run:
        report.would_send = [reminder.describe() for reminder in due]
        return report
    with Mailer(settings) as mailer:
        for reminder in due:
            content = reminder_content(reminder)
            entry = {**reminder.describe(), "subject": content.subject}
            try:
                mailer.send(build_message(content, None, sender=settings.sender, to=reminder.delivery.recipient))
            except SendError as exc:
                log.warning("reminder %s %s for %s not sent: %s", reminder.month, reminder.kind, reminder.delivery.recipient, exc)
                report.failed.append({**entry, "error": str(exc)})
                continue
            session.add(SentReminder(month=reminder.month, recipient=reminder.delivery.recipient, kind=reminder.kind, sent_at=utcnow()))
            session.commit()
            report.sent.append(entry)
    return report
