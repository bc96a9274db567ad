"""Normalisation: the values as read turned into the forms validation expects (import step 3).

Each column is normalised over its distinct values (pd.factorize), so a 100k-row upload costs one
conversion per distinct value, and dates and numbers are parsed with vectorised string operations. A
value that cannot be normalised stays as the trimmed text so that validation reports it; nothing here
raises on bad data or drops a row.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from fleet.base.identifiers import PlateKind, clean_code, plate_kind
from fleet.base.vocab import AMBIGUOUS_HYBRID, ORDINARY_HYBRID, PLUG_IN_HYBRID, VOCABULARIES, Vocabulary, fold
from imports.headers import county_prefixes, says_no_value, value_suffixes

# The value left in `power` when 混合动力 / O cannot be settled by the plate: validation reports it as
# power_ambiguous (vocabularies.yaml, power).
AMBIGUOUS_HYBRID_VALUE = "混合动力"

TEXT_KEYS = ("agency", "brand_model", "exemption_reason", "remark")
CODE_KEYS = ("vin", "plate", "credit_code")
VOCABULARY_KEYS = ("category", "power", "acquisition", "county", "emission_standard")
DATE_KEYS = ("acquired_on",)
NUMBER_KEYS = ("price",)

# Excel's day 0 (the 1900 leap-year bug makes serials from March 1900 on count from here), and
# day 0 of a workbook in the 1904 date system.
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_EPOCH_1904 = dt.date(1904, 1, 1)
# Serials below 10000 (1927) are no purchase date of this register; up to 9999-12-31.
_SERIAL_RANGE = (10000, 2958465)

_DATE_TEXT = re.compile(
    r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"
    r"(?:\s*[T\s]\s*\d{1,2}[:：]\d{2}(?:[:：]\d{2}(?:\.\d+)?)?)?$"
    r"|^(?P<y8>\d{4})(?P<m8>\d{2})(?P<d8>\d{2})$"
    r"|^(?P<serial>\d{1,7})(?:\.0*)?$"
)
_NUMBER_TEXT = re.compile(r"^(?P<sign>[+-]?)(?P<number>\d+(?:\.\d*)?|\.\d+)(?:\(?(?P<unit>万元|万|千元|元)\)?)?$")
_SPACE_BY_HAN = re.compile(r"(?<=[\u3000-\u30ff\u3400-\u9fff]) | (?=[\u3000-\u30ff\u3400-\u9fff])")
# Written vocabulary values sometimes add an explanation ("纯电动（BEV）") or two spellings ("纯电动/BEV").
_EXPLANATION = re.compile(r"[(\[【][^)\]】]*[)\]】]")
_BRACKETS = re.compile(r"[(\[【（［]")
_ALTERNATIVES = re.compile(r"[/／、,;|]")
# Text that clean_code leaves as it is: upper-case letters, digits and CJK ideographs (NFKC keeps all three).
_CLEAN_CODE = re.compile(r"[0-9A-Z\u4e00-\u9fff]+")
_CURRENCY = re.compile(r"^(¥|￥|rmb|cny|人民币)|(rmb|cny)$", re.IGNORECASE)
_UNIT_FACTORS = {"万元": 1.0, "万": 1.0, "千元": 0.1, "元": 0.0001}


def normalise(frame: pd.DataFrame, *, date1904: bool = False) -> pd.DataFrame:
    """The frame with every upload column it holds normalised; other columns are kept as they are.
    date1904: the workbook counts date serials from 1904 (imports.read.RawTable.date1904)."""
    out = frame.copy()
    for key in TEXT_KEYS:
        if key in out:
            out[key] = per_value(out[key], _content)
    for key in CODE_KEYS:
        if key in out:
            out[key] = per_value(out[key], to_code)
    for key in VOCABULARY_KEYS:
        if key in out:
            out[key] = per_value(out[key], _vocabulary_term(key))
    for key in DATE_KEYS:
        if key in out:
            out[key] = to_dates(out[key], date1904=date1904)
    for key in NUMBER_KEYS:
        if key in out:
            out[key] = to_numbers(out[key])
    if "power" in out and "plate" in out:
        out["power"] = _settle_hybrids(out["power"], out["plate"])
    return out


def per_value(series: pd.Series, convert: Callable[[Any], Any]) -> pd.Series:
    """convert applied once per distinct value; missing values become None."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    converted = np.empty(len(uniques) + 1, dtype=object)
    converted[: len(uniques)] = [convert(v) for v in uniques]
    converted[-1] = None
    return pd.Series(converted[codes], index=series.index, dtype=object, name=series.name)


def to_text(value: Any) -> str | None:
    """A cell as trimmed NFKC text with inner runs of white space as one space; empty is None."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float):
        if math.isnan(value):
            return None
        text = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, (dt.datetime, dt.date)):
        text = value.isoformat()
    else:
        text = str(value)
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    # A space or line break next to a Chinese character is layout ("濮阳市\n公安局"), not part of the name.
    if " " in text:
        text = _SPACE_BY_HAN.sub("", text)
    return text or None


def _content(value: Any) -> str | None:
    """The cell's text, None for an empty cell or one that only says there is nothing (无, 未上牌, /)."""
    text = to_text(value)
    return None if text is None or says_no_value(text) else text


def to_code(value: Any) -> str | None:
    if value.__class__ is str and _CLEAN_CODE.fullmatch(value):
        # Nearly every code is written clean already: clean_code would return it unchanged.
        return None if says_no_value(value) else value
    text = value if isinstance(value, str) else to_text(value)
    if text is None or says_no_value(text):
        return None
    if _BRACKETS.search(text):
        # A bracketed note is no part of a code: "豫JD12345（绿牌）".
        text = _EXPLANATION.sub("", unicodedata.normalize("NFKC", text))
    return clean_code(text) or None


