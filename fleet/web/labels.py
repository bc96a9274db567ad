"""Display labels: vocabulary values and upload-column names in the page's language, as template filters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from jinja2 import pass_context

from fleet.base.labels import batch_status_label, exemption_status_label, forecast_label, result_status_label
from fleet.base.text import get_locale
from fleet.base.vocab import EXEMPTION_REASONS, VOCABULARIES
from fleet.domain import reporting
from imports.headers import COLUMN_BY_KEY

# Acquisition attributes whose upload column has another key (the template calls it `acquisition`).
_COLUMN_KEYS = {"acquisition_kind": "acquisition"}


def _english() -> bool:
    return str(get_locale()) == "en"


def term_label(value: str | None) -> str:
    """A canonical vocabulary value (stored in Chinese) as the reader's language shows it."""
    if value is None:
        return ""
    if _english():
        for vocabulary in (*VOCABULARIES.values(), EXEMPTION_REASONS):
            if value in vocabulary.values:
                return vocabulary.english(value)
    return value


def field_label(key: str) -> str:
    """The upload template's header for an acquisition field, in the reader's language."""
    column = COLUMN_BY_KEY.get(_COLUMN_KEYS.get(key, key))
    if column is None:
        return key
    return column.en if _english() else column.header


def local_time(at: dt.datetime | None, format: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time as the users read it: in the configured time zone (TIMEZONE), never UTC."""
    if at is None:
        return ""
    return reporting.local_time(at, current_app.config["TIMEZONE"]).strftime(format)


def per_request(label: Callable[[str | None], str]) -> Callable:
    """A label filter that Jinja never works out while compiling a template.

    Jinja evaluates a filter applied to a constant ({{ "plate"|field_label }}) when it compiles the
    template, once per process, in the language of whichever request compiled it first: every later
    reader got that language. A filter that takes the template context is evaluated at render time."""

    @pass_context
    def filtered(context: Any, value: str | None) -> str:
        return label(value)

    return filtered


def init_app(app: Flask) -> None:
    app.add_template_filter(per_request(term_label), "term")
    app.add_template_filter(per_request(field_label), "field_label")
    app.add_template_filter(local_time, "local_time")
    for label in (exemption_status_label, result_status_label, batch_status_label, forecast_label):
        app.add_template_global(label)
