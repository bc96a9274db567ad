"""Migrations: they build the models' schema from nothing, twice without harm, on SQLite and PostgreSQL."""

import os
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fleet import db
from fleet.models import Base


def _assert_current(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert set(Base.metadata.tables) <= set(sa.inspect(connection).get_table_names())


def test_migrations_build_the_schema_on_empty_sqlite(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    db.upgrade(engine)
    db.upgrade(engine)  # safe to run twice
    _assert_current(engine)


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"), reason="PostgreSQL run only")
def test_migrations_build_the_schema_on_empty_postgresql():
    schema = f"mig_{uuid.uuid4().hex[:8]}"
    url = os.environ["TEST_DATABASE_URL"]
    admin = db.make_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = sa.create_engine(
            db.make_engine(url).url, connect_args={"options": f"-csearch_path={schema}"}
        )
        db.upgrade(engine)
        db.upgrade(engine)
        _assert_current(engine)
        engine.dispose()
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_init_db_command_is_safe_twice(runner):
    assert runner.invoke(args=["init-db"]).exit_code == 0
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0 and "up to date" in result.output
