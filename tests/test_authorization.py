"""Every registered route, for every role: anonymous users are sent to log in, agency users stay out of
reviewer and admin pages and never reach another agency's objects.

The routes come from app.url_map, so routes added by any area later are checked without editing this file.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from flask import Flask

from fleet.base.models import ImportBatch, PlanLine, PurchasePlan, UploadFile
from fleet.web.auth import is_public
from tests import factories

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# The only endpoints anyone may reach without logging in; a new public view must be added here on purpose.
PUBLIC = {"static", "favicon", "health.healthz", "auth.login", "auth.set_language", "api.openapi"}
# Pages of one agency's objects that agency users may open: each must refuse another agency's.
AGENCY_OBJECT_PAGES = {
    "vehicles.detail", "exemptions.new", "exemptions.show", "dashboard.agency", "uploads.show", "uploads.status",
    "uploads.commit", "uploads.annotated", "uploads.original", "plans.show", "plans.annotated", "plans.original",
}


@pytest.fixture
def world(session):
    own = factories.agency(session, "濮阳市公安局")
    other = factories.agency(session, "清丰县公交公司", kind="国有企业", sector="公交", county="清丰县")
    factories.user(session, "own", "agency", own.name)
    other_user = factories.user(session, "other", "agency", other.name)
    factories.user(session, "reviewer", "reviewer")
    factories.user(session, "admin", "admin")
    session.add(UploadFile(sha256="c" * 64, size=1, content=b"x"))
    batch = ImportBatch(file_name="清丰公交.xlsx", sha256="c" * 64, agency_id=other.id, uploaded_by_id=other_user.id,
                        status="committed")
    session.add(batch)
    session.flush()
    acquisition = factories.acquisition(session, other, batch_id=batch.id, category="公交车", power="柴油",
                                        brand_model="宇通ZK6105")
    request = factories.exemption_request(session, acquisition)
    entry = factories.catalogue_match(session, acquisition)
    plan = PurchasePlan(agency_id=other.id, year=2025, version=1, status="current", file_name="清丰公交计划.xlsx",
                        sha256="c" * 64, uploaded_by_id=other_user.id, report={})
    plan.lines.append(PlanLine(category="公交车", power="柴油", acquisition_kind="新增", quantity=1, county="清丰县",
                               first_day=dt.date(2025, 12, 1), last_day=dt.date(2025, 12, 31),
                               exemption_reason="山区线路续航不足", exemption_status="pending"))
    session.add(plan)
    session.commit()
    # The own agency has no objects at all: any id in a URL belongs to the other agency or to nothing.
    return {
        "agency": other.id, "batch": batch.id, "acquisition": acquisition.id, "request": request.id,
        "entry": entry.id, "user": other_user.id, "vin": acquisition.vin, "agency_name": other.name,
        "plan": plan.id, "line": plan.lines[0].id,
    }


def _object_id(name: str, world: dict) -> int | None:
    """The other agency's object an URL argument most likely names, by the argument's name."""
    name = name.lower()
    for words, key in (
        (("batch", "upload", "import"), "batch"),
        (("plan",), "plan"),
        (("line",), "line"),
        (("request", "exemption"), "request"),
        (("entry", "catalogue"), "entry"),
        (("agency",), "agency"),
        (("user",), "user"),
        (("acquisition", "vehicle"), "acquisition"),
    ):
        if any(w in name for w in words):
            return world[key]
    return None


def _routes(app: Flask, world: dict):
    """(endpoint, url, methods, names an object) for every rule, arguments filled in."""
    for rule in app.url_map.iter_rules():
        values: dict[str, object] = {}
        names_object = False
        for argument in rule.arguments:
            converter = type(rule._converters[argument]).__name__
            if re.search(r"year", argument):
                values[argument] = 2025
            elif re.search(r"month", argument):
                values[argument] = 3
            elif converter in ("IntegerConverter", "NumberConverter"):
                object_id = _object_id(argument, world)
                names_object = names_object or object_id is not None
                values[argument] = object_id if object_id is not None else world["acquisition"]
            else:
                values[argument] = "x"
        with app.test_request_context():
            from flask import url_for

            url = url_for(rule.endpoint, **values)
        yield rule.endpoint, url, sorted(m for m in rule.methods if m in METHODS), names_object


def _log_in(client, username: str) -> None:
    assert factories.login(client, username).status_code == 302


def test_public_endpoints_are_exactly_the_allowed_ones(app):
    assert {e for e, view in app.view_functions.items() if is_public(view, e)} == PUBLIC


def test_every_view_is_public_or_names_its_roles(app):
    undecorated = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if not is_public(view, endpoint) and not getattr(view, "allowed_roles", None)
    ]
    assert undecorated == [], "views without role_required (or @public)"


def test_anonymous_users_are_sent_to_login_or_get_401(app, client, world):
    checked = 0
    for endpoint, url, methods, _ in _routes(app, world):
        if is_public(app.view_functions[endpoint], endpoint):
            continue
        for method in methods:
            response = client.open(url, method=method)
            checked += 1
            if url.startswith("/api/"):
                assert response.status_code == 401, (method, url)
                assert response.get_json()["error"]["code"] == "unauthorized"
            else:
                assert response.status_code == 302, (method, url, response.status_code)
                assert response.headers["Location"].startswith("/login"), (method, url)
    assert checked >= 10


def test_agency_users_cannot_reach_reviewer_or_admin_routes(app, client, world):
    _log_in(client, "own")
    checked = 0
    for endpoint, url, methods, _ in _routes(app, world):
        view = app.view_functions[endpoint]
        if is_public(view, endpoint) or "agency" in view.allowed_roles:
            continue
        for method in methods:
            response = client.open(url, method=method)
            checked += 1
            assert response.status_code == 403, (method, url, response.status_code)
    assert checked >= 3


def test_reviewers_cannot_reach_admin_only_routes(app, client, world):
    _log_in(client, "reviewer")
    for endpoint, url, methods, _ in _routes(app, world):
        view = app.view_functions[endpoint]
        if is_public(view, endpoint) or "reviewer" in view.allowed_roles:
            continue
        for method in methods:
            assert client.open(url, method=method).status_code == 403, (method, url)


def test_agency_users_never_reach_another_agencys_objects(app, client, world):
    """Refused as forbidden or not found, before anything else is looked at: a 400 for a bad form
    would say the object is there and only the form was wrong."""
    _log_in(client, "own")
    checked = set()
    for endpoint, url, methods, names_object in _routes(app, world):
        view = app.view_functions[endpoint]
        if not names_object or is_public(view, endpoint) or "agency" not in view.allowed_roles:
            continue
        for method in methods:
            response = client.open(url, method=method)
            checked.add(endpoint)
            assert response.status_code in (403, 404), (method, url, response.status_code)
            assert world["vin"].encode() not in response.data, (method, url)
    # The object pages an agency user has: the vehicle, its exemption request, the upload batch.
    assert AGENCY_OBJECT_PAGES <= checked, AGENCY_OBJECT_PAGES - checked


def test_agency_pages_never_show_another_agencys_data(app, client, world):
    """Every page and API answer an agency user can open, also with the other agency asked for by id
    or name in the query string, leaves out the other agency's vehicles."""
    _log_in(client, "own")
    checked = 0
    for endpoint, url, methods, names_object in _routes(app, world):
        view = app.view_functions[endpoint]
        if "GET" not in methods or names_object or is_public(view, endpoint) or "agency" not in view.allowed_roles:
            continue
        for query in ("", f"?agency={world['agency']}&agency_id={world['agency']}",
                      f"?agency={world['agency_name']}&year=2025"):
            response = client.get(url + query)
            checked += 1
            assert response.status_code < 500, (url + query, response.status_code)
            assert world["vin"].encode() not in response.data, url + query
    assert checked >= 6


