"""Registration-record commands: `flask registrations load PATH` (exit 0 clean, 1 data errors, 2 file
unusable, as `validate`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from fleet.base import db
from fleet.base.text import _
from fleet.cli.console import emit_json
from fleet.cli.imports import EXIT_CLEAN, EXIT_DATA_ERRORS, exit_unusable, require_file
from fleet.domain.registrations.load import ExtractLoad, load_extract
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


def init_app(app: Flask) -> None:
    app.cli.add_command(registrations_cli)

