"""Import commands: `flask --app app validate|import|template`. Exit 0 clean, 1 data errors, 2 file unusable."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import NoReturn

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from fleet.base import db
from fleet.base.config import max_upload_bytes
from fleet.base.models import User
from fleet.base.text import _, force_locale
from fleet.cli.console import emit_json
from imports.package import UnusableFile
from imports.pipeline import ImportFailed, import_file, validate_file
from imports.report import ERROR, ValidationReport
from imports.template import write_template

EXIT_CLEAN, EXIT_DATA_ERRORS, EXIT_UNUSABLE = 0, 1, 2


def exit_unusable(path: Path, code: str, message: str, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"file": path.name, "error": {"code": code, "message": message}})
    else:
        click.echo(_("错误：%(message)s", message=message), err=True)
    sys.exit(EXIT_UNUSABLE)


def _print_report(report: ValidationReport) -> None:
    for found in [*report.errors, *report.warnings]:
        label = _("错误") if found.severity == ERROR else _("警告")
        click.echo(f"{label} [{found.code}] {found.message}")
    click.echo(
        _(
            "%(file)s：共 %(rows)s 行，有效 %(valid)s 行；%(errors)s 个错误，%(warnings)s 个警告。",
            file=report.file,
            rows=report.rows,
            valid=report.valid_rows,
            errors=len(report.errors),
            warnings=len(report.warnings),
        )
    )


def _objects_loaded_for_good() -> None:
    """Keep what is loaded by now (modules, the app) out of the cycle collector's way: it lives until the
    process ends, and walking it at every collection and once more on the way out took 0.4 s of a
    100k-row validate."""
    gc.freeze()


def require_file(path: Path, as_json: bool) -> None:
    if not path.is_file():
        exit_unusable(path, "not_found", _("找不到文件：%(path)s", path=str(path)), as_json)


@click.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True, help="Language of messages.")
@with_appcontext
def validate_command(path: Path, as_json: bool, lang: str) -> None:
    """Check an upload against the template and the agency registry; nothing is stored."""
    _objects_loaded_for_good()
    with force_locale(lang):
        require_file(path, as_json)
        try:
            report = validate_file(db.get_session(), path, file_name=path.name, max_bytes=max_upload_bytes(current_app.config))
        except UnusableFile as exc:
            exit_unusable(path, exc.code, exc.message, as_json)
        if as_json:
            emit_json(report.as_json())
        else:
            _print_report(report)
    sys.exit(EXIT_CLEAN if report.ok else EXIT_DATA_ERRORS)


@click.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--as", "username", help="The uploading user; an agency user may only upload its own agency's vehicles.")
@click.option(
    "--skip-locked", is_flag=True,
    help="Import the rows outside locked (accepted) months and leave out those dated in one (month_locked warnings).",
)
@with_appcontext
def import_command(path: Path, as_json: bool, username: str | None, skip_locked: bool) -> None:
    """Validate an upload, keep the original, and commit it when it has no errors."""
    _objects_loaded_for_good()
    require_file(path, as_json)
    session = db.get_session()
    user = None
    if username is not None:
        user = session.scalar(sa.select(User).where(User.username == username, User.active))
        if user is None:
            exit_unusable(path, "unknown_user", _("没有名为“%(name)s”的有效用户", name=username), as_json)
    try:
        outcome = import_file(session, path, user=user, file_name=path.name, skip_locked=skip_locked, max_bytes=max_upload_bytes(current_app.config))
    except UnusableFile as exc:
        exit_unusable(path, exc.code, exc.message, as_json)
    except ImportFailed as exc:
        exit_unusable(path, "import_failed", exc.message, as_json)
    if as_json:
        emit_json(outcome.as_json())
    else:
        _print_report(outcome.report)
        if outcome.duplicate_of is not None:
            click.echo(_("该文件已于批次 %(batch)s 导入，未重复导入。", batch=outcome.duplicate_of))
        elif outcome.report.ok:
            click.echo(
                _(
                    "已导入批次 %(batch)s：新增 %(inserted)s 辆，更新 %(updated)s 辆，未变 %(unchanged)s 辆。",
                    batch=outcome.batch.id,
                    inserted=outcome.inserted,
                    updated=outcome.updated,
                    unchanged=outcome.unchanged,
                )
            )
        else:
            click.echo(_("文件有错误，未导入（批次 %(batch)s 已保存原文件）。", batch=outcome.batch.id))
    sys.exit(EXIT_CLEAN if outcome.report.ok else EXIT_DATA_ERRORS)


@click.command("template")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def template_command(path: Path) -> None:
    """Write the upload template (xlsx with drop-down lists and an instruction sheet)."""
    write_template(path)
    click.echo(_("模板已写入 %(path)s", path=str(path)))


def init_app(app: Flask) -> None:
    for command in (validate_command, import_command, template_command):
        app.cli.add_command(command)
