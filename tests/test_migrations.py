"""Migrations: they build the models' schema from nothing, twice without harm, on SQLite and PostgreSQL."""

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fleet.base import db
from fleet.base.models import Base


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


def postgresql_only(test):
    """Skipped without a PostgreSQL TEST_DATABASE_URL, and marked db so that the PostgreSQL pass
    (which selects -m db) runs it."""
    on_postgresql = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")
    return pytest.mark.db(pytest.mark.skipif(not on_postgresql, reason="PostgreSQL run only")(test))


@pytest.fixture
def postgresql_engine() -> Iterator[sa.Engine]:
    """An engine on an empty schema of its own in TEST_DATABASE_URL, dropped afterwards."""
    schema = f"mig_{uuid.uuid4().hex[:8]}"
    url = os.environ["TEST_DATABASE_URL"]
    admin = db.make_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(db.make_engine(url).url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@postgresql_only
def test_migrations_build_the_schema_on_empty_postgresql(postgresql_engine):
    db.upgrade(postgresql_engine)
    db.upgrade(postgresql_engine)
    _assert_current(postgresql_engine)


def test_init_db_command_is_safe_twice(runner):
    assert runner.invoke(args=["init-db"]).exit_code == 0
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0 and "up to date" in result.output


def _upgrade_to(engine: sa.Engine, revision: str) -> None:
    from alembic import command

    config = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _database_of_the_first_release(engine: sa.Engine) -> None:
    """A database at revision 0001 with agencies, acquisitions and exemption requests in it."""
    _upgrade_to(engine, "0001")
    now = "2025-06-01 00:00:00"
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO agencies (id, name, kind, sector, county, contact_emails, created_at) VALUES "
                    "(1, '濮阳市公共交通有限公司', '国有企业', '公交', '华龙区', '[]', :now)"),
            {"now": now},
        )  # fmt: skip
        rows = [
            (1, "LFV2A21K000000001", "公交车", "纯电动", None, "2025-03-05", "2025-03-20"),
            (2, "LFV2A21K000000002", "公交车", "柴油", "国六", "2025-03-09", "2025-03-20"),
            (3, "LFV2A21K000000003", "公交车", "柴油", "国六", "2025-03-09", "2025-03-20"),
            (4, "LFV2A21K000000004", "公交车", "柴油", "国六", "2025-04-01", "2025-05-30"),
        ]
        for id_, vin, category, power, standard, acquired, reported in rows:
            connection.execute(
                sa.text("INSERT INTO acquisitions (id, agency_id, vin, category, power, acquisition_kind, acquired_on, "
                        "emission_standard, county, reported_on, version, created_at, updated_at) VALUES "
                        "(:id, 1, :vin, :category, :power, '新增', :acquired, :standard, '华龙区', :reported, 1, :now, :now)"),
                {"id": id_, "vin": vin, "category": category, "power": power, "acquired": acquired,
                 "standard": standard, "reported": reported, "now": now},
            )  # fmt: skip
        for acquisition_id, status in ((2, "approved"), (2, "rejected"), (3, "pending")):
            connection.execute(
                sa.text("INSERT INTO exemption_requests (acquisition_id, reason_category, reason, status, requested_at) "
                        "VALUES (:id, '无适用车型', '现有新能源车型无法满足作业需求。', :status, :now)"),
                {"id": acquisition_id, "status": status, "now": now},
            )  # fmt: skip


def _assert_counted_from_existing_data(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        states = dict(connection.execute(sa.text("SELECT id, exemption_state FROM acquisitions")).all())
        assert states == {1: 0, 2: 2, 3: 1, 4: 0}
        tallies = {
            (str(month)[:7], power, state, int(delay)): n
            for month, power, state, delay, n in connection.execute(
                sa.text("SELECT month, power, exemption_state, report_delay, acquisitions FROM acquisition_tallies")
            )
        }
    assert tallies == {("2025-03", "纯电动", 0, 15): 1, ("2025-03", "柴油", 2, 11): 1, ("2025-03", "柴油", 1, 11): 1, ("2025-04", "柴油", 0, 59): 1}


def test_the_tallies_migration_counts_what_a_first_release_database_holds(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'released.sqlite3'}")
    _database_of_the_first_release(engine)
    db.upgrade(engine)
    _assert_counted_from_existing_data(engine)
    _assert_current(engine)


@postgresql_only
def test_the_tallies_migration_counts_what_a_first_release_database_holds_on_postgresql(postgresql_engine):
    _database_of_the_first_release(postgresql_engine)
    db.upgrade(postgresql_engine)
    _assert_counted_from_existing_data(postgresql_engine)
