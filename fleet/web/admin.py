"""Administration pages (admin only): the agency registry, user accounts, the active rule pack."""

from __future__ import annotations

import tempfile
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename
from wtforms import SelectChoice

from fleet.base.db import get_session, transaction
from fleet.base.models import Agency, AuditEntry, User
from fleet.base.pagination import paginate
from fleet.domain import identity
from fleet.domain import users as users_service
from fleet.domain.agencies import (
    RegistryFileError,
    alias_errors,
    load_registry,
    parse_registry,
    save_agency,
)
from fleet.domain.registry_checks import REGISTRY_COLUMNS
from fleet.web import reporting as reporting_pages
from fleet.web.auth import role_required
from fleet.web.forms import (
    AgencyForm,
    RegistryUploadForm,
    ResetPasswordForm,
    RulePackForm,
    UserForm,
)
from fleet.web.params import page_arg
from rules.active import active_pack_id, set_active_pack
from rules.packs import PackError, check_packs

bp = Blueprint("admin", __name__, url_prefix="/admin")

# An alias that would mean two agencies, by the field that brings it in.
_ALIAS_PROBLEMS = {
    "aliases": _l("别名会同时指向两个单位。"),
    "name": _l("单位名称会与其他单位的别名混淆。"),
}


@bp.get("/")
@role_required("admin")
def index():
    session = get_session()
    counts = {
        "agencies": session.scalar(sa.select(sa.func.count()).select_from(Agency)),
        "users": session.scalar(sa.select(sa.func.count()).select_from(User).where(User.active)),
    }
    return render_template("admin/index.html", counts=counts, active_pack=active_pack_id(session))


# --- agencies --------------------------------------------------------------------------------------


@bp.get("/agencies")
@role_required("admin")
def agencies():
    session = get_session()
    users = (
        sa.select(sa.func.count())
        .where(User.agency_id == Agency.id, User.active)
        .correlate(Agency)
        .scalar_subquery()
    )
    rows = session.execute(sa.select(Agency, users).order_by(Agency.county, Agency.name)).all()
    return render_template("admin/agencies.html", rows=rows, upload_form=RegistryUploadForm())


def registry_values(form: AgencyForm) -> dict | None:
    """The form's agency checked and normalised exactly as a registry file row is; errors go on the fields."""
    keys = list(REGISTRY_COLUMNS)
    header = [REGISTRY_COLUMNS[key][0] for key in keys]
    row = [(form[key].data or "").strip() for key in keys]
    agencies_, errors = parse_registry([header, row])
    for error in errors:
        # The registry's message names the value and is in the page's language: nothing to add to it.
        form[error["column"]].errors.append(error["message"])
    return agencies_[0] if agencies_ else None


def _agency_form_page(form: AgencyForm, agency: Agency | None):
    if form.validate_on_submit():
        values = registry_values(form)
        if values is not None:
            with transaction() as session:
                conflicts = alias_errors(session, [values], replacing=agency.id if agency is not None else None)
                saved = None if conflicts else save_agency(session, agency, values, actor_id=current_user.id)
                if saved is None:
                    session.rollback()
            if saved is not None:
                flash(_("单位已保存：%(name)s", name=saved.name), "success")
                return redirect(url_for("admin.agencies"))
            for error in conflicts:
                form[error["column"]].errors.append(f"{_ALIAS_PROBLEMS[error['column']]} ({error['message']})")
            if not conflicts:
                form.name.errors.append(_("已有同名单位。"))
    status = 400 if form.errors else 200
    return render_template("admin/agency_form.html", form=form, agency=agency), status


@bp.route("/agencies/new", methods=["GET", "POST"])
@role_required("admin")
def new_agency():
    return _agency_form_page(AgencyForm(), None)


@bp.route("/agencies/<int:agency_id>", methods=["GET", "POST"])
@role_required("admin")
def edit_agency(agency_id: int):
    agency = get_session().get(Agency, agency_id)
    if agency is None:
        abort(404)
    # The stored values as the form's data, the lists as the text their fields edit: a post that
    # lacks a field then finds text (and InputRequired says what is missing), never a list.
    stored = {key: getattr(agency, key) for key in ("name", "credit_code", "kind", "sector", "county")}
    form = AgencyForm(
        data={**stored, "contact_emails": "; ".join(agency.contact_emails or []), "aliases": "; ".join(agency.aliases or [])}
    )
    return _agency_form_page(form, agency)


