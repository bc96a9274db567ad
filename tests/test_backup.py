"""`backup PATH` / `restore PATH`: a copy taken while serving restores to the same figures."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests import factories


def _figures(runner) -> dict:
    result = runner.invoke(args=["compliance", "--year", "2025", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_backup_restores_to_the_same_figures(runner, session, database_url, tmp_path):
    if not database_url.startswith("sqlite"):
        result = runner.invoke(args=["backup", str(tmp_path / "x.sqlite3")])
        assert result.exit_code == 2 and "pg_dump" in result.output
        return
    police = factories.agency(session, "濮阳市公安局")
    for n, power in enumerate(["纯电动", "汽油", "纯电动"]):
        factories.acquisition(session, police, vin=factories.vin(700 + n), power=power, acquired_on=dt.date(2025, 3 + n, 1))
    session.commit()
    before = _figures(runner)
    backup = tmp_path / "fleet-backup.sqlite3"
    result = runner.invoke(args=["backup", str(backup)])
    assert result.exit_code == 0 and backup.stat().st_size > 0

    factories.acquisition(session, police, vin=factories.vin(799), power="柴油", acquired_on=dt.date(2025, 9, 1))
    session.commit()
    assert _figures(runner) != before

    session.close()
    result = runner.invoke(args=["restore", str(backup)])
    assert result.exit_code == 0, result.output
    assert _figures(runner) == before
    assert runner.invoke(args=["backup", str(backup)]).exit_code == 1  # never overwrites a backup


def test_restore_refuses_a_file_that_is_not_a_backup(runner, database_url, tmp_path):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    result = runner.invoke(args=["restore", str(junk)])
    assert result.exit_code == 2 and "not a backup" in result.output
