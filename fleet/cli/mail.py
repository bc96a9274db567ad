"""`flask --app app summaries send`: the monthly e-mail, run by cron or a systemd timer on the 1st."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import click
from flask import current_app
from flask.cli import AppGroup, ScriptInfo

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
@click.option(
    "--workers", type=click.IntRange(1, 16), default=1, show_default=True,
    help="Send with this many processes, each a share of the agencies (one per core: building the reports is most of the work).",
)
@click.option("--part", hidden=True, help="K/N: send only the K-th of N shares (what each of --workers runs).")
def send_command(
    month: str | None, dry_run: bool, to_address: str | None, resend: bool, as_json: bool, workers: int, part: str | None
) -> None:
    """Send the month's summaries that have not been sent yet; exit 1 when any recipient failed."""
    if not month:
        _bad_argument("--month YYYY-MM is required", as_json)
    try:
        period = Period.parse_month(month)
    except ValueError:
        _bad_argument(f"--month {month!r} is not a month (YYYY-MM)", as_json)
    if to_address is not None and not _ADDRESS.match(to_address):
        _bad_argument(f"--to {to_address!r} is not an e-mail address", as_json)
    share = _share(part, as_json)

    if workers > 1 and not dry_run and part is None:
        report = _send_in_processes(period, workers, to_address=to_address, resend=resend, as_json=as_json)
    else:
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
            part=share,
        )
    if as_json:
        emit_json(report.as_json())
    else:
        _print(report)
    sys.exit(1 if report.failed else 0)


def _share(part: str | None, as_json: bool) -> tuple[int, int]:
    if part is None:
        return 0, 1
    k, _slash, n = part.partition("/")
    if not (k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
        _bad_argument(f"--part {part!r} is not K/N with 0 <= K < N", as_json)
    return int(k), int(n)


def _send_in_processes(period: Period, workers: int, *, to_address: str | None, resend: bool, as_json: bool) -> SendReport:
    """Run this command once per share in processes of their own, all at once, and put their reports
    together. Each process is a whole send of its share: it records what it sent as it goes, so a
    share that dies leaves the others' messages sent and its own to the next run."""
    app_path = click.get_current_context().find_object(ScriptInfo).app_import_path or os.environ.get("FLASK_APP")
    if not app_path:
        _bad_argument("--workers needs the app named by --app or FLASK_APP", as_json)
    command = [sys.executable, "-m", "flask", "--app", app_path, "summaries", "send", "--month", period.label, "--json"]
    command += ["--to", to_address] if to_address else []
    command += ["--resend"] if resend else []
    # Their log lines (a failed message, a traceback) go where this command's go.
    processes = [subprocess.Popen([*command, "--part", f"{k}/{workers}"], stdout=subprocess.PIPE) for k in range(workers)]
    report = SendReport(period.label, redirected_to=to_address)
    for k, process in enumerate(processes):
        out, _err = process.communicate()
        try:
            share = json.loads(out)
        except ValueError:
            share = None
        if process.returncode not in (0, 1) or not isinstance(share, dict) or "sent" not in share:
            report.failed.append({
                "recipient": None, "kind": None, "locale": None, "agency": None,
                "error": f"share {k + 1} of {workers} exited {process.returncode}",
            })
            continue
        report.sent += share["sent"]
        report.skipped += share["skipped"]
        report.failed += share["failed"]
        report.attachments_built += share["attachments_built"]
    return report


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
