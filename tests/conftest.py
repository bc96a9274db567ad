"""Test fixtures: an app from the factory per test, on SQLite or on TEST_DATABASE_URL (PostgreSQL).

The schema is migrated once per run; each test starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from app import create_app
from fleet.base import db
from fleet.base.models import Base

DATABASE_FIXTURES = {"app", "client", "runner", "session", "database_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that touch the database are marked `db`; CI runs them again on PostgreSQL.
    for item in items:
        if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or "sqlite:///" + str(
        tmp_path_factory.mktemp("db") / "test.sqlite3"
    )
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return url


def _empty_tables(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # The audit log refuses DELETE there (it is append-only); TRUNCATE is the operator's way.
            connection.execute(sa.text("TRUNCATE audit_log"))
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "audit_log" or engine.dialect.name != "postgresql":
                connection.execute(table.delete())


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "WTF_CSRF_ENABLED": False,
        }
    )
    yield app
    engine = app.extensions["fleet.engine"]
    _empty_tables(engine)
    engine.dispose()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session outside any request, for calling services directly as the CLI and views do."""
    with app.app_context():
        yield db.get_session()
