"""Dashboard figures against hand-counted data in a real database."""

from __future__ import annotations

import dataclasses
import datetime as dt
from fractions import Fraction

import pytest
import sqlalchemy as sa

from fleet.base import audit
from fleet.base.models import Acquisition
from fleet.base.periods import Period
from fleet.domain import reporting
from fleet.read.dashboards import (
    FigureCache,
    agency_dashboard,
    available_years,
    city_dashboard,
    data_version,
    pending_exemptions,
    rule_dashboard,
    still_needed,
)
from rules.engine import evaluate
from rules.packs import get_pack
from rules.results import make_result
from tests import factories

TODAY = dt.date(2025, 11, 20)
PACK = get_pack("puyang-2024")


@pytest.fixture
def city(session):
    """Three agencies and their 2025 purchases, counted by hand in the tests below.

    Police (市直, 党政机关): 5 enforcement cars, 2 NEV (纯电动, 燃料电池) → 40% of 60%: fails, short by 1;
    plus 1 petrol official car → official-car 2 of 6. Bus company (华龙区): 3 electric buses, 1 fuel-cell
    bus, 1 diesel bus with a pending exemption → 4 of 5. Qingfeng market supervision (清丰县): 2 electric
    enforcement cars → passes. One 2024 police car stays out of 2025.
    """
    police = factories.agency(session, "濮阳市公安局")
    buses = factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交", county="华龙区")
    market = factories.agency(session, "清丰县市场监督管理局", sector="市场监管", county="清丰县")
    on = dt.date(2025, 3, 5)
    for power in ("纯电动", "燃料电池", "汽油", "汽油", "柴油"):
        factories.acquisition(session, police, category="执法执勤用车", power=power, acquired_on=on)
    # Reported 45 days after purchase: late (the deadline is 30 days).
    factories.acquisition(
        session, police, category="公务用车", power="汽油", acquired_on=on, reported_on=on + dt.timedelta(days=45)
    )
    factories.acquisition(session, police, category="公务用车", power="汽油", acquired_on=dt.date(2024, 6, 1),
                          reported_on=dt.date(2024, 6, 10))
    for power in ("纯电动", "纯电动", "纯电动", "燃料电池"):
        factories.acquisition(session, buses, category="公交车", power=power, acquired_on=dt.date(2025, 5, 10),
                              reported_on=dt.date(2025, 5, 12))
    diesel_bus = factories.acquisition(session, buses, category="公交车", power="柴油", acquired_on=dt.date(2025, 5, 10),
                                       reported_on=dt.date(2025, 5, 12), exemption_reason="山区线路续航不足")
    factories.exemption_request(session, diesel_bus)
    for _ in range(2):
        factories.acquisition(session, market, category="执法执勤用车", power="纯电动", acquired_on=dt.date(2025, 11, 3),
                              reported_on=dt.date(2025, 11, 10))
    # The monthly reports of October 2025 (due 2025-11-10): a zero report from the market bureau on
    # time, the police's zero report returned; the bus company's missing.
    for agency in (police, buses, market):
        agency.created_at = dt.datetime(2024, 1, 1)
    reviewer = factories.user(session, "reviewer", role="reviewer")
    october = Period.month(2025, 10)
    reporting.submit(session, market, october, user=reviewer, nil=True, today=dt.date(2025, 11, 5), due_day=10)
    reporting.submit(session, police, october, user=reviewer, nil=True, today=dt.date(2025, 11, 5), due_day=10)
    reporting.return_report(session, police, october, user=reviewer, comment="请核实", today=dt.date(2025, 11, 6), due_day=10)
    session.commit()
    return {"police": police, "buses": buses, "market": market}


