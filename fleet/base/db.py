"""The database: one engine per app, one session per request or command, schema by Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def make_engine(url: str) -> sa.Engine:
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver; plain postgresql:// URLs would pick psycopg2.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets the dashboard read while an import writes.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # 32 MiB of page cache instead of 2: a 100k-row import updates nine B-trees of acquisitions, and
    # with the default cache their pages keep leaving it.
    cursor.execute("PRAGMA cache_size=-32768")
    # A statement on a table with triggers keeps a statement journal, by default in a temporary
    # file: the tally trigger of acquisitions made a 100k-row insert 2.3 times slower there.
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["fleet.engine"] = engine
    # The app's settings travel with every session (a plain mapping), so that domain code consults
    # them, the configured rule pack for one, without importing Flask.
    app.extensions["fleet.sessionmaker"] = sessionmaker(engine, expire_on_commit=False, info={"settings": app.config})
    app.teardown_appcontext(_close_session)


def engine() -> sa.Engine:
    return current_app.extensions["fleet.engine"]


def get_session() -> Session:
    """The session of the current request or command; closed when the app context ends."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["fleet.sessionmaker"]()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


@contextmanager
def transaction() -> Iterator[Session]:
    """A session that commits when the block ends and rolls back everything when it raises."""
    session = get_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine_: sa.Engine) -> None:
    """Bring the database to the current schema; safe to run on an up-to-date database."""
    from alembic import command

    config = alembic_config(engine_.url.render_as_string(hide_password=False))
    with engine_.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
