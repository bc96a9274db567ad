"""Purchase plan pages: template, upload with findings and the pre-check, a plan against reality, history,
and the reviewer's decisions on exemptions asked for before the purchase.

Agency users upload and see their own agency's plans; reviewers upload for any agency (the file names
it) and decide the exemption requests a plan carries.
"""

from __future__ import annotations

import io
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, StringField, SubmitField

from fleet import jobs
from fleet.base.db import get_session
from fleet.base.models import PlanLine, PurchasePlan, UploadFile
from fleet.domain.exemptions import ExemptionError
from fleet.domain.plans import check_plan, decide_plan_exemption, forecast, plan_progress, store_plan
from fleet.read.forecasts import advice
from fleet.web.auth import agency_scope, can_see_agency, role_required
from imports.annotate import annotate_workbook
from imports.package import UnusableFile
from imports.plans import write_plan_template
from imports.report import ValidationReport
from rules.active import active_pack

bp = Blueprint("plans", __name__, url_prefix="/plans")

UPLOADERS = ("agency", "reviewer", "admin")
PLAN_STATUSES = {"current": _l("现行"), "replaced": _l("已被替换"), "invalid": _l("有错误，未生效")}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class PlanUploadForm(FlaskForm):
    file = FileField(_l("购置计划（.xlsx）"), validators=[FileRequired(_l("请选择要上传的文件。"))])
    submit = SubmitField(_l("上传并核查"))


class DecisionForm(FlaskForm):
    decision = HiddenField()
    comment = StringField(_l("意见"))
    submit = SubmitField(_l("提交"))


def plan_status(status: str) -> str:
    return str(PLAN_STATUSES.get(status, status))


@bp.context_processor
def _helpers() -> dict:
    return {"plan_status": plan_status}


def _visible_plan(plan_id: int) -> PurchasePlan:
    """The plan when the user may see it; 404 otherwise, so other agencies' plans are not revealed."""
    plan = get_session().get(PurchasePlan, plan_id)
    if plan is None or (plan.agency_id is None and current_user.role == "agency" and plan.uploaded_by_id != current_user.id):
        abort(404)
    if plan.agency_id is not None and not can_see_agency(plan.agency_id):
        abort(404)
    return plan


def _plans():
    session = get_session()
    query = sa.select(PurchasePlan).order_by(PurchasePlan.uploaded_at.desc(), PurchasePlan.id.desc()).limit(200)
    scope = agency_scope()
    if scope is not None:
        query = query.where(sa.or_(PurchasePlan.agency_id == scope, PurchasePlan.uploaded_by_id == current_user.id))
    return list(session.scalars(query))


@bp.get("/")
@role_required(*UPLOADERS)
def index(form: PlanUploadForm | None = None, error: str | None = None, status: int = 200):
    return render_template("plans/index.html", form=form or PlanUploadForm(), plans=_plans(), error=error), status


@bp.post("/")
@role_required(*UPLOADERS)
def upload():
    form = PlanUploadForm()
    if not form.validate_on_submit():
        return index(form, status=400)
    session = get_session()
    content = form.file.data.read()
    file_name = form.file.data.filename or "plan.xlsx"
    pack = active_pack(session)
    with jobs.temporary_copy(content, file_name) as path:
        try:
            check = check_plan(session, path, pack, file_name=file_name, max_bytes=current_app.config["MAX_CONTENT_LENGTH"], user=current_user)
        except UnusableFile as exc:
            return index(form, error=exc.message, status=422)
    plan = store_plan(session, check, content, pack, user=current_user, file_name=file_name)
    session.commit()
    if plan.version is None:
        flash(_("计划有错误，未生效：请下载标注了错误的工作簿，改正后重新上传。"), "error")
    else:
        flash(_("已保存为第 %(version)s 版购置计划。", version=plan.version), "success")
    return redirect(url_for(".show", plan_id=plan.id))


@bp.get("/<int:plan_id>")
@role_required(*UPLOADERS)
def show(plan_id: int):
    plan = _visible_plan(plan_id)
    session = get_session()
    report = ValidationReport.from_record(plan.report) if plan.report else None
    progress = plan_progress(session, plan) if plan.version is not None else None
    projections = forecast(session, active_pack(session), plan.year, agency_id=plan.agency_id) if plan.status == "current" else []
    history = (
        list(session.scalars(
            sa.select(PurchasePlan)
            .where(PurchasePlan.agency_id == plan.agency_id, PurchasePlan.year == plan.year, PurchasePlan.version.is_not(None))
            .order_by(PurchasePlan.version.desc())
        ))
        if plan.agency_id is not None else []
    )
    lines = {line.id: line for line in plan.lines}
    return render_template(
        "plans/show.html",
        plan=plan,
        report=report,
        progress=progress,
        lines=lines,
        projections=projections,
        history=history,
        advice=lambda p: advice(p, str(get_locale())),
        decision_form=DecisionForm(),
    )


@bp.post("/lines/<int:line_id>/decision")
@role_required("reviewer", "admin")
def decide(line_id: int):
    form = DecisionForm()
    if not form.validate_on_submit() or form.decision.data not in ("approve", "reject"):
        abort(400)
    session = get_session()
    line = session.get(PlanLine, line_id)
    if line is None:
        abort(404)
    try:
        decide_plan_exemption(session, line_id, user=current_user, approve=form.decision.data == "approve", comment=form.comment.data)
        session.commit()
        flash(_("已记录决定；计划内的车辆购置上报时将自动适用。"), "success")
    except ExemptionError as exc:
        session.rollback()
        messages = {"comment_required": _("驳回时须填写意见。"), "not_pending": _("该申请已有决定。"), "not_found": _("找不到该申请。")}
        flash(messages.get(exc.code, exc.code), "error")
    return redirect(url_for(".show", plan_id=line.plan_id))


@bp.get("/<int:plan_id>/annotated")
@role_required(*UPLOADERS)
def annotated(plan_id: int):
    """The uploaded plan with every flagged cell coloured and commented, and a list of findings."""
    plan = _visible_plan(plan_id)
    if not plan.report:
        abort(404)
    content = get_session().scalar(sa.select(UploadFile.content).where(UploadFile.sha256 == plan.sha256))
    data = annotate_workbook(content, ValidationReport.from_record(plan.report))
    name = f"{Path(plan.file_name).stem}-{_('核查结果')}.xlsx"
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=name)


@bp.get("/<int:plan_id>/original")
@role_required(*UPLOADERS)
def original(plan_id: int):
    plan = _visible_plan(plan_id)
    content = get_session().scalar(sa.select(UploadFile.content).where(UploadFile.sha256 == plan.sha256))
    return send_file(io.BytesIO(content), mimetype=XLSX, as_attachment=True, download_name=plan.file_name)


@bp.get("/template")
@role_required(*UPLOADERS)
def template():
    out = io.BytesIO()
    write_plan_template(out)
    out.seek(0)
    return send_file(out, mimetype=XLSX, as_attachment=True, download_name=_("年度车辆购置计划模板") + ".xlsx")