def test_acquisitions_are_counted_by_category_power_and_county(session, city):
    counts = city_dashboard(session, PACK, 2025, today=TODAY, deadline_days=30, due_day=10).counts
    assert counts.by_category_power == {
        ("执法执勤用车", "纯电动"): 3,
        ("执法执勤用车", "燃料电池"): 1,
        ("执法执勤用车", "汽油"): 2,
        ("执法执勤用车", "柴油"): 1,
        ("公务用车", "汽油"): 1,
        ("公交车", "纯电动"): 3,
        ("公交车", "燃料电池"): 1,
        ("公交车", "柴油"): 1,
    }
    assert counts.by_county == {"市直": (6, 2), "华龙区": (5, 4), "清丰县": (2, 2)}
    assert (counts.total, counts.nev, counts.share) == (13, 8, 8 / 13)


def test_county_filter_counts_the_agencies_of_that_county(session, city):
    def counts(year: int, **selected):
        return city_dashboard(session, PACK, year, today=TODAY, deadline_days=30, due_day=10, **selected).counts

    assert counts(2025, county="华龙区").by_county == {"华龙区": (5, 4)}
    assert counts(2024).total == 1
    market = agency_dashboard(session, PACK, city["market"], 2025, today=TODAY, deadline_days=30, due_day=10)
    assert market.counts.by_county == {"清丰县": (2, 2)}
    assert counts(2023).share is None


def test_pending_exemptions_are_counted_where_the_vehicle_belongs(session, city):
    assert pending_exemptions(session) == 1
    assert pending_exemptions(session, county="华龙区") == 1
    assert pending_exemptions(session, agency_id=city["police"].id) == 0


def test_years_offered_run_from_the_first_acquisition_to_this_year(session, city):
    assert available_years(session, TODAY) == [2025, 2024]
    assert available_years(session, dt.date(2027, 1, 1)) == [2027, 2026, 2025, 2024]


def test_years_offered_without_data_are_this_year(session):
    assert available_years(session, TODAY) == [2025]


def test_city_dashboard_ranks_each_rule_over_its_agencies(session, city):
    data = city_dashboard(session, PACK, 2025, today=TODAY, deadline_days=30, due_day=10)
    rules = {o.rule.id: o for o in data.rules}
    enforcement = rules["enforcement-car"]
    assert (enforcement.total.in_scope, enforcement.total.nev) == (7, 4)
    assert {r.agency: (r.nev, r.in_scope, r.status, r.shortfall) for r in enforcement.agencies} == {
        "濮阳市公安局": (2, 5, "fail", 1),
        "清丰县市场监督管理局": (2, 2, "pass", 0),
    }
    assert (enforcement.passing, enforcement.assessed) == (1, 2)
    bus = rules["bus"]
    assert (bus.total.in_scope, bus.total.nev, bus.total.pending, bus.total.shortfall) == (5, 4, 1, 1)
    assert (bus.passing, bus.assessed) == (0, 1)
    assert data.counts.total == 13 and data.pending_exemptions == 1


def test_city_dashboard_trend_has_every_month_of_the_year(session, city):
    data = city_dashboard(session, PACK, 2025, today=TODAY, deadline_days=30, due_day=10)
    assert list(data.trend) == [f"2025-{m:02d}" for m in range(1, 13)]
    march = {r.rule.id: r for r in data.trend["2025-03"]}
    assert (march["enforcement-car"].nev, march["enforcement-car"].in_scope) == (2, 5)
    assert march["bus"].status == "no_data"


def test_city_dashboard_counts_late_reports_and_the_last_months_reporting(session, city):
    data = city_dashboard(session, PACK, 2025, today=TODAY, deadline_days=30, due_day=10)
    assert [(c.agency, c.late) for c in data.late] == [("濮阳市公安局", 1)]
    assert data.late_total == 1
    # On 2025-11-20 October's reports were due on 2025-11-10: the market bureau's zero report is in,
    # the police's was returned, the bus company's is missing.
    assert (data.month.label, data.due) == ("2025-10", dt.date(2025, 11, 10))
    assert [(s.agency, s.state) for s in data.not_reported] == [("濮阳市公共交通有限公司", "missing"), ("濮阳市公安局", "returned")]
    assert data.reporting_summary == {"open": 0, "submitted": 0, "nil": 1, "returned": 1, "accepted": 0, "missing": 1}
    assert city_dashboard(session, PACK, 2025, today=TODAY, deadline_days=60, due_day=10).late_total == 0


