"""The English catalog: complete for the strings the code uses today, well-formed, and in use end to end.

The messages are extracted from the code here with babel.cfg and the keywords of the documented
`pybabel extract` command, so a string added without an English translation fails this file.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from gettext import GNUTranslations
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from xlsx_factory import HEADERS, acquisition, write_upload

from tests.factories import agency

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "translations" / "en" / "LC_MESSAGES" / "messages.po"
# The -k options of the extraction command in README: lazy_gettext is imported as _l.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}

# Placeholders a translation must keep: %-style (named or positional) and str.format braces. Any
# other percent sign is counted, because gettext in templates always applies % to the text.
PERCENT = re.compile(r"%\(\w+\)[sdifr]|%[sdif]|%%")
BRACES = re.compile(r"\{[\w.\[\]]*(?:![rsa])?(?::[^{}]*)?\}")
TAGS = re.compile(r"</?[A-Za-z][^<>]*>")
CJK = re.compile(r"[\u3400-\u9fff\uff01-\uff60\u3000-\u303f]")


def _catalog() -> Catalog:
    with CATALOG.open("rb") as fh:
        return read_po(fh, locale="en")


def _extracted() -> Iterator[tuple[str, int, str | tuple[str, ...], str | None]]:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh, str(ROOT / "babel.cfg"))
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        yield filename, lineno, message, context


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return _catalog()


@pytest.fixture(scope="module")
def extracted() -> list[tuple[str, int, str | tuple[str, ...], str | None]]:
    return list(_extracted())


def _translated(message: Message) -> list[str]:
    strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
    return [s for s in strings if s]


def _ids(message: Message) -> list[str]:
    return list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]


def _placeholders(text: str) -> tuple[list[str], list[str], list[str], int]:
    percent = sorted(set(PERCENT.findall(text)) - {"%%"})
    bare = text.count("%") - sum(m.count("%") for m in PERCENT.findall(text))
    return percent, sorted(set(BRACES.findall(text))), sorted(TAGS.findall(text)), bare


def test_extraction_finds_python_and_template_strings(extracted):
    files = {filename for filename, *_ in extracted}
    assert any(f.startswith("templates/email/") and f.endswith(".txt") for f in files)
    assert any(f.startswith("templates/") and f.endswith(".html") for f in files)
    assert any(f.startswith("imports/") for f in files) and any(f.startswith("fleet/") for f in files)
    assert not any(f.startswith(("tests/", ".venv/")) for f in files)


def test_every_string_in_the_code_has_an_english_translation(catalog, extracted):
    missing = []
    for filename, lineno, message, context in extracted:
        msgid = message[0] if isinstance(message, tuple) else message
        entry = catalog.get(msgid, context=context)
        plural_forms = len(message) if isinstance(message, tuple) else 1
        if entry is None or len(_translated(entry)) < min(plural_forms, catalog.num_plurals):
            missing.append(f"{filename}:{lineno}: {msgid}")
    assert not missing, "untranslated (run the update commands in README):\n" + "\n".join(missing)


def test_catalog_has_no_fuzzy_obsolete_or_empty_entries(catalog):
    entries = [m for m in catalog if m.id]
    assert entries
    assert [m.id for m in entries if m.fuzzy] == []
    assert [m.id for m in entries if not _translated(m)] == []
    assert list(catalog.obsolete) == []


def test_translations_are_english(catalog):
    assert [m.id for m in catalog if m.id and any(CJK.search(s) for s in _translated(m))
            and not _keeps_chinese_name(m)] == []


def _keeps_chinese_name(message: Message) -> bool:
    # A Chinese word may stay where the user has to type or find it in Chinese (headers, values,
    # policy names); then it also appears in the msgid.
    return all(set(CJK.findall(s)) <= set(CJK.findall(_ids(message)[0])) for s in _translated(message))


def test_placeholders_are_kept(catalog):
    wrong = []
    for message in catalog:
        if not message.id:
            continue
        expected = _placeholders(_ids(message)[0])
        for text in _translated(message):
            if _placeholders(text) != expected:
                wrong.append(f"{_ids(message)[0]!r} -> {text!r}")
    assert not wrong, "\n".join(wrong)


def test_catalog_compiles_and_translates(catalog):
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    translations = GNUTranslations(buffer)
    assert translations.gettext("登录") == "Sign in"
    assert translations.gettext("工作表“%(sheet)s”第 %(row)s 行：%(problem)s") % {
        "sheet": "S", "row": 3, "problem": "p"
    } == 'Sheet "S", row 3: p'


def test_login_page_switches_to_english(client):
    chinese = client.get("/login").get_data(as_text=True)
    assert "用户名" in chinese and "Username" not in chinese

    switched = client.post("/language", data={"locale": "en", "next": "/login"})
    assert switched.status_code == 302

    english = client.get("/login").get_data(as_text=True)
    assert "Username" in english and "Sign in" in english
    assert "用户名" not in english
    # The only Chinese left is the button that switches back.
    assert CJK.findall(english.replace("中文", "")) == []


def test_validate_reports_a_bad_date_in_english(runner, session, tmp_path):
    agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交", county="华龙区")
    session.commit()
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1, acquired_on="2025-02-30")])

    result = runner.invoke(args=["validate", str(path), "--lang", "en", "--json"])

    assert result.exit_code == 1
    (error,) = json.loads(result.output)["errors"]
    assert error["code"] == "date_invalid"
    assert error["message"] == (
        f'Sheet "车辆购置", row 2, column "{HEADERS["acquired_on"]}": "2025-02-30" is not a valid date'
    )


def test_a_pinned_language_translates_code_and_templates_and_steps_aside_for_another(app):
    from flask import render_template_string

    from fleet.base.text import _, force_locale, one_locale

    with app.app_context():
        with one_locale("en"):
            assert _("登录") == "Sign in"
            assert render_template_string("{{ _('登录') }}") == "Sign in"
            with force_locale("zh"):
                assert _("登录") == "登录"
                assert render_template_string("{{ _('登录') }}") == "登录"
            assert _("登录") == "Sign in"
        assert _("登录") == "登录"
