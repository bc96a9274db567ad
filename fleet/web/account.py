"""The account pages: login, logout, the user's own password, the interface language."""

from __future__ import annotations

import math

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask import session as http_session
from flask_babel import gettext as _
from flask_login import current_user

from fleet.base.db import transaction
from fleet.base.text import LOCALES
from fleet.domain import identity, users
from fleet.web.auth import (
    client_address,
    end_session,
    public,
    renew_generation,
    role_required,
    start_session,
)
from fleet.web.forms import ChangePasswordForm, LoginForm
from fleet.web.navigation import home_url, safe_next

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or home_url())
    form = LoginForm()
    if form.validate_on_submit():
        with transaction() as session:
            outcome = identity.authenticate(session, form.username.data, form.password.data, address=client_address())
        if outcome.locked:
            seconds = max(1, math.ceil(outcome.retry_after.total_seconds()))
            message = _("登录失败次数过多，已暂时锁定。请在 %(minutes)s 分钟后再试。", minutes=math.ceil(seconds / 60))
            return render_template("auth/login.html", form=form, error=message), 429, {"Retry-After": str(seconds)}
        if outcome.user is None:
            return render_template("auth/login.html", form=form, error=_("用户名或密码错误。")), 200
        start_session(outcome.user)
        if outcome.user.must_change_password:
            return redirect(url_for("auth.change_password"))
        return redirect(safe_next(request.args.get("next")) or home_url())
    return render_template("auth/login.html", form=form, error=None)


@bp.post("/logout")
@role_required()
def logout():
    with transaction() as session:
        users.log_out(session, current_user._get_current_object())
    end_session()
    flash(_("您已退出登录。"), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@role_required()
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            with transaction() as session:
                users.change_password(session, user, form.current_password.data, form.new_password.data)
        except users.UserError as exc:
            form.new_password.errors.append(str(exc))
        else:
            # Every other session of the user has ended; this one goes on.
            renew_generation(user)
            flash(_("密码已修改。"), "success")
            return redirect(home_url())
    return render_template("auth/change_password.html", form=form), 400 if form.errors else 200


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
