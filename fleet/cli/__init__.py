"""Command-line interface: `flask --app app …`. Each command parses, calls a service, prints.

User errors print a message on stderr and exit non-zero; with --json the message is JSON on stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from fleet.base import db
from fleet.base.models import ROLES
from fleet.cli import imports as imports_cli
from fleet.cli import plans as plans_cli
from fleet.cli import registrations as registrations_cli
from fleet.cli import rules as rules_cli
from fleet.cli.backup import backup_command, restore_command
from fleet.cli.console import emit_json, fail
from fleet.cli.mail import summaries_cli
from fleet.cli.reporting import reminders_cli, reporting_cli
from fleet.cli.worker import housekeeping_command, worker_command
from fleet.domain import agencies as registry
from fleet.domain import users


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    db.upgrade(db.engine())
    click.echo(f"Database at {db.engine().url.render_as_string(hide_password=True)} is up to date.")


agencies_cli = AppGroup("agencies", help="The agency registry.")


@agencies_cli.command("load")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def agencies_load(path: Path, as_json: bool) -> None:
    """Insert or update agencies from an xlsx or CSV file (单位名称, 单位类型, 行业, 所属县区, 联系邮箱)."""
    if not path.exists():
        fail(f"{path}: no such file")
    try:
        with db.transaction() as session:
            result = registry.load_registry(session, path)
            if result.errors:
                session.rollback()
    except registry.RegistryFileError as exc:
        if as_json:
            emit_json({"file": str(path), "error": str(exc), "code": exc.code})
            sys.exit(2)
        fail(str(exc), 2)
    if as_json:
        emit_json({"file": str(path), "inserted": result.inserted, "updated": result.updated, "errors": result.errors})
    else:
        for error in result.errors:
            click.echo(f"row {error['row']}, {error['column']}: {error['message']}", err=True)
    if result.errors:
        if not as_json:
            click.echo(f"{len(result.errors)} bad row(s); nothing was written.", err=True)
        sys.exit(1)
    if not as_json:
        click.echo(f"Agencies: {result.inserted} added, {result.updated} updated.")


users_cli = AppGroup("users", help="User accounts.")


@users_cli.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--agency", "agency_name", help="The agency of an agency user.")
@click.option("--password", required=True)
@click.option("--email")
@click.option("--locale", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def users_add(username: str, role: str, agency_name: str | None, password: str, email: str | None, locale: str) -> None:
    """Add a user."""
    try:
        with db.transaction() as session:
            user = users.add_user(
                session, username, role=role, password=password, agency_name=agency_name, email=email, locale=locale
            )
    except users.UserError as exc:
        fail(str(exc))
    click.echo(f"User {user.username} ({user.role}) added.")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Load the demo city: Puyang's agencies, a user per role, a year of acquisitions."""
    from fleet.domain import demo, reporting

    db.upgrade(db.engine())
    with db.transaction() as session:
        summary = demo.load_demo(session, due_day=reporting.due_day_in_force(session, current_app.config["REPORTING_DUE_DAY"]))
    click.echo(summary.describe())


def init_app(app: Flask) -> None:
    commands = (
        init_db_command, agencies_cli, users_cli, demo_command, worker_command, housekeeping_command,
        backup_command, restore_command, summaries_cli, reporting_cli, reminders_cli,
    )
    for command in commands:
        app.cli.add_command(command)
    rules_cli.init_app(app)
    imports_cli.init_app(app)
    plans_cli.init_app(app)
    registrations_cli.init_app(app)
