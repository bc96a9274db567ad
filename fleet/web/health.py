"""Liveness for load balancers and monitoring: is the app up, does the database answer."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify
from sqlalchemy.exc import SQLAlchemyError

from fleet.base import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        with db.engine().connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify(status="degraded", database="unavailable"), 503
    return jsonify(status="ok", database="ok")
