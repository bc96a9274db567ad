"""Exemption pages over HTTP: an agency requests, a reviewer decides, the catalogue marks vehicles."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from fleet.base.models import Acquisition, AuditEntry, ExemptionRequest, NoNevCatalogueEntry, User
from imports.pipeline import import_file
from tests import factories
from tests.xlsx_factory import acquisition, write_upload


@pytest.fixture
def fleet(session):
    buses = factories.agency(session, "濮阳市公交公司", kind="国有企业", sector="公交")
    sanitation = factories.agency(session, "濮阳市环卫处", kind="事业单位", sector="环卫")
    factories.user(session, "bus", "agency", "濮阳市公交公司")
    factories.user(session, "clean", "agency", "濮阳市环卫处")
    factories.user(session, "reviewer", "reviewer")
    diesel = factories.acquisition(session, buses, category="公交车", power="柴油", brand_model="宇通ZK6125HNG")
    electric = factories.acquisition(session, buses, category="公交车", power="纯电动", brand_model="宇通E12")
    sweeper = factories.acquisition(session, sanitation, category="市政环卫车", power="柴油", brand_model="中联ZBH5250TXS")
    session.commit()
    return {"diesel": diesel, "electric": electric, "sweeper": sweeper}


REQUEST = {"reason_category": "续航不足", "reason": "夜班线路单程 300 公里，纯电车型续航不足。"}


def test_agency_requests_and_reviewer_approves(client, app, session, fleet):
    factories.login(client, "bus")
    detail = client.get(f"/vehicles/{fleet['diesel'].id}").get_data(as_text=True)
    assert f"/exemptions/new/{fleet['diesel'].id}" in detail
    response = client.post(f"/exemptions/new/{fleet['diesel'].id}", data=REQUEST)
    assert response.status_code == 302
    request_id = session.scalar(sa.select(ExemptionRequest.id))
    client.post("/logout")

    reviewer = app.test_client()
    factories.login(reviewer, "reviewer")
    queue = reviewer.get("/exemptions/").get_data(as_text=True)
    assert fleet["diesel"].vin in queue and "待审核" in queue
    assert '<span class="count" title="待审核">1</span>' in queue  # the nav tells reviewers what waits
    decided = reviewer.post(f"/exemptions/{request_id}/decision", data={"approve": "批准", "comment": "同意，夜班线路"})
    assert decided.status_code == 302
    session.expire_all()
    request = session.get(ExemptionRequest, request_id)
    assert request.status == "approved" and request.comment == "同意，夜班线路"
    audit = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "exemption.approve")).one()
    assert audit.user_id == request.decided_by_id

    factories.login(client, "bus")
    assert "已批准" in client.get(f"/vehicles/{fleet['diesel'].id}").get_data(as_text=True)


def test_the_list_offers_a_request_only_where_one_can_be_made(client, fleet):
    factories.login(client, "bus")
    html = client.get("/vehicles/").get_data(as_text=True)
    assert f"/exemptions/new/{fleet['diesel'].id}" in html
    assert f"/exemptions/new/{fleet['electric'].id}" not in html
    client.post(f"/exemptions/new/{fleet['diesel'].id}", data=REQUEST)
    assert f"/exemptions/new/{fleet['diesel'].id}" not in client.get("/vehicles/").get_data(as_text=True)


def test_reviewer_filters_the_queue_by_agency(client, session, fleet):
    factories.login(client, "bus")
    client.post(f"/exemptions/new/{fleet['diesel'].id}", data=REQUEST)
    client.post("/logout")
    factories.login(client, "reviewer")
    buses = session.scalar(sa.select(Acquisition.agency_id).where(Acquisition.id == fleet["diesel"].id))
    assert fleet["diesel"].vin in client.get(f"/exemptions/?agency={buses}").get_data(as_text=True)
    other = session.scalar(sa.select(Acquisition.agency_id).where(Acquisition.id == fleet["sweeper"].id))
    assert fleet["diesel"].vin not in client.get(f"/exemptions/?agency={other}").get_data(as_text=True)


def test_reject_without_comment_is_refused_with_a_message(client, session, fleet):
    factories.login(client, "bus")
    client.post(f"/exemptions/new/{fleet['diesel'].id}", data=REQUEST)
    client.post("/logout")
    factories.login(client, "reviewer")
    request_id = session.scalar(sa.select(ExemptionRequest.id))
    response = client.post(f"/exemptions/{request_id}/decision", data={"reject": "驳回", "comment": ""})
    assert response.status_code == 400
    assert "驳回时请填写审核意见" in response.get_data(as_text=True)


def test_short_explanation_is_refused(client, session, fleet):
    factories.login(client, "bus")
    response = client.post(f"/exemptions/new/{fleet['diesel'].id}", data={"reason_category": "续航不足", "reason": "太短"})
    assert response.status_code == 200
    assert "至少需要 5 个字" in response.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(ExemptionRequest)) == 0


def test_no_request_for_an_nev(client, fleet):
    factories.login(client, "bus")
    response = client.get(f"/exemptions/new/{fleet['electric'].id}")
    assert response.status_code == 302
    assert "/exemptions/new" not in client.get(f"/vehicles/{fleet['electric'].id}").get_data(as_text=True)


def test_agency_cannot_request_for_another_agency_nor_decide(client, session, fleet):
    factories.login(client, "bus")
    assert client.post(f"/exemptions/new/{fleet['sweeper'].id}", data=REQUEST).status_code == 404
    client.post(f"/exemptions/new/{fleet['diesel'].id}", data=REQUEST)
    request_id = session.scalar(sa.select(ExemptionRequest.id))
    assert client.post(f"/exemptions/{request_id}/decision", data={"approve": "批准"}).status_code == 403
    client.post("/logout")
    factories.login(client, "clean")
    assert client.get(f"/exemptions/{request_id}").status_code == 404
    assert fleet["diesel"].vin not in client.get("/exemptions/").get_data(as_text=True)


def test_reviewer_catalogue_entry_marks_matching_vehicles(client, session, fleet):
    factories.login(client, "reviewer")
    entry = {"category": "市政环卫车", "model_pattern": "zbh5250*", "description": "25 吨洗扫车",
             "reason": "暂无同等作业能力的新能源洗扫车。", "active": "y"}
    assert client.post("/exemptions/catalogue", data=entry).status_code == 302
    # A wildcard pattern matches the whole brand/model: "zbh5250*" does not match "中联ZBH5250TXS".
    session.expire_all()
    assert session.get(Acquisition, fleet["sweeper"].id).catalogue_entry_id is None
    entry_id = session.scalar(sa.select(NoNevCatalogueEntry.id))
    assert client.post(f"/exemptions/catalogue/{entry_id}", data={**entry, "model_pattern": "*zbh5250*"}).status_code == 302
    session.expire_all()
    assert session.get(Acquisition, fleet["sweeper"].id).catalogue_entry_id == entry_id
    assert client.post("/exemptions/catalogue", data={**entry, "model_pattern": "*"}).status_code == 400
    client.post("/logout")
    factories.login(client, "clean")
    assert "目录豁免" in client.get(f"/vehicles/{fleet['sweeper'].id}").get_data(as_text=True)
    assert "目录豁免" in client.get("/vehicles/").get_data(as_text=True)
    # Agencies read the catalogue but cannot change it.
    assert client.get("/exemptions/catalogue").status_code == 200
    assert client.post("/exemptions/catalogue", data={}).status_code == 403


def test_no_request_is_offered_where_no_rule_covering_the_vehicle_counts_exemptions(client, session, fleet):
    """The 50% / 60% official-car rules leave room for non-NEVs and count no exemption: a request there
    would be approved and change nothing, so none is offered, and the vehicle's page says why."""
    police = factories.agency(session, "濮阳市公安局")
    factories.user(session, "police", "agency", police.name)
    patrol = factories.acquisition(session, police, category="执法执勤用车", power="汽油")
    session.commit()
    factories.login(client, "police")
    detail = client.get(f"/vehicles/{patrol.id}").get_data(as_text=True)
    assert f"/exemptions/new/{patrol.id}" not in detail
    assert "不计豁免" in detail
    assert f"/exemptions/new/{patrol.id}" not in client.get("/vehicles/").get_data(as_text=True)
    refused = client.post(f"/exemptions/new/{patrol.id}", data=REQUEST)
    assert refused.status_code == 302 and session.scalar(sa.select(sa.func.count()).select_from(ExemptionRequest)) == 0


