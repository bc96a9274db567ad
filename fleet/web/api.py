"""The JSON API (/api/v1): acquisitions, compliance and upload validation, with the pages' permissions.

Clients authenticate with the session cookie or `Authorization: Bearer <token>`; errors are always
{"error": {"code", "message"}}, never an HTML page.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Flask, abort, current_app, jsonify, make_response, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from fleet.base.config import max_upload_bytes
from fleet.base.db import get_session
from fleet.base.periods import Period
from fleet.base.vocab import CATEGORIES, COUNTIES, POWER_TYPES
from fleet.domain import reporting
from fleet.domain.agency_names import match_agency, not_registered
from fleet.domain.plans import forecast, forecast_json
from fleet.domain.vehicles import (
    VehicleFilters,
    acquisition_record,
    search_acquisitions,
)
from fleet.web.auth import agency_scope, csrf, public, role_required
from fleet.web.errors import json_error
from fleet.web.params import BadParameter, int_arg, page_arg, term_arg
from fleet.web.reporting import due_day as reporting_due_day
from imports.package import UnusableFile
from imports.pipeline import validate_file
from rules.active import active_pack
from rules.engine import evaluate
from rules.results import compliance_json

bp = Blueprint("api", __name__, url_prefix="/api/v1")
OPENAPI = Path(__file__).with_name("openapi.yaml")
MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 100


@bp.before_request
def _csrf_for_cookie_sessions():
    # A script with a Bearer token is not a browser and cannot be tricked into a cross-site post; a
    # request riding on the session cookie must carry the CSRF token like any form.
    bearer = request.headers.get("Authorization", "").lower().startswith("bearer ")
    if current_app.config.get("WTF_CSRF_ENABLED", True) and not bearer:
        csrf.protect()


@bp.get("/acquisitions")
@role_required()
def acquisitions():
    filters = VehicleFilters(
        agency_name=request.args.get("agency", "").strip() or None,
        category=term_arg("category", CATEGORIES),
        power=term_arg("power", POWER_TYPES),
        county=term_arg("county", COUNTIES),
        year=int_arg("year", low=2000, high=2100),
        vin=request.args.get("vin", "").strip() or None,
    )
    page = search_acquisitions(
        get_session(),
        filters,
        scope_agency_id=agency_scope(),
        page=page_arg(),
        per_page=int_arg("per_page", DEFAULT_PER_PAGE, low=1, high=MAX_PER_PAGE),
    )
    return jsonify(
        total=page.total,
        page=page.page,
        per_page=page.per_page,
        items=[acquisition_record(row.acquisition, row.agency_name) for row in page.items],
    )


def _required_year() -> int:
    year = int_arg("year", low=2000, high=2100)
    if year is None:
        raise BadParameter(_("缺少参数 year。"))
    return year


def _selected_agency(session: Session) -> int | None:
    """The agency named by `agency`, else the agency user's own, else every agency (None).

    Another agency's name answers like an unknown one, so agency users learn nothing about it (nor are
    they offered other agencies' names)."""
    agency_id = agency_scope()
    name = request.args.get("agency", "").strip()
    if not name:
        return agency_id
    match = match_agency(session, name)
    if agency_id is not None and match.agency_id != agency_id:
        abort(make_response(*json_error(404, "not_found", _("未登记的单位：%(name)s", name=name))))
    if not match.found:
        abort(make_response(*json_error(404, "not_found", not_registered(match))))
    return match.agency_id


@bp.get("/compliance")
@role_required()
def compliance():
    year = _required_year()
    month = int_arg("month", low=1, high=12)
    period = Period.month(year, month) if month else Period.year(year)
    session = get_session()
    agency_id = _selected_agency(session)
    pack = active_pack(session)
    return jsonify(compliance_json(pack, period, evaluate(session, pack, period, agency_id=agency_id)))


@bp.get("/reporting")
@role_required()
def reporting_status():
    """The month's reporting states, as `reporting status --json`: an agency user gets its own entry."""
    raw = request.args.get("month", "").strip()
    try:
        month = Period.parse_month(raw)
    except ValueError:
        raise BadParameter(_("参数 month 必须写作 YYYY-MM，收到 %(value)s。", value=raw)) from None
    session = get_session()
    due_day = reporting_due_day()
    states = reporting.month_states(session, month, today=dt.date.today(), due_day=due_day, agency_id=agency_scope())
    zone = current_app.config["TIMEZONE"]
    return jsonify(
        month=month.label,
        due=reporting.due_date(month, due_day).isoformat(),
        agencies=[state.as_json(zone) for state in states],
    )


@bp.get("/forecast")
@role_required()
def forecast_view():
    year = _required_year()
    session = get_session()
    agency_id = _selected_agency(session)
    return jsonify(forecast_json(year, forecast(session, active_pack(session), year, agency_id=agency_id)))


@bp.post("/uploads")
@role_required("agency", "reviewer")
def uploads():
    """Validate a file (a dry run: nothing is stored) and return its report."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise BadParameter(_("请在表单字段 file 中上传一个文件。"))
    file_name = upload.filename
    with tempfile.TemporaryDirectory(prefix="fleet-api-") as folder:
        path = Path(folder) / (secure_filename(file_name) or "upload.xlsx")
        upload.save(path)
        try:
            report = validate_file(
                get_session(), path, user=current_user._get_current_object(), file_name=file_name,
                max_bytes=max_upload_bytes(current_app.config),
            )
        except UnusableFile as exc:
            # internal_error is a fault of ours (logged with the id its message gives), not of the file.
            return json_error(500 if exc.code == "internal_error" else 422, exc.code, exc.message)
    return jsonify(report.as_json())


@cache
def _openapi(path: Path, _mtime: float) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def openapi_document() -> dict[str, Any]:
    return _openapi(OPENAPI, OPENAPI.stat().st_mtime)


@bp.get("/openapi.json")
@public
def openapi():
    """The API's description; it holds no data, so scripts may read it before they authenticate."""
    return jsonify(openapi_document())


def init_app(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)
