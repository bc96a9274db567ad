"""The translation seam: code below the delivery layer marks its user-facing strings through here.

The app's Babel (fleet/web/i18n.py) translates them for the request's or the command's language;
outside an app (a script, a test of one pipeline step) Babel has no context and the Chinese source
text comes back as written.
"""

from __future__ import annotations

from flask_babel import LazyString, force_locale, get_locale, gettext, lazy_gettext, ngettext

# Chinese is the source language; English comes from translations/en.
LOCALES = ("zh", "en")

_ = gettext
_l = lazy_gettext

__all__ = ["LOCALES", "LazyString", "_", "_l", "force_locale", "get_locale", "gettext", "lazy_gettext", "ngettext"]
