"""The web layer: one blueprint per user-facing area, registered here."""

from __future__ import annotations

from flask import Flask

from fleet.web import health


def init_app(app: Flask) -> None:
    app.register_blueprint(health.bp)
