"""Exemption pages: agencies request, reviewers decide; reviewers keep the no-NEV catalogue."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from fleet.base.db import get_session, transaction
from fleet.base.models import EXEMPTION_STATUSES, Agency, NoNevCatalogueEntry
from fleet.domain.exemptions import (
    ExemptionError,
    ExemptionRow,
    add_catalogue_entry,
    decide_exemption,
    decision_effects,
    list_requests,
    pending_count,
    request_blocker,
    request_exemption,
    update_catalogue_entry,
    visible_request,
)
from fleet.domain.exemptions import (
    catalogue as catalogue_rows,
)
from fleet.domain.vehicles import acquisition_detail
from fleet.web.auth import agency_scope, role_required
from fleet.web.dashboard import rule_title
from fleet.web.forms import CatalogueEntryForm, DecisionForm, ExemptionRequestForm
from fleet.web.params import id_arg, page_arg

bp = Blueprint("exemptions", __name__, url_prefix="/exemptions")

PER_PAGE = 50

MESSAGES = {
    "not_found": _l("找不到该记录。"),
    "is_nev": _l("新能源车辆无需申请豁免。"),
    "catalogue_exempt": _l("该车型已在无新能源车型目录中，无需申请即视为豁免。"),
    "already_open": _l("该车辆已有待审核或已批准的豁免申请。"),
    "not_in_scope": _l("该车辆不在任何规则的考核范围内，无需申请豁免。"),
    "exemptions_not_counted": _l("适用于该车辆的规则按比例考核，已为非新能源汽车留有余地，不计豁免：批准豁免也不会改变考核结果，因此无需申请。"),
    "unknown_reason_category": _l("请选择列表中的原因类别。"),
    "reason_too_short": _l("说明至少需要 5 个字。"),
    "not_pending": _l("该申请已经处理过。"),
    "comment_required": _l("驳回时请填写审核意见。"),
    "unknown_category": _l("请选择列表中的车辆类别。"),
    "pattern_too_broad": _l("车型过于宽泛：除 * 和 ? 外至少需要 2 个字符。"),
    "description_required": _l("请填写配置说明。"),
}


@bp.app_context_processor
def _pending_for_reviewers() -> dict:
    # A callable, so the count is only queried when the nav shows it (reviewers).
    return {"pending_exemptions": lambda: pending_count(get_session())}


def message(error: ExemptionError) -> str:
    return str(MESSAGES.get(error.code, error.code))


@bp.get("/")
@role_required()
def index():
    status = request.args.get("status")
    if status not in EXEMPTION_STATUSES:
        # Reviewers start with what waits for them; agencies with everything they asked.
        status = "pending" if current_user.role != "agency" and "status" not in request.args else None
    session = get_session()
    scope = agency_scope()
    agency_id = id_arg("agency") if scope is None else None
    page = list_requests(
        session,
        status=status,
        agency_id=agency_id,
        scope_agency_id=scope,
        page=page_arg(),
        per_page=PER_PAGE,
    )
    agencies = session.execute(sa.select(Agency.id, Agency.name).order_by(Agency.name)).all() if scope is None else []
    return render_template(
        "exemptions/index.html", page=page, status=status, statuses=EXEMPTION_STATUSES, agencies=agencies, agency_id=agency_id
    )


@bp.route("/new/<int:acquisition_id>", methods=["GET", "POST"])
@role_required("agency")
def new(acquisition_id: int):
    session = get_session()
    vehicle = acquisition_detail(session, acquisition_id, scope_agency_id=agency_scope())
    if vehicle is None:
        abort(404)
    blocker = request_blocker(session, vehicle.acquisition)
    if blocker:
        flash(message(ExemptionError(blocker)), "warning")
        return redirect(url_for("vehicles.detail", acquisition_id=acquisition_id))
    # The reason the agency already gave in its upload (未选用新能源原因) is where its request starts.
    form = ExemptionRequestForm(reason=vehicle.acquisition.exemption_reason)
    if form.validate_on_submit():
        try:
            with transaction() as tx:
                exemption = request_exemption(
                    tx,
                    acquisition_id,
                    user=current_user,
                    reason_category=form.reason_category.data,
                    reason=form.reason.data,
                    scope_agency_id=agency_scope(),
                )
        except ExemptionError as error:
            form.reason.errors.append(message(error))
        else:
            flash(_("豁免申请已提交，等待审核。"), "success")
            return redirect(url_for("exemptions.show", request_id=exemption.id))
    return render_template("exemptions/new.html", form=form, vehicle=vehicle)


@bp.get("/<int:request_id>")
@role_required()
def show(request_id: int):
    row = visible_request(get_session(), request_id, agency_scope())
    if row is None:
        abort(404)
    return _decision_page(row, DecisionForm())


def _decision_page(row: ExemptionRow, form: DecisionForm, status: int = 200):
    """The request; for a reviewer deciding it, what each decision does to the agency's figures."""
    deciding = current_user.role in ("reviewer", "admin")
    effects = decision_effects(get_session(), row.request) if deciding else []
    return render_template("exemptions/show.html", row=row, form=form, effects=effects, rule_title=rule_title), status


