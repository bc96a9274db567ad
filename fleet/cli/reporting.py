"""`flask --app app reporting status|submit|accept|return|reopen` and `reminders send`: the monthly cycle.

Exit 0 on success, 1 when the cycle refuses the action (`{"error": {"code", "message"}}` under --json),
2 for arguments that cannot be read.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import NoReturn

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from fleet.base import db
from fleet.base.models import Agency, User
from fleet.base.periods import Period
from fleet.base.vocab import COUNTIES
from fleet.cli.console import emit_json
from fleet.domain import reporting
from fleet.domain.agency_names import match_agency, not_registered
from fleet.read.mail.reminders import send_reminders
from fleet.read.mail.send import SmtpSettings

reporting_cli = AppGroup("reporting", help="The monthly reporting cycle: states, submissions, review.")
reminders_cli = AppGroup("reminders", help="Reporting reminders by e-mail.")


def _refused(code: str, message: str, as_json: bool, exit_code: int = 1) -> NoReturn:
    if as_json:
        emit_json({"error": {"code": code, "message": message}})
    else:
        click.echo(f"Error: {message}", err=True)
    sys.exit(exit_code)


def _month(text: str, as_json: bool) -> Period:
    try:
        return Period.parse_month(text)
    except ValueError:
        _refused("bad_month", f"--month {text!r} is not a month (YYYY-MM)", as_json, 2)


def due_day() -> int:
    """The due day in force: the active rule pack's, else REPORTING_DUE_DAY."""
    return reporting.due_day_in_force(db.get_session(), current_app.config["REPORTING_DUE_DAY"])


def _status_json(month: Period, states: list[reporting.MonthState]) -> dict[str, object]:
    zone = current_app.config["TIMEZONE"]
    return {
        "month": month.label,
        "due": reporting.due_date(month, due_day()).isoformat(),
        "agencies": [s.as_json(zone) for s in states],
    }


@reporting_cli.command("status")
@click.option("--month", "month_text", required=True, help="The month, YYYY-MM.")
@click.option("--county", help="Only the agencies of this county or district.")
@click.option("--json", "as_json", is_flag=True, help="Print the states as JSON.")
def status_command(month_text: str, county: str | None, as_json: bool) -> None:
    """Each active agency's state for the month, by agency name."""
    month = _month(month_text, as_json)
    if county is not None:
        found = COUNTIES.lookup(county)
        if found is None:
            _refused("unknown_county", f"--county {county!r} is not one of {', '.join(COUNTIES.values)}", as_json, 2)
        county = found
    states = reporting.month_states(db.get_session(), month, today=dt.date.today(), due_day=due_day(), county=county)
    if as_json:
        emit_json(_status_json(month, states))
        return
    zone = current_app.config["TIMEZONE"]
    click.echo(f"{month.label}: due {reporting.due_date(month, due_day()).isoformat()}")
    for s in states:
        submitted = reporting.local_time(s.submitted_at, zone)
        when = submitted.strftime("%Y-%m-%d %H:%M") if submitted else "-"
        click.echo(f"{s.agency}\t{s.state}{' (late)' if s.late else ''}\t{when}\t{s.acquisitions}")


def _agency(name: str, as_json: bool) -> Agency:
    session = db.get_session()
    match = match_agency(session, name)
    if not match.found:
        _refused("unknown_agency", not_registered(match), as_json)
    return session.get(Agency, match.agency_id)


def _user(username: str, as_json: bool) -> User:
    user = db.get_session().scalar(sa.select(User).where(User.username == username, User.active))
    if user is None:
        _refused("unknown_user", f"no active user named {username!r}", as_json)
    return user


def _run(action: Callable[[], reporting.MonthState], month: Period, as_json: bool) -> None:
    session = db.get_session()
    try:
        state = action()
    except reporting.ReportingRefused as exc:
        session.rollback()
        _refused(exc.code, exc.message, as_json)
    session.commit()
    if as_json:
        emit_json({"month": month.label, "due": state.due.isoformat(), **state.as_json(current_app.config["TIMEZONE"])})
    else:
        click.echo(f"{state.agency} {month.label}: {state.state}{' (late)' if state.late else ''}")


