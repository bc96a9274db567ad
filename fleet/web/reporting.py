"""The monthly reporting pages: the reviewers' grid of months × agencies, and one agency's month with
its acquisitions, the submission (提交本月报送 / 零报告) and the review (accept, return, reopen)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SubmitField, TextAreaField
from wtforms.validators import Length, Optional

from fleet.base.db import get_session
from fleet.base.labels import reporting_state_label
from fleet.base.models import Agency
from fleet.base.periods import Period
from fleet.base.text import _, _l
from fleet.base.vocab import AGENCY_KINDS, COUNTIES
from fleet.domain import reporting
from fleet.web.auth import can_see_agency, role_required
from fleet.web.labels import term_label

bp = Blueprint("reporting", __name__, url_prefix="/reporting")

# Months the grid shows side by side, ending with the month chosen.
GRID_MONTHS = 6
# Acquisitions a month's page lists; the vehicle list has the rest.
LISTED = 200



class SubmitForm(FlaskForm):
    submit = SubmitField(_l("提交本月报送"))


class NilForm(FlaskForm):
    confirm = BooleanField(_l("我确认本单位本月没有新增、更新车辆"))
    submit = SubmitField(_l("报送零报告"))


class ReviewForm(FlaskForm):
    comment = TextAreaField(_l("审核意见"), validators=[Optional(), Length(max=2000)])
    accept = SubmitField(_l("审核通过"))
    send_back = SubmitField(_l("退回"))


class ReopenForm(FlaskForm):
    reason = TextAreaField(_l("重新开放的原因"), validators=[Optional(), Length(max=2000)])
    submit = SubmitField(_l("重新开放"))


ACTION_LABELS = {
    "reporting.submit": _l("报送"),
    "reporting.accept": _l("审核通过"),
    "reporting.return": _l("退回"),
    "reporting.reopen": _l("重新开放"),
}


def shown_time(moment: dt.datetime | None) -> str:
    """A stored time as the users read it: in TIMEZONE, to the minute."""
    local = reporting.local_time(moment, _zone())
    return local.strftime("%Y-%m-%d %H:%M") if local else "—"


@bp.app_context_processor
def _labels() -> dict:
    return {"reporting_state_label": reporting_state_label, "shown_time": shown_time}


def due_day() -> int:
    return reporting.due_day_in_force(get_session(), current_app.config["REPORTING_DUE_DAY"])


def _today() -> dt.date:
    return dt.date.today()


def _month(raw: str | None, default: Period) -> Period:
    if not raw:
        return default
    try:
        return Period.parse_month(raw)
    except ValueError:
        abort(404)


def _zone() -> str:
    return current_app.config["TIMEZONE"]


@bp.get("/")
@role_required()
def index():
    """Reviewers: the grid. An agency user: its own months."""
    if current_user.role == "agency":
        return redirect(url_for(".agency", agency_id=current_user.agency_id))
    today = _today()
    latest = reporting.recent_months(today, 1)[0]
    month = _month(request.args.get("month"), latest)
    county = COUNTIES.lookup(request.args.get("county", "").strip()) if request.args.get("county") else None
    kind = AGENCY_KINDS.lookup(request.args.get("kind", "").strip()) if request.args.get("kind") else None
    state = request.args.get("state") if request.args.get("state") in reporting.STATES else None
    grid = reporting.state_grid(get_session(), month, GRID_MONTHS, today=today, due_day=due_day(), county=county, kind=kind)
    return render_template(
        "reporting/index.html",
        month=month,
        months=grid.months,
        rows=[s for s in grid.chosen if state is None or s.state == state],
        grid=grid.by_month,
        summary=reporting.summary(grid.chosen),
        due=grid.chosen_due,
        county=county,
        kind=kind,
        state=state,
        states=reporting.STATES,
        counties=[(c, term_label(c)) for c in COUNTIES.values],
        kinds=[(k, term_label(k)) for k in AGENCY_KINDS.values],
    )



def _visible_agency(agency_id: int) -> Agency:
    if not can_see_agency(agency_id):
        abort(404)
    agency = get_session().get(Agency, agency_id)
    if agency is None:
        abort(404)
    return agency


@bp.get("/agencies/<int:agency_id>")
@role_required()
def agency(agency_id: int):
    """An agency's months (the last twelve) and their states."""
    record = _visible_agency(agency_id)
    history = reporting.agency_history(get_session(), record, reporting.recent_months(_today(), 12), today=_today(), due_day=due_day())
    return render_template("reporting/agency.html", agency=record, history=history)


