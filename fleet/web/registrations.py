"""The registration record's pages: loading an extract and deciding owners (reviewers), and the
findings of reconciliation (reviewers see all and answer them; an agency sees its own)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

from fleet import jobs
from fleet.base.db import get_session
from fleet.base.models import Agency, RegistrationExtract
from fleet.base.periods import Period
from fleet.domain.registrations.load import ExtractLoad, load_extract
from fleet.domain.registrations.owners import OwnerError, decide_owner, unmatched_owners
from fleet.domain.registrations.reconcile import FINDING_CODES, FINDING_LABELS, ReviewError, coverage, reconcile, review_finding
from fleet.web.auth import agency_scope, role_required
from fleet.web.params import id_arg, int_arg
from fleet.web.reporting import due_day as reporting_due_day
from imports.package import UnusableFile, check_package

bp = Blueprint("registrations", __name__, url_prefix="/registrations")
REVIEWERS = ("reviewer", "admin")


@bp.app_template_global("finding_label")
def finding_label(code: str) -> str:
    return str(FINDING_LABELS.get(code, code))


class ExtractForm(FlaskForm):
    file = FileField(_l("登记信息文件"), validators=[FileRequired(_l("请选择要上传的文件。"))])


def _index(form: ExtractForm, result: ExtractLoad | None = None, error: str | None = None, status: int = 200):
    session = get_session()
    extracts = session.scalars(sa.select(RegistrationExtract).order_by(RegistrationExtract.loaded_at.desc())).all()
    return render_template(
        "registrations/index.html", form=form, result=result, error=error, extracts=extracts,
        coverage=coverage(session), waiting=len(unmatched_owners(session)),
    ), status


@bp.get("/")
@role_required(*REVIEWERS)
def index():
    return _index(ExtractForm())


@bp.post("/")
@role_required(*REVIEWERS)
def upload():
    form = ExtractForm()
    if not form.validate_on_submit():
        return _index(form, status=400)
    content = form.file.data.read()
    file_name = form.file.data.filename or "extract.xlsx"
    session = get_session()
    with jobs.temporary_copy(content, file_name) as path:
        try:
            check_package(path, max_bytes=current_app.config["MAX_CONTENT_LENGTH"])
            result = load_extract(session, path, file_name=file_name, user_id=current_user.id)
        except UnusableFile as exc:
            session.rollback()
            return _index(form, error=exc.message, status=422)
    if result.ok:
        session.commit()
    else:
        session.rollback()
    return _index(ExtractForm(), result=result, status=200 if result.ok else 422)


@bp.get("/owners")
@role_required(*REVIEWERS)
def owners():
    session = get_session()
    agencies = session.execute(sa.select(Agency.id, Agency.name).order_by(Agency.name)).all()
    return render_template("registrations/owners.html", owners=unmatched_owners(session), agencies=agencies)


@bp.post("/owners")
@role_required(*REVIEWERS)
def decide():
    session = get_session()
    key = request.form.get("owner_key", "")
    agency_id = None if request.form.get("not_ours") else request.form.get("agency_id", type=int)
    if agency_id is None and not request.form.get("not_ours"):
        flash(_("请选择单位，或标记为“非本市监管单位”。"), "warning")
        return redirect(url_for(".owners"))
    try:
        decide_owner(session, key, agency_id=agency_id, user_id=current_user.id)
    except OwnerError:
        abort(404)
    session.commit()
    flash(_("已记住该所有人的处理结果，以后载入的登记信息同样适用。"), "success")
    return redirect(url_for(".owners"))


def _period() -> Period:
    month = request.args.get("month", "").strip()
    if month:
        try:
            return Period.parse_month(month)
        except ValueError:
            flash(_("月份应写作 YYYY-MM，已显示今年。"), "warning")
    year = int_arg("year", low=2000, high=2100)
    return Period.year(year if year is not None else dt.date.today().year)


@bp.get("/findings")
@role_required("agency", *REVIEWERS)
def findings():
    session = get_session()
    period = _period()
    agency_id = agency_scope() if current_user.role == "agency" else id_arg("agency")
    code = request.args.get("code") if request.args.get("code") in FINDING_CODES else None
    result = reconcile(session, period, today=dt.date.today(), due_day=reporting_due_day(), agency_id=agency_id)
    shown = [f for f in result.findings if code is None or f.code == code]
    agencies = [] if current_user.role == "agency" else session.execute(sa.select(Agency.id, Agency.name).order_by(Agency.name)).all()
    return render_template(
        "registrations/findings.html", result=result, findings=shown, code=code, labels=FINDING_LABELS,
        period=period, agency_id=agency_id, agencies=agencies,
    )


@bp.post("/findings/review")
@role_required(*REVIEWERS)
def review():
    session = get_session()
    try:
        review_finding(
            session, request.form.get("code", ""), request.form.get("vin", ""), status=request.form.get("status", ""),
            comment=request.form.get("comment"), user_id=current_user.id,
        )
    except ReviewError:
        flash(_("标记为“已说明”时须填写说明。"), "warning")
        return redirect(_back())
    session.commit()
    flash(_("已记录审核意见。"), "success")
    return redirect(_back())


def _back() -> str:
    """The findings page the form was sent from (only ever a findings page of this site)."""
    back = request.form.get("back", "")
    findings_page = url_for(".findings")
    return back if back.startswith(findings_page) else findings_page
