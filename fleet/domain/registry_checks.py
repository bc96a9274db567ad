"""The agency registry's row checks: a pandera schema over the registry's rows; each check's name is its code.

The same checks serve a registry file and the admin form's single agency (the form is a one-row file),
so an agency can never be entered in one way that the other would refuse.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from fleet.base.identifiers import clean_code, credit_code_ok
from fleet.base.text import _
from fleet.base.vocab import AGENCY_KINDS, COUNTIES, SECTORS, Vocabulary

# Registry columns: key -> header as the bureau's sheet writes it, and accepted spellings.
REGISTRY_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("单位名称", "名称", "name", "agency"),
    "kind": ("单位类型", "单位性质", "类型", "kind"),
    "sector": ("行业", "所属行业", "sector"),
    "county": ("所属县区", "县区", "county"),
    "contact_emails": ("联系邮箱", "邮箱", "电子邮箱", "email", "emails"),
    "credit_code": ("统一社会信用代码", "信用代码", "credit_code"),
    "aliases": ("别名", "aliases"),
}
REQUIRED = ("name", "kind", "sector", "county")
VOCABULARIES: dict[str, Vocabulary] = {"kind": AGENCY_KINDS, "sector": SECTORS, "county": COUNTIES}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_SEPARATORS = re.compile(r"[;；,，、\s]+")
# A name travels into mail headers, file names and reports: no line breaks or other control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _filled(values: pd.Series) -> pd.Series:
    return values.str.strip().ne("")


def emails_of(cell: str) -> list[str]:
    return [e for e in EMAIL_SEPARATORS.split(cell) if e]


class RegistrySchema(pa.DataFrameModel):
    """One row per agency as written in the file: every cell as trimmed text ('' when empty)."""

    name: Series[str]
    kind: Series[str]
    sector: Series[str]
    county: Series[str]
    contact_emails: Series[str]
    credit_code: Series[str]
    aliases: Series[str]

    @pa.check(*REQUIRED, name="required")
    def _required(cls, values: Series[str]) -> Series[bool]:
        return _filled(values)

    @pa.check("kind", "sector", "county", name="unknown_value")
    def _known(cls, values: Series[str]) -> Series[bool]:
        vocabulary = VOCABULARIES[values.name]
        return ~_filled(values) | values.map(lambda v: vocabulary.lookup(v) is not None).astype(bool)

    @pa.check("contact_emails", name="email_invalid")
    def _emails(cls, values: Series[str]) -> Series[bool]:
        return values.map(lambda cell: all(_EMAIL.match(e) for e in emails_of(cell))).astype(bool)

    @pa.check("credit_code", name="credit_code_invalid")
    def _credit_code(cls, values: Series[str]) -> Series[bool]:
        return ~_filled(values) | values.map(lambda v: credit_code_ok(clean_code(v))).astype(bool)

    @pa.check("name", "aliases", name="control_characters")
    def _no_control_characters(cls, values: Series[str]) -> Series[bool]:
        return ~values.str.contains(_CONTROL)

    @pa.check("name", name="duplicate_name")
    def _once(cls, values: Series[str]) -> Series[bool]:
        return ~(values.duplicated(keep="first") & _filled(values))

    class Config:
        strict = False


def _message(code: str, column: str, value: str, frame: pd.DataFrame) -> str:
    header = REGISTRY_COLUMNS[column][0]
    if code == "required":
        return _("%(header)s为空", header=header)
    if code == "unknown_value":
        return _("“%(value)s”不是以下之一：%(values)s", value=value, values=_("、").join(VOCABULARIES[column].values))
    if code == "email_invalid":
        wrong = [e for e in emails_of(value) if not _EMAIL.match(e)]
        return _("“%(value)s”不是电子邮箱地址", value=_("、").join(wrong))
    if code == "credit_code_invalid":
        return _("“%(value)s”不是有效的统一社会信用代码", value=clean_code(value))
    if code == "control_characters":
        return _("%(header)s含有换行或其他控制字符", header=header)
    first = frame.index[frame["name"].eq(value)][0]
    return _("与第 %(row)s 行重复", row=frame.at[first, "row"])


def row_errors(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every failed check of the registry rows as {"row", "column", "code", "message"}, in row order;
    frame holds the columns of RegistrySchema and each row's number in the file ("row")."""
    try:
        RegistrySchema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    if cases["index"].isna().any():
        raise RuntimeError(f"registry check failed to run: {cases[cases['index'].isna()].to_dict('records')}")
    errors = [
        {
            "row": int(frame.at[index, "row"]),
            "column": column,
            "code": code,
            "message": _message(code, column, frame.at[index, column], frame),
        }
        for index, column, code in zip(cases["index"].astype(int), cases["column"], cases["check"])
    ]
    order = {column: i for i, column in enumerate(REGISTRY_COLUMNS)}
    return sorted(errors, key=lambda e: (e["row"], order[e["column"]]))
