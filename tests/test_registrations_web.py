"""The registration record's pages (issue 16) over real HTTP round trips: loading an extract, deciding
owners, answering findings, an agency seeing only its own, and the two views on the dashboards."""

from __future__ import annotations

import io
import re

import sqlalchemy as sa
from tests.extract_factory import registration, write_extract
from tests.factories import login, user, vin

from fleet.base.models import Registration, RegistrationExtract, RegistrationOwner, RegistrationReview
from tests.test_registrations_reconcile import BUSES, CITY, POLICE, city  # noqa: F401 (the fixture)


def _users(session):
    user(session, "reviewer", "reviewer")
    user(session, "police", "agency", POLICE)
    user(session, "buses", "agency", BUSES)
    session.commit()


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_a_reviewer_loads_an_extract_on_the_page(client, session, tmp_path, city):
    _users(session)
    login(client, "reviewer")
    assert client.get("/registrations/").status_code == 200
    path = write_extract(tmp_path / "april.xlsx", [registration(vin(31), plate="J10031", owner_id="11410900MB12345676",
                                                                registered_on=__import__("datetime").date(2026, 4, 1))])
    response = client.post("/registrations/", data={"file": (io.BytesIO(path.read_bytes()), "april.xlsx")},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    assert "新载入 1 条" in _text(response)
    assert session.scalar(sa.select(sa.func.count()).select_from(RegistrationExtract)) == 2
    bad = write_extract(tmp_path / "bad.xlsx", [registration(vin(32), fuel="W")])
    response = client.post("/registrations/", data={"file": (io.BytesIO(bad.read_bytes()), "bad.xlsx")},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert "第 3 行" in _text(response) and "不是有效的燃料种类" in _text(response)
    assert session.scalar(sa.select(sa.func.count()).select_from(Registration).where(Registration.vin == vin(32))) == 0
    response = client.post("/registrations/", data={"file": (io.BytesIO(b"not a workbook"), "x.xlsx")},
                           content_type="multipart/form-data")
    assert response.status_code == 422


def test_a_reviewer_maps_an_owner_and_marks_another_not_ours(client, session, city):
    _users(session)
    login(client, "reviewer")
    page = _text(client.get("/registrations/owners"))
    assert "市城管局" in page and "张三" in page
    city_id = session.scalar(sa.select(sa.text("id from agencies where name = :n")), {"n": CITY})
    keys = dict(session.execute(sa.select(Registration.owner, Registration.owner_key)).all())
    assert client.post("/registrations/owners", data={"owner_key": keys["市城管局"], "agency_id": city_id}).status_code == 302
    assert client.post("/registrations/owners", data={"owner_key": keys["张三"], "not_ours": "1"}).status_code == 302
    decisions = {d.name: (d.agency_id, d.not_ours) for d in session.scalars(sa.select(RegistrationOwner))}
    assert decisions == {"市城管局": (city_id, False), "张三": (None, True)}
    assert "没有待确认的所有人" in _text(client.get("/registrations/owners"))


def test_findings_reviewers_answer_and_agencies_see_their_own(client, session, city):
    _users(session)
    login(client, "reviewer")
    page = _text(client.get("/registrations/findings?year=2026"))
    assert vin(2) in page and vin(3) in page and vin(6) in page
    response = client.post("/registrations/findings/review", data={
        "code": "usage_mismatch", "vin": vin(6), "status": "explained", "comment": "机场专线", "back": "/registrations/findings?year=2026",
    })
    assert response.status_code == 302 and response.headers["Location"].endswith("/registrations/findings?year=2026")
    review = session.scalars(sa.select(RegistrationReview)).one()
    assert (review.code, review.vin, review.status, review.comment) == ("usage_mismatch", vin(6), "explained", "机场专线")
    # An explanation needs a comment; an outside address is never followed.
    client.post("/registrations/findings/review", data={"code": "power_mismatch", "vin": vin(3), "status": "explained",
                                                         "back": "https://example.com/"})
    assert session.scalar(sa.select(sa.func.count()).select_from(RegistrationReview)) == 1
    client.post("/logout")

    login(client, "buses")
    page = _text(client.get("/registrations/findings?year=2026"))
    assert vin(2) in page and vin(6) in page and "机场专线" in page
    assert vin(3) not in page and vin(7) not in page and POLICE not in page
    # Asking for another agency's findings still shows the agency's own.
    police_id = session.scalar(sa.select(sa.text("id from agencies where name = :n")), {"n": POLICE})
    assert vin(3) not in _text(client.get(f"/registrations/findings?year=2026&agency={police_id}"))
    assert client.get("/registrations/").status_code == 403
    assert client.post("/registrations/findings/review", data={"code": "unreported", "vin": vin(2),
                                                                "status": "explained", "comment": "x"}).status_code == 403


def test_the_dashboards_show_both_views_and_the_agency_page_its_findings(client, session, city):
    _users(session)
    login(client, "reviewer")
    page = _text(client.get("/?year=2026"))
    # The bus rule: 1 electric bus reported of 2 in scope (50%); with the unreported diesel bus, 1 of 3.
    assert "上报 50.0% · 按登记信息 33.3%" in page
    assert "车管所登记信息核对" in page
    client.post("/logout")
    login(client, "police")
    page = _text(client.get(f"/agencies/{city['police']}?year=2026"))
    assert "车管所登记信息核对" in page and vin(3) in page and vin(7) in page
    assert vin(2) not in page  # the bus company's unreported bus is not the police's business
