"""Accounts on the web: login with throttling, logout, password change, language, roles on every view."""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import (
    session as http_session,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.db import get_session, transaction
from fleet.base.models import User, utcnow
from fleet.base.text import LOCALES
from fleet.domain.users import password_ok, set_password, user_for_token
from fleet.web.errors import error_response, is_api_request
from fleet.web.forms import ChangePasswordForm, LoginForm

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()

# Endpoints anyone may reach besides views marked @public; every other view must carry role_required
# (tests/test_authorization.py walks app.url_map to hold every area to it).
PUBLIC_ENDPOINTS = frozenset({"static", "health.healthz"})

# Throttling of password guessing: after MAX_FAILED_LOGINS failures within FAILURE_WINDOW the account
# refuses attempts for FIRST_LOCKOUT, doubling with each further failure up to MAX_LOCKOUT.
MAX_FAILED_LOGINS = 5
FAILURE_WINDOW = dt.timedelta(hours=1)
FIRST_LOCKOUT = dt.timedelta(seconds=30)
MAX_LOCKOUT = dt.timedelta(hours=1)


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None = None
    retry_after: dt.timedelta | None = None

    @property
    def locked(self) -> bool:
        return self.retry_after is not None


def lockout_remaining(user: User, now: dt.datetime) -> dt.timedelta | None:
    """How long the account still refuses logins, or None when it accepts them."""
    if user.failed_logins < MAX_FAILED_LOGINS or user.last_failed_login_at is None:
        return None
    delay = min(FIRST_LOCKOUT * 2 ** (user.failed_logins - MAX_FAILED_LOGINS), MAX_LOCKOUT)
    remaining = user.last_failed_login_at + delay - now
    return remaining if remaining > dt.timedelta(0) else None


def authenticate(session: Session, username: str, password: str, now: dt.datetime | None = None) -> LoginOutcome:
    """Check a login; counts failures on the account and refuses while it is locked.

    The caller commits, so that failures are remembered. Unknown and deactivated users get the same
    answer as a wrong password, so the form does not reveal which accounts exist."""
    now = now or utcnow()
    user = session.scalar(sa.select(User).where(User.username == username.strip()))
    if user is None or not user.active:
        return LoginOutcome()
    remaining = lockout_remaining(user, now)
    if remaining is not None:
        return LoginOutcome(retry_after=remaining)
    if password_ok(user, password):
        user.failed_logins = 0
        user.last_failed_login_at = None
        return LoginOutcome(user=user)
    if user.last_failed_login_at is not None and now - user.last_failed_login_at > FAILURE_WINDOW:
        user.failed_logins = 0
    user.failed_logins += 1
    user.last_failed_login_at = now
    if user.failed_logins >= MAX_FAILED_LOGINS:
        audit.record(session, "user.login_locked", user_id=user.id, target_type="user", target_id=user.id)
    return LoginOutcome()


# --- roles -----------------------------------------------------------------------------------------


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


# --- Flask-Login wiring ----------------------------------------------------------------------------


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    if not user_id.isdigit():
        return None
    return get_session().scalar(sa.select(User).where(User.id == int(user_id), User.active))


@login_manager.request_loader
def _load_user_from_token(req) -> User | None:
    # Bearer tokens are for scripts using the JSON API; pages keep to the session cookie.
    header = req.headers.get("Authorization", "")
    if not req.path.startswith("/api/") or not header.lower().startswith("bearer "):
        return None
    token = header[7:].strip()
    return user_for_token(get_session(), token) if token else None


@login_manager.unauthorized_handler
def _unauthorized():
    if is_api_request():
        return error_response(401)
    flash(_("请先登录。"), "info")
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=target))


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site; None for anything that could lead elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def home_url() -> str:
    """Where a user lands: the dashboard, which shows an agency user its own agency."""
    return "/"


def _template_globals() -> dict[str, Any]:
    return {
        "home_url": home_url,
        "get_locale": get_locale,
        "locales": LOCALES,
    }


def _forget_previous_user() -> None:
    # Flask-Login caches the user in g, which lives as long as the app context. A request normally
    # gets its own context, but one pushed around several requests (tests, scripts) would otherwise
    # hand the previous request's user to the next client.
    g.pop("_login_user", None)


def init_app(app: Flask) -> None:
    # The session cookie is not sent along with cross-site requests: a second line behind CSRF tokens.
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.before_request(_forget_previous_user)
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    csrf.init_app(app)
    app.context_processor(_template_globals)
    app.register_blueprint(bp)


# --- views -----------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or home_url())
    form = LoginForm()
    if form.validate_on_submit():
        with transaction() as session:
            outcome = authenticate(session, form.username.data, form.password.data)
        if outcome.locked:
            seconds = max(1, math.ceil(outcome.retry_after.total_seconds()))
            message = _("登录失败次数过多，账户已暂时锁定。请在 %(minutes)s 分钟后再试。", minutes=math.ceil(seconds / 60))
            return render_template("auth/login.html", form=form, error=message), 429, {"Retry-After": str(seconds)}
        if outcome.user is None:
            return render_template("auth/login.html", form=form, error=_("用户名或密码错误。")), 200
        login_user(outcome.user)
        return redirect(safe_next(request.args.get("next")) or home_url())
    return render_template("auth/login.html", form=form, error=None)


@bp.post("/logout")
@role_required()
def logout():
    logout_user()
    flash(_("您已退出登录。"), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@role_required()
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not password_ok(current_user, form.current_password.data):
            form.current_password.errors.append(_("当前密码不正确。"))
        else:
            with transaction() as session:
                user = current_user._get_current_object()
                set_password(user, form.new_password.data)
                audit.record(session, "user.password_changed", user_id=user.id, target_type="user", target_id=user.id)
            flash(_("密码已修改。"), "success")
            return redirect(home_url())
    return render_template("auth/change_password.html", form=form)


@bp.post("/language")
@public
def set_language():
    """Switch the language: remembered on the account when logged in, in the session otherwise."""
    locale = request.form.get("locale", "")
    if locale not in LOCALES:
        abort(400)
    http_session["locale"] = locale
    if current_user.is_authenticated:
        with transaction():
            current_user._get_current_object().locale = locale
    return redirect(safe_next(request.form.get("next")) or home_url())
