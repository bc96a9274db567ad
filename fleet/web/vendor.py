"""Third-party browser code served by the app itself: the intranet has no internet, so no CDN.

plotly.js is the copy inside the installed plotly package, never a copy in the repository; its version
is in the address, so browsers may keep it for a year and a plotly upgrade changes the address.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Flask, abort, send_file, url_for
from plotly.offline import get_plotlyjs_version

from fleet.web.auth import role_required

bp = Blueprint("vendor", __name__, url_prefix="/vendor")

ONE_YEAR = 365 * 24 * 3600


@cache
def plotly_js_path() -> Path:
    return Path(str(files("plotly") / "package_data" / "plotly.min.js"))


@cache
def plotly_js_version() -> str:
    return get_plotlyjs_version()


@bp.get("/plotly-<version>.min.js")
@role_required()
def plotly_js(version: str):
    if version != plotly_js_version():
        abort(404)
    response = send_file(plotly_js_path(), mimetype="text/javascript", max_age=ONE_YEAR, conditional=True)
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response


def plotly_js_url() -> str:
    return url_for("vendor.plotly_js", version=plotly_js_version())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # Templates write {{ plotly_js_url() }} in the <script src> of pages with charts.
    app.jinja_env.globals["plotly_js_url"] = plotly_js_url
