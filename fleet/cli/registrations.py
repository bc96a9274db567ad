"""Registration-record commands: `flask registrations load PATH` (exit 0 clean, 1 data errors, 2 file
unusable, as `validate`) and `flask reconcile` (the findings of a period)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import NoReturn

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from fleet.base import db
from fleet.base.periods import Period
from fleet.base.text import _
from fleet.cli.console import emit_json, fail
from fleet.cli.imports import EXIT_CLEAN, EXIT_DATA_ERRORS, exit_unusable, require_file
from fleet.cli.reporting import due_day as reporting_due_day
from fleet.domain.agency_names import match_agency, not_registered
from fleet.domain.registrations.load import ExtractLoad, load_extract
from fleet.domain.registrations.reconcile import reconcile
from imports.package import UnusableFile

registrations_cli = AppGroup("registrations", help="The traffic police's registration extracts.")


def _print_load(result: ExtractLoad) -> None:
    for found in [*result.errors, *result.warnings]:
        label = _("错误") if found.severity == "error" else _("警告")
        click.echo(f"{label} [{found.code}] {found.message}")
    click.echo(
        _(
            "%(file)s：共 %(rows)s 条登记，新载入 %(loaded)s 条（%(first)s 至 %(last)s）；所有人已匹配 %(matched)s 个，待审核员确认 %(unmatched)s 个；%(errors)s 个错误，%(warnings)s 个警告。",
            file=result.file, rows=result.rows, loaded=result.loaded, first=result.first or "-", last=result.last or "-",
            matched=result.matched, unmatched=result.unmatched, errors=len(result.errors), warnings=len(result.warnings),
        )
    )
    if result.errors:
        click.echo(_("文件有错误，未载入任何登记记录。"))


@registrations_cli.command("load")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def load_command(path: Path, as_json: bool) -> None:
    """Load a registration extract (xlsx, or any format uploads are read in); all rows or none."""
    require_file(path, as_json)
    try:
        with db.transaction() as session:
            result = load_extract(session, path, file_name=path.name)
    except UnusableFile as exc:
        exit_unusable(path, exc.code, exc.message, as_json)
    if as_json:
        emit_json(result.as_json())
    else:
        _print_load(result)
    sys.exit(EXIT_CLEAN if result.ok else EXIT_DATA_ERRORS)





def _period(year: int | None, month: str | None, as_json: bool) -> Period:
    if year is not None and month is not None:
        _refuse(_("--year 与 --month 只能给一个"), as_json)
    if month is not None:
        try:
            return Period.parse_month(month)
        except ValueError:
            _refuse(_("--month 应写作 YYYY-MM，收到 %(value)s", value=month), as_json)
    return Period.year(year if year is not None else dt.date.today().year)


def _refuse(message: str, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"error": message})
        sys.exit(1)
    fail(message)


@click.command("reconcile")
@click.option("--year", type=int, help="Calendar year, YYYY (default: this year).")
@click.option("--month", "month_text", help="One month, YYYY-MM.")
@click.option("--agency", "agency_name", help="One agency, by its registered name.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@with_appcontext
def reconcile_command(year: int | None, month_text: str | None, agency_name: str | None, as_json: bool) -> None:
    """Check the self-reports against the loaded registration extracts (only the days they cover)."""
    session = db.get_session()
    period = _period(year, month_text, as_json)
    agency_id = None
    if agency_name:
        match = match_agency(session, agency_name)
        if not match.found:
            _refuse(not_registered(match), as_json)
        agency_id = match.agency_id
    result = reconcile(
        session, period, today=dt.date.today(), due_day=reporting_due_day(), agency_id=agency_id
    )
    if as_json:
        emit_json(result.as_json())
        return
    if not result.coverage:
        click.echo(_("%(period)s 没有已载入的登记信息覆盖，无法核对。", period=period.label))
        return
    covered = "、".join(f"{f.isoformat()} ~ {l.isoformat()}" for f, l in result.coverage)
    click.echo(_("%(period)s，登记信息覆盖：%(coverage)s", period=period.label, coverage=covered))
    for f in result.findings:
        click.echo(
            f"[{f.code}] {f.agency or '-'}  {f.vin}  {f.plate or '-'}  "
            f"{_('上报')}: {f.reported or '-'}  {_('登记')}: {f.registered or '-'}"
        )
    counts = "，".join(f"{code} {n}" for code, n in result.counts.items() if n)
    click.echo(_("共 %(count)s 条核对结果。", count=len(result.findings)) + (f"（{counts}）" if counts else ""))


def init_app(app: Flask) -> None:
    app.cli.add_command(registrations_cli)
    app.cli.add_command(reconcile_command)
