"""The translation seam: code below the delivery layer marks its user-facing strings through here.

The app's Babel (fleet/web/i18n.py) translates them for the request's or the command's language;
outside an app (a script, a test of one pipeline step) Babel has no context and the Chinese source
text comes back as written.

`one_locale` pins a language's catalogue for a batch of many messages (the monthly mail of a
province): Flask-Babel finds its request context on every `_()`, which was half the time of
rendering a message; inside the batch each lookup goes straight to the pinned catalogue. Templates
translate through `translations()` too (installed by fleet/web/i18n.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import flask_babel
from babel import Locale
from babel.support import NullTranslations
from flask_babel import LazyString

# Chinese is the source language; English comes from translations/en.
LOCALES = ("zh", "en")

# The pinned catalogue and the language it is of.
_pinned: ContextVar[tuple[NullTranslations, Locale | None] | None] = ContextVar("fleet_pinned_translations", default=None)


def _pin() -> tuple[NullTranslations, Locale | None]:
    return flask_babel.get_translations(), flask_babel.get_locale()


def translations() -> NullTranslations:
    """The catalogue in force: the batch's (one_locale), else Flask-Babel's for the request or command."""
    pinned = _pinned.get()
    return flask_babel.get_translations() if pinned is None else pinned[0]


def get_locale() -> Locale | None:
    """The language in force: the pinned catalogue's, else Flask-Babel's."""
    pinned = _pinned.get()
    return flask_babel.get_locale() if pinned is None else pinned[1]


def gettext(string: str, **variables: Any) -> str:
    """Flask-Babel's gettext, reading a pinned catalogue directly."""
    pinned = _pinned.get()
    if pinned is None:
        return flask_babel.gettext(string, **variables)
    text = pinned[0].ugettext(string)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    pinned = _pinned.get()
    if pinned is None:
        return flask_babel.ngettext(singular, plural, num, **variables)
    variables.setdefault("num", num)
    return pinned[0].ungettext(singular, plural, num) % variables


def lazy_gettext(string: str, **variables: Any) -> LazyString:
    return LazyString(gettext, string, **variables)


@contextmanager
def force_locale(locale: str) -> Iterator[None]:
    """Flask-Babel's force_locale; inside a batch of another language the pinned catalogue steps aside."""
    token = _pinned.set(None)
    try:
        with flask_babel.force_locale(locale):
            yield
    finally:
        _pinned.reset(token)


@contextmanager
def one_locale(locale: str) -> Iterator[None]:
    """force_locale for a batch of many messages in one language: its catalogue is looked up once."""
    with flask_babel.force_locale(locale):
        token = _pinned.set(_pin())
        try:
            yield
        finally:
            _pinned.reset(token)


def pin_request_catalogue() -> None:
    """Pin the language's catalogue for the rest of a request (fleet.web.i18n), whose templates look up
    hundreds of strings; not inside a batch, which has pinned its own. clear_request_catalogue() ends it."""
    if _pinned.get() is None:
        _pinned.set(_pin())


def clear_request_catalogue() -> None:
    """At the end of a request: nothing stays pinned for the next request of the same thread, whatever
    force_locale and one_locale did in between."""
    _pinned.set(None)


_ = gettext
_l = lazy_gettext

__all__ = [
    "LOCALES", "LazyString", "_", "_l", "force_locale", "get_locale", "gettext", "lazy_gettext", "ngettext",
    "clear_request_catalogue", "one_locale", "pin_request_catalogue", "translations",
]
