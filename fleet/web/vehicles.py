"""Vehicle pages: the searchable, filterable list and one vehicle's detail with history and exemptions."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from fleet.base.db import get_session
from fleet.base.models import ACQUISITION_FIELDS, Agency
from fleet.base.vocab import is_nev
from fleet.domain.exemptions import request_blocker, requestable
from fleet.domain.timeliness import days_late
from fleet.domain.vehicles import (
    VehicleFilters,
    acquisition_detail,
    search_acquisitions,
)
from fleet.web.auth import agency_scope, role_required
from fleet.web.exemptions import MESSAGES
from fleet.web.forms import VehicleFilterForm
from fleet.web.params import MAX_ID, page_arg

bp = Blueprint("vehicles", __name__, url_prefix="/vehicles")

PER_PAGE = 50


def _filters(form: VehicleFilterForm) -> VehicleFilters:
    """The filters of the fields that validated; a bad field is shown with its error and ignored."""

    def value(field):
        return field.data if field.data not in ("", None) and not field.errors else None

    agency = value(form.agency) if "agency" in form else None
    nev = value(form.nev)
    return VehicleFilters(
        text=value(form.q),
        agency_id=int(agency) if agency else None,
        category=value(form.category),
        power=value(form.power),
        county=value(form.county),
        year=value(form.year),
        acquired_from=value(form.acquired_from),
        acquired_to=value(form.acquired_to),
        batch_id=value(form.batch),
        nev=None if nev is None else nev == "yes",
    )


@bp.get("/")
@role_required()
def index():
    session = get_session()
    scope = agency_scope()
    form = VehicleFilterForm(request.args)
    if scope is None:
        agencies = session.execute(sa.select(Agency.id, Agency.name).order_by(Agency.name)).all()
        form.agency.choices = [SelectChoice("", _("全部"))] + [SelectChoice(str(i), n) for i, n in agencies]
    else:
        del form.agency
    form.validate()
    if "agency" in form and form.agency.data and not (form.agency.data.isdigit() and len(form.agency.data) <= 10 and int(form.agency.data) <= MAX_ID):
        form.agency.errors.append(_("没有这个单位。"))
    page = search_acquisitions(
        session,
        _filters(form),
        scope_agency_id=scope,
        page=page_arg(),
        per_page=PER_PAGE,
    )
    status = 400 if form.errors else 200
    # The list offers a request where the vehicle's page would (an agency's own page of at most PER_PAGE).
    offered = requestable(session, [row.acquisition for row in page.items]) if current_user.role == "agency" else set()
    return render_template("vehicles/index.html", form=form, page=page, is_nev=is_nev, requestable=offered), status


@bp.get("/<int:acquisition_id>")
@role_required()
def detail(acquisition_id: int):
    # Another agency's vehicle answers 404 like a missing one, so its existence does not leak.
    vehicle = acquisition_detail(get_session(), acquisition_id, scope_agency_id=agency_scope())
    if vehicle is None:
        abort(404)
    blocker = request_blocker(get_session(), vehicle.acquisition)
    can_request = current_user.role == "agency" and blocker is None
    # Said on the page when a request would change nothing; the other reasons show there already.
    no_request_because = MESSAGES[blocker] if blocker in ("not_in_scope", "exemptions_not_counted") else None
    acquisition = vehicle.acquisition
    return render_template(
        "vehicles/detail.html",
        vehicle=vehicle,
        fields=ACQUISITION_FIELDS,
        can_request=can_request,
        days_late=days_late(acquisition.acquired_on, acquisition.reported_on, current_app.config["REPORTING_DEADLINE_DAYS"]),
        no_request_because=no_request_because,
        is_nev=is_nev,
    )

