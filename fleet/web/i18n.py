"""Languages: Chinese is the source language of every string; English comes from translations/en."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, before_render_template, g, has_request_context, session
from flask_babel import Babel
from flask_login import current_user

from fleet.base.text import LOCALES, clear_request_catalogue, pin_request_catalogue, translations

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"


def compile_catalogs(target: Path) -> Path:
    """Compile the .po catalogs into target when they changed; compiled files are never committed."""
    for po_path in TRANSLATIONS.glob("*/LC_MESSAGES/*.po"):
        mo_path = target / po_path.relative_to(TRANSLATIONS).with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as fh:
            catalog = read_po(fh)
        tmp = mo_path.with_suffix(".mo.tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalog)
        tmp.replace(mo_path)
    return target


def select_locale() -> str:
    """A forced locale (command line), then the user's choice, then the session's, then Chinese."""
    forced = g.get("locale")
    if forced in LOCALES:
        return forced
    if not has_request_context():
        return "zh"
    if current_user.is_authenticated and current_user.locale in LOCALES:
        return current_user.locale
    if session.get("locale") in LOCALES:
        return session["locale"]
    return "zh"


def init_app(app: Flask) -> None:
    compiled = compile_catalogs(Path(app.instance_path) / "translations")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(compiled))
    Babel(app, locale_selector=select_locale)
    # Flask-Babel's own callables, reading the catalogue through fleet.base.text so that a batch
    # pinned by one_locale (the monthly mail) skips the context lookup in templates as well.
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    # A page looks up a few hundred strings, and Flask-Babel finds its request context for each:
    # the request's catalogue is pinned when it first renders a template, until the request ends.
    before_render_template.connect(_pin_for_request, app)
    app.teardown_request(_unpin_after_request)


def _pin_for_request(_app: Flask, **_extra: object) -> None:
    if has_request_context():
        pin_request_catalogue()


def _unpin_after_request(_error: BaseException | None) -> None:
    clear_request_catalogue()
