"""The JSON API over HTTP: token and session auth, scopes, paging limits, errors as JSON, OpenAPI.

Every /api response in this file is checked against the OpenAPI document the app serves (status,
content type and body schema), so the document describes what the API really answers."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import PathNotFound
from openpyxl import Workbook
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from fleet.base.models import User
from fleet.domain.users import issue_api_token
from imports.headers import COLUMNS
from tests import factories

TEMPLATE_KEYS = {"id", "agency", "credit_code", "vin", "plate", "category", "power", "acquisition", "acquired_on",
                 "brand_model", "emission_standard", "county", "price", "exemption_reason", "remark"}


class DocumentedClient(FlaskClient):
    """A test client that holds every API answer against the served OpenAPI document."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        path = response.request.path
        if path.startswith("/api/") and path != "/api/v1/openapi.json":
            document = super().open("/api/v1/openapi.json").get_json()
            try:
                # The request as the document sees it (method, path, query), without the body the
                # view has already read.
                asked = Request(EnvironBuilder(method=response.request.method, path=path,
                                               query_string=response.request.query_string.decode()).get_environ())
                OpenAPI.from_dict(document).validate_response(WerkzeugOpenAPIRequest(asked), WerkzeugOpenAPIResponse(response))
            except PathNotFound:
                # An unknown path: its JSON 404 is tested on its own; every app route being described
                # is test_openapi_describes_every_api_route's.
                assert response.status_code == 404, path
        return response


@pytest.fixture
def client(app):
    app.test_client_class = DocumentedClient
    return app.test_client()


@pytest.fixture
def api(session):
    police = factories.agency(session, "濮阳市公安局")
    buses = factories.agency(session, "濮阳市公交公司", kind="国有企业", sector="公交")
    factories.user(session, "police", "agency", police.name)
    reviewer = factories.user(session, "reviewer", "reviewer")
    factories.acquisition(session, police, vin=factories.vin(201), category="执法执勤用车", power="纯电动",
                          acquired_on=dt.date(2025, 4, 1), price=16.8)
    factories.acquisition(session, police, vin=factories.vin(202), category="公务用车", power="汽油",
                          acquired_on=dt.date(2024, 4, 1))
    factories.acquisition(session, buses, vin=factories.vin(203), category="公交车", power="柴油",
                          acquired_on=dt.date(2025, 6, 1))
    token = issue_api_token(session, reviewer, actor_id=reviewer.id)
    session.commit()
    return {"token": token, "police": police, "buses": buses}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_lists_every_acquisition_with_the_spec_keys(client, api):
    body = client.get("/api/v1/acquisitions", headers=bearer(api["token"])).get_json()
    assert body["total"] == 3
    assert all(set(item) == TEMPLATE_KEYS for item in body["items"])
    first = next(i for i in body["items"] if i["vin"] == factories.vin(201))
    assert first["agency"] == "濮阳市公安局" and first["acquired_on"] == "2025-04-01" and first["price"] == 16.8
    assert first["acquisition"] == "新增"


def test_agency_session_sees_only_its_agency(client, api):
    factories.login(client, "police")
    body = client.get("/api/v1/acquisitions").get_json()
    assert {i["vin"] for i in body["items"]} == {factories.vin(201), factories.vin(202)}
    assert client.get("/api/v1/acquisitions?agency=濮阳市公交公司").get_json()["total"] == 0


@pytest.mark.parametrize(
    ("query", "vins"),
    [("year=2025", [201, 203]), ("category=公交", [203]), ("power=BEV", [201]), (f"vin={factories.vin(202)}", [202]),
     ("agency=濮阳市公交公司", [203]), ("county=市直", [201, 202, 203])],
)
def test_filters_accept_canonical_values_and_synonyms(client, api, query, vins):
    body = client.get(f"/api/v1/acquisitions?{query}", headers=bearer(api["token"])).get_json()
    assert sorted(i["vin"] for i in body["items"]) == sorted(factories.vin(v) for v in vins)


def test_paging(client, api):
    body = client.get("/api/v1/acquisitions?per_page=2&page=2", headers=bearer(api["token"])).get_json()
    assert body["total"] == 3 and len(body["items"]) == 1


@pytest.mark.parametrize("query", ["per_page=1001", "per_page=0", "page=abc", "year=twenty", "category=飞机"])
def test_bad_parameters_are_json_400(client, api, query):
    response = client.get(f"/api/v1/acquisitions?{query}", headers=bearer(api["token"]))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_parameter"


def test_a_too_large_page_size_says_the_parameter_the_limit_and_the_value(client, api):
    response = client.get("/api/v1/acquisitions?per_page=5000", headers=bearer(api["token"]))
    error = response.get_json()["error"]
    assert (response.status_code, error["code"]) == (400, "bad_parameter")
    assert re.search(r"per_page\D+1000\D+5000", error["message"]), error["message"]


def test_per_page_of_1000_is_allowed_and_used(client, api):
    body = client.get("/api/v1/acquisitions?per_page=1000", headers=bearer(api["token"])).get_json()
    assert (body["per_page"], body["total"], len(body["items"])) == (1000, 3, 3)