def test_accepted_only_counts_the_accepted_months_alone(session, city):
    reviewer = session.scalar(sa.select(factories.User).where(factories.User.username == "reviewer"))
    may = Period.month(2025, 5)
    reporting.submit(session, city["buses"], may, user=reviewer, today=TODAY, due_day=10)
    reporting.accept(session, city["buses"], may, user=reviewer, today=TODAY, due_day=10)
    session.commit()
    data = city_dashboard(session, PACK, 2025, today=TODAY, deadline_days=30, due_day=10, accepted_only=True)
    totals = {o.rule.id: o.total for o in data.rules}
    assert (totals["bus"].in_scope, totals["bus"].nev) == (5, 4)
    assert totals["enforcement-car"].in_scope == 0  # the police's March is not accepted
    engine = {(r.rule.id, r.agency): r for r in evaluate(session, PACK, Period.year(2025), accepted_only=True)}
    assert engine[("bus", None)].in_scope == 5 and engine[("enforcement-car", None)].in_scope == 0
    assert city_dashboard(session, PACK, 2025, today=TODAY, deadline_days=30, due_day=10).rules[0].total.in_scope > 0


def test_city_dashboard_for_a_county_keeps_to_its_agencies(session, city):
    data = city_dashboard(session, PACK, 2025, today=TODAY, deadline_days=30, due_day=10, county="清丰县")
    rules = {o.rule.id: o for o in data.rules}
    assert [r.agency for r in rules["enforcement-car"].agencies] == ["清丰县市场监督管理局"]
    assert (rules["enforcement-car"].total.in_scope, rules["enforcement-car"].total.nev) == (2, 2)
    assert data.counts.by_county == {"清丰县": (2, 2)}
    assert data.not_reported == [] and data.pending_exemptions == 0


def test_agency_dashboard_lists_the_vehicles_behind_each_rule(session, city):
    data = agency_dashboard(session, PACK, city["police"], 2025, today=TODAY, deadline_days=30, due_day=10)
    results = {r.rule.id: r for r in data.results}
    assert set(results) == {"official-car", "enforcement-car"}
    assert (results["official-car"].nev, results["official-car"].in_scope) == (2, 6)
    enforcement = data.vehicles["puyang-2024/enforcement-car"]
    assert sorted(line.mark for line in enforcement) == ["nev", "nev", "not_nev", "not_nev", "not_nev"]
    assert len(data.vehicles["puyang-2024/official-car"]) == 6
    assert [(v.category, v.days_late) for v in data.late] == [("公务用车", 15)]
    assert [(s.month.label, s.state) for s in data.reporting[:2]] == [("2025-10", "returned"), ("2025-09", "missing")]
    assert data.counts.total == 6 and data.pending_exemptions == 0


def test_agency_page_shows_its_months_states(session, city):
    data = agency_dashboard(session, PACK, city["market"], 2025, today=TODAY, deadline_days=30, due_day=10)
    assert [(s.month.label, s.state, s.late) for s in data.reporting[:2]] == [("2025-10", "nil", False), ("2025-09", "missing", False)]
    assert [r.status for r in data.results] == ["pass", "pass"]


def test_rule_dashboard_is_one_rule_over_every_agency(session, city):
    data = rule_dashboard(session, PACK, PACK.rule("bus"), 2025, deadline_days=30)
    assert data.overview.rule.id == "bus"
    assert [(r.agency, r.nev, r.in_scope) for r in data.overview.agencies] == [("濮阳市公共交通有限公司", 4, 5)]
    assert list(data.trend) == [f"2025-{m:02d}" for m in range(1, 13)]
    assert (data.trend["2025-05"].nev, data.trend["2025-05"].in_scope) == (4, 5)