@bp.post("/agencies/load")
@role_required("admin")
def load_agencies():
    """Bulk load from xlsx or CSV: all rows or none; row errors are listed."""
    form = RegistryUploadForm()
    if not form.validate_on_submit():
        for message in form.file.errors:
            flash(message, "error")
        return redirect(url_for("admin.agencies"))
    upload = form.file.data
    suffix = Path(upload.filename or "").suffix.lower()
    with tempfile.TemporaryDirectory(prefix="fleet-registry-") as folder:
        path = Path(folder) / (secure_filename(upload.filename or "") or f"registry{suffix}")
        upload.save(path)
        try:
            with transaction() as session:
                result = load_registry(session, path, actor_id=current_user.id)
        except RegistryFileError as exc:
            flash(_("文件无法作为单位名录读取：%(detail)s", detail=str(exc)), "error")
            return redirect(url_for("admin.agencies"))
    if result.errors:
        return render_template("admin/registry_errors.html", errors=result.errors, file_name=upload.filename), 400
    flash(_("单位名录已导入：新增 %(inserted)s 个，更新 %(updated)s 个。", inserted=result.inserted, updated=result.updated), "success")
    return redirect(url_for("admin.agencies"))


# --- users -----------------------------------------------------------------------------------------


@bp.get("/users")
@role_required("admin")
def users():
    rows = get_session().execute(
        sa.select(User, Agency.name).outerjoin(Agency, Agency.id == User.agency_id).order_by(User.active.desc(), User.username)
    ).all()
    locked = identity.locked_usernames(get_session())
    return render_template("admin/users.html", rows=rows, locked=locked, reset_form=ResetPasswordForm())


def _user_form(session: Session) -> UserForm:
    form = UserForm()
    names = session.scalars(sa.select(Agency.name).order_by(Agency.name)).all()
    form.agency.choices = [SelectChoice("", "—")] + [SelectChoice(name, name) for name in names]
    return form


@bp.route("/users/new", methods=["GET", "POST"])
@role_required("admin")
def new_user():
    form = _user_form(get_session())
    if form.validate_on_submit():
        agency_name = form.agency.data or None
        if form.role.data == "agency" and not agency_name:
            form.agency.errors.append(_("单位车辆管理员必须属于一个单位。"))
        elif form.role.data != "agency" and agency_name:
            form.agency.errors.append(_("审核员和管理员不属于任何单位。"))
        else:
            try:
                with transaction() as session:
                    user = users_service.add_user(
                        session,
                        form.username.data.strip(),
                        role=form.role.data,
                        password=form.password.data,
                        agency_name=agency_name,
                        email=form.email.data or None,
                        locale=form.locale.data,
                        actor_id=current_user.id,
                        must_change_password=True,
                    )
            except users_service.UserError as exc:
                form.username.errors.append(_("无法创建用户：%(detail)s", detail=str(exc)))
            else:
                flash(_("用户已创建：%(name)s", name=user.username), "success")
                return redirect(url_for("admin.users"))
    status = 400 if form.errors else 200
    return render_template("admin/user_form.html", form=form), status


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.post("/users/<int:user_id>/active")
@role_required("admin")
def toggle_active(user_id: int):
    if user_id == current_user.id:
        flash(_("不能停用自己的账户。"), "error")
        return redirect(url_for("admin.users"))
    with transaction() as session:
        user = _user(session, user_id)
        users_service.set_active(session, user, not user.active, actor_id=current_user.id)
    flash(_("已启用 %(name)s。", name=user.username) if user.active else _("已停用 %(name)s。", name=user.username), "success")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/password")
@role_required("admin")
def reset_password(user_id: int):
    """A new password chosen by the admin: the user's sessions end, lockouts lift, and the user must
    choose their own password at the next login."""
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        for message in form.password.errors:
            flash(message, "error")
        return redirect(url_for("admin.users"))
    try:
        with transaction() as session:
            user = _user(session, user_id)
            users_service.reset_password(session, user, form.password.data, actor_id=current_user.id)
    except users_service.UserError as exc:
        flash(_("密码未重置：%(detail)s", detail=str(exc)), "error")
        return redirect(url_for("admin.users"))
    flash(_("已重置 %(name)s 的密码。", name=user.username), "success")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/unlock")
@role_required("admin")
def unlock(user_id: int):
    """Lift the account's login lockouts (someone kept guessing its password)."""
    with transaction() as session:
        user = _user(session, user_id)
        users_service.unlock(session, user, actor_id=current_user.id)
    flash(_("已解除 %(name)s 的登录锁定。", name=user.username), "success")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/token")
