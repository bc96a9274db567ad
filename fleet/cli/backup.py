"""`backup PATH` and `restore PATH`: a consistent copy of the SQLite database taken while the app
serves, and that copy put back. PostgreSQL has its own tools (pg_dump/pg_restore, see the README).

SQLite's online backup API copies the pages under the database's own locks, so a copy taken while an
import writes holds that import entirely or not at all; a plain file copy could tear a page or miss
the write-ahead log.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click
from flask.cli import with_appcontext

from fleet.base import db
from fleet.cli.console import fail

POSTGRESQL = (
    "the database is PostgreSQL: back it up with pg_dump -Fc -f fleet.dump \"$DATABASE_URL\" and restore "
    "with pg_restore --clean --if-exists -d \"$DATABASE_URL\" fleet.dump (see the README)"
)


def _sqlite_path() -> str:
    engine = db.engine()
    if engine.dialect.name != "sqlite":
        fail(POSTGRESQL, 2)
    return engine.url.database


def _copy(source: str, target: str) -> None:
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as destination:
        origin.backup(destination)
    origin.close()
    destination.close()


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(path: Path) -> None:
    """Copy the SQLite database to PATH, safely while the app is serving."""
    source = _sqlite_path()
    if path.exists():
        fail(f"{path} exists: choose a new file for the backup")
    _copy(source, str(path))
    click.echo(f"Backed up {source} to {path}.")


@click.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@with_appcontext
def restore_command(path: Path) -> None:
    """Put the backup at PATH back in place of the SQLite database, then bring its schema up to date.

    Restart the web processes afterwards: they keep figures of the database they knew."""
    target = _sqlite_path()
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as backup:
            backup.execute("SELECT version_num FROM alembic_version").fetchone()
        backup.close()
    except sqlite3.DatabaseError as exc:
        fail(f"{path} is not a backup of this app's database ({exc})", 2)
    db.engine().dispose()  # no pooled connection holds a stale view of the file
    _copy(str(path), target)
    db.upgrade(db.engine())
    click.echo(f"Restored {target} from {path}.")
