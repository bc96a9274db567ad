"""Browser code and assets served by the app itself: the intranet has no internet, so no CDN.

plotly.js is plotly's official "basic" bundle (bar, scatter and pie: the dashboards draw bars and
lines), installed from the npm registry by `make setup` (package.json pins it to the plotly.js version
of the plotly Python package that builds the figures), never a copy in the repository. The full
plotly.js inside the Python package is 4.8 MB (1.45 MB gzipped), the basic bundle 1.2 MB (0.4 MB
gzipped): the first dashboard view must stay under 1.5 MB, and an intranet served over plain HTTP gets
gzip, not brotli. Its version is in the address, so browsers may keep it for a year and an upgrade
changes the address. The app's own static files carry a digest of their content in the address (?v=…)
for the same reason.

Pages and scripts go out compressed (Flask-Compress). plotly.js is compressed once per process at the
strongest settings, not on every request as Flask-Compress would (it compresses a file streamed from
disk at each request, and keeps no cache that could not also serve stale pages).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import brotli
from flask import Blueprint, Flask, Response, abort, current_app, request, url_for
from flask_compress import Compress

from fleet.web.auth import public, role_required

bp = Blueprint("vendor", __name__, url_prefix="/vendor")

ONE_YEAR = 365 * 24 * 3600
# Brotli at quality 9 compresses plotly.js to 0.36 MB in a tenth of a second; 11 gains 30 kB for 2.4 s.
BROTLI_QUALITY = 9


PLOTLY_BUNDLE = Path(__file__).resolve().parents[2] / "node_modules" / "plotly.js-basic-dist-min"


class MissingAsset(RuntimeError):
    """The browser code is not installed: the app would serve pages whose charts never draw."""


def plotly_js_path() -> Path:
    return PLOTLY_BUNDLE / "plotly-basic.min.js"


@cache
def plotly_js_version() -> str:
    return json.loads((PLOTLY_BUNDLE / "package.json").read_text(encoding="utf-8"))["version"]


@cache
def _plotly_js(encoding: str) -> bytes:
    data = plotly_js_path().read_bytes()
    if encoding == "br":
        return brotli.compress(data, quality=BROTLI_QUALITY)
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)
    return data


def _encoding() -> str:
    """The best encoding of plotly.js the browser accepts: brotli (HTTPS and localhost), gzip, none."""
    accepted = request.accept_encodings
    for encoding in ("br", "gzip"):
        if accepted[encoding]:
            return encoding
    return "identity"


@bp.get("/plotly-<version>.min.js")
@role_required()
def plotly_js(version: str):
    if version != plotly_js_version():
        abort(404)
    encoding = _encoding()
    response = Response(_plotly_js(encoding), mimetype="text/javascript")
    if encoding != "identity":
        # Flask-Compress leaves a response that already has an encoding alone.
        response.headers["Content-Encoding"] = encoding
    response.vary.add("Accept-Encoding")
    response.set_etag(f"{version}-{encoding}")
    response.cache_control.max_age = ONE_YEAR
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response.make_conditional(request)


def plotly_js_url() -> str:
    return url_for("vendor.plotly_js", version=plotly_js_version())


@cache
def _static_digest(folder: str, filename: str) -> str | None:
    path = Path(folder) / filename
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else None


def _versioned_static(endpoint: str, values: dict[str, Any]) -> None:
    """url_for('static', filename=…) gets ?v=<digest of the file>: a changed file has a new address."""
    if endpoint == "static" and "filename" in values and "v" not in values:
        digest = _static_digest(current_app.static_folder, values["filename"])
        if digest:
            values["v"] = digest


def _cache_versioned_static(response: Response) -> Response:
    if request.endpoint == "static" and request.args.get("v") and response.status_code == 200:
        response.cache_control.max_age = ONE_YEAR
        response.cache_control.public = True
        response.cache_control.immutable = True
    return response


@cache
def _favicon(folder: str) -> bytes:
    return (Path(folder) / "favicon.ico").read_bytes()


@public
def favicon():
    """Browsers ask for /favicon.ico before anyone logs in (209 bytes, kept in memory)."""
    response = Response(_favicon(current_app.static_folder), mimetype="image/vnd.microsoft.icon")
    response.cache_control.max_age = 7 * 24 * 3600
    response.cache_control.public = True
    return response


def init_app(app: Flask) -> None:
    if not plotly_js_path().is_file():
        raise MissingAsset(f"plotly.js is not installed ({plotly_js_path()}): run `make setup` (npm ci) first")
    app.register_blueprint(bp)
    # Templates write {{ plotly_js_url() }} in the <script src> of pages with charts.
    app.jinja_env.globals["plotly_js_url"] = plotly_js_url
    app.url_defaults(_versioned_static)
    app.after_request(_cache_versioned_static)
    app.add_url_rule("/favicon.ico", "favicon", favicon)
    app.config.setdefault(
        "COMPRESS_MIMETYPES", ["text/html", "text/css", "text/javascript", "application/json", "image/svg+xml"]
    )
    # Files streamed from disk (static CSS and scripts, a few kB) stay as they are: Flask-Compress
    # would swap their stream for its own without closing the file.
    app.config.setdefault("COMPRESS_STREAMS", False)
    Compress(app)
