"""The reporting cycle's command line and domain rules: due dates, states, refusals, the JSON contract."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from factories import acquisition, agency, user
from fleet.base.models import AuditEntry, User
from fleet.base.periods import Period
from fleet.domain import reporting
from fleet.domain.agencies import agency_by_name

TODAY = dt.date.today()
# Two months back: its due date (at the latest day 28 of the month after) is always behind today.
OLD = reporting.recent_months(TODAY, 2)[1]
CURRENT = Period.month(TODAY.year, TODAY.month)
BUSES, POLICE, ECOLOGY = "濮阳市公共交通有限公司", "濮阳市公安局", "濮阳市生态环境局"


def test_due_date_is_the_due_day_of_the_following_month():
    assert reporting.due_date(Period.month(2026, 11), 10) == dt.date(2026, 12, 10)
    assert reporting.due_date(Period.month(2026, 12), 10) == dt.date(2027, 1, 10)
    assert reporting.due_date(dt.date(2027, 1, 20), 31) == dt.date(2027, 2, 28)
    assert not reporting.due_passed(Period.month(2026, 11), 10, dt.date(2026, 12, 10))
    assert reporting.due_passed(Period.month(2026, 11), 10, dt.date(2026, 12, 11))


@pytest.fixture
def city(session):
    for name, kind, sector, county in (
        (BUSES, "国有企业", "公交", "华龙区"),
        (POLICE, "党政机关", "公安", "市直"),
        (ECOLOGY, "党政机关", "其他", "市直"),
    ):
        agency(session, name, kind=kind, sector=sector, county=county).created_at = dt.datetime(2024, 1, 1)
    user(session, "bus", agency_name=BUSES)
    user(session, "reviewer", role="reviewer")
    session.commit()
    return {name: agency_by_name(session, name) for name in (BUSES, POLICE, ECOLOGY)}


def cli(runner, *args: str) -> tuple[int, dict]:
    result = runner.invoke(args=[*args, "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, json.loads(result.stdout)


def test_states_on_time_late_and_missing(session, city):
    november = Period.month(2026, 11)
    reviewer = session.scalar(sa.select(User).where(User.username == "reviewer"))
    acquisition(session, city[BUSES], category="公交车", power="纯电动", acquired_on=dt.date(2026, 11, 3))
    before_due = dt.date(2026, 12, 10)
    assert {s.state for s in reporting.month_states(session, november, today=before_due, due_day=10)} == {"open"}
    reporting.submit(session, city[BUSES], november, user=reviewer, today=before_due, due_day=10)
    reporting.submit(session, city[POLICE], november, user=reviewer, nil=True, today=dt.date(2026, 12, 11), due_day=10)
    states = {s.agency: s for s in reporting.month_states(session, november, today=dt.date(2026, 12, 11), due_day=10)}
    assert [(s.state, s.late, s.acquisitions, s.on_behalf) for s in states.values()] == [
        ("submitted", False, 1, True),  # 濮阳市公共交通有限公司
        ("nil", True, 0, True),  # 濮阳市公安局
        ("missing", False, 0, False),  # 濮阳市生态环境局
    ]
    # A zero report no longer holds once the month has an acquisition: the month is owed again.
    acquisition(session, city[POLICE], acquired_on=dt.date(2026, 11, 20))
    assert reporting.month_states(session, november, today=dt.date(2026, 12, 11), due_day=10, agency_id=city[POLICE].id)[0].state == "missing"


def test_an_agency_registered_after_the_month_owes_nothing_for_it(session, city):
    late_comer = agency(session, "濮阳市新设局")
    late_comer.created_at = dt.datetime(2026, 12, 2)
    names = [s.agency for s in reporting.month_states(session, Period.month(2026, 11), today=dt.date(2026, 12, 20), due_day=10)]
    assert "濮阳市新设局" not in names and len(names) == 3


def test_status_json_is_the_contract(runner, session, city):
    acquisition(session, city[BUSES], category="公交车", power="纯电动", acquired_on=OLD.start + dt.timedelta(days=2))
    session.commit()
    code, submitted = cli(runner, "reporting", "submit", "--month", OLD.label, "--agency", BUSES, "--as", "bus")
    assert code == 0 and (submitted["state"], submitted["late"]) == ("submitted", True)
    code, payload = cli(runner, "reporting", "status", "--month", OLD.label)
    assert code == 0
    assert set(payload) == {"month", "due", "agencies"}
    assert payload["month"] == OLD.label and payload["due"] == reporting.due_date(OLD, 10).isoformat()
    assert [e["agency"] for e in payload["agencies"]] == sorted([BUSES, POLICE, ECOLOGY])
    entry = {e["agency"]: e for e in payload["agencies"]}
    assert set(entry[BUSES]) == {"agency", "state", "late", "submitted_at", "acquisitions"}
    assert (entry[BUSES]["state"], entry[BUSES]["acquisitions"]) == ("submitted", 1)
    assert dt.datetime.fromisoformat(entry[BUSES]["submitted_at"]).utcoffset() == dt.timedelta(hours=8)
    assert entry[ECOLOGY] == {"agency": ECOLOGY, "state": "missing", "late": False, "submitted_at": None, "acquisitions": 0}
    code, county = cli(runner, "reporting", "status", "--month", OLD.label, "--county", "华龙区")
    assert [e["agency"] for e in county["agencies"]] == [BUSES]
    code, current = cli(runner, "reporting", "status", "--month", CURRENT.label)
    assert {e["state"] for e in current["agencies"]} == {"open"}


def test_refusals_exit_1_with_a_code(runner, session, city):
    acquisition(session, city[BUSES], category="公交车", power="纯电动", acquired_on=OLD.start)
    session.commit()
    cases = [
        (["submit", "--agency", BUSES, "--nil", "--as", "reviewer"], "has_acquisitions"),
        (["submit", "--agency", POLICE, "--as", "reviewer"], "nil_required"),
        (["submit", "--agency", POLICE, "--nil", "--as", "bus"], "not_allowed"),
        (["accept", "--agency", BUSES, "--as", "reviewer"], "not_submitted"),
        (["accept", "--agency", BUSES, "--as", "bus"], "not_reviewer"),
        (["reopen", "--agency", BUSES, "--as", "reviewer", "--comment", "x"], "not_accepted"),
        (["submit", "--agency", "不存在的单位"], "unknown_agency"),
    ]
    for args, expected in cases:
        code, payload = cli(runner, "reporting", args[0], "--month", OLD.label, *args[1:])
        assert (code, payload["error"]["code"]) == (1, expected), args
        assert payload["error"]["message"]
    code, payload = cli(runner, "reporting", "submit", "--month", CURRENT.label, "--agency", POLICE, "--nil")
    assert (code, payload["error"]["code"]) == (1, "month_not_over")


def test_review_return_resubmit_accept_reopen(runner, session, city):
    code, _ = cli(runner, "reporting", "submit", "--month", OLD.label, "--agency", POLICE, "--nil")
    assert code == 0
    code, payload = cli(runner, "reporting", "return", "--month", OLD.label, "--agency", POLICE, "--as", "reviewer")
    assert payload["error"]["code"] == "comment_required"
    code, payload = cli(runner, "reporting", "return", "--month", OLD.label, "--agency", POLICE, "--as", "reviewer", "--comment", "请核实")
    assert (code, payload["state"]) == (0, "returned")
    code, payload = cli(runner, "reporting", "submit", "--month", OLD.label, "--agency", POLICE, "--nil", "--as", "reviewer")
    assert (code, payload["state"]) == (0, "nil")
    code, payload = cli(runner, "reporting", "accept", "--month", OLD.label, "--agency", POLICE, "--as", "reviewer")
    assert (code, payload["state"]) == (0, "accepted")
    assert reporting.locked_months(session, [city[POLICE].id]) == {(city[POLICE].id, OLD.start)}
    code, payload = cli(runner, "reporting", "submit", "--month", OLD.label, "--agency", POLICE, "--nil")
    assert payload["error"]["code"] == "month_locked"
    code, payload = cli(runner, "reporting", "reopen", "--month", OLD.label, "--agency", POLICE, "--as", "reviewer")
    assert payload["error"]["code"] == "reason_required"
    code, payload = cli(runner, "reporting", "reopen", "--month", OLD.label, "--agency", POLICE, "--as", "reviewer", "--comment", "补报")
    assert (code, payload["state"]) == (0, "returned")
    assert reporting.locked_months(session, [city[POLICE].id]) == set()
    session.rollback()
    actions = session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("reporting.%")).order_by(AuditEntry.id)).all()
    assert actions == ["reporting.submit", "reporting.return", "reporting.submit", "reporting.accept", "reporting.reopen"]
    reopened = session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "reporting.reopen"))
    assert reopened.detail == {"agency": POLICE, "month": OLD.label, "reason": "补报"}


def test_import_leaves_out_locked_rows_only_when_asked(runner, session, city, tmp_path):
    from xlsx_factory import acquisition as row, write_upload

    code, _ = cli(runner, "reporting", "submit", "--month", OLD.label, "--agency", POLICE, "--nil")
    code, _ = cli(runner, "reporting", "accept", "--month", OLD.label, "--agency", POLICE, "--as", "reviewer")
    path = write_upload(
        tmp_path / "police.xlsx",
        [row(1, agency=POLICE, county="市直", acquired_on=OLD.start), row(2, agency=POLICE, county="市直", acquired_on=CURRENT.start)],
    )
    code, refused = cli(runner, "import", str(path))
    assert code == 1 and [(f["code"], f["row"], f["column"]) for f in refused["errors"]] == [("month_locked", 2, "acquired_on")]
    assert refused["batch"] is not None and refused["inserted"] == 0
    code, imported = cli(runner, "import", str(path), "--skip-locked")
    assert code == 0 and imported["inserted"] == 1 and imported["errors"] == []
    assert [(f["code"], f["row"]) for f in imported["warnings"] if f["code"] == "month_locked"] == [("month_locked", 2)]
    assert reporting.month_states(session, OLD, today=TODAY, due_day=10, agency_id=city[POLICE].id)[0].acquisitions == 0


def test_a_vehicle_of_a_locked_month_cannot_be_moved_out_of_it(runner, session, city, tmp_path):
    """Re-dating a vehicle out of an accepted month would change that month's figures as surely as
    adding one: refused as month_locked, naming the locked month, though the new date is open."""
    from xlsx_factory import acquisition as row, write_upload

    first = write_upload(tmp_path / "police.xlsx", [row(1, agency=POLICE, county="市直", acquired_on=OLD.start)])
    code, _ = cli(runner, "import", str(first))
    assert code == 0
    cli(runner, "reporting", "submit", "--month", OLD.label, "--agency", POLICE)
    code, _ = cli(runner, "reporting", "accept", "--month", OLD.label, "--agency", POLICE, "--as", "reviewer")
    assert code == 0
    moved = write_upload(tmp_path / "police-moved.xlsx", [row(1, agency=POLICE, county="市直", acquired_on=CURRENT.start)])
    code, refused = cli(runner, "import", str(moved))
    assert code == 1 and [(f["code"], f["row"], f["column"]) for f in refused["errors"]] == [("month_locked", 2, "acquired_on")]
    assert OLD.label in refused["errors"][0]["message"] and CURRENT.label not in refused["errors"][0]["message"]
    session.rollback()
    assert reporting.month_states(session, OLD, today=TODAY, due_day=10, agency_id=city[POLICE].id)[0].acquisitions == 1
