"""Accounts over HTTP: login, throttling, logout, password change, language, CSRF."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fleet.base.models import User
from fleet.domain.identity import password_matches
from fleet.web.navigation import safe_next
from tests import factories


@pytest.fixture
def people(session):
    factories.agency(session, "濮阳市公安局")
    factories.user(session, "police", "agency", "濮阳市公安局")
    factories.user(session, "reviewer", "reviewer")
    session.commit()


def test_login_page_is_chinese_and_served_by_the_app(client):
    page = client.get("/login")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "登录" in html and "用户名" in html
    assert "http://" not in html and "https://" not in html


def test_login_then_logout(client, people):
    response = factories.login(client, "reviewer")
    assert response.status_code == 302
    assert "SameSite=Lax" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    assert client.get("/account/password").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/account/password").status_code == 302


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, people):
    response = factories.login(client, "reviewer", "not-the-password")
    assert response.status_code == 200
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert "用户名或密码错误" in factories.login(client, "nobody", "whatever1").get_data(as_text=True)


def test_deactivated_user_cannot_log_in(client, session, people):
    session.scalar(sa.select(User).where(User.username == "police")).active = False
    session.commit()
    assert factories.login(client, "police").status_code == 200
    assert client.get("/account/password").status_code == 302


def test_login_redirects_to_local_next_only(client, people):
    response = client.post("/login?next=/account/password", data={"username": "reviewer", "password": factories.PASSWORD})
    assert response.headers["Location"] == "/account/password"
    client.post("/logout")
    response = client.post("/login?next=//evil.example/x", data={"username": "reviewer", "password": factories.PASSWORD})
    assert "evil" not in response.headers["Location"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", ""])
def test_safe_next_refuses_other_sites(target):
    assert safe_next(target) is None


def test_safe_next_keeps_a_local_path():
    assert safe_next("/vehicles?page=2") == "/vehicles?page=2"


def test_anonymous_user_is_sent_to_login_with_next(client, people):
    response = client.get("/account/password")
    assert response.status_code == 302
    assert "/login?next=/account/password" in response.headers["Location"]


def test_five_failures_lock_the_account_with_429_even_for_the_right_password(client, people):
    for _ in range(5):
        assert factories.login(client, "reviewer", "wrong-password").status_code == 200
    locked = factories.login(client, "reviewer")
    assert locked.status_code == 429
    assert "锁定" in locked.get_data(as_text=True)
    assert int(locked.headers["Retry-After"]) > 0
    assert client.get("/account/password").status_code == 302


def test_change_password(client, session, people):
    factories.login(client, "police")
    refused = client.post(
        "/account/password",
        data={"current_password": "wrong-one", "new_password": "new-secret-1", "confirm": "new-secret-1"},
    )
    assert "当前密码不正确" in refused.get_data(as_text=True)
    too_short = client.post(
        "/account/password",
        data={"current_password": factories.PASSWORD, "new_password": "short", "confirm": "short"},
    )
    assert "至少需要 10 个字符" in too_short.get_data(as_text=True)
    done = client.post(
        "/account/password",
        data={"current_password": factories.PASSWORD, "new_password": "new-secret-1", "confirm": "new-secret-1"},
    )
    assert done.status_code == 302
    session.expire_all()
    assert password_matches(session.scalar(sa.select(User).where(User.username == "police")), "new-secret-1")


def test_language_switch_for_anonymous_user_lasts_the_session(client):
    assert client.post("/language", data={"locale": "en", "next": "/login"}).headers["Location"] == "/login"
    assert 'lang="en"' in client.get("/login").get_data(as_text=True)


def test_language_is_remembered_on_the_account(app, client, session, people):
    factories.login(client, "police")
    client.post("/language", data={"locale": "en"})
    session.expire_all()
    assert session.scalar(sa.select(User.locale).where(User.username == "police")) == "en"
    other = app.test_client()
    factories.login(other, "police")
    assert 'lang="en"' in other.get("/account/password").get_data(as_text=True)


def test_unknown_language_is_refused(client):
    assert client.post("/language", data={"locale": "fr"}).status_code == 400


def test_a_post_without_csrf_token_is_refused(app, client, people):
    app.config["WTF_CSRF_ENABLED"] = True
    response = factories.login(client, "reviewer")
    assert response.status_code == 400
    assert "安全令牌" in response.get_data(as_text=True)
    assert client.get("/account/password").status_code == 302


def test_error_pages_are_in_the_layout_and_api_errors_are_json(client, people):
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert "找不到" in page.get_data(as_text=True)
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.get_json()["error"]["code"] == "not_found"


def test_an_unexpected_error_is_a_500_page_without_traceback(app, client):
    def broken():
        raise RuntimeError("secret internals")

    app.add_url_rule("/broken", "broken", broken)
    app.add_url_rule("/api/v1/broken", "api_broken", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    page = client.get("/broken")
    assert page.status_code == 500
    html = page.get_data(as_text=True)
    assert "服务器内部错误" in html and "secret internals" not in html and "Traceback" not in html
    api = client.get("/api/v1/broken")
    assert api.status_code == 500 and api.get_json()["error"]["code"] == "internal_error"
