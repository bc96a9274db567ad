"""The monthly reporting cycle end to end, over the command line and HTTP: uploads, a zero report, a
missing month, late submissions, a return and resubmission, acceptance, an upload refused for the
locked month (and the rest imported only when chosen), a reopening; the same states everywhere."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
import sqlalchemy as sa

from factories import acquisition as recorded
from factories import agency, login, user
from fleet.base.models import Acquisition, AuditEntry, MonthlyReport, User
from fleet.base.periods import Period
from fleet.domain import reporting
from fleet.domain.agencies import agency_by_name
from xlsx_factory import acquisition, write_upload

BUSES = "濮阳市公共交通有限公司"
POLICE = "濮阳市公安局"
ECOLOGY = "濮阳市生态环境局"
SANITATION = "濮阳市城市管理局"
TODAY = dt.date.today()
# Two months back: its due date (day 10 of the month after) is always behind today.
OLD = reporting.recent_months(TODAY, 2)[1]
CURRENT = Period.month(TODAY.year, TODAY.month)


@pytest.fixture
def city(session):
    """Four agencies registered long ago, a user for each of two, a reviewer and an admin."""
    for name, kind, sector, county in (
        (BUSES, "国有企业", "公交", "华龙区"),
        (POLICE, "党政机关", "公安", "市直"),
        (ECOLOGY, "党政机关", "其他", "市直"),
        (SANITATION, "党政机关", "环卫", "华龙区"),
    ):
        agency(session, name, kind=kind, sector=sector, county=county).created_at = dt.datetime(2024, 1, 1)
    user(session, "bus", agency_name=BUSES)
    user(session, "police", agency_name=POLICE)
    user(session, "reviewer", role="reviewer")
    user(session, "admin", role="admin")
    session.commit()


def cli(runner, *args: str) -> tuple[int, dict]:
    result = runner.invoke(args=[*args, "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, json.loads(result.stdout)


def status(runner, month: Period = OLD, *extra: str) -> dict[str, dict]:
    code, payload = cli(runner, "reporting", "status", "--month", month.label, *extra)
    assert code == 0
    assert payload["month"] == month.label
    assert payload["due"] == reporting.due_date(month, 10).isoformat()
    return {entry["agency"]: entry for entry in payload["agencies"]}


def upload(client, path, **fields):
    data = {"file": (io.BytesIO(path.read_bytes()), path.name), **fields}
    response = client.post("/uploads/", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def day(n: int) -> dt.date:
    return OLD.start + dt.timedelta(days=n - 1)


def test_a_month_end_to_end(client, runner, session, city, tmp_path):
    buses = agency_by_name(session, BUSES)
    police = agency_by_name(session, POLICE)
    # Before anything: every agency owes the old month and it is missing; the current month is open.
    before = status(runner)
    assert list(before) == sorted(before)  # by agency name
    assert {e["state"] for e in before.values()} == {"missing"}
    assert {e["state"] for e in status(runner, CURRENT).values()} == {"open"}

    # The bus company uploads two buses of the month over HTTP and submits it (late: the due date passed).
    login(client, "bus")
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1, acquired_on=day(3)), acquisition(2, acquired_on=day(9))])
    batch = upload(client, path)
    assert client.post(f"/uploads/{batch}/commit", data={}).status_code == 302
    page = client.get(f"/reporting/agencies/{buses.id}/{OLD.label}").get_data(as_text=True)
    assert "本月购置（2 辆）" in page and "提交本月报送" in page and "零报告" not in page.split("<h2>")[-2]
    assert client.post(f"/reporting/agencies/{buses.id}/{OLD.label}/submit", data={}).status_code == 302
    # An agency user cannot see or act on another agency's month.
    assert client.get(f"/reporting/agencies/{police.id}/{OLD.label}").status_code == 404
    assert client.post(f"/reporting/agencies/{police.id}/{OLD.label}/nil", data={"confirm": "y"}).status_code == 404
    api = client.get(f"/api/v1/reporting?month={OLD.label}").get_json()
    assert [e["agency"] for e in api["agencies"]] == [BUSES]
    assert api["agencies"][0]["state"] == "submitted" and api["agencies"][0]["late"] is True
    assert api["agencies"][0]["submitted_at"].endswith("+08:00")
    client.post("/logout")

    # The police bought nothing: a zero report needs the confirmation, and a plain submission is refused.
    code, refused = cli(runner, "reporting", "submit", "--month", OLD.label, "--agency", POLICE, "--as", "police")
    assert code == 1 and refused["error"]["code"] == "nil_required"
    login(client, "police")
    client.post(f"/reporting/agencies/{police.id}/{OLD.label}/nil", data={})
    assert session.scalar(sa.select(sa.func.count()).select_from(MonthlyReport)) == 1
    client.post(f"/reporting/agencies/{police.id}/{OLD.label}/nil", data={"confirm": "y"})
    client.post("/logout")
    # --nil for a month with acquisitions is refused.
    code, refused = cli(runner, "reporting", "submit", "--month", OLD.label, "--agency", BUSES, "--nil", "--as", "reviewer")
    assert code == 1 and refused["error"]["code"] in ("has_acquisitions", "already_submitted")

    # The sanitation bureau's month is submitted by a reviewer on its behalf, late; ecology stays missing.
    session.rollback()
    sanitation = agency_by_name(session, SANITATION)
    recorded(session, sanitation, category="市政环卫车", power="纯电动", acquired_on=day(5), reported_on=day(6))
    session.commit()
    code, submitted = cli(runner, "reporting", "submit", "--month", OLD.label, "--agency", SANITATION, "--as", "reviewer")
    assert code == 0 and submitted["state"] == "submitted" and submitted["late"] is True

    states = status(runner)
    assert {name: (e["state"], e["late"], e["acquisitions"]) for name, e in states.items()} == {
        BUSES: ("submitted", True, 2),
        POLICE: ("nil", True, 0),
        ECOLOGY: ("missing", False, 0),
        SANITATION: ("submitted", True, 1),
    }
    assert states[ECOLOGY]["submitted_at"] is None
    assert list(status(runner, OLD, "--county", "华龙区")) == [BUSES, SANITATION]

    # Review: a non-reviewer cannot accept; accepting a missing month is refused; return needs a comment.
    code, refused = cli(runner, "reporting", "accept", "--month", OLD.label, "--agency", BUSES, "--as", "bus")
    assert code == 1 and refused["error"]["code"] == "not_reviewer"
    code, refused = cli(runner, "reporting", "accept", "--month", OLD.label, "--agency", ECOLOGY, "--as", "reviewer")
    assert code == 1 and refused["error"]["code"] == "not_submitted"
    code, refused = cli(runner, "reporting", "return", "--month", OLD.label, "--agency", BUSES, "--as", "reviewer")
    assert code == 1 and refused["error"]["code"] == "comment_required"
    login(client, "reviewer")
    client.post(f"/reporting/agencies/{buses.id}/{OLD.label}/review", data={"comment": "缺少一辆公交车", "send_back": "退回"})
    assert status(runner)[BUSES]["state"] == "returned"
    grid = client.get(f"/reporting/?month={OLD.label}&state=returned").get_data(as_text=True)
    assert BUSES in grid and POLICE not in grid
    client.post("/logout")

    # The bus company sees the comment, and resubmits.
    login(client, "bus")
    assert "缺少一辆公交车" in client.get(f"/reporting/agencies/{buses.id}/{OLD.label}").get_data(as_text=True)
    client.post(f"/reporting/agencies/{buses.id}/{OLD.label}/submit", data={})
    client.post("/logout")
    assert status(runner)[BUSES]["state"] == "submitted"

    code, accepted = cli(runner, "reporting", "accept", "--month", OLD.label, "--agency", BUSES, "--as", "reviewer")
    assert code == 0 and accepted["state"] == "accepted"

    # The month is locked: a new upload's row dated in it is refused, naming sheet, row and column.
    locked = write_upload(
        tmp_path / "more.xlsx", [acquisition(3, acquired_on=day(12)), acquisition(4, acquired_on=CURRENT.start)]
    )
    result = runner.invoke(args=["import", str(locked), "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    [finding] = report["errors"]
    assert (finding["code"], finding["sheet"], finding["row"], finding["column"]) == ("month_locked", "车辆购置", 2, "acquired_on")
    assert OLD.label in finding["message"]
    assert session.scalar(sa.select(sa.func.count()).select_from(Acquisition).where(Acquisition.agency_id == buses.id)) == 2
    # Only when the user chooses so do the other rows go in, in the browser too.
    login(client, "bus")
    batch = upload(client, locked)
    page = client.get(f"/uploads/{batch}").get_data(as_text=True)
    assert 'data-code="month_locked"' in page and "确认导入" not in page
    assert client.post(f"/uploads/{batch}/skip-locked", data={}).status_code == 302
    assert client.post(f"/uploads/{batch}/commit", data={}).status_code == 302
    session.rollback()
    vins = set(session.scalars(sa.select(Acquisition.vin).where(Acquisition.agency_id == buses.id)))
    assert acquisition(4)["vin"] in vins and acquisition(3)["vin"] not in vins
    client.post("/logout")

    # A reopening needs a reason, is audited, and gives the month back to the agency.
    code, refused = cli(runner, "reporting", "reopen", "--month", OLD.label, "--agency", BUSES, "--as", "reviewer")
    assert code == 1 and refused["error"]["code"] == "reason_required"
    code, reopened = cli(
        runner, "reporting", "reopen", "--month", OLD.label, "--agency", BUSES, "--as", "reviewer", "--comment", "补报一辆车"
    )
    assert code == 0 and reopened["state"] == "returned"
    actions = session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("reporting.%")).order_by(AuditEntry.id)).all()
    assert actions.count("reporting.reopen") == 1 and actions.count("reporting.return") == 1
    reopened_entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "reporting.reopen"))
    assert reopened_entry.detail["reason"] == "补报一辆车"
    code, again = cli(runner, "import", str(locked))
    assert code == 0  # the month is open again (the current month's bus was imported before)

    # The same states on the reviewer's API, the grid and the agency's reporting page.
    login(client, "reviewer")
    api = {e["agency"]: e for e in client.get(f"/api/v1/reporting?month={OLD.label}").get_json()["agencies"]}
    assert api == status(runner)
    assert client.get("/api/v1/reporting?month=2026-13").status_code == 400
    history = client.get(f"/reporting/agencies/{police.id}").get_data(as_text=True)
    assert OLD.label in history and "零报告" in history


def test_the_dashboard_agency_page_api_and_mail_show_the_same_states(client, runner, session, city):
    from test_mail_summaries import smtp_server

    police = agency_by_name(session, POLICE)
    reviewer = session.scalar(sa.select(User).where(User.username == "reviewer"))
    last = reporting.recent_months(TODAY, 1)[0]
    reporting.submit(session, police, last, user=reviewer, nil=True, today=TODAY, due_day=10)
    # Something in scope this year, so that the agency page has figures to chart.
    for category in ("公务用车", "执法执勤用车"):
        recorded(session, police, category=category, acquired_on=CURRENT.start, reported_on=CURRENT.start)
    buses = agency_by_name(session, BUSES)
    buses.contact_emails = ["jiwu@pygj.example.cn"]
    session.commit()
    expected = {name: entry["state"] for name, entry in status(runner, last).items()}
    assert expected[POLICE] == "nil" and expected[BUSES] in ("open", "missing")

    login(client, "reviewer")
    section = client.get("/").get_data(as_text=True).split('id="not-reported"')[1]
    for name, state in expected.items():
        # The city page lists the agencies still owing the month, with their state.
        assert (name in section) == (state in ("open", "missing", "returned")), name
    assert 'data-state="nil">1<' in section
    page = client.get(f"/agencies/{police.id}").get_data(as_text=True)
    assert "零报告" in page.split('id="reporting"')[1]
    api = {e["agency"]: e["state"] for e in client.get(f"/api/v1/reporting?month={last.label}").get_json()["agencies"]}
    assert api == expected
    client.post("/logout")
    login(client, "police")
    own = client.get(f"/api/v1/reporting?month={last.label}").get_json()["agencies"]
    assert [(e["agency"], e["state"]) for e in own] == [(POLICE, "nil")]
    client.post("/logout")

    with smtp_server() as (inbox, port):
        client.application.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port)
        result = runner.invoke(args=["summaries", "send", "--month", last.label])
        assert result.exit_code == 0, result.output
    [mail] = inbox.to("jiwu@pygj.example.cn")
    text = mail.get_body(("plain",)).get_content()
    assert f"月报：{'待报送' if expected[BUSES] == 'open' else '逾期未报'}" in text


def test_the_setting_or_the_pack_decides_the_due_day(app, session, city):
    app.config["REPORTING_DUE_DAY"] = 15
    with app.test_request_context():
        from fleet.web.reporting import due_day

        assert due_day() == 15


def test_an_agency_users_template_is_filled_with_its_own_values_and_names_the_month(client, session, city, tmp_path):
    from openpyxl import load_workbook

    from imports.headers import COLUMNS

    buses = agency_by_name(session, BUSES)
    buses.credit_code = "91410900MA44L6PX5D"
    session.commit()
    login(client, "bus")
    response = client.get(f"/uploads/template?month={OLD.label}")
    assert response.status_code == 200
    assert OLD.label in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    sheet = book["车辆购置"]
    assert BUSES in sheet["A1"].value and OLD.label in sheet["A1"].value
    letters = {c.key: chr(ord("A") + i) for i, c in enumerate(COLUMNS)}
    assert [sheet[f"{letters[k]}3"].value for k in ("agency", "credit_code", "county")] == [BUSES, "91410900MA44L6PX5D", "华龙区"]
    own = {str(v.sqref).split(":")[0]: v.formula1 for v in sheet.data_validations.dataValidation}
    assert own[f"{letters['agency']}3"] == f'"{BUSES}"' and own[f"{letters['county']}3"] == '"华龙区"'
    # Filled in (the agency's values are merged down: only the vehicles are typed) it uploads cleanly.
    for row, values in ((3, acquisition(1, acquired_on=day(4))), (4, acquisition(2, acquired_on=day(6)))):
        for key in ("vin", "plate", "category", "power", "acquisition", "acquired_on", "brand_model", "price"):
            sheet[f"{letters[key]}{row}"] = values[key]
    path = tmp_path / "filled.xlsx"
    book.save(path)
    batch = upload(client, path)
    report = client.get(f"/uploads/{batch}/status").get_json()
    assert (report["status"], report["rows"], report["errors"]) == ("valid", 2, 0)
    client.post("/logout")
    login(client, "reviewer")
    generic = load_workbook(io.BytesIO(client.get("/uploads/template").data))["车辆购置"]
    assert generic["A1"].value.endswith("单位名称") and generic["A2"].value is None