@bp.get("/agencies/<int:agency_id>/<month>")
@role_required()
def month(agency_id: int, month: str):
    """One agency's month: its state, the acquisitions it covers, and what the user may do about it."""
    record = _visible_agency(agency_id)
    period = _month(month, None)
    detail = reporting.month_detail(get_session(), record, period, today=_today(), due_day=due_day(), listed=LISTED)
    if detail is None:
        abort(404)
    state = detail.state
    return render_template(
        "reporting/month.html",
        agency=record,
        state=state,
        acquisitions=detail.acquisitions,
        listed=LISTED,
        history=detail.history,
        submit_form=SubmitForm(),
        nil_form=NilForm(),
        review_form=ReviewForm(),
        reopen_form=ReopenForm(),
        can_submit=current_user.role in ("agency", "reviewer") and state.state in reporting.OWED and period.end < _today(),
        can_review=current_user.role in reporting.REVIEWER_ROLES,
        action_labels={key: str(label) for key, label in ACTION_LABELS.items()},
    )


def _act(agency_id: int, month: str, action) -> object:
    record = _visible_agency(agency_id)
    period = _month(month, None)
    session = get_session()
    try:
        action(session, record, period)
    except reporting.ReportingRefused as exc:
        session.rollback()
        flash(exc.message, "error")
    else:
        session.commit()
        flash(_("已保存。"), "success")
    return redirect(url_for(".month", agency_id=record.id, month=period.label))


def _user():
    return current_user._get_current_object()


@bp.post("/agencies/<int:agency_id>/<month>/submit")
@role_required("agency", "reviewer")
def submit(agency_id: int, month: str):
    if not SubmitForm().validate_on_submit():
        abort(400)
    return _act(
        agency_id, month,
        lambda session, agency, period: reporting.submit(session, agency, period, user=_user(), today=_today(), due_day=due_day()),
    )  # fmt: skip


@bp.post("/agencies/<int:agency_id>/<month>/nil")
@role_required("agency", "reviewer")
def nil(agency_id: int, month: str):
    """A zero report, only with the explicit confirmation that nothing was acquired."""
    _visible_agency(agency_id)
    form = NilForm()
    if not form.validate_on_submit():
        abort(400)
    if not form.confirm.data:
        flash(_("报送零报告前请勾选确认：本单位本月没有新增、更新车辆。"), "error")
        return redirect(url_for(".month", agency_id=agency_id, month=month))
    return _act(
        agency_id, month,
        lambda session, agency, period: reporting.submit(session, agency, period, user=_user(), nil=True, today=_today(), due_day=due_day()),
    )  # fmt: skip


@bp.post("/agencies/<int:agency_id>/<month>/review")
@role_required("reviewer", "admin")
def review(agency_id: int, month: str):
    form = ReviewForm()
    if not form.validate_on_submit():
        abort(400)
    action = reporting.accept if form.accept.data else reporting.return_report
    return _act(
        agency_id, month,
        lambda session, agency, period: action(session, agency, period, user=_user(), comment=form.comment.data, today=_today(), due_day=due_day()),
    )  # fmt: skip


@bp.post("/agencies/<int:agency_id>/<month>/reopen")
@role_required("reviewer", "admin")
def reopen(agency_id: int, month: str):
    form = ReopenForm()
    if not form.validate_on_submit():
        abort(400)
    return _act(
        agency_id, month,
        lambda session, agency, period: reporting.reopen(session, agency, period, user=_user(), comment=form.reason.data, today=_today(), due_day=due_day()),
    )  # fmt: skip
