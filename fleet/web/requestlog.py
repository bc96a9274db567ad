"""One log line per request: method, path (without the query), status, duration, user, agency,
source address, and the error id of a fault."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from flask_login import current_user

from fleet.web.auth import client_address

log = logging.getLogger("fleet.requests")


def _start() -> None:
    g.request_started = time.perf_counter()


def _log(response: Response) -> Response:
    started = g.get("request_started")
    user = current_user if g.get("_login_user") is not None and current_user.is_authenticated else None
    log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "event": "request",
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started is not None else None,
            "user": user.id if user is not None else None,
            "agency": user.agency_id if user is not None else None,
            "address": client_address(),
            "error_id": g.get("error_id"),
        },
    )
    return response


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_log)
