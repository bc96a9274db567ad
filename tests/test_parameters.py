"""Every query parameter is validated: huge or malformed numbers are a 400 naming the parameter, on
pages and in the API, and the error page still renders (the transaction is rolled back first)."""

from __future__ import annotations

import pytest

from tests import factories

HUGE = "9" * 30


@pytest.fixture
def admin(client, session):
    factories.agency(session, "濮阳市公安局")
    factories.user(session, "admin", "admin")
    factories.user(session, "reviewer", "reviewer")
    session.commit()
    factories.login(client, "admin")
    return client


@pytest.mark.parametrize(
    "url",
    [
        f"/vehicles/?page={HUGE}",
        f"/vehicles/?agency={HUGE}",
        f"/vehicles/?batch={HUGE}",
        f"/api/v1/acquisitions?page={HUGE}",
        f"/api/v1/acquisitions?per_page={HUGE}",
        f"/admin/audit?page={HUGE}",
        f"/exemptions/?page={HUGE}",
        f"/exemptions/?agency={HUGE}",
        f"/uploads/?page={HUGE}",
        f"/uploads/?agency={HUGE}",
        f"/reports/compliance.xlsx?agency_id={HUGE}",
        "/vehicles/?page=" + "9" * 5000,
        "/?year=" + "9" * 5000,
        "/vehicles/?page=-1",
        "/exemptions/?page=abc",
    ],
)
def test_a_bad_number_is_a_400_with_a_message(app, admin, url):
    if not url.startswith("/admin/"):
        admin = app.test_client()
        factories.login(admin, "reviewer")
    response = admin.get(url)
    if url.startswith("/?year="):
        assert response.status_code == 200  # an unknown year is shown as this year, with a note
        return
    assert response.status_code == 400, url
    text = response.get_data(as_text=True)
    if url.startswith("/api/"):
        assert response.get_json()["error"]["code"] == "bad_parameter"
    assert "参数" in text or "没有这个单位" in text or "导入批次" in text


def test_an_agency_form_without_fields_is_a_form_error(admin, session):
    agency = factories.agency(session, "濮阳市公安局", contact_emails=["a@pygaj.example.cn"])
    session.commit()
    response = admin.post(f"/admin/agencies/{agency.id}", data={"csrf_token": "x"})
    assert response.status_code == 400
    assert "单位名称" in response.get_data(as_text=True)


def test_a_failed_statement_does_not_break_the_error_page(app, client, session):
    def broken():
        import sqlalchemy as sa

        from fleet.base.db import get_session

        get_session().execute(sa.text("SELECT * FROM no_such_table"))

    app.add_url_rule("/broken-sql", "broken_sql", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    factories.user(session, "admin", "admin")
    session.commit()
    factories.login(client, "admin")
    response = client.get("/broken-sql")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "错误编号" in text and "no_such_table" not in text
