"""Exemption requests and decisions, and the no-NEV catalogue, as services."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fleet.base.models import AuditEntry
from fleet.domain.exemptions import (
    ExemptionError,
    add_catalogue_entry,
    catalogue,
    decide_exemption,
    like_pattern,
    refresh_catalogue_matches,
    request_exemption,
    update_catalogue_entry,
)
from tests import factories


@pytest.fixture
def world(session):
    bus_company = factories.agency(session, "濮阳市公交公司", kind="国有企业", sector="公交")
    other = factories.agency(session, "濮阳市环卫处", kind="事业单位", sector="环卫")
    manager = factories.user(session, "bus", "agency", "濮阳市公交公司")
    reviewer = factories.user(session, "reviewer", "reviewer")
    diesel_bus = factories.acquisition(session, bus_company, category="公交车", power="柴油", brand_model="宇通ZK6125HNG")
    electric_bus = factories.acquisition(session, bus_company, category="公交车", power="纯电动", brand_model="宇通ZK6125BEVG")
    sweeper = factories.acquisition(session, other, category="市政环卫车", power="柴油", brand_model="中联重科ZBH5250TXS 洗扫车")
    session.commit()
    return {"agency": bus_company, "manager": manager, "reviewer": reviewer, "diesel_bus": diesel_bus,
            "electric_bus": electric_bus, "sweeper": sweeper}


def ask(session, world, acquisition=None, **kw):
    return request_exemption(
        session,
        (acquisition or world["diesel_bus"]).id,
        user=world["manager"],
        reason_category=kw.get("reason_category", "续航不足"),
        reason=kw.get("reason", "夜间线路单程 300 公里，现有纯电车型续航不足。"),
        scope_agency_id=kw.get("scope", world["agency"].id),
    )


def test_request_then_approve_is_recorded_in_the_audit_log(session, world):
    request = ask(session, world)
    assert request.status == "pending"
    decide_exemption(session, request.id, user=world["reviewer"], approve=True, comment="同意")
    assert request.status == "approved" and request.decided_by_id == world["reviewer"].id
    assert request.decided_at is not None
    actions = session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions[-2:] == ["exemption.request", "exemption.approve"]
    approval = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "exemption.approve")).one()
    assert approval.user_id == world["reviewer"].id and approval.target_id == request.id


def test_nev_acquisitions_cannot_be_exempted(session, world):
    with pytest.raises(ExemptionError) as error:
        ask(session, world, world["electric_bus"])
    assert error.value.code == "is_nev"


def test_one_open_request_per_acquisition(session, world):
    ask(session, world)
    with pytest.raises(ExemptionError) as error:
        ask(session, world)
    assert error.value.code == "already_open"


def test_a_rejected_request_can_be_asked_again(session, world):
    first = ask(session, world)
    decide_exemption(session, first.id, user=world["reviewer"], approve=False, comment="可选用长续航纯电车型")
    assert ask(session, world).status == "pending"


def test_a_rejection_needs_a_comment(session, world):
    request = ask(session, world)
    with pytest.raises(ExemptionError) as error:
        decide_exemption(session, request.id, user=world["reviewer"], approve=False, comment="  ")
    assert error.value.code == "comment_required"


def test_a_decided_request_cannot_be_decided_again(session, world):
    request = ask(session, world)
    decide_exemption(session, request.id, user=world["reviewer"], approve=True, comment=None)
    with pytest.raises(ExemptionError) as error:
        decide_exemption(session, request.id, user=world["reviewer"], approve=False, comment="改变主意")
    assert error.value.code == "not_pending"


def test_the_explanation_needs_five_characters(session, world):
    with pytest.raises(ExemptionError) as error:
        ask(session, world, reason="续航短 ")
    assert error.value.code == "reason_too_short"


def test_the_reason_category_comes_from_the_list(session, world):
    with pytest.raises(ExemptionError) as error:
        ask(session, world, reason_category="领导喜欢")
    assert error.value.code == "unknown_reason_category"


def test_another_agencys_acquisition_is_not_found(session, world):
    with pytest.raises(ExemptionError) as error:
        ask(session, world, world["sweeper"])
    assert error.value.code == "not_found"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [("洗扫车", "%洗扫车%"), ("ZBH*", "ZBH%"), ("ZK61?5*", "ZK61_5%"), ("50%_x", "%50\\%\\_x%")],
)
def test_catalogue_patterns_are_substrings_or_simple_wildcards(pattern, expected):
    assert like_pattern(pattern) == expected


def test_catalogue_entry_exempts_matching_non_nev_acquisitions_case_insensitively(session, world):
    entry = add_catalogue_entry(
        session, category="市政环卫车", model_pattern="zbh5250", description="25 吨洗扫车",
        reason="市场上暂无同等作业能力的新能源洗扫车。", user=world["reviewer"],
    )
    assert world["sweeper"].catalogue_entry_id == entry.id
    assert world["diesel_bus"].catalogue_entry_id is None
    rows = catalogue(session)
    assert [(r.entry.id, r.matches) for r in rows] == [(entry.id, 1)]


def test_catalogue_never_marks_an_nev(session, world):
    add_catalogue_entry(
        session, category="公交车", model_pattern="宇通ZK6125*", description="12 米公交",
        reason="测试条目，匹配所有宇通 12 米车型。", user=world["reviewer"],
    )
    assert world["diesel_bus"].catalogue_entry_id is not None
    assert world["electric_bus"].catalogue_entry_id is None


def test_deactivating_an_entry_clears_its_matches(session, world):
    entry = add_catalogue_entry(
        session, category="市政环卫车", model_pattern="洗扫车", description="洗扫车",
        reason="暂无新能源洗扫车型可选。", user=world["reviewer"],
    )
    update_catalogue_entry(
        session, entry.id, category="市政环卫车", model_pattern="洗扫车", description="洗扫车",
        reason="暂无新能源洗扫车型可选。", active=False, user=world["reviewer"],
    )
    assert world["sweeper"].catalogue_entry_id is None


def test_refresh_picks_up_acquisitions_recorded_later_and_reports_changes(session, world):
    entry = add_catalogue_entry(
        session, category="公交车", model_pattern="ZK6125HNG", description="天然气公交",
        reason="测试：天然气车型条目说明。", user=world["reviewer"],
    )
    later = factories.acquisition(session, world["agency"], category="公交车", power="天然气", brand_model="宇通 zk6125hng")
    assert later.catalogue_entry_id is None  # recorded after the refresh: the importer refreshes after its commit
    assert refresh_catalogue_matches(session) == 1
    assert later.catalogue_entry_id == entry.id
    assert refresh_catalogue_matches(session) == 0


def test_too_broad_patterns_are_refused(session, world):
    with pytest.raises(ExemptionError) as error:
        add_catalogue_entry(session, category="公交车", model_pattern="*?*", description="全部",
                            reason="不应允许的条目。", user=world["reviewer"])
    assert error.value.code == "pattern_too_broad"