@pytest.mark.parametrize("username", ["reviewer", "admin", "own"])
def test_no_page_loads_anything_from_outside_the_app(app, client, world, username):
    """The app runs on an intranet: no script, style, font or image comes from elsewhere."""
    _log_in(client, username)
    outside = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""", re.I)
    checked = 0
    for endpoint, url, methods, _ in _routes(app, world):
        view = app.view_functions[endpoint]
        if "GET" not in methods or (not is_public(view, endpoint) and username_role(username) not in view.allowed_roles):
            continue
        response = client.get(url)
        if response.status_code != 200 or response.mimetype not in ("text/html", "text/css"):
            continue
        checked += 1
        assert not outside.search(response.get_data(as_text=True)), url
    assert checked >= 3
    for stylesheet in Path(app.static_folder).rglob("*.css"):
        assert not outside.search(stylesheet.read_text(encoding="utf-8")), stylesheet.name


def username_role(username: str) -> str:
    return {"own": "agency"}.get(username, username)


def test_every_form_post_needs_the_csrf_token(app, client, world):
    """Every state-changing route of every area refuses a request without the CSRF token."""
    app.config["WTF_CSRF_ENABLED"] = True
    checked = 0
    for _endpoint, url, methods, _ in _routes(app, world):
        for method in methods:
            if method == "GET":
                continue
            response = client.open(url, method=method, data={})
            checked += 1
            assert response.status_code == 400, (method, url, response.status_code)
    assert checked >= 10
