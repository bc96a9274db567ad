"""Query parameters read strictly, for every page and the API alike: a value that cannot be used is a
400 naming the parameter and what was wrong, never a 500 from the database.

Hand-written rather than webargs/marshmallow: a handful of integers and vocabulary terms, whose
messages go through the translation layer like every other string.
"""

from __future__ import annotations

from flask import request
from flask_babel import gettext as _

from fleet.base.vocab import Vocabulary

# Record ids are the database's integers (PostgreSQL `integer`); a larger number names nothing.
MAX_ID = 2**31 - 1
# Far beyond the last page of any list; keeps the offset within what the database accepts.
MAX_PAGE = 1_000_000


class BadParameter(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def int_arg(name: str, default: int | None = None, *, low: int | None = None, high: int | None = None) -> int | None:
    raw = request.args.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(_("参数 %(name)s 必须是整数，收到 %(value)s。", name=name, value=raw[:40])) from None
    if low is not None and value < low:
        raise BadParameter(_("参数 %(name)s 不能小于 %(low)s，收到 %(value)s。", name=name, low=low, value=raw[:40]))
    if high is not None and value > high:
        raise BadParameter(_("参数 %(name)s 不能大于 %(high)s，收到 %(value)s。", name=name, high=high, value=raw[:40]))
    return value


def id_arg(name: str) -> int | None:
    """A record id, or None when the parameter is absent."""
    return int_arg(name, low=1, high=MAX_ID)


def page_arg() -> int:
    return int_arg("page", 1, low=1, high=MAX_PAGE)


def term_arg(name: str, vocabulary: Vocabulary) -> str | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    value = vocabulary.lookup(raw)
    if value is None:
        raise BadParameter(
            _("参数 %(name)s 的值 %(value)s 无效；可选：%(values)s。", name=name, value=raw[:40], values=_("、").join(vocabulary.values))
        )
    return value
