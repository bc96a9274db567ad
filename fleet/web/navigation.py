"""Where pages lead: the landing page, safe `next` targets, and the helpers templates use for links."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask_babel import get_locale

from fleet.base.text import LOCALES


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site; None for anything that could lead elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def home_url() -> str:
    """Where a user lands: the dashboard, which shows an agency user its own agency."""
    return "/"


def _template_globals() -> dict[str, Any]:
    return {
        "home_url": home_url,
        "get_locale": get_locale,
        "locales": LOCALES,
    }


def init_app(app: Flask) -> None:
    app.context_processor(_template_globals)
