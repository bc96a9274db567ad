"""The compliance report whose vehicle detail is too large for a request: the export button starts a
background job (a thread here: no REDIS_URL), the page polls it, and the finished workbook is
downloaded; agency users only ever see their own agency's."""

from __future__ import annotations

import datetime as dt
import io
import time

import pytest
from openpyxl import load_workbook

from fleet.base.periods import Period
from rules.active import active_pack
from rules.engine import evaluate
from tests import factories

YEAR = dt.date.today().year
ON = dt.date(YEAR, 1, 2)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def city(app, session):
    """Police: 5 enforcement cars, 2 NEV; Qingfeng market supervision: 2 electric enforcement cars and
    an official car. The online limit is 2 vehicle rows, so every report here goes to a job."""
    app.config["REPORT_VEHICLE_ROWS_ONLINE"] = 2
    police = factories.agency(session, "濮阳市公安局")
    market = factories.agency(session, "清丰县市场监督管理局", sector="市场监管", county="清丰县")
    cars = [
        factories.acquisition(session, police, category="执法执勤用车", power=power, acquired_on=ON, reported_on=ON)
        for power in ("纯电动", "燃料电池", "汽油", "汽油", "柴油")
    ]
    cars += [
        factories.acquisition(session, market, category="执法执勤用车", power="纯电动", acquired_on=ON, reported_on=ON)
        for _ in range(2)
    ]
    cars.append(factories.acquisition(session, market, category="公务用车", power="汽油", acquired_on=ON, reported_on=ON))
    factories.user(session, "police", "agency", police.name)
    factories.user(session, "market", "agency", market.name)
    factories.user(session, "reviewer", "reviewer")
    session.commit()
    return {"police": police, "market": market, "cars": cars}


def _finished(client, session, job_url: str) -> dict:
    """Poll the job as the page does until it is no longer queued or running."""
    deadline = time.monotonic() + 60
    while True:
        # The session fixture's app context is the requests' too: end its snapshot to see the job's commits.
        session.rollback()
        state = client.get(f"{job_url}.json").get_json()
        if state["status"] not in ("queued", "running"):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.1)


def _vehicle_rows(data: bytes) -> list[tuple]:
    workbook = load_workbook(io.BytesIO(data), read_only=True)
    rows = [
        row for sheet in workbook.worksheets if sheet.title.startswith("车辆明细")
        for row in sheet.iter_rows(min_row=4, max_col=3, values_only=True)
    ]
    workbook.close()
    return rows


def test_the_export_button_builds_a_large_city_report_in_a_job_and_offers_it(client, session, city):
    factories.login(client, "reviewer")
    started = client.post(f"/reports/compliance?year={YEAR}")
    assert started.status_code == 303
    job_url = started.headers["Location"]
    page = client.get(job_url)
    assert page.status_code == 200

    state = _finished(client, session, job_url)
    assert state["status"] == "done" and state["progress"] == 100
    assert state["download_url"] in client.get(job_url).get_data(as_text=True)
    download = client.get(state["download_url"])
    assert download.status_code == 200 and download.mimetype == XLSX
    assert "attachment" in download.headers["Content-Disposition"]

    # Every in-scope vehicle once under each rule: the engine's count per rule, no (rule, VIN) twice.
    rows = _vehicle_rows(download.data)
    pairs = [(rule, vin) for rule, _agency, vin in rows]
    assert len(pairs) == len(set(pairs))
    assert {rule: sum(1 for r, _ in pairs if r == rule) for rule, _ in pairs} == _in_scope_per_rule(session)
    enforcement = {vin for rule, vin in pairs if rule.startswith("执法执勤用车")}
    assert enforcement == {car.vin for car in city["cars"][:7]}
    assert state["vehicle_rows"] == len(pairs)


def _in_scope_per_rule(session) -> dict[str, int]:
    """The engine's city-wide count of vehicles in each rule's scope, by the rule's title."""
    results = [r for r in evaluate(session, active_pack(session), Period.year(YEAR)) if r.agency_id is None]
    return {r.rule.title_in("zh"): r.in_scope + r.exempt for r in results if r.in_scope + r.exempt}


def test_a_small_report_is_still_downloaded_at_once(app, client, session, city):
    app.config["REPORT_VEHICLE_ROWS_ONLINE"] = 1000
    factories.login(client, "reviewer")
    response = client.post(f"/reports/compliance?year={YEAR}")
    assert response.status_code == 200 and response.mimetype == XLSX
    assert len(_vehicle_rows(response.data)) == sum(_in_scope_per_rule(session).values())


def test_agency_users_get_only_their_own_agencys_report_job(client, session, city):
    factories.login(client, "police")
    # Asking for another agency's report gives the police their own, as the direct download does.
    started = client.post(f"/reports/compliance?year={YEAR}&agency_id={city['market'].id}")
    assert started.status_code == 303
    job_url = started.headers["Location"]
    state = _finished(client, session, job_url)
    assert state["status"] == "done"
    vins = {vin for _rule, _agency, vin in _vehicle_rows(client.get(state["download_url"]).data)}
    assert vins == {car.vin for car in city["cars"][:5]}

    client.post("/logout")
    factories.login(client, "market")
    for url in (job_url, f"{job_url}.json", state["download_url"]):
        response = client.get(url)
        assert response.status_code == 404, url
        assert city["cars"][0].vin.encode() not in response.data
    client.post("/logout")
    factories.login(client, "reviewer")
    assert client.get(state["download_url"]).status_code == 200


def test_a_report_whose_builder_died_ends_failed_and_old_workbooks_are_dropped(runner, client, session, city):
    """The reaper fails a report job silent for five minutes (its worker was killed) and, by
    REPORT_KEEP_DAYS, deletes finished jobs with their workbook; a recent one stays downloadable."""
    import sqlalchemy as sa

    from fleet import jobs
    from fleet.base.models import ReportJob, User, utcnow

    reviewer = session.scalar(sa.select(User).where(User.username == "reviewer"))
    now = utcnow()
    def job(**values) -> int:
        row = ReportJob(requested_by_id=reviewer.id, period=str(YEAR), file_name="r.xlsx", vehicle_rows=8, **values)
        session.add(row)
        session.flush()
        return row.id

    dead = job(status="running", heartbeat_at=now - dt.timedelta(minutes=6))
    alive = job(status="running", heartbeat_at=now - dt.timedelta(minutes=1))
    old = job(status="done", content=b"PK old", finished_at=now - dt.timedelta(days=8))
    recent = job(status="done", content=b"PK recent", finished_at=now - dt.timedelta(days=6))
    session.commit()

    result = runner.invoke(args=["housekeeping"])
    assert result.exit_code == 0, result.output
    assert '"failed_reports": 1' in result.output and '"dropped_reports": 1' in result.output
    session.expire_all()
    assert session.get(ReportJob, dead).status == "failed"
    assert session.get(ReportJob, alive).status == "running"
    assert session.get(ReportJob, old) is None
    factories.login(client, "reviewer")
    assert client.get(f"/reports/jobs/{old}").status_code == 404
    assert client.get(f"/reports/jobs/{dead}.json").get_json()["status"] == "failed"
    assert client.get(f"/reports/jobs/{recent}/download").data == b"PK recent"
    # The dead job is dropped in its turn, counted from its last sign of life.
    later = jobs.housekeeping(session, keep_reports=dt.timedelta(minutes=5))
    assert later["dropped_reports"] == 2 and session.get(ReportJob, alive) is not None
    assert session.get(ReportJob, dead) is None and session.get(ReportJob, recent) is None
