"""The web layer: one blueprint per user-facing area, registered here."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Flask, current_app
from flask.json.provider import DefaultJSONProvider

from fleet import jobs
from fleet.web import (
    account,
    admin,
    api,
    auth,
    dashboard,
    errors,
    exemptions,
    health,
    i18n,
    labels,
    mail_preview,
    navigation,
    plans,
    registrations,
    reporting,
    requestlog,
    uploads,
    vehicles,
    vendor,
)


class OrjsonProvider(DefaultJSONProvider):
    """jsonify (and templates' tojson) through orjson: a province's compliance results from the API
    are thousands of objects, which the standard library's encoder, sorting keys, writes many times slower
    (bench/README.md).
    Reading stays the default's."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def init_app(app: Flask) -> None:
    app.json = OrjsonProvider(app)
    requestlog.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    navigation.init_app(app)
    app.register_blueprint(account.bp)
    errors.init_app(app)
    labels.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(vehicles.bp)
    app.register_blueprint(exemptions.bp)
    api.init_app(app)
    app.register_blueprint(admin.bp)
    app.register_blueprint(uploads.bp)
    app.register_blueprint(plans.bp)
    app.register_blueprint(registrations.bp)
    app.register_blueprint(mail_preview.bp)
    app.register_blueprint(reporting.bp)
    app.register_blueprint(dashboard.bp)
    vendor.init_app(app)
    if not app.testing:
        # Dead jobs' batches are failed by a thread of each serving process, not by the pages that
        # show them (a GET never writes); started with the first request, so after any fork.
        app.before_request(_start_reaper_once)


def _start_reaper_once() -> None:
    app = current_app._get_current_object()
    if "fleet.reaper" not in app.extensions:
        app.extensions["fleet.reaper"] = jobs.start_reaper(app)