def test_the_reason_given_in_the_upload_is_where_the_request_starts(client, session, tmp_path):
    factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交", county="华龙区")
    factories.user(session, "bus", "agency", "濮阳市公共交通有限公司")
    session.commit()
    reason = "夜班线路单程三百公里纯电车型续航不足"
    upload = write_upload(tmp_path / "u.xlsx", [acquisition(1, power="柴油", plate="豫J00001", exemption_reason=reason)])
    assert import_file(session, upload).inserted == 1
    diesel = session.scalar(sa.select(Acquisition.id))
    factories.login(client, "bus")
    form = client.get(f"/exemptions/new/{diesel}").get_data(as_text=True)
    assert re.search(r'<textarea[^>]*name="reason"[^>]*>\s*' + re.escape(reason) + r"</textarea>", form)


def test_the_decision_page_shows_what_each_decision_does_to_the_agencys_figures(client, app, session, fleet):
    factories.login(client, "bus")
    client.post(f"/exemptions/new/{fleet['diesel'].id}", data=REQUEST)
    request_id = session.scalar(sa.select(ExemptionRequest.id))
    session.rollback()  # the requests below write (the reviewer's language) on SQLite too
    # The agency asking sees its request, not the reviewer's reckoning.
    assert "data-decision-effects" not in client.get(f"/exemptions/{request_id}").get_data(as_text=True)
    client.post("/logout")

    reviewer = app.test_client()
    factories.login(reviewer, "reviewer")
    html = reviewer.get(f"/exemptions/{request_id}").get_data(as_text=True)
    effects = html.split("data-decision-effects")[1].split("</section>")[0]
    rows = re.findall(r'<tr data-rule="([^"]+)">(.*?)</tr>', effects, re.S)
    assert len(rows) == 1  # the bus rule: the one rule covering a diesel bus of a bus company
    cells = re.findall(r'data-outcome="(\w+)" data-status="(\w+)">([^<]*)<', rows[0][1])
    outcomes = {outcome: (status, text.strip()) for outcome, status, text in cells}
    # One diesel and one electric bus: 50% now and if rejected, 100% once the diesel one is exempted.
    assert outcomes == {"now": ("fail", "50.0% · 未达标"), "approved": ("pass", "100.0% · 达标"), "rejected": ("fail", "50.0% · 未达标")}

    # Working it out decided nothing: the request still waits and the vehicle still counts as pending.
    session.expire_all()
    assert session.get(ExemptionRequest, request_id).status == "pending"
    assert session.get(Acquisition, fleet["diesel"].id).exemption_state == 1


def test_the_decision_effects_are_in_the_reviewers_language(app, session, fleet):
    session.scalar(sa.select(User).where(User.username == "reviewer")).locale = "en"
    request_id = factories.exemption_request(session, fleet["diesel"], reason_category="续航不足").id
    session.commit()
    reviewer = app.test_client()
    factories.login(reviewer, "reviewer")
    english = reviewer.get(f"/exemptions/{request_id}").get_data(as_text=True)
    assert "What the decision does to the agency's results" in english.replace("&#39;", "'")
    assert "If approved" in english and "100.0% · Compliant" in english