@bp.post("/<int:request_id>/decision")
@role_required("reviewer", "admin")
def decide(request_id: int):
    form = DecisionForm()
    row = visible_request(get_session(), request_id, None)
    if row is None:
        abort(404)
    if not form.validate_on_submit() or not (form.approve.data or form.reject.data):
        return _decision_page(row, form, 400)
    try:
        with transaction() as tx:
            decide_exemption(tx, request_id, user=current_user, approve=bool(form.approve.data), comment=form.comment.data)
    except ExemptionError as error:
        form.comment.errors.append(message(error))
        return _decision_page(row, form, 400)
    flash(_("已批准豁免申请。") if form.approve.data else _("已驳回豁免申请。"), "success")
    return redirect(url_for("exemptions.index"))


@bp.get("/catalogue")
@role_required()
def catalogue():
    """Everyone may read the catalogue (agencies need to know what is exempt); reviewers edit it."""
    return render_template("exemptions/catalogue.html", rows=catalogue_rows(get_session()), form=CatalogueEntryForm())


@bp.post("/catalogue")
@role_required("reviewer", "admin")
def add_entry():
    form = CatalogueEntryForm()
    if form.validate_on_submit():
        try:
            with transaction() as tx:
                add_catalogue_entry(
                    tx,
                    category=form.category.data,
                    model_pattern=form.model_pattern.data,
                    description=form.description.data,
                    reason=form.reason.data,
                    user=current_user,
                )
        except ExemptionError as error:
            form.model_pattern.errors.append(message(error))
        else:
            flash(_("目录条目已添加，匹配的车辆已标记为豁免。"), "success")
            return redirect(url_for("exemptions.catalogue"))
    return render_template("exemptions/catalogue.html", rows=catalogue_rows(get_session()), form=form), 400


@bp.route("/catalogue/<int:entry_id>", methods=["GET", "POST"])
@role_required("reviewer", "admin")
def edit_entry(entry_id: int):
    entry = get_session().get(NoNevCatalogueEntry, entry_id)
    if entry is None:
        abort(404)
    form = CatalogueEntryForm(obj=entry)
    if form.validate_on_submit():
        try:
            with transaction() as tx:
                update_catalogue_entry(
                    tx,
                    entry_id,
                    category=form.category.data,
                    model_pattern=form.model_pattern.data,
                    description=form.description.data,
                    reason=form.reason.data,
                    active=form.active.data,
                    user=current_user,
                )
        except ExemptionError as error:
            form.model_pattern.errors.append(message(error))
        else:
            flash(_("目录条目已保存，豁免标记已更新。"), "success")
            return redirect(url_for("exemptions.catalogue"))
    return render_template("exemptions/entry.html", form=form, entry=entry)