def test_rule_dashboard_before_the_rule_took_effect_has_no_results(session, city):
    assert rule_dashboard(session, PACK, PACK.rule("bus"), 2023, deadline_days=30).overview is None


def _result(rule_id: str, nev: int, in_scope: int):
    return make_result(PACK.rule(rule_id), 1, "某单位", in_scope, nev, 0, 0)


def test_two_of_five_enforcement_cars_need_three_more_nevs_bought():
    # Short by one, yet one more NEV makes 3 of 6 (50%) and two make 4 of 7 (57%): three are needed.
    result = _result("enforcement-car", nev=2, in_scope=5)
    assert result.shortfall == 1
    assert still_needed(result) == 3


def test_one_of_four_official_cars_needs_two_more_nevs_bought():
    assert still_needed(_result("official-car", nev=1, in_scope=4)) == 2  # 3 of 6 is exactly 50%


def test_a_passing_or_empty_result_needs_nothing():
    assert still_needed(_result("official-car", nev=2, in_scope=4)) == 0
    assert still_needed(_result("official-car", nev=0, in_scope=0)) == 0


def test_under_a_hundred_percent_rule_buying_cannot_outweigh_a_diesel_bus():
    assert still_needed(_result("bus", nev=4, in_scope=5)) is None


def test_still_needed_is_exact_at_awkward_thresholds():
    rule = dataclasses.replace(PACK.rule("official-car"), threshold=Fraction(2, 3))
    result = make_result(rule, 1, "某单位", 3, 1, 0, 0)
    # 1 of 3 → buying 3 gives 4 of 6 = 2/3 exactly, which passes; 2 would give 3 of 5 = 60%.
    assert still_needed(result) == 3


def test_figure_cache_counts_once_per_key_and_forgets_the_oldest():
    cache = FigureCache(size=2)
    calls: list[str] = []

    def compute(name: str):
        return lambda: calls.append(name) or name.upper()

    assert cache.get("a", compute("a")) == "A"
    assert cache.get("a", compute("a")) == "A"
    cache.get("b", compute("b"))
    cache.get("c", compute("c"))  # "a" is the oldest and goes
    cache.get("b", compute("b"))
    cache.get("a", compute("a"))
    assert calls == ["a", "b", "c", "a"]


def test_data_version_changes_with_every_kind_of_change(session, city):
    versions = [data_version(session, PACK)]

    def changed() -> bool:
        session.flush()
        versions.append(data_version(session, PACK))
        return versions[-1] != versions[-2]

    assert not changed()
    car = factories.acquisition(session, city["market"], category="执法执勤用车", power="汽油", acquired_on=dt.date(2025, 6, 1))
    assert changed()  # a new acquisition
    factories.acquisition(session, city["market"], vin=car.vin, category="执法执勤用车", power="纯电动",
                          acquired_on=dt.date(2025, 6, 1))
    assert changed()  # the same vehicle reported again with another power type
    request = factories.exemption_request(session, car)
    assert changed()
    request.status = "approved"
    assert changed()  # a decision, even one written without the audit log
    factories.catalogue_match(session, car)
    assert changed()
    audit.record(session, "agency.update", target_type="agency", target_id=city["market"].id)
    assert changed()
    newest = factories.acquisition(session, city["market"], category="执法执勤用车", power="汽油")
    assert changed()
    # The newest vehicle deleted and another added: SQLite gives it the same id again.
    session.execute(sa.delete(Acquisition).where(Acquisition.id == newest.id))
    again = factories.acquisition(session, city["market"], category="执法执勤用车", power="纯电动")
    assert again.id == newest.id or session.bind.dialect.name != "sqlite"
    assert changed()
