"""The vehicle list and detail pages over HTTP, for each role."""

from __future__ import annotations

import datetime as dt

import pytest

from fleet.base.models import ImportBatch, UploadFile
from fleet.domain.acquisitions import record_acquisitions
from fleet.domain.vehicles import VehicleFilters, acquisition_detail, search_acquisitions
from tests import factories


@pytest.fixture
def city(session):
    police = factories.agency(session, "濮阳市公安局", county="市直")
    buses = factories.agency(session, "濮阳县公交公司", kind="国有企业", sector="公交", county="濮阳县")
    factories.user(session, "police", "agency", "濮阳市公安局")
    factories.user(session, "buses", "agency", "濮阳县公交公司")
    factories.user(session, "reviewer", "reviewer")
    cars = [
        factories.acquisition(session, police, vin=factories.vin(101), category="执法执勤用车", power="纯电动",
                              plate="豫JD12345", brand_model="比亚迪秦PLUS", acquired_on=dt.date(2025, 2, 1)),
        factories.acquisition(session, police, vin=factories.vin(102), category="公务用车", power="汽油",
                              plate="豫J12345", brand_model="大众帕萨特", acquired_on=dt.date(2024, 6, 1)),
        factories.acquisition(session, buses, vin=factories.vin(103), category="公交车", power="柴油",
                              brand_model="宇通ZK6125", acquired_on=dt.date(2025, 5, 1), county="濮阳县"),
    ]
    session.commit()
    return {"police": police, "buses": buses, "cars": cars}


def test_reviewer_sees_every_agencys_vehicles(client, city):
    factories.login(client, "reviewer")
    html = client.get("/vehicles/").get_data(as_text=True)
    assert all(car.vin in html for car in city["cars"])
    assert "共 3 辆" in html


def test_agency_user_sees_only_its_own_vehicles(client, city):
    factories.login(client, "police")
    html = client.get("/vehicles/").get_data(as_text=True)
    assert city["cars"][0].vin in html and city["cars"][1].vin in html
    assert city["cars"][2].vin not in html
    # An agency filter from the query string cannot widen the scope.
    html = client.get(f"/vehicles/?agency={city['buses'].id}").get_data(as_text=True)
    assert city["cars"][2].vin not in html


def test_another_agencys_vehicle_is_404(client, city):
    factories.login(client, "police")
    assert client.get(f"/vehicles/{city['cars'][2].id}").status_code == 404
    assert client.get(f"/vehicles/{city['cars'][0].id}").status_code == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=帕萨特", [102]),
        ("q=豫jd", [101]),
        ("category=公交车", [103]),
        ("power=纯电动", [101]),
        ("nev=no", [102, 103]),
        ("nev=yes", [101]),
        ("county=濮阳县", [103]),
        ("year=2024", [102]),
        ("acquired_from=2025-01-01&acquired_to=2025-03-01", [101]),
    ],
)
def test_filters(client, city, query, expected):
    factories.login(client, "reviewer")
    html = client.get(f"/vehicles/?{query}").get_data(as_text=True)
    shown = [serial for serial in (101, 102, 103) if factories.vin(serial) in html]
    assert shown == expected


def test_a_bad_filter_value_is_explained_not_a_500(client, city):
    factories.login(client, "reviewer")
    response = client.get("/vehicles/?year=abc&acquired_from=yesterday")
    # A 400 like every bad parameter, with the page explaining the field and listing the rest.
    assert response.status_code == 400
    assert all(car.vin in response.get_data(as_text=True) for car in city["cars"])


def test_pagination_keeps_filters(client, session, city):
    records = [
        {"agency_id": city["police"].id, "vin": factories.vin(1000 + i), "category": "公务用车", "power": "汽油",
         "acquisition_kind": "新增", "acquired_on": dt.date(2025, 1, 1), "county": "市直"}
        for i in range(60)
    ]
    record_acquisitions(session, records, batch_id=None, reported_on=dt.date(2025, 1, 2))
    session.commit()
    factories.login(client, "reviewer")
    html = client.get("/vehicles/?category=公务用车").get_data(as_text=True)
    assert "page=2" in html and "category=" in html
    second = client.get("/vehicles/?category=公务用车&page=2").get_data(as_text=True)
    assert second.count("/vehicles/") >= 11


def test_search_is_one_page_and_a_count(session, city):
    page = search_acquisitions(session, VehicleFilters(), page=1, per_page=2)
    assert page.total == 3 and len(page.items) == 2 and page.pages == 2
    assert page.window() == [1, 2]


def test_detail_shows_fields_batch_and_history(client, session, city):
    session.add(UploadFile(sha256="a" * 64, size=3, content=b"abc"))
    session.add(UploadFile(sha256="b" * 64, size=3, content=b"abd"))
    first = ImportBatch(file_name="二月.xlsx", sha256="a" * 64, agency_id=city["police"].id, status="committed")
    second = ImportBatch(file_name="三月.xlsx", sha256="b" * 64, agency_id=city["police"].id, status="committed")
    session.add_all([first, second])
    session.flush()
    car = city["cars"][1]
    base = {"agency_id": car.agency_id, "vin": car.vin, "category": "公务用车", "power": "汽油", "acquisition_kind": "新增",
            "acquired_on": dt.date(2024, 6, 1), "county": "市直", "brand_model": "大众帕萨特", "plate": "豫J12345",
            "emission_standard": "国六", "source_sheet": "Sheet1", "source_row": 2}
    record_acquisitions(session, [{**base, "price": 18.5}], batch_id=first.id, reported_on=dt.date(2024, 6, 5))
    record_acquisitions(session, [{**base, "price": 18.5, "plate": "豫J54321", "source_sheet": "车辆", "source_row": 7}],
                        batch_id=second.id, reported_on=dt.date(2024, 7, 5))
    session.commit()
    factories.login(client, "police")
    html = client.get(f"/vehicles/{car.id}").get_data(as_text=True)
    assert "三月.xlsx" in html and "车辆" in html and ">7<" in html
    assert "豫J12345" in html and "豫J54321" in html  # the change, from what to what
    assert "号牌号码" in html
    assert "购置价格（万元）" in html or "购置价格" in html
    # The price was written the same both times ("18.5" then Decimal 18.5000): not a change.
    latest = acquisition_detail(session, car.id).history[-1]
    assert [(c.field, c.old, c.new) for c in latest.changes] == [("plate", "豫J12345", "豫J54321")]
    assert latest.replaced_by_batch_id == second.id


def test_detail_in_english(client, city):
    factories.login(client, "reviewer")
    client.post("/language", data={"locale": "en"})
    html = client.get(f"/vehicles/{city['cars'][0].id}").get_data(as_text=True)
    assert "Battery electric" in html


def test_detail_flags_a_late_report(client, session, city):
    late = factories.acquisition(session, city["police"], acquired_on=dt.date(2025, 1, 1), reported_on=dt.date(2025, 3, 2))
    on_time = factories.acquisition(session, city["police"], acquired_on=dt.date(2025, 1, 1), reported_on=dt.date(2025, 1, 31))
    session.commit()
    factories.login(client, "police")
    assert "逾期 30 天报送" in client.get(f"/vehicles/{late.id}").get_data(as_text=True)
    assert "逾期" not in client.get(f"/vehicles/{on_time.id}").get_data(as_text=True)
