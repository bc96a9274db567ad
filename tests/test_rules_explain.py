"""Explanation: the vehicles behind a result, marked, adding up to the result they explain."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from fleet.base.periods import Period
from rules.engine import evaluate
from rules.explain import explain, explain_by_agency
from rules.packs import PackError, get_pack
from tests import factories

Y2025 = Period.year(2025)


@pytest.fixture
def puyang():
    return get_pack("puyang-2024")


def test_bus_lines_are_marked_and_add_up(session, puyang):
    company = factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交")
    electric = factories.acquisition(session, company, category="公交车", power="纯电动")
    approved = factories.acquisition(session, company, category="公交车", power="柴油")
    pending = factories.acquisition(session, company, category="公交车", power="柴油")
    catalogued = factories.acquisition(session, company, category="公交车", power="柴油")
    plain = factories.acquisition(session, company, category="公交车", power="天然气")
    factories.exemption_request(session, approved, "approved", reason="山区线路续航不足")
    request = factories.exemption_request(session, pending, "pending")
    entry = factories.catalogue_match(session, catalogued, description="机场摆渡车")
    factories.acquisition(session, company, category="公务用车", power="汽油")  # another rule

    lines = explain(session, puyang, "puyang-2024/bus", Y2025, company.id)
    marks = {line.acquisition_id: line.mark for line in lines}
    assert marks == {electric.id: "nev", approved.id: "exempt", pending.id: "pending", catalogued.id: "exempt", plain.id: "not_nev"}
    by_id = {line.acquisition_id: line for line in lines}
    assert by_id[approved.id].exemption["reason"] == "山区线路续航不足"
    assert by_id[pending.id].exemption == {
        "source": "request",
        "id": request.id,
        "status": "pending",
        "reason_category": request.reason_category,
        "reason": request.reason,
    }
    assert by_id[catalogued.id].exemption["source"] == "catalogue"
    assert by_id[catalogued.id].exemption["id"] == entry.id
    assert by_id[plain.id].exemption is None
    assert by_id[electric.id].as_dict()["acquired_on"] == "2025-03-05"

    (result,) = [r for r in evaluate(session, puyang, Y2025, agency_id=company.id) if r.rule.id == "bus"]
    count = Counter(line.mark for line in lines)
    assert len(lines) == result.in_scope + result.exempt
    assert (count["nev"], count["exempt"], count["pending"]) == (result.nev, result.exempt, result.pending)


def test_emission_rule_lines_say_met_or_not_met(session, puyang):
    firm = factories.agency(session, "濮阳市顺通物流有限公司", kind="民营企业", sector="物流")
    ok = factories.acquisition(session, firm, category="重型货车", power="柴油", emission_standard="国六")
    old = factories.acquisition(session, firm, category="重型货车", power="柴油", emission_standard="国五")
    factories.acquisition(session, firm, category="重型货车", power="纯电动", emission_standard="不适用")
    lines = explain(session, puyang, "heavy-truck-emission", Y2025)
    assert {(line.acquisition_id, line.mark, line.counts) for line in lines} == {(ok.id, "met", True), (old.id, "not_met", False)}


def test_city_wide_explanation_lists_every_agency_in_scope(session, puyang):
    police = factories.agency(session, "濮阳市公安局")
    company = factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交")
    factories.acquisition(session, police, category="公务用车", power="纯电动")
    factories.acquisition(session, company, category="公务用车", power="汽油")  # not 党政机关
    factories.acquisition(session, police, category="公务用车", power="汽油", acquired_on=dt.date(2026, 1, 1))
    lines = explain(session, puyang, "official-car", Y2025)
    assert [(line.agency, line.mark) for line in lines] == [("濮阳市公安局", "nev")]


def test_a_limit_gives_the_first_lines_in_order(session, puyang):
    police = factories.agency(session, "濮阳市公安局")
    for day in (9, 3, 6):
        factories.acquisition(session, police, category="公务用车", power="纯电动", acquired_on=dt.date(2025, 3, day))
    lines = explain(session, puyang, "official-car", Y2025, police.id, limit=2)
    assert [line.acquired_on.day for line in lines] == [3, 6]
    assert len(explain(session, puyang, "official-car", Y2025, police.id)) == 3


def test_explaining_outside_the_effective_period_or_an_unknown_rule(session, puyang):
    assert explain(session, puyang, "bus", Period.year(2023)) == []
    with pytest.raises(PackError):
        explain(session, puyang, "puyang-2024/trams", Y2025)


def test_explaining_many_agencies_at_once_gives_each_its_own_lines_in_order(session, puyang):
    """What the monthly mail reads for 50 agencies in one query per rule equals explain() of each."""
    police = factories.agency(session, "濮阳市公安局")
    court = factories.agency(session, "濮阳市中级人民法院")
    company = factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交")
    idle = factories.agency(session, "濮阳市档案馆")
    for agency, day, power in ((police, 9, "汽油"), (court, 3, "纯电动"), (police, 3, "纯电动"), (court, 12, "柴油")):
        factories.acquisition(session, agency, category="公务用车", power=power, acquired_on=dt.date(2025, 3, day))
    factories.acquisition(session, company, category="公务用车", power="汽油")  # not 党政机关
    ids = [court.id, idle.id, police.id, company.id]
    found = explain_by_agency(session, puyang, "official-car", Y2025, ids)
    assert set(found) == {police.id, court.id}
    for agency in (police, court):
        assert found[agency.id] == explain(session, puyang, "official-car", Y2025, agency.id)
    assert [line.acquired_on.day for line in found[police.id]] == [3, 9]
    assert [line.mark for line in found[court.id]] == ["nev", "not_nev"]
    assert explain_by_agency(session, puyang, "official-car", Y2025, []) == {}
