"""`flask --app app summaries send`: the monthly e-mail, run by cron or a systemd timer on the 1st."""

from __future__ import annotations

import re
import sys

import click
from flask import current_app
from flask.cli import AppGroup

from fleet.base import db
from fleet.base.periods import Period
from fleet.cli.console import emit_json, fail
from fleet.cli.reporting import due_day as reporting_due_day
from fleet.read.mail.send import SendReport, SmtpSettings, send_summaries
from rules.active import active_pack

summaries_cli = AppGroup("summaries", help="Monthly e-mail summaries for agencies and reviewers.")

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


def _bad_argument(message: str, as_json: bool) -> None:
    if as_json:
        emit_json({"error": message})
        sys.exit(2)
    fail(message, 2)


@summaries_cli.command("send")
@click.option("--month", help="The month summarised, YYYY-MM (usually the month before).")
@click.option("--dry-run", is_flag=True, help="Render every message and list it; send and record nothing.")
@click.option("--to", "to_address", help="Send every message to this address instead (testing); records nothing.")
@click.option("--resend", is_flag=True, help="Send again messages already sent for this month.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def send_command(month: str | None, dry_run: bool, to_address: str | None, resend: bool, as_json: bool) -> None:
    """Send the month's summaries that have not been sent yet; exit 1 when any recipient failed."""
    if not month:
        _bad_argument("--month YYYY-MM is required", as_json)
    try:
        period = Period.parse_month(month)
    except ValueError:
        _bad_argument(f"--month {month!r} is not a month (YYYY-MM)", as_json)
    if to_address is not None and not _ADDRESS.match(to_address):
        _bad_argument(f"--to {to_address!r} is not an e-mail address", as_json)

    session = db.get_session()
    report = send_summaries(
        session,
        active_pack(session),
        period,
        SmtpSettings.from_config(current_app.config),
        deadline_days=current_app.config["REPORTING_DEADLINE_DAYS"],
        due_day=reporting_due_day(),
        dry_run=dry_run,
        to=to_address,
        resend=resend,
    )
    if as_json:
        emit_json(report.as_json())
    else:
        _print(report)
    sys.exit(1 if report.failed else 0)


def _print(report: SendReport) -> None:
    target = f" (all to {report.redirected_to})" if report.redirected_to else ""
    for entry in report.would_send:
        click.echo(f"would send  {entry['recipient']}  {entry['kind']}  {entry['subject']}{target}")
    for entry in report.sent:
        click.echo(f"sent        {entry['recipient']}  {entry['kind']}  {entry['subject']}{target}")
    for entry in report.skipped:
        click.echo(f"skipped     {entry['recipient'] or entry['agency']}  {entry['kind']}  {entry['reason']}")
    for entry in report.failed:
        click.echo(f"FAILED      {entry['recipient']}  {entry['kind']}  {entry['error']}", err=True)
    verb = "would send" if report.dry_run else "sent"
    click.echo(
        f"{report.month}: {len(report.would_send if report.dry_run else report.sent)} {verb}, "
        f"{len(report.skipped)} skipped, {len(report.failed)} failed."
    )
