"""Reconciliation (issue 16): each finding code exactly where it should be and nowhere else, the
reviewers' answers, the owners a reviewer maps, and the figures "with registrations" counted by the
rule engine. Extracts are real xlsx files loaded through the command."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from fleet.base.models import Registration
from fleet.base.periods import Period
from fleet.domain.registrations.figures import with_registrations
from fleet.domain.registrations.owners import decide_owner, owner_key, unmatched_owners
from fleet.domain.registrations.reconcile import FINDING_CODES, reconcile, review_finding
from rules.engine import evaluate
from rules.packs import get_pack
from tests.extract_factory import registration, write_extract
from tests.factories import acquisition, agency, vin

POLICE, POLICE_CODE = "濮阳市公安局", "11410900MB12345676"
BUSES = "濮阳市公共交通有限公司"
CITY = "濮阳市城市管理局"
YEAR = Period.year(2026)
AFTER_DUES = dt.date(2026, 6, 1)
RECONCILE_KEYS = ["period", "coverage", "findings", "counts"]
FINDING_KEYS = ["code", "agency", "vin", "plate", "registered_on", "acquired_on", "reported", "registered", "acquisition_id"]


@pytest.fixture
def city(session, runner, tmp_path):
    """January is clean; February and March hold one of each finding; the extract covers 01-05 to 03-31."""
    police = agency(session, POLICE, credit_code=POLICE_CODE)
    buses = agency(session, BUSES, kind="国有企业", sector="公交", county="华龙区")
    agency(session, CITY, sector="城市管理")
    day = dt.date
    # January: reported and registered alike.
    acquisition(session, police, vin=vin(1), plate="豫J10001", acquired_on=day(2026, 1, 3))
    # February and March.
    acquisition(session, police, vin=vin(3), power="纯电动", plate=None, acquired_on=day(2026, 2, 1), emission_standard=None)
    acquisition(session, police, vin=vin(4), plate="豫J10004", acquired_on=day(2026, 2, 2))
    acquisition(session, police, vin=vin(5), plate="豫J10055", acquired_on=day(2026, 2, 3))
    acquisition(session, buses, vin=vin(6), category="公交车", power="纯电动", plate="豫JD10006", acquired_on=day(2026, 2, 4),
                emission_standard=None)
    acquisition(session, police, vin=vin(7), plate="豫J10007", acquired_on=day(2026, 2, 10))  # never registered
    acquisition(session, police, vin=vin(8), plate="豫J10008", acquired_on=day(2026, 3, 15))  # too recent to tell
    acquisition(session, police, vin=vin(9), plate=None, acquired_on=day(2026, 2, 10))  # no plate yet
    acquisition(session, police, vin=vin(10), plate="豫J10010", acquired_on=day(2026, 5, 2))  # outside the extract
    acquisition(session, buses, vin=vin(11), category="公交车", power="柴油", plate="豫J10011", acquired_on=day(2026, 2, 20),
                exemption_reason="山区线路无充电条件")
    session.commit()
    rows = [
        registration(vin(1), plate="J10001", owner_id=POLICE_CODE, registered_on=day(2026, 1, 5)),
        registration(vin(2), plate="J10002", owner="濮阳市公共交通有限责任公司", usage="C", vehicle_type="K11", fuel="B",
                     registered_on=day(2026, 2, 20)),  # unreported diesel bus
        registration(vin(3), plate="J10003", owner_id=POLICE_CODE, fuel="A", registered_on=day(2026, 2, 5)),  # power
        registration(vin(4), plate="J10004", owner="濮阳市城市管理局", registered_on=day(2026, 2, 6)),  # owner
        registration(vin(5), plate="J10005", owner_id=POLICE_CODE, registered_on=day(2026, 2, 7)),  # plate
        registration(vin(6), plate="JD10006", plate_kind="51", owner=BUSES, usage="A", fuel="C", vehicle_type="K11",
                     registered_on=day(2026, 2, 8)),  # usage
        registration(vin(11), plate="J10011", owner="张三", usage="C", fuel="B", vehicle_type="K11",
                     registered_on=day(2026, 2, 21)),  # a private owner's: no finding until a reviewer decides
        registration(vin(12), plate="J10012", owner="市城管局", registered_on=day(2026, 3, 1)),  # unmatched owner
        registration(vin(13), plate="J10013", owner_id=POLICE_CODE, registered_on=day(2026, 3, 31)),  # unreported
    ]
    result = runner.invoke(args=["registrations", "load", str(write_extract(tmp_path / "extract.xlsx", rows)), "--json"])
    assert result.exit_code == 0, result.output
    return {"police": police.id, "buses": buses.id}


def found(result) -> set[tuple[str, str]]:
    return {(f.code, f.vin) for f in result.findings}


def test_each_code_exactly_where_it_should_be(session, city):
    result = reconcile(session, YEAR, today=AFTER_DUES, due_day=10)
    assert result.coverage == [(dt.date(2026, 1, 5), dt.date(2026, 3, 31))]
    assert found(result) == {
        ("unreported", vin(2)),
        ("unreported", vin(13)),
        ("power_mismatch", vin(3)),
        ("owner_mismatch", vin(4)),
        ("plate_mismatch", vin(5)),
        ("usage_mismatch", vin(6)),
        ("not_registered", vin(7)),
    }
    by_code = {f.code: f for f in result.findings}
    power = by_code["power_mismatch"]
    assert (power.agency, power.reported, power.registered, power.plate) == (POLICE, "纯电动", "汽油", "豫J10003")
    assert power.acquisition_id is not None and power.acquired_on == dt.date(2026, 2, 1)
    assert (by_code["owner_mismatch"].reported, by_code["owner_mismatch"].registered) == (POLICE, CITY)
    assert (by_code["plate_mismatch"].reported, by_code["plate_mismatch"].registered) == ("豫J10055", "豫J10005")
    assert (by_code["usage_mismatch"].reported, by_code["usage_mismatch"].registered) == ("公交车", "A 非营运")
    unreported = next(f for f in result.findings if f.vin == vin(2))
    assert (unreported.agency, unreported.registered, unreported.acquisition_id) == (BUSES, "柴油", None)
    assert result.counts == {**dict.fromkeys(FINDING_CODES, 0), "unreported": 2, "power_mismatch": 1, "owner_mismatch": 1,
                             "plate_mismatch": 1, "usage_mismatch": 1, "not_registered": 1}


def test_a_clean_month_and_an_uncovered_month_give_no_finding(session, city):
    january = reconcile(session, Period.month(2026, 1), today=AFTER_DUES, due_day=10)
    assert january.coverage == [(dt.date(2026, 1, 5), dt.date(2026, 1, 31))] and january.findings == []
    may = reconcile(session, Period.month(2026, 5), today=AFTER_DUES, due_day=10)
    assert may.coverage == [] and may.findings == []


def test_before_the_due_date_an_unreported_registration_is_pending(session, city):
    result = reconcile(session, YEAR, today=dt.date(2026, 3, 10), due_day=10)
    # February's reports are due on 10 March (not yet passed on that day); March's on 10 April.
    assert {(c, v) for c, v in found(result) if c in ("unreported", "pending_report")} == {
        ("pending_report", vin(2)), ("pending_report", vin(13)),
    }
    result = reconcile(session, YEAR, today=dt.date(2026, 3, 11), due_day=10)
    assert {(c, v) for c, v in found(result) if c in ("unreported", "pending_report")} == {
        ("unreported", vin(2)), ("pending_report", vin(13)),
    }


def test_owners_a_reviewer_decides_are_remembered(session, city, runner, tmp_path):
    assert [(o.name, o.registrations) for o in unmatched_owners(session)] == [("市城管局", 1), ("张三", 1)]
    city_id = session.scalar(sa.select(sa.text("id from agencies where name = :n")), {"n": CITY})
    decide_owner(session, owner_key("市城管局"), agency_id=city_id, user_id=None)
    decide_owner(session, owner_key("张三"), agency_id=None, user_id=None)
    session.commit()
    assert unmatched_owners(session) == []
    result = reconcile(session, YEAR, today=AFTER_DUES, due_day=10)
    # The city's registration is now its own and unreported; the bus reported by the bus company is
    # registered to someone the city does not oversee.
    assert ("unreported", vin(12)) in found(result)
    owner = next(f for f in result.findings if f.vin == vin(11))
    assert (owner.code, owner.agency, owner.registered) == ("owner_mismatch", BUSES, "not_ours")
    # A later extract with the same owners is matched without asking again.
    later = [registration(vin(14), plate="J10014", owner="市城管局", registered_on=dt.date(2026, 4, 2)),
             registration(vin(15), plate="J10015", owner="张三", registered_on=dt.date(2026, 4, 3))]
    payload = json.loads(runner.invoke(args=["registrations", "load", str(write_extract(tmp_path / "april.xlsx", later)), "--json"]).output)
    assert payload["owners"] == {"matched": 1, "unmatched": 0}
    assert session.scalar(sa.select(Registration.agency_id).where(Registration.vin == vin(14))) == city_id


def test_an_agency_sees_its_own_findings_and_reviews_are_kept(session, city):
    buses = reconcile(session, YEAR, today=AFTER_DUES, due_day=10, agency_id=city["buses"])
    assert found(buses) == {("unreported", vin(2)), ("usage_mismatch", vin(6))}
    review_finding(session, "usage_mismatch", vin(6), status="explained", comment="机场专线，登记为非营运", user_id=None)
    review_finding(session, "unreported", vin(2), status="correction_requested", comment=None, user_id=None)
    session.commit()
    reviewed = {f.code: (f.review, f.comment) for f in reconcile(session, YEAR, today=AFTER_DUES, due_day=10, agency_id=city["buses"]).findings}
    assert reviewed == {"usage_mismatch": ("explained", "机场专线，登记为非营运"), "unreported": ("correction_requested", None)}


def _result(results, rule, agency):
    return next(r for r in results if r.rule.id == rule and r.agency == agency)


def test_with_registrations_counts_unreported_and_registered_power_through_the_engine(session, city):
    pack = get_pack("puyang-2024")
    reported = evaluate(session, pack, YEAR)
    view = with_registrations(session, pack, YEAR, reconcile(session, YEAR, today=AFTER_DUES, due_day=10).findings)
    before, after = _result(reported, "official-car", POLICE), _result(view, "official-car", POLICE)
    # The reported NEV (vin 3) is registered as petrol; the unreported official car (vin 13) joins the scope.
    assert (after.in_scope, after.nev) == (before.in_scope + 1, before.nev - 1)
    before, after = _result(reported, "bus", BUSES), _result(view, "bus", BUSES)
    assert (after.in_scope, after.nev) == (before.in_scope + 1, before.nev)  # the unreported diesel bus
    city_before, city_after = _result(reported, "bus", None), _result(view, "bus", None)
    assert city_after.in_scope == city_before.in_scope + 1
    # An explained finding leaves the report as it is.
    review_finding(session, "power_mismatch", vin(3), status="explained", comment="登记信息有误，已申请更正", user_id=None)
    session.commit()
    official = _result(reported, "official-car", POLICE)
    again = _result(with_registrations(session, pack, YEAR, reconcile(session, YEAR, today=AFTER_DUES, due_day=10).findings), "official-car", POLICE)
    assert (again.in_scope, again.nev) == (official.in_scope + 1, official.nev)


def test_reconcile_command_json_contract(runner, city):
    result = runner.invoke(args=["reconcile", "--year", "2026", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert list(payload) == RECONCILE_KEYS
    assert payload["period"] == {"first": "2026-01-01", "last": "2026-12-31"}
    assert payload["coverage"] == [{"first": "2026-01-05", "last": "2026-03-31"}]
    assert all(list(f)[: len(FINDING_KEYS)] == FINDING_KEYS for f in payload["findings"])
    power = next(f for f in payload["findings"] if f["code"] == "power_mismatch")
    assert power == {
        "code": "power_mismatch", "agency": POLICE, "vin": vin(3), "plate": "豫J10003", "registered_on": "2026-02-05",
        "acquired_on": "2026-02-01", "reported": "纯电动", "registered": "汽油", "acquisition_id": power["acquisition_id"],
        "review": None,
    }
    assert isinstance(power["acquisition_id"], int)
    assert payload["counts"]["unreported"] == 2 and set(payload["counts"]) == set(FINDING_CODES)

    january = json.loads(runner.invoke(args=["reconcile", "--month", "2026-01", "--json"]).output)
    assert january["findings"] == [] and january["coverage"] == [{"first": "2026-01-05", "last": "2026-01-31"}]
    buses = json.loads(runner.invoke(args=["reconcile", "--year", "2026", "--agency", BUSES, "--json"]).output)
    assert {f["agency"] for f in buses["findings"]} == {BUSES}
    refused = runner.invoke(args=["reconcile", "--year", "2026", "--month", "2026-01", "--json"])
    assert refused.exit_code == 1 and "error" in json.loads(refused.output)
    unknown = runner.invoke(args=["reconcile", "--agency", "不存在的单位", "--json"])
    assert unknown.exit_code == 1


def test_compliance_with_registrations_adds_the_second_view(runner, city):
    plain = json.loads(runner.invoke(args=["compliance", "--year", "2026", "--json"]).output)
    result = runner.invoke(args=["compliance", "--year", "2026", "--with-registrations", "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert list(view) == [*plain, "view"] and view["view"] == "registrations"
    assert "view" not in plain
    official = next(r for r in view["results"] if r["rule"] == "puyang-2024/official-car" and r["agency"] == POLICE)
    reported = next(r for r in plain["results"] if r["rule"] == "puyang-2024/official-car" and r["agency"] == POLICE)
    assert (official["in_scope"], official["nev"]) == (reported["in_scope"] + 1, reported["nev"] - 1)
    text = runner.invoke(args=["compliance", "--year", "2026", "--with-registrations"])
    assert text.exit_code == 0 and "按登记信息" in text.output