def _vocabulary_term(key: str) -> Callable[[Any], Any]:
    vocabulary = VOCABULARIES[key]

    def term(value: Any) -> str | None:
        text = to_text(value)
        if text is None:
            return None
        for spelling in _spellings(text, key):
            if key == "power" and fold(spelling) in AMBIGUOUS_HYBRID:
                return AMBIGUOUS_HYBRID_VALUE
            if (found := vocabulary.lookup(spelling)) is not None:
                return found
        # Two spellings of one value ("纯电动/BEV") are that value; of two values, nothing is guessed.
        meanings = {_term_or_none(vocabulary, part, key) for part in _ALTERNATIVES.split(text) if part.strip()}
        if len(meanings) == 1 and None not in meanings:
            return meanings.pop()
        return _content(text)

    return term


def _spellings(text: str, key: str) -> Iterator[str]:
    """The value as written, then without an explanation in brackets, a generic ending or (for a county)
    the province and city in front."""
    yield text
    bare = _EXPLANATION.sub("", text).strip()
    if bare and bare != text:
        yield bare
    for suffix in value_suffixes():
        if bare.endswith(suffix) and len(bare) > len(suffix):
            yield bare[: -len(suffix)]
    if key == "county":
        rest = bare
        while prefix := next((p for p in county_prefixes() if rest.startswith(p) and len(rest) > len(p)), None):
            rest = rest[len(prefix) :]
            yield rest


def _term_or_none(vocabulary: Vocabulary, text: str, key: str) -> str | None:
    return next((found for s in _spellings(text.strip(), key) if (found := vocabulary.lookup(s))), None)


def to_dates(series: pd.Series, *, date1904: bool = False) -> pd.Series:
    """Every date form offices write (Excel dates and serials, 2025-03-05, 2025/3/5, 2025.3.5, 2025年3月5日, 20250305) as datetime.date; what is not a real date stays as text."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    converted = np.empty(len(uniques) + 1, dtype=object)
    converted[-1] = None
    texts: dict[int, str] = {}
    for i, value in enumerate(uniques):
        if isinstance(value, dt.datetime):
            converted[i] = value.date()
        elif isinstance(value, dt.date):
            converted[i] = value
        else:
            converted[i] = texts[i] = _date_text(value)
    texts = {i: t for i, t in texts.items() if t is not None}
    if texts:
        for i, date in _parse_date_texts(pd.Series(texts, dtype=object), _EXCEL_EPOCH_1904 if date1904 else _EXCEL_EPOCH).items():
            converted[i] = date
    return pd.Series(converted[codes], index=series.index, dtype=object, name=series.name)


def _date_text(value: Any) -> str | None:
    """A number cell as the text of its whole days (a serial with a time of day keeps its day)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        if float(value).is_integer() or _SERIAL_RANGE[0] <= value <= _SERIAL_RANGE[1]:
            return str(math.floor(value))
    return _content(value)


def _parse_date_texts(texts: pd.Series, epoch: dt.date) -> pd.Series:
    """The texts that are dates (y-m-d with any separator, yyyymmdd, Excel serials), as datetime.date."""
    parts = texts.str.extract(_DATE_TEXT)
    ymd = pd.DataFrame(
        {
            "year": pd.to_numeric(parts["y"].fillna(parts["y8"]), errors="coerce"),
            "month": pd.to_numeric(parts["m"].fillna(parts["m8"]), errors="coerce"),
            "day": pd.to_numeric(parts["d"].fillna(parts["d8"]), errors="coerce"),
        }
    ).dropna()
    from_parts = pd.to_datetime(ymd, errors="coerce")
    serial = pd.to_numeric(parts["serial"], errors="coerce")
    serial = serial[serial.between(*_SERIAL_RANGE)]
    from_serial = pd.to_datetime(serial, unit="D", origin=pd.Timestamp(epoch), errors="coerce")
    dates = pd.concat([from_parts, from_serial]).dropna()
    return pd.Series([ts.date() for ts in dates], index=dates.index, dtype=object)


def to_numbers(series: pd.Series) -> pd.Series:
    """Numbers, and numbers written as text ("25.5", "２５．５", "25.5万元", "1,234.5"), as float in 万元."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    converted = np.empty(len(uniques) + 1, dtype=object)
    converted[-1] = None
    converted[: len(uniques)] = [_number(v) for v in uniques]
    return pd.Series(converted[codes], index=series.index, dtype=object, name=series.name)


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    text = _content(value)
    if text is None:
        return None
    compact = _CURRENCY.sub("", re.sub(r"[\s,，]", "", text))
    match = _NUMBER_TEXT.match(compact)
    if match is None:
        return text
    number = float(match["sign"] + match["number"])
    return number * _UNIT_FACTORS.get(match["unit"] or "万元", 1.0)


def _settle_hybrids(power: pd.Series, plate: pd.Series) -> pd.Series:
    """混合动力 with a green F-type plate is a plug-in hybrid, with an ordinary plate an ordinary hybrid."""
    ambiguous = power.eq(AMBIGUOUS_HYBRID_VALUE) & plate.notna()
    if not ambiguous.any():
        return power
    kinds = plate[ambiguous].map(lambda p: plate_kind(p) if isinstance(p, str) else None)
    settled = power.copy()
    settled[kinds[kinds.eq(PlateKind.NEV_OTHER)].index] = PLUG_IN_HYBRID
    settled[kinds[kinds.eq(PlateKind.ORDINARY)].index] = ORDINARY_HYBRID
    return settled
