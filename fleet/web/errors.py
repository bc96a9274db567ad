"""Error answers: pages in the layout for people, {"error": {"code", "message"}} for the JSON API."""

from __future__ import annotations

import logging
import uuid

from flask import (
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    render_template,
    request,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from fleet.web.params import BadParameter

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

# Stable codes for API clients; the message is for people and follows the language.
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    429: "too_many_requests",
    500: "internal_error",
}


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def json_error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify(error={"code": code, "message": message}), status


def _message(status: int) -> str:
    messages = {
        400: _("请求无效。"),
        401: _("请先登录。"),
        403: _("您没有权限访问此页面。"),
        404: _("找不到该页面或记录。"),
        405: _("不支持此请求方法。"),
        413: _("上传的文件太大：最大 %(mb)s MB。请拆分文件后再上传。", mb=_max_upload_mb()),
        429: _("请求过于频繁，请稍后再试。"),
        500: _("服务器内部错误，已记录。请稍后再试。"),
    }
    return messages.get(status, _("请求无法完成。"))


def _max_upload_mb() -> int:
    return current_app.config.get("MAX_UPLOAD_MB", 0)


def error_response(status: int, message: str | None = None):
    """The answer for an error status: JSON under /api/, a page in the layout elsewhere."""
    message = message or _message(status)
    if is_api_request():
        return json_error(status, _CODES.get(status, "error"), message)
    return render_template("errors/error.html", status=status, message=message), status


def _rollback() -> None:
    # A failed statement leaves the request's transaction aborted (PostgreSQL refuses everything
    # after it), and the error page itself reads the database (the user, the navigation).
    session = g.get("db_session")
    if session is not None:
        session.rollback()


def _http_error(exc: HTTPException) -> Response:
    _rollback()
    status = exc.code or 500
    # An abort(status, description) from our views carries a message for people; werkzeug's default
    # descriptions are English boilerplate, so those are replaced by ours.
    custom = exc.description if exc.description != type(exc).description else None
    if status == 500:
        # An id the user can quote, logged with the traceback (Flask logged it before; this line ties
        # the two together in the request's log line too).
        g.error_id = uuid.uuid4().hex[:12]
        original = getattr(exc, "original_exception", None)
        log.error("internal error %s on %s %s", g.error_id, request.method, request.path, exc_info=original)
        custom = _("服务器内部错误，已记录（错误编号 %(id)s）。请稍后再试。", id=g.error_id)
    response = make_response(error_response(status, custom))
    for name, value in exc.get_headers():
        if name.lower() in ("allow", "retry-after"):
            response.headers[name] = value
    return response


def _bad_parameter(exc: BadParameter) -> Response:
    _rollback()
    if is_api_request():
        return make_response(json_error(400, "bad_parameter", exc.message))
    return make_response(error_response(400, exc.message))


def _csrf_error(_exc: CSRFError) -> Response:
    return make_response(error_response(400, _("表单已过期或缺少安全令牌，请刷新页面后重试。")))


def init_app(app: Flask) -> None:
    # Unhandled exceptions reach the HTTPException handler as InternalServerError after Flask has
    # logged them, so the user sees the 500 page and never a traceback.
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(BadParameter, _bad_parameter)
    app.register_error_handler(HTTPException, _http_error)