@role_required("admin")
def issue_token(user_id: int):
    """A new API token, shown on this page once (only its digest is stored); the old one stops working."""
    try:
        with transaction() as session:
            token = users_service.issue_api_token(session, _user(session, user_id), actor_id=current_user.id)
    except users_service.UserError:
        abort(400, _("停用的账户不能获得 API 令牌。"))
    response = render_template("admin/token.html", user=_user(get_session(), user_id), token=token)
    return response, 200, {"Cache-Control": "no-store"}


# --- audit log -------------------------------------------------------------------------------------

# What each recorded action means, in the reader's language; an action not listed shows its code.
AUDIT_ACTIONS = {
    "agencies.load": _l("导入单位名录"),
    "agency.create": _l("新建单位"),
    "agency.update": _l("修改单位"),
    "user.add": _l("新建用户"),
    "user.activate": _l("启用用户"),
    "user.deactivate": _l("停用用户"),
    "user.password_reset": _l("重置密码"),
    "user.password_changed": _l("修改密码"),
    "user.token_issued": _l("签发 API 令牌"),
    "user.login": _l("登录"),
    "user.logout": _l("退出登录"),
    "user.login_failed": _l("登录失败"),
    "user.login_locked": _l("登录失败次数过多，账户暂时锁定"),
    "user.unlock": _l("解除账户锁定"),
    "rules.activate": _l("更换生效的规则包"),
    "exemption.request": _l("提交豁免申请"),
    "exemption.approve": _l("批准豁免申请"),
    "exemption.reject": _l("驳回豁免申请"),
    "catalogue.add": _l("添加无新能源车型目录条目"),
    "catalogue.update": _l("修改无新能源车型目录条目"),
    "import.commit": _l("导入车辆数据"),
}
# The words of the details' keys; a key not listed shows as it is.
AUDIT_DETAIL_KEYS = {
    "inserted": _l("新增"),
    "updated": _l("更新"),
    "unchanged": _l("未变化"),
    "name": _l("名称"),
    "role": _l("角色"),
    "pack": _l("规则包"),
    "acquisition_id": _l("车辆编号"),
    "vin": _l("车辆识别代号"),
    "reason_category": _l("原因类别"),
    "comment": _l("审核意见"),
    "category": _l("车辆类别"),
    "model_pattern": _l("车型"),
    "active": _l("生效"),
}


@bp.get("/audit")
@role_required("admin")
def audit_log():
    """Who did what, newest first (exemption decisions, accounts, registry loads, rule pack changes)."""
    query = sa.select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
    count = sa.select(sa.func.count()).select_from(AuditEntry)
    action = request.args.get("action", "").strip()
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
        count = count.where(AuditEntry.action.startswith(action, autoescape=True))
    page = paginate(
        get_session(), query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()), count,
        page_arg(), 100,
    )
    actions = {**AUDIT_ACTIONS, **reporting_pages.ACTION_LABELS}
    return render_template("admin/audit.html", page=page, action=action, actions=actions, detail_keys=AUDIT_DETAIL_KEYS)


# --- rule pack -------------------------------------------------------------------------------------


@bp.route("/rule-pack", methods=["GET", "POST"])
@role_required("admin")
def rule_pack():
    session = get_session()
    packs, broken = check_packs()
    form = RulePackForm()
    locale = str(get_locale())
    # Packs in force first; a demonstration pack is offered only under its own heading, never as policy.
    form.pack.choices = {
        str(_("规则包")): [SelectChoice(p.id, f"{p.id} — {p.title.get(locale) or p.title['zh']}") for p in packs.values() if not p.example],
        str(_("示例规则包（仅供演示，不是现行政策）")): [
            SelectChoice(p.id, f"{p.id} — {p.title.get(locale) or p.title['zh']}") for p in packs.values() if p.example
        ],
    }
    active = active_pack_id(session)
    if form.validate_on_submit() and form.pack.data != active and not form.confirm.data:
        form.confirm.errors.append(_("请勾选“确认更换”：更换规则包会改变所有单位的达标结果。"))
    elif form.validate_on_submit():
        try:
            with transaction() as tx:
                pack = set_active_pack(tx, form.pack.data, user_id=current_user.id)
        except PackError as exc:
            form.pack.errors.append(str(exc))
        else:
            flash(_("生效的规则包已改为 %(pack)s。", pack=pack.id), "success")
            return redirect(url_for("admin.rule_pack"))
    elif not form.is_submitted():
        form.pack.data = active
    return render_template("admin/rule_pack.html", form=form, packs=packs, broken=broken, active=active)