@reporting_cli.command("submit")
@click.option("--month", "month_text", required=True, help="The month, YYYY-MM.")
@click.option("--agency", "agency_name", required=True, help="The agency reporting.")
@click.option("--nil", is_flag=True, help="A zero report: the agency acquired nothing in the month.")
@click.option("--as", "username", help="The user submitting (a reviewer submits on the agency's behalf).")
@click.option("--json", "as_json", is_flag=True, help="Print the month's new state as JSON.")
def submit_command(month_text: str, agency_name: str, nil: bool, username: str | None, as_json: bool) -> None:
    """Submit the agency's month (or a zero report with --nil)."""
    month = _month(month_text, as_json)
    agency = _agency(agency_name, as_json)
    # Without --as the command line submits on the agency's behalf, recorded without a user.
    user = _user(username, as_json) if username is not None else None
    session = db.get_session()
    _run(lambda: reporting.submit(session, agency, month, user=user, nil=nil, today=dt.date.today(), due_day=due_day()), month, as_json)


def _review_command(name: str, action: Callable[..., reporting.MonthState], help_text: str) -> None:
    @reporting_cli.command(name, help=help_text)
    @click.option("--month", "month_text", required=True, help="The month, YYYY-MM.")
    @click.option("--agency", "agency_name", required=True, help="The agency whose month it is.")
    @click.option("--as", "username", required=True, help="The reviewer deciding.")
    @click.option("--comment", help="The comment (required to return; the reason to reopen).")
    @click.option("--json", "as_json", is_flag=True, help="Print the month's new state as JSON.")
    def command(month_text: str, agency_name: str, username: str, comment: str | None, as_json: bool) -> None:
        month = _month(month_text, as_json)
        agency = _agency(agency_name, as_json)
        user = _user(username, as_json)
        session = db.get_session()
        _run(
            lambda: action(session, agency, month, user=user, comment=comment, today=dt.date.today(), due_day=due_day()),
            month,
            as_json,
        )


_review_command("accept", reporting.accept, "Accept a submitted month; it is locked.")
_review_command("return", reporting.return_report, "Return a submitted month to the agency with a comment.")
_review_command("reopen", reporting.reopen, "Reopen an accepted month with a reason (--comment).")


@reminders_cli.command("send")
@click.option("--date", "date_text", help="The day the reminders are for, YYYY-MM-DD (today).")
@click.option("--dry-run", is_flag=True, help="List the reminders due; send and record nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def reminders_send(date_text: str | None, dry_run: bool, as_json: bool) -> None:
    """E-mail agencies that have not submitted (before the due date and after it is missed), and what was returned."""
    try:
        today = dt.date.fromisoformat(date_text) if date_text else dt.date.today()
    except ValueError:
        _refused("bad_date", f"--date {date_text!r} is not a date (YYYY-MM-DD)", as_json, 2)
    config = current_app.config
    report = send_reminders(
        db.get_session(),
        SmtpSettings.from_config(config),
        today=today,
        due_day=due_day(),
        days_before=config["REMINDER_DAYS_BEFORE"],
        dry_run=dry_run,
    )
    if as_json:
        emit_json(report.as_json())
    else:
        for entry in report.would_send:
            click.echo(f"would send  {entry['recipient']}  {entry['month']}  {entry['kind']}")
        for entry in report.sent:
            click.echo(f"sent        {entry['recipient']}  {entry['month']}  {entry['kind']}")
        for entry in report.failed:
            click.echo(f"FAILED      {entry['recipient']}  {entry['month']}  {entry['kind']}  {entry['error']}", err=True)
        click.echo(f"{today}: {len(report.would_send if dry_run else report.sent)} {'would send' if dry_run else 'sent'}, "
                   f"{len(report.skipped)} skipped, {len(report.failed)} failed.")
    sys.exit(1 if report.failed else 0)