def test_without_credentials_or_with_a_wrong_token_401_json(client, api):
    for headers in ({}, bearer("not-a-token")):
        response = client.get("/api/v1/acquisitions", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_deactivated_users_token_stops_working(client, session, api):
    session.scalar(sa.select(User).where(User.username == "reviewer")).active = False
    session.commit()
    assert client.get("/api/v1/acquisitions", headers=bearer(api["token"])).status_code == 401


def test_bearer_token_does_not_open_web_pages(client, api):
    assert client.get("/vehicles/", headers=bearer(api["token"])).status_code == 302


def test_unknown_api_paths_are_json_404(client, api):
    response = client.get("/api/v1/nothing", headers=bearer(api["token"]))
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_compliance_has_the_command_lines_shape(client, api):
    body = client.get("/api/v1/compliance?year=2025", headers=bearer(api["token"])).get_json()
    assert set(body) == {"pack", "period", "results"}
    assert body["period"] == "2025"
    assert any(r["agency"] is None for r in body["results"])  # the city-wide aggregate
    month = client.get("/api/v1/compliance?year=2025&month=4", headers=bearer(api["token"])).get_json()
    assert month["period"] == "2025-04"


def test_compliance_needs_a_year(client, api):
    response = client.get("/api/v1/compliance", headers=bearer(api["token"]))
    assert response.status_code == 400 and "year" in response.get_json()["error"]["message"]
    assert client.get("/api/v1/compliance?year=2025&month=13", headers=bearer(api["token"])).status_code == 400


def test_agency_compliance_is_its_own_only(client, api):
    factories.login(client, "police")
    body = client.get("/api/v1/compliance?year=2025").get_json()
    assert body["results"] and {r["agency"] for r in body["results"]} == {"濮阳市公安局"}
    other = client.get("/api/v1/compliance?year=2025&agency=濮阳市公交公司")
    assert other.status_code == 404
    assert client.get("/api/v1/compliance?year=2025&agency=不存在的单位").status_code == 404


def test_compliance_names_an_agency_as_uploads_do(client, api):
    headers = bearer(api["token"])
    body = client.get("/api/v1/compliance?year=2025&agency=市公交公司", headers=headers).get_json()
    assert {r["agency"] for r in body["results"]} == {"濮阳市公交公司"}  # the city prefix dropped
    unknown = client.get("/api/v1/compliance?year=2025&agency=濮阳市公交公司第一车队", headers=headers)
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["message"] == "未登记的单位：濮阳市公交公司第一车队。是否指：“濮阳市公交公司”？"


def test_an_agency_user_is_offered_no_other_agencys_name(client, api):
    factories.login(client, "police")
    body = client.get("/api/v1/compliance?year=2025&agency=公安局").get_json()
    assert {r["agency"] for r in body["results"]} == {"濮阳市公安局"}
    other = client.get("/api/v1/compliance?year=2025&agency=濮阳市公交公司第一车队")
    assert other.status_code == 404 and "濮阳市公交公司”" not in other.get_json()["error"]["message"]


def _workbook(rows: list[dict[str, object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append([c.header for c in COLUMNS])
    for row in rows:
        sheet.append([row.get(c.key) for c in COLUMNS])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


GOOD_ROW = {"agency": "濮阳市公安局", "vin": factories.vin(301), "category": "公务用车", "power": "纯电动",
            "acquisition": "新增", "acquired_on": "2025-03-05", "county": "市直"}


def test_upload_returns_the_validation_report_and_stores_nothing(client, session, api):
    factories.login(client, "police")
    content = _workbook([GOOD_ROW, {**GOOD_ROW, "vin": factories.vin(302), "agency": "濮阳市公交公司"}])
    response = client.post("/api/v1/uploads", data={"file": (io.BytesIO(content), "三月.xlsx")})
    assert response.status_code == 200
    report = response.get_json()
    assert report["file"] == "三月.xlsx" and report["rows"] == 2
    assert all({"sheet", "row", "column", "code", "message"} <= set(e) for e in report["errors"])
    # An agency user may only report its own agency's vehicles: the second row is refused.
    assert [(e["row"], e["column"], e["code"]) for e in report["errors"]] == [(3, "agency", "agency_not_allowed")]
    assert factories.vin(301) not in client.get("/api/v1/acquisitions").get_data(as_text=True)


def test_upload_without_a_file_is_400(client, api):
    response = client.post("/api/v1/uploads", headers=bearer(api["token"]))
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_parameter"


def test_an_unreadable_file_is_422_with_its_code(client, api):
    response = client.post("/api/v1/uploads", headers=bearer(api["token"]),
                           data={"file": (io.BytesIO(b"this is not a workbook"), "x.xlsx")})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"]


def test_session_post_needs_the_csrf_token_but_a_bearer_token_does_not(app, client, api):
    factories.login(client, "police")
    app.config["WTF_CSRF_ENABLED"] = True
    content = _workbook([GOOD_ROW])
    refused = client.post("/api/v1/uploads", data={"file": (io.BytesIO(content), "a.xlsx")})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "bad_request"
    accepted = client.post("/api/v1/uploads", headers=bearer(api["token"]), data={"file": (io.BytesIO(content), "a.xlsx")})
    assert accepted.status_code == 200


def test_too_large_upload_is_413_json_for_the_api_and_a_page_for_people(app, client, api):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    big = {"file": (io.BytesIO(b"x" * 5000), "big.xlsx")}
    response = client.post("/api/v1/uploads", headers=bearer(api["token"]), data=big)
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"
    factories.login(client, "police")
    page = client.post("/uploads/", data={"file": (io.BytesIO(b"x" * 5000), "big.xlsx")})
    assert page.status_code == 413
    assert "文件太大" in page.get_data(as_text=True)


def test_openapi_describes_every_api_route(app, client):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    document = served.get_json()
    assert document["openapi"].startswith("3.")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        assert path in document["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in document["paths"][path], (method, path)
