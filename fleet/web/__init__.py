"""The web layer: one blueprint per user-facing area, registered here."""

from __future__ import annotations

from flask import Flask

from fleet.web import admin, api, auth, dashboard, errors, exemptions, health, labels, mail_preview, uploads, vehicles, vendor


def init_app(app: Flask) -> None:
    auth.init_app(app)
    errors.init_app(app)
    labels.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(vehicles.bp)
    app.register_blueprint(exemptions.bp)
    api.init_app(app)
    app.register_blueprint(admin.bp)
    app.register_blueprint(uploads.bp)
    app.register_blueprint(mail_preview.bp)
    app.register_blueprint(dashboard.bp)
    vendor.init_app(app)
