"""Reviewers read each monthly message in the browser before (or after) it goes out."""

from __future__ import annotations

import datetime as dt
import io

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file
from flask_babel import gettext as _

from fleet.base.db import get_session
from fleet.base.periods import Period
from fleet.read.mail.recipients import Delivery, planned_deliveries
from fleet.read.mail.records import sent_keys
from fleet.read.mail.render import SummaryWriter
from fleet.web.auth import role_required
from fleet.web.reporting import due_day
from rules.active import active_pack

bp = Blueprint("mail_preview", __name__, url_prefix="/mail")

PARTS = ("html", "text", "xlsx")


def _month() -> Period:
    raw = request.args.get("month")
    if not raw:
        first = dt.date.today().replace(day=1)
        return Period.parse_month((first - dt.timedelta(days=1)).strftime("%Y-%m"))
    try:
        return Period.parse_month(raw)
    except ValueError:
        abort(400, description=_("月份格式应为 YYYY-MM：%(value)s", value=raw))


@bp.get("/preview")
@role_required("reviewer", "admin")
def index():
    month = _month()
    month_key = month.label
    session = get_session()
    deliveries, silent = planned_deliveries(session)
    sent = sent_keys(session, month_key)
    return render_template(
        "mail_preview/index.html",
        month_key=month_key,
        deliveries=deliveries,
        sent={d for d in deliveries if (d.recipient.casefold(), d.kind) in sent},
        silent=silent,
    )


@bp.get("/preview/message")
@role_required("reviewer", "admin")
def message():
    month = _month()
    part = request.args.get("part", "html")
    if part not in PARTS:
        abort(400, description=_("未知的邮件部分：%(part)s", part=part))
    session = get_session()
    deliveries, _silent = planned_deliveries(session)
    wanted = (request.args.get("kind", ""), request.args.get("recipient", "").casefold())
    delivery: Delivery | None = next((d for d in deliveries if (d.kind, d.recipient.casefold()) == wanted), None)
    if delivery is None:
        abort(404)
    writer = SummaryWriter(session, active_pack(session), month, current_app.config["REPORTING_DEADLINE_DAYS"], due_day())
    if part == "xlsx":
        attachment = writer.attachment(delivery)
        return send_file(
            io.BytesIO(attachment.content),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            as_attachment=True,
            download_name=attachment.name,
        )
    content = writer.content(delivery)
    if part == "text":
        return Response(content.text, mimetype="text/plain")
    return Response(content.html, mimetype="text/html")

