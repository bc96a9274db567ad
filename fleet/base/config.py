"""Settings read from the environment through strict helpers: a value that cannot be read is an error."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_MAX_UPLOAD_MB = 50


class ConfigError(ValueError):
    pass


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def env_str(name: str, default: str | None = None) -> str | None:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else raw


def env_zone(name: str, default: str) -> str:
    zone = env_str(name, default) or default
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name}={zone!r} is not a time zone (e.g. Asia/Shanghai)") from None
    return zone


def env_day(name: str, default: int) -> int:
    """A day of the month every month has (1–28)."""
    day = env_int(name, default)
    if not 1 <= day <= 28:
        raise ConfigError(f"{name}={day} is not a day between 1 and 28")
    return day


def from_environment(instance_path: str) -> dict[str, Any]:
    """The app's configuration; the defaults give a working app on SQLite in the instance folder."""
    default_db = "sqlite:///" + str(Path(instance_path) / "fleet.sqlite3")
    scheme = env_str("PREFERRED_URL_SCHEME", "http")
    if scheme not in ("http", "https"):
        raise ConfigError(f"PREFERRED_URL_SCHEME={scheme!r} is neither http nor https")
    lifetime = dt.timedelta(hours=env_int("SESSION_LIFETIME_HOURS", 12))
    return {
        # The cookie expires with the session's absolute lifetime.
        "PERMANENT_SESSION_LIFETIME": lifetime,
        "DATABASE_URL": env_str("DATABASE_URL", default_db),
        # No default: the app refuses to start without one outside debug and testing (see app.py).
        "SECRET_KEY": env_str("SECRET_KEY"),
        "SMTP_HOST": env_str("SMTP_HOST", "localhost"),
        "SMTP_PORT": env_int("SMTP_PORT", 25),
        "SMTP_USER": env_str("SMTP_USER"),
        "SMTP_PASSWORD": env_str("SMTP_PASSWORD"),
        "SMTP_STARTTLS": env_bool("SMTP_STARTTLS", False),
        "MAIL_FROM": env_str("MAIL_FROM", "fleet-compliance@localhost"),
        "REDIS_URL": env_str("REDIS_URL"),
        # RQ queue the import workers listen on (only used when REDIS_URL is set).
        "IMPORT_QUEUE": env_str("IMPORT_QUEUE", "fleet-imports"),
        # Uploads larger than this are validated and imported in the background, so the page never blocks.
        "IMPORT_BACKGROUND_BYTES": env_int("IMPORT_BACKGROUND_BYTES", 1024 * 1024),
        # An acquisition should be reported within this many days of its date (late ones are flagged).
        "REPORTING_DEADLINE_DAYS": env_int("REPORTING_DEADLINE_DAYS", 30),
        "REPORT_VEHICLE_ROWS_ONLINE": env_int("REPORT_VEHICLE_ROWS_ONLINE", 50_000),
        # A report built by a background job is kept this many days for download, then dropped.
        "REPORT_KEEP_DAYS": env_int("REPORT_KEEP_DAYS", 7),
        # The monthly report is due on this day of the following month (a rule pack may set its own).
        "REPORTING_DUE_DAY": env_day("REPORTING_DUE_DAY", 10),
        # Agencies that have not submitted are reminded this many days before the due date.
        "REMINDER_DAYS_BEFORE": env_int("REMINDER_DAYS_BEFORE", 3),
        # The users' time zone: times are stored in UTC and shown in this zone.
        "TIMEZONE": env_zone("TIMEZONE", "Asia/Shanghai"),
        "MAX_UPLOAD_MB": env_int("MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB),
        "RULE_PACK": env_str("RULE_PACK", "puyang-2024"),
        "BABEL_DEFAULT_LOCALE": "zh",
        # A session ends after this long without a request, and this long after the login.
        "SESSION_IDLE_MINUTES": env_int("SESSION_IDLE_MINUTES", 30),
        "SESSION_LIFETIME_HOURS": env_int("SESSION_LIFETIME_HOURS", 12),
        "PREFERRED_URL_SCHEME": scheme,
        # The cookie goes over HTTPS only; on by default when the site is served over HTTPS.
        "SESSION_COOKIE_SECURE": env_bool("SESSION_COOKIE_SECURE", scheme == "https"),
        # How many reverse proxies in front of the app set X-Forwarded-For: the address audited and
        # throttled is the one the nearest trusted proxy saw. 0 when clients connect directly.
        "PROXY_COUNT": env_int("PROXY_COUNT", 0),
        # "json": one JSON object per log line; anything else, plain text.
        "LOG_FORMAT": env_str("LOG_FORMAT", "text"),
    }


def max_upload_bytes(config: Mapping[str, Any]) -> int:
    """The upload limit in bytes, read at the time of use (tests and operators may change it)."""
    return config["MAX_UPLOAD_MB"] * 1024 * 1024
