"""The application factory: the one place that wires configuration, database, languages and blueprints."""

from __future__ import annotations

import gc
import secrets
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask

from fleet.base import config as settings
from fleet.base import db, logs


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(Path(__file__).parent / "templates"),
        static_folder=str(Path(__file__).parent / "static"),
    )
    # The instance folder holds the default SQLite database and compiled translations.
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(settings.from_environment(app.instance_path))
    if config:
        app.config.from_mapping(config)
    if not app.config.get("SECRET_KEY"):
        if not (app.debug or app.testing):
            raise settings.ConfigError(
                "SECRET_KEY is not set: it signs sessions and CSRF tokens, so the app does not start without "
                "one outside debug and testing. Set a long random value, e.g. SECRET_KEY=$(openssl rand -hex 32)."
            )
        # Debugging or testing: a key of this process alone, never one anybody could read.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_MB"] * 1024 * 1024

    if not app.testing:
        logs.configure(app.config["LOG_FORMAT"])
    db.init_app(app)

    from fleet import cli, web

    cli.init_app(app)
    web.init_app(app)
    return app


@cache
def _default_app() -> Flask:
    app = create_app()
    # What is loaded by now (pandas, plotly, SQLAlchemy, the app) lives as long as the process: out
    # of the collector's way, a full collection no longer walks it in the middle of a request (a
    # pause the city page would show), and forked workers keep sharing its memory pages.
    gc.freeze()
    return app


def __getattr__(name: str) -> Flask:
    # `flask --app app` and `gunicorn app:app` find `app` here; building it on first use rather than
    # at import keeps tests, which import create_app, free of a default app and its database.
    if name == "app":
        return _default_app()
    raise AttributeError(name)
