"""Who is asking: sessions (with their idle and absolute limits), API tokens, and roles on every view.

The account pages themselves (login, logout, password) are fleet.web.account; the rules they apply
(passwords, failed-login counting) are fleet.domain.identity.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask, abort, current_app, flash, g, redirect, request, url_for
from flask import session as http_session
from flask_babel import gettext as _
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from fleet.base import audit
from fleet.base.db import get_session
from fleet.base.models import User
from fleet.domain.users import user_for_token
from fleet.web.errors import error_response, is_api_request, json_error

login_manager = LoginManager()
csrf = CSRFProtect()

# Endpoints anyone may reach besides views marked @public; every other view must carry role_required
# (tests/test_authorization.py walks app.url_map to hold every area to it).
PUBLIC_ENDPOINTS = frozenset({"static", "health.healthz"})
# What a user who must replace an administrator's password may still do.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.change_password", "auth.logout", "auth.set_language", "static"})


def role_required(*roles: str) -> Callable:
    """Only logged-in users with one of `roles` (any role when none is given) reach the view.

    Anonymous users go to the login page (a JSON 401 under /api/); others get 403. The roles are
    kept on the view so the authorization tests can check every registered route."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if roles and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        wrapper.allowed_roles = roles or ("agency", "reviewer", "admin")
        return wrapper

    return decorate


def public(view: Callable) -> Callable:
    """Marks a view anyone may reach without logging in (login, health checks, vendored assets)."""
    view.public = True
    return view


def is_public(view: Callable, endpoint: str) -> bool:
    return endpoint in PUBLIC_ENDPOINTS or getattr(view, "public", False)


def agency_scope() -> int | None:
    """The agency an agency user is limited to; None for reviewers and admins, who see every agency."""
    if current_user.is_authenticated and current_user.role == "agency":
        return current_user.agency_id
    return None


def can_see_agency(agency_id: int | None) -> bool:
    if not current_user.is_authenticated:
        return False
    scope = agency_scope()
    return current_user.role != "agency" or (scope is not None and scope == agency_id)


def client_address() -> str:
    """The requester's address (behind PROXY_COUNT trusted proxies, the one they saw)."""
    return (request.remote_addr or "")[:64]


# --- sessions --------------------------------------------------------------------------------------


def start_session(user: User) -> None:
    """Log the user in on a new session: nothing of the anonymous one is kept but its language, so a
    session (and its CSRF secret) planted before the login is worth nothing after it."""
    locale = http_session.get("locale")
    http_session.clear()
    login_user(user)
    http_session.permanent = True
    now = time.time()
    http_session.update(started_at=now, seen_at=now, generation=user.session_generation)
    if locale:
        http_session["locale"] = locale


def end_session() -> None:
    logout_user()
    locale = http_session.get("locale")
    http_session.clear()
    if locale:
        http_session["locale"] = locale


def renew_generation(user: User) -> None:
    """Keep this session after the user's sessions were ended on purpose (their own password change)."""
    http_session["generation"] = user.session_generation


def _check_session_age() -> None:
    # A session ends after SESSION_IDLE_MINUTES without a request and SESSION_LIFETIME_HOURS after the
    # login, whatever the cookie's own expiry says.
    if "_user_id" not in http_session:
        return
    now = time.time()
    started, seen = http_session.get("started_at"), http_session.get("seen_at")
    idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
    lifetime = current_app.config["SESSION_LIFETIME_HOURS"] * 3600
    if started is None or seen is None or now - seen > idle or now - started > lifetime:
        end_session()
        flash(_("会话已过期，请重新登录。"), "info")
        return
    http_session["seen_at"] = now


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if not request.path.startswith("/api/") or not header.lower().startswith("bearer "):
        return None
    return header[7:].strip()


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    # A request with a Bearer token is the token's: its session cookie, if any, is not consulted, so
    # a junk token never rides on a browser's session (and past the CSRF check it skips).
    if _bearer_token() is not None or not user_id.isdigit():
        return None
    user = get_session().scalar(sa.select(User).where(User.id == int(user_id), User.active))
    if user is None or http_session.get("generation") != user.session_generation:
        return None
    return user


@login_manager.request_loader
def _load_user_from_token(req) -> User | None:
    # Bearer tokens are for scripts using the JSON API; pages keep to the session cookie.
    token = _bearer_token()
    return user_for_token(get_session(), token) if token else None


@login_manager.unauthorized_handler
def _unauthorized():
    if is_api_request():
        return error_response(401)
    flash(_("请先登录。"), "info")
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=target))


def _require_own_password():
    if not current_user.is_authenticated or not current_user.must_change_password:
        return None
    if request.endpoint in PASSWORD_CHANGE_ENDPOINTS or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    message = _("管理员为您设置了密码：请先修改密码。")
    if is_api_request():
        return json_error(403, "password_change_required", message)
    flash(message, "info")
    return redirect(url_for("auth.change_password"))


def _forget_previous_user() -> None:
    # Flask-Login caches the user in g, which lives as long as the app context. A request normally
    # gets its own context, but one pushed around several requests (tests, scripts) would otherwise
    # hand the previous request's user to the next client.
    g.pop("_login_user", None)
    g.audit_address = audit.source_address.set(client_address())


def _forget_address(_exc: BaseException | None) -> None:
    token = g.pop("audit_address", None)
    if token is not None:
        audit.source_address.reset(token)


def init_app(app: Flask) -> None:
    # The session cookie is not sent along with cross-site requests: a second line behind CSRF tokens.
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if app.config["PROXY_COUNT"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_COUNT"], x_proto=app.config["PROXY_COUNT"])
    app.before_request(_forget_previous_user)
    app.before_request(_check_session_age)
    app.before_request(_require_own_password)
    app.teardown_request(_forget_address)
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    csrf.init_app(app)
