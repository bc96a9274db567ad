"""Figures kept per agency: every write that moves a tally raises the agency's version, and dashboards
summed from kept figures always equal a count from scratch and the engine's own evaluate()."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from fleet.base.models import Acquisition, Agency
from fleet.base.periods import Period
from fleet.domain.acquisitions import record_acquisitions
from fleet.domain.exemptions import add_catalogue_entry
from fleet.read.agency_figures import AgencyFigures
from fleet.read.dashboards import agency_dashboard, city_dashboard, rule_dashboard
from rules.engine import evaluate
from rules.packs import get_pack
from tests import factories

PACK = get_pack("puyang-2024")
TODAY = dt.date(2025, 11, 20)


def _versions(session) -> dict[str, int]:
    session.flush()
    return {name: version for name, version in session.execute(sa.select(Agency.name, Agency.tally_version))}


def _record(agency: Agency, **fields) -> dict:
    return {
        "agency_id": agency.id, "vin": factories.vin(), "plate": None, "category": "执法执勤用车", "power": "汽油",
        "acquisition_kind": "新增", "acquired_on": dt.date(2025, 4, 8), "brand_model": "大众帕萨特",
        "county": agency.county, "credit_code": None, "emission_standard": "国六", "price": None,
        "exemption_reason": None, "remark": None, "source_sheet": "车辆购置", "source_row": None, **fields,
    }  # fmt: skip


def test_every_write_that_moves_a_tally_raises_only_that_agencys_version(session):
    police = factories.agency(session, "濮阳市公安局")
    buses = factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交", county="华龙区")
    admin = factories.user(session, "admin", role="admin")
    bus = factories.acquisition(session, buses, category="公交车", power="柴油", brand_model="宇通 高空作业车")
    before = _versions(session)

    def moved() -> set[str]:
        nonlocal before
        now = _versions(session)
        changed = {name for name, version in now.items() if version != before.get(name)}
        before = now
        return changed

    # The importer's bulk path, several vehicles at once.
    record_acquisitions(session, [_record(police) for _ in range(3)], batch_id=None, reported_on=dt.date(2025, 4, 20))
    assert moved() == {"濮阳市公安局"}
    # A field no figure reads moves nothing.
    bus.plate = "豫J12345"
    assert moved() == set()
    # An edit through the ORM that moves the vehicle to another month.
    bus.acquired_on = dt.date(2025, 6, 1)
    assert moved() == {"濮阳市公共交通有限公司"}
    # An exemption request, then its decision.
    request = factories.exemption_request(session, bus)
    assert moved() == {"濮阳市公共交通有限公司"}
    request.status = "approved"
    assert moved() == {"濮阳市公共交通有限公司"}
    # A catalogue entry matching the bus.
    add_catalogue_entry(
        session, category="公交车", model_pattern="*高空作业车*", description="高空作业", reason="无同类新能源车型", user=admin
    )
    assert moved() == {"濮阳市公共交通有限公司"}
    # A deletion.
    session.execute(sa.delete(Acquisition).where(Acquisition.agency_id == police.id))
    assert moved() == {"濮阳市公安局"}


def test_kept_figures_count_again_only_the_agencies_that_changed(session):
    police = factories.agency(session, "濮阳市公安局")
    market = factories.agency(session, "濮阳市市场监督管理局", sector="市场监管")
    for agency in (police, market):
        factories.acquisition(session, agency, category="执法执勤用车", power="纯电动")
    session.commit()
    kept = AgencyFigures()
    first = kept.year(session, PACK, 2025, deadline_days=30)
    assert first[police.id].counts.month(3)["enforcement-car"] == (1, 1, 0, 0)

    record_acquisitions(session, [_record(police)], batch_id=None, reported_on=dt.date(2025, 6, 1))
    session.commit()
    second = kept.year(session, PACK, 2025, deadline_days=30)
    # The market bureau's figures are the very ones kept; the police's were counted again.
    assert second[market.id] is first[market.id]
    assert second[police.id] is not first[police.id]
    assert second[police.id].counts.month(4)["enforcement-car"] == (1, 0, 0, 0)
    # Reported 54 days after purchase: late by the 30-day deadline, not by a 60-day one.
    assert (second[police.id].reported, second[police.id].late) == (2, 1)
    assert kept.year(session, PACK, 2025, deadline_days=60)[police.id].late == 0
    # Asked for one agency, the figures are that agency's.
    assert set(kept.year(session, PACK, 2025, deadline_days=30, agency_ids=[market.id])) == {market.id}


def _city(session, kept: AgencyFigures, county: str | None = None) -> tuple:
    data = city_dashboard(session, PACK, 2025, today=TODAY, deadline_days=30, due_day=10, county=county, kept=kept)
    return (
        [r.as_dict() for o in data.rules for r in [o.total, *o.agencies]],
        {month: [r.as_dict() for r in results] for month, results in data.trend.items()},
        data.counts,
        data.late,
    )


def test_dashboards_from_kept_figures_equal_a_count_from_scratch_and_the_engine(session):
    police = factories.agency(session, "濮阳市公安局")
    market = factories.agency(session, "清丰县市场监督管理局", sector="市场监管", county="清丰县")
    buses = factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交", county="华龙区")
    admin = factories.user(session, "admin", role="admin")
    # Reported on 15 June: the police's purchases of January to May are late, the others on time.
    records = [
        _record(police, power=("纯电动", "汽油", "柴油")[i % 3], acquired_on=dt.date(2025, 1 + i % 5, 3)) for i in range(12)
    ] + [
        _record(market, power="纯电动", category="公务用车", acquired_on=dt.date(2025, 6, 1 + i)) for i in range(4)
    ] + [
        _record(buses, category="公交车", power=("纯电动", "柴油")[i % 2], brand_model="宇通 E12", acquired_on=dt.date(2025, 6, 1 + i))
        for i in range(6)
    ]  # fmt: skip
    record_acquisitions(session, records, batch_id=None, reported_on=dt.date(2025, 6, 15))
    session.commit()
    kept = AgencyFigures()
    assert _city(session, kept) == _city(session, AgencyFigures())
    assert _city(session, kept, "清丰县") == _city(session, AgencyFigures(), "清丰县")

    # Changes of every kind, then the kept figures against a fresh count and against evaluate().
    diesel_bus = session.scalars(sa.select(Acquisition).where(Acquisition.agency_id == buses.id, Acquisition.power == "柴油")).first()
    factories.exemption_request(session, diesel_bus, "approved")
    add_catalogue_entry(session, category="公交车", model_pattern="宇通 E12", description="山区线路", reason="无同类新能源车型", user=admin)
    record_acquisitions(session, [_record(market, power="汽油", acquired_on=dt.date(2025, 7, 7))], batch_id=None, reported_on=dt.date(2025, 9, 1))
    session.execute(sa.delete(Acquisition).where(Acquisition.agency_id == police.id, Acquisition.power == "柴油"))
    session.commit()
    results, trend, counts, late = _city(session, kept)
    assert (results, trend, counts, late) == _city(session, AgencyFigures())
    assert results == [r.as_dict() for r in evaluate(session, PACK, Period.year(2025))]
    # Worked by hand: the police keep 4 electric and 4 petrol enforcement cars (diesel deleted); the
    # market bureau 4 electric official cars and 1 petrol enforcement car; the buses 3 electric and 3
    # diesel, every diesel exempt (one by request, all by the catalogue's 宇通 E12). Official cars count
    # enforcement cars too: half of 13 needs 7. 60% of 8 needs 5, of 1 needs 1, of 9 needs 6.
    assert {(r["rule"].split("/")[1], r["agency"]): (r["in_scope"], r["nev"], r["exempt"], r["status"], r["shortfall"])
            for r in results} == {
        ("bus", None): (3, 3, 3, "pass", 0),
        ("bus", "濮阳市公共交通有限公司"): (3, 3, 3, "pass", 0),
        ("official-car", None): (13, 8, 0, "pass", 0),
        ("official-car", "濮阳市公安局"): (8, 4, 0, "pass", 0),
        ("official-car", "清丰县市场监督管理局"): (5, 4, 0, "pass", 0),
        ("enforcement-car", None): (9, 4, 0, "fail", 2),
        ("enforcement-car", "濮阳市公安局"): (8, 4, 0, "fail", 1),
        ("enforcement-car", "清丰县市场监督管理局"): (1, 0, 0, "fail", 1),
        ("sanitation", None): (0, 0, 0, "no_data", 0),
        ("public-service", None): (0, 0, 0, "no_data", 0),
        ("heavy-truck-emission", None): (0, 0, 0, "no_data", 0),
    }
    assert counts.by_county == {"市直": (8, 4), "清丰县": (5, 4), "华龙区": (6, 3)}
    assert [(c.agency, c.late) for c in late] == [("濮阳市公安局", 8), ("清丰县市场监督管理局", 1)]

    agency_page = agency_dashboard(session, PACK, market, 2025, today=TODAY, deadline_days=30, due_day=10, kept=kept)
    assert [r.as_dict() for r in agency_page.results] == [r.as_dict() for r in evaluate(session, PACK, Period.year(2025), agency_id=market.id)]
    bus_page = rule_dashboard(session, PACK, PACK.rule("bus"), 2025, deadline_days=30, kept=kept)
    assert (bus_page.overview.total.in_scope, bus_page.overview.total.exempt) == (3, 3)


def test_many_changed_agencies_are_counted_in_one_pass_over_every_agency(session, monkeypatch):
    """Beyond COUNT_ALL_BEYOND changed agencies the figures are counted for every agency at once
    rather than for a list of ids; the figures are the same either way."""
    agencies = [factories.agency(session, f"濮阳市第{i}执法局", sector="城市管理") for i in range(4)]
    record_acquisitions(
        session, [_record(a, power=("纯电动", "汽油")[i % 2]) for i, a in enumerate(agencies) for _ in range(i + 1)],
        batch_id=None, reported_on=dt.date(2025, 4, 20),
    )  # fmt: skip
    session.commit()
    kept = AgencyFigures()
    kept.year(session, PACK, 2025, deadline_days=30)
    record_acquisitions(session, [_record(a, power="纯电动") for a in agencies[:3]], batch_id=None, reported_on=dt.date(2025, 4, 20))
    session.commit()
    monkeypatch.setattr("fleet.read.agency_figures.COUNT_ALL_BEYOND", 2)  # three changed: beyond it
    figures = kept.year(session, PACK, 2025, deadline_days=30)
    enforcement = {a.name: figures[a.id].counts.year["enforcement-car"][:2] for a in agencies}
    # Agency i bought i + 1 cars (electric when i is even), the first three one electric more.
    assert enforcement == {"濮阳市第0执法局": (2, 2), "濮阳市第1执法局": (3, 1), "濮阳市第2执法局": (4, 4), "濮阳市第3执法局": (4, 0)}
    assert {a: f.counts.year for a, f in figures.items()} == {
        a: f.counts.year for a, f in AgencyFigures().year(session, PACK, 2025, deadline_days=30).items()
    }
