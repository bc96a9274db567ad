"""Purchase plan commands: `flask plans check|import|template` and `flask forecast`.

`plans check` and `plans import` exit 0 when the plan is clean and passes every rule, 1 for data errors
or a rule the plan would fail, 2 when the file cannot be used (codes as for `import`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from fleet.base import db
from fleet.base.models import User
from fleet.base.text import _
from fleet.cli.console import emit_json
from fleet.cli.imports import EXIT_CLEAN, EXIT_DATA_ERRORS, EXIT_UNUSABLE, _print_report
from fleet.cli.rules import _refuse, _table
from fleet.domain.agency_names import match_agency, not_registered
from fleet.domain.forecast import Projection
from fleet.domain.plans import PlanCheck, check_plan, forecast, forecast_json, store_plan
from imports.package import UnusableFile
from imports.plans import write_plan_template
from rules.active import active_pack

plans_cli = AppGroup("plans", help="Annual purchase plans (年度车辆购置计划).")


def _unusable(path: Path, code: str, message: str, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"file": path.name, "error": {"code": code, "message": message}})
    else:
        click.echo(_("错误：%(message)s", message=message), err=True)
    sys.exit(EXIT_UNUSABLE)


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def _projection_rows(projections: list[Projection], *, forecast_column: bool) -> list[list[str]]:
    rows = []
    for p in projections:
        row = p.as_dict(forecast=forecast_column)
        rows.append(
            [
                row["rule"],
                row["agency"] or _("全市"),
                str(row["actual_in_scope"]),
                str(row["actual_nev"]),
                str(row["planned_in_scope"]),
                str(row["planned_nev"]),
                _percent(row["projected_share"]),
                _percent(row["threshold"]),
                row["forecast"] if forecast_column else row["status"],
                str(row["nev_needed"]),
            ]
        )
    return rows


def _header(forecast_column: bool) -> list[str]:
    return [_("规则"), _("单位"), _("已购范围内"), _("已购新能源"), _("计划范围内"), _("计划新能源"), _("预计比例"), _("要求"),
            _("预测") if forecast_column else _("状态"), _("须改为新能源")]


def _checked(path: Path, as_json: bool, user: User | None) -> PlanCheck:
    if not path.is_file():
        _unusable(path, "not_found", _("找不到文件：%(path)s", path=str(path)), as_json)
    session = db.get_session()
    try:
        return check_plan(
            session, path, active_pack(session), file_name=path.name, max_bytes=current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024, user=user
        )
    except UnusableFile as exc:
        _unusable(path, exc.code, exc.message, as_json)


def _print_check(check: PlanCheck) -> None:
    _print_report(check.validated.report)
    if check.projections:
        click.echo(_table(_header(False), _projection_rows(check.projections, forecast_column=False)))
    if check.nev_needed_total is None and check.projections:
        click.echo(_("即使把计划中的非新能源车全部改为新能源汽车，也不能使每条规则达标。"))
    elif check.nev_needed_total:
        click.echo(_("须把计划中的 %(count)s 辆非新能源车改为新能源汽车，才能使每条规则达标。", count=check.nev_needed_total))


def _exit_code(check: PlanCheck) -> int:
    return EXIT_CLEAN if check.validated.report.ok and check.passes else EXIT_DATA_ERRORS


@plans_cli.command("check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the pre-check as one JSON object.")
@with_appcontext
def check_command(path: Path, as_json: bool) -> None:
    """Validate a plan file and project the year's compliance with it; nothing is stored."""
    check = _checked(path, as_json, None)
    if as_json:
        emit_json(check.as_json())
    else:
        _print_check(check)
    sys.exit(_exit_code(check))


@plans_cli.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "username", help="The uploading user; an agency user may only upload its own agency's plan.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@with_appcontext
def import_command(path: Path, username: str | None, as_json: bool) -> None:
    """Validate a plan and store it: a clean plan becomes the agency's plan for its year (the one
    before it is kept as history); a plan with errors is kept with its findings only."""
    session = db.get_session()
    user = None
    if username is not None:
        user = session.scalar(sa.select(User).where(User.username == username, User.active))
        if user is None:
            _unusable(path, "unknown_user", _("没有名为“%(name)s”的有效用户", name=username), as_json)
    check = _checked(path, as_json, user)
    try:
        plan = store_plan(session, check, path.read_bytes(), active_pack(session), user=user, file_name=path.name)
        session.commit()
    except Exception as exc:
        session.rollback()
        _unusable(path, "import_failed", _("导入失败，数据库未作任何更改：%(reason)s", reason=str(exc) or type(exc).__name__), as_json)
    if as_json:
        emit_json({**check.as_json(), "plan": plan.id, "version": plan.version})
    else:
        _print_check(check)
        if plan.version is not None:
            click.echo(_("已保存为 %(agency)s %(year)s 年购置计划第 %(version)s 版（计划 %(plan)s）。",
                         agency=check.validated.agency, year=plan.year, version=plan.version, plan=plan.id))
        else:
            click.echo(_("计划有错误，未生效（已保存原文件，计划 %(plan)s）。", plan=plan.id))
    sys.exit(_exit_code(check))


@plans_cli.command("template")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def template_command(path: Path) -> None:
    """Write the plan template (xlsx with drop-down lists and an instruction sheet)."""
    write_plan_template(path)
    click.echo(_("模板已写入 %(path)s", path=str(path)))


@click.command("forecast")
@click.option("--year", type=int, required=True, help="Calendar year, YYYY.")
@click.option("--agency", "agency_name", help="One agency, by its registered name.")
@click.option("--json", "as_json", is_flag=True, help="Print the forecast as JSON.")
@with_appcontext
def forecast_command(year: int, agency_name: str | None, as_json: bool) -> None:
    """Where the year is heading, per rule city-wide and per agency: on_track, at_risk, off_track, no_plan."""
    session = db.get_session()
    agency_id = None
    if agency_name:
        match = match_agency(session, agency_name)
        if not match.found:
            _refuse(not_registered(match), as_json)
        agency_id = match.agency_id
    projections = forecast(session, active_pack(session), year, agency_id=agency_id)
    if as_json:
        emit_json(forecast_json(year, projections))
        return
    click.echo(_table(_header(True), _projection_rows(projections, forecast_column=True)))


def init_app(app: Flask) -> None:
    app.cli.add_command(plans_cli)
    app.cli.add_command(forecast_command)
