"""The compliance engine on hand-computed cases: every Puyang rule, small numbers, exemptions, periods."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest

from fleet.base.periods import Period
from rules.active import active_pack, set_active_pack
from rules.engine import evaluate
from rules.packs import get_pack
from rules.results import compliance_json
from tests import factories

Y2025 = Period.year(2025)


@pytest.fixture
def puyang():
    return get_pack("puyang-2024")


def buy(session, agency, count: int = 1, **fields):
    return [factories.acquisition(session, agency, **fields) for _ in range(count)]


def find(results, rule: str, agency: str | None = None):
    matches = [r for r in results if r.rule.id == rule and r.agency == agency]
    assert len(matches) == 1, f"{rule} / {agency}: {len(matches)} results"
    return matches[0]


def rule_ids(results, agency: str | None):
    return {r.rule.id for r in results if r.agency == agency}


@pytest.fixture
def police(session):
    return factories.agency(session, "濮阳市公安局", kind="党政机关", sector="公安")


@pytest.fixture
def bus_company(session):
    return factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交")


@pytest.fixture
def logistics(session):
    return factories.agency(session, "濮阳市顺通城市配送有限公司", kind="民营企业", sector="物流", county="华龙区")


def test_bus_rule_on_three_electric_and_one_diesel_bus(session, puyang, bus_company):
    buy(session, bus_company, 3, category="公交车", power="纯电动")
    buy(session, bus_company, 1, category="公交车", power="柴油")
    results = evaluate(session, puyang, Y2025)
    for agency in (None, bus_company.name):
        r = find(results, "bus", agency)
        assert (r.in_scope, r.nev, r.exempt, r.pending) == (4, 3, 0, 0)
        assert r.share == Fraction(3, 4)
        assert (r.status, r.shortfall) == ("fail", 1)


def test_bus_rule_counts_replacements_too(session, puyang, bus_company):
    buy(session, bus_company, 1, category="公交车", power="纯电动", acquisition_kind="新增")
    buy(session, bus_company, 1, category="公交车", power="柴油", acquisition_kind="更新")
    r = find(evaluate(session, puyang, Y2025), "bus", bus_company.name)
    assert (r.in_scope, r.nev, r.status) == (2, 1, "fail")


def test_sanitation_rule_counts_fuel_cell_and_plug_in_as_nev(session, puyang, logistics):
    buy(session, logistics, 1, category="市政环卫车", power="燃料电池")
    buy(session, logistics, 1, category="市政环卫车", power="插电式混合动力")
    buy(session, logistics, 1, category="市政环卫车", power="油电混合")
    r = find(evaluate(session, puyang, Y2025), "sanitation", logistics.name)
    assert (r.in_scope, r.nev, r.share, r.status, r.shortfall) == (3, 2, Fraction(2, 3), "fail", 1)


def test_public_service_rule_covers_its_six_categories_only(session, puyang, logistics):
    for category in ("城市物流配送车", "邮政快递车", "巡游出租车", "网约出租车", "水泥罐车"):
        buy(session, logistics, 1, category=category, power="纯电动")
    buy(session, logistics, 1, category="渣土车", power="柴油")
    buy(session, logistics, 1, category="重型货车", power="柴油")  # item 11, not this rule
    buy(session, logistics, 1, category="其他", power="汽油")
    r = find(evaluate(session, puyang, Y2025), "public-service", logistics.name)
    assert (r.in_scope, r.nev, r.status, r.shortfall) == (6, 5, "fail", 1)
    assert r.rule.level == "in_principle"


def test_official_car_counts_enforcement_cars_and_exactly_half_passes(session, puyang, police):
    buy(session, police, 1, category="公务用车", power="纯电动")
    buy(session, police, 1, category="公务用车", power="汽油")
    buy(session, police, 1, category="执法执勤用车", power="纯电动")
    buy(session, police, 1, category="执法执勤用车", power="汽油")
    results = evaluate(session, puyang, Y2025)
    official = find(results, "official-car", police.name)
    assert (official.in_scope, official.nev, official.share) == (4, 2, Fraction(1, 2))
    assert (official.status, official.shortfall) == ("pass", 0)
    enforcement = find(results, "enforcement-car", police.name)
    # 3/5 of 2 is 6/5: two NEVs were needed, one was bought.
    assert (enforcement.in_scope, enforcement.nev, enforcement.status, enforcement.shortfall) == (2, 1, "fail", 1)


def test_sixty_percent_of_five_needs_three(session, puyang, police):
    buy(session, police, 2, category="执法执勤用车", power="纯电动")
    buy(session, police, 3, category="执法执勤用车", power="汽油")
    r = find(evaluate(session, puyang, Y2025), "enforcement-car", police.name)
    assert (r.in_scope, r.nev, r.status, r.shortfall) == (5, 2, "fail", 1)
    buy(session, police, 1, category="执法执勤用车", power="纯电动", acquired_on=dt.date(2025, 6, 1))
    r = find(evaluate(session, puyang, Y2025), "enforcement-car", police.name)
    # Six cars now: 3/5 of 6 is 18/5, so four NEVs are needed and three were bought.
    assert (r.in_scope, r.nev, r.status, r.shortfall) == (6, 3, "fail", 1)


def test_three_of_five_is_exactly_sixty_percent_and_passes(session, puyang, police):
    buy(session, police, 3, category="执法执勤用车", power="纯电动")
    buy(session, police, 2, category="执法执勤用车", power="汽油")
    r = find(evaluate(session, puyang, Y2025), "enforcement-car", police.name)
    assert (r.share, r.status, r.shortfall) == (Fraction(3, 5), "pass", 0)


def test_one_petrol_car_fails_the_half_rule_by_one(session, puyang, police):
    buy(session, police, 1, category="公务用车", power="汽油")
    r = find(evaluate(session, puyang, Y2025), "official-car", police.name)
    assert (r.in_scope, r.nev, r.share, r.status, r.shortfall) == (1, 0, 0, "fail", 1)


def test_one_electric_car_passes(session, puyang, police):
    buy(session, police, 1, category="公务用车", power="纯电动")
    r = find(evaluate(session, puyang, Y2025), "official-car", police.name)
    assert (r.in_scope, r.nev, r.share, r.status, r.shortfall) == (1, 1, 1, "pass", 0)


def test_heavy_truck_rule_wants_china_six_of_combustion_trucks_only(session, puyang, logistics):
    buy(session, logistics, 1, category="重型货车", power="柴油", emission_standard="国六")
    buy(session, logistics, 1, category="重型货车", power="柴油", emission_standard="国五")
    buy(session, logistics, 1, category="重型货车", power="天然气", emission_standard=None)
    buy(session, logistics, 1, category="重型货车", power="纯电动", emission_standard="不适用")
    r = find(evaluate(session, puyang, Y2025), "heavy-truck-emission", logistics.name)
    assert (r.in_scope, r.nev, r.status, r.shortfall) == (3, 1, "fail", 2)


def test_agency_with_no_acquisitions_of_a_kind_bound_rule_gets_no_data(session, puyang, police):
    results = evaluate(session, puyang, Y2025)
    r = find(results, "official-car", police.name)
    assert (r.in_scope, r.share, r.status, r.shortfall) == (0, None, "no_data", 0)
    assert find(results, "official-car").status == "no_data"


def test_agencies_of_the_wrong_kind_stay_out_of_scope(session, puyang, police, bus_company, logistics):
    buy(session, bus_company, 2, category="公务用车", power="汽油")  # a state company's cars: not 党政机关
    buy(session, logistics, 1, category="执法执勤用车", power="汽油")
    buy(session, police, 1, category="公务用车", power="纯电动")
    results = evaluate(session, puyang, Y2025)
    assert "official-car" not in rule_ids(results, bus_company.name)
    assert "enforcement-car" not in rule_ids(results, logistics.name)
    city = find(results, "official-car")
    assert (city.in_scope, city.nev, city.status) == (1, 1, "pass")
    assert find(results, "enforcement-car").status == "no_data"


def test_open_rules_list_only_agencies_that_bought_in_scope_that_year(session, puyang, police, logistics):
    buy(session, police, 1, category="公交车", power="纯电动", acquired_on=dt.date(2025, 2, 3))
    buy(session, logistics, 1, category="城市物流配送车", power="纯电动")
    assert rule_ids(evaluate(session, puyang, Y2025), police.name) == {"official-car", "enforcement-car", "bus"}
    assert rule_ids(evaluate(session, puyang, Y2025), logistics.name) == {"public-service"}
    # In a month without buses the police still gets the bus rule of that year, with no data.
    may = evaluate(session, puyang, Period.month(2025, 5))
    assert find(may, "bus", police.name).status == "no_data"
    assert "bus" not in rule_ids(evaluate(session, puyang, Period.year(2026)), police.name)


def test_approved_catalogue_pending_and_rejected_exemptions(session, puyang, bus_company):
    approved, pending, rejected, catalogued = buy(session, bus_company, 4, category="公交车", power="柴油")
    buy(session, bus_company, 1, category="公交车", power="纯电动")
    factories.exemption_request(session, approved, "approved")
    factories.exemption_request(session, pending, "pending")
    factories.exemption_request(session, rejected, "rejected")
    factories.catalogue_match(session, catalogued)
    r = find(evaluate(session, puyang, Y2025), "bus", bus_company.name)
    # Five buses, two taken out (approved, catalogue); the pending one stays in scope, flagged.
    assert (r.in_scope, r.nev, r.exempt, r.pending) == (3, 1, 2, 1)
    assert (r.share, r.status, r.shortfall) == (Fraction(1, 3), "fail", 2)


def test_rejected_then_approved_request_is_an_exemption(session, puyang, bus_company):
    (bus,) = buy(session, bus_company, 1, category="公交车", power="柴油")
    factories.exemption_request(session, bus, "rejected")
    factories.exemption_request(session, bus, "approved")
    factories.exemption_request(session, bus, "pending")
    r = find(evaluate(session, puyang, Y2025), "bus", bus_company.name)
    assert (r.in_scope, r.exempt, r.pending, r.status) == (0, 1, 0, "no_data")


def test_exemptions_do_not_count_where_the_rule_allows_none(session, puyang, police):
    cars = buy(session, police, 2, category="公务用车", power="汽油")
    factories.exemption_request(session, cars[0], "approved")
    factories.exemption_request(session, cars[1], "pending")
    r = find(evaluate(session, puyang, Y2025), "official-car", police.name)
    assert (r.in_scope, r.exempt, r.pending, r.shortfall) == (2, 0, 0, 1)


def test_an_exemption_never_takes_an_nev_out_of_scope(session, puyang, bus_company):
    (bus,) = buy(session, bus_company, 1, category="公交车", power="纯电动")
    factories.exemption_request(session, bus, "approved")
    r = find(evaluate(session, puyang, Y2025), "bus", bus_company.name)
    assert (r.in_scope, r.nev, r.exempt, r.status) == (1, 1, 0, "pass")


def test_thirty_first_of_december_and_first_of_january_fall_in_their_own_years(session, puyang, bus_company):
    buy(session, bus_company, 1, category="公交车", power="柴油", acquired_on=dt.date(2024, 12, 31))
    buy(session, bus_company, 1, category="公交车", power="纯电动", acquired_on=dt.date(2025, 1, 1))
    r2024 = find(evaluate(session, puyang, Period.year(2024)), "bus")
    r2025 = find(evaluate(session, puyang, Y2025), "bus")
    assert (r2024.in_scope, r2024.nev) == (1, 0)
    assert (r2025.in_scope, r2025.nev) == (1, 1)
    december = find(evaluate(session, puyang, Period.month(2024, 12)), "bus")
    january = find(evaluate(session, puyang, Period.month(2025, 1)), "bus")
    assert (december.in_scope, january.in_scope) == (1, 1)


def test_rules_start_on_their_effective_date(session, puyang, bus_company):
    buy(session, bus_company, 1, category="公交车", power="柴油", acquired_on=dt.date(2024, 1, 9))
    buy(session, bus_company, 1, category="公交车", power="纯电动", acquired_on=dt.date(2024, 1, 10))
    r = find(evaluate(session, puyang, Period.year(2024)), "bus")
    assert (r.in_scope, r.nev, r.status) == (1, 1, "pass")
    assert evaluate(session, puyang, Period.year(2023)) == []


def test_a_window_of_whole_months_and_cut_months_counts_each_vehicle_once(session, puyang, bus_company):
    # Whole months come from the tallies, the days of a cut month from acquisitions.
    buy(session, bus_company, 1, category="公交车", power="柴油", acquired_on=dt.date(2024, 1, 9))
    buy(session, bus_company, 2, category="公交车", power="纯电动", acquired_on=dt.date(2024, 1, 10))
    buy(session, bus_company, 3, category="公交车", power="柴油", acquired_on=dt.date(2024, 2, 1))
    buy(session, bus_company, 1, category="公交车", power="纯电动", acquired_on=dt.date(2024, 12, 31))
    r = find(evaluate(session, puyang, Period.year(2024)), "bus", bus_company.name)
    assert (r.in_scope, r.nev, r.shortfall) == (6, 3, 3)
    series = factories.monthly_series(session, puyang, 2024)
    assert [(find(series[m], "bus").in_scope, find(series[m], "bus").nev) for m in ("2024-01", "2024-02", "2024-12")] == [
        (2, 2), (3, 0), (1, 1),
    ]  # fmt: skip
    mine = factories.monthly_series(session, puyang, 2024, agency_id=bus_company.id)
    assert find(mine["2024-01"], "bus", bus_company.name).in_scope == 2


def test_year_to_date_stops_at_its_day(session, puyang, bus_company):
    buy(session, bus_company, 1, category="公交车", power="纯电动", acquired_on=dt.date(2025, 3, 5))
    buy(session, bus_company, 1, category="公交车", power="柴油", acquired_on=dt.date(2025, 3, 6))
    r = find(evaluate(session, puyang, Period.year_to_date(dt.date(2025, 3, 5))), "bus")
    assert (r.in_scope, r.nev) == (1, 1)


def test_county_selects_its_agencies_and_their_aggregate(session, puyang, bus_company, logistics):
    buy(session, bus_company, 1, category="城市物流配送车", power="柴油")
    buy(session, logistics, 2, category="城市物流配送车", power="纯电动")
    results = evaluate(session, puyang, Y2025, county="华龙区")
    assert {r.agency for r in results} == {None, logistics.name}
    r = find(results, "public-service")
    assert (r.in_scope, r.nev, r.status) == (2, 2, "pass")


def test_one_agency_gets_its_own_results_only(session, puyang, police, logistics):
    buy(session, logistics, 1, category="城市物流配送车", power="柴油")
    results = evaluate(session, puyang, Y2025, agency_id=police.id)
    assert {r.agency for r in results} == {police.name}
    assert {r.rule.id for r in results} == {"official-car", "enforcement-car"}


def test_monthly_series_matches_each_month(session, puyang, police, bus_company):
    buy(session, police, 1, category="公务用车", power="纯电动", acquired_on=dt.date(2025, 1, 31))
    buy(session, police, 2, category="执法执勤用车", power="汽油", acquired_on=dt.date(2025, 2, 1))
    buy(session, bus_company, 1, category="公交车", power="柴油", acquired_on=dt.date(2025, 12, 31))
    series = factories.monthly_series(session, puyang, 2025)
    assert list(series) == [f"2025-{m:02d}" for m in range(1, 13)]
    for label, results in series.items():
        expected = [r for r in evaluate(session, puyang, Period.parse_month(label)) if r.agency is None]
        assert results == expected
    assert find(series["2025-02"], "official-car").shortfall == 1
    police_series = factories.monthly_series(session, puyang, 2025, agency_id=police.id)
    assert {r.rule.id for r in police_series["2025-12"]} == {"official-car", "enforcement-car"}
    assert find(police_series["2025-01"], "official-car", police.name).status == "pass"


def test_monthly_series_leaves_out_months_before_the_rules_start(session, puyang):
    series = factories.monthly_series(session, puyang, 2024)
    assert series["2024-01"] and all(r.status == "no_data" for r in series["2024-01"])
    assert factories.monthly_series(session, puyang, 2023)["2023-06"] == []


def test_example_pack_gives_different_results(session, puyang, bus_company):
    buy(session, bus_company, 4, category="公交车", power="纯电动")
    buy(session, bus_company, 1, category="公交车", power="柴油")
    example = get_pack("example-province")
    assert find(evaluate(session, puyang, Y2025), "bus").status == "fail"
    r = find(evaluate(session, example, Y2025), "public-fleet")
    assert (r.rule.qualified_id, r.threshold, r.status, r.shortfall) == ("example-province/public-fleet", Fraction(4, 5), "pass", 0)


def test_results_follow_the_active_pack(session, bus_company):
    buy(session, bus_company, 1, category="公交车", power="柴油")
    assert active_pack(session).id == "puyang-2024"
    set_active_pack(session, "example-province")
    pack = active_pack(session)
    assert pack.id == "example-province"
    assert {r.rule.qualified_id for r in evaluate(session, pack, Y2025)} == {"example-province/public-fleet"}


def test_configured_pack_is_the_default(app, session):
    app.config["RULE_PACK"] = "example-province"
    assert active_pack(session).id == "example-province"


def test_json_shape(session, puyang, police):
    buy(session, police, 1, category="公务用车", power="纯电动")
    buy(session, police, 2, category="公务用车", power="汽油")
    payload = compliance_json(puyang, Y2025, evaluate(session, puyang, Y2025, agency_id=police.id))
    assert list(payload) == ["pack", "period", "results"]
    assert (payload["pack"], payload["period"]) == ("puyang-2024", "2025")
    assert payload["results"][0] == {
        "rule": "puyang-2024/official-car",
        "agency": "濮阳市公安局",
        "in_scope": 3,
        "nev": 1,
        "exempt": 0,
        "pending": 0,
        "share": 0.3333,
        "threshold": 0.5,
        "status": "fail",
        "shortfall": 1,
    }
