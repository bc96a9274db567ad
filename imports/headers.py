"""Header mapping: which upload column (headers.yaml) a header written in a real file means (import step 2).

The columns, their synonyms and the keyword rules for reworded headers are data (headers.yaml). A
header is matched in three strengths — an exact synonym, a keyword rule, a weak synonym — and a
header that could mean two columns is reported as ambiguous instead of guessed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import yaml

from fleet.base.vocab import fold

_SOURCE = Path(__file__).with_name("headers.yaml")

EXACT, KEYWORD, WEAK = 3, 2, 1

_MARKERS = "*※★☆●◆■▲△#!！"
_BRACKETED = re.compile(r"[(\[【〔〈《{<]([^)\]】〕〉》}>]*)[)\]】〕〉》}>]")
_OPEN_BRACKET_TAIL = re.compile(r"[(\[【〔〈《{<][^)\]】〕〉》}>]*$")
_ASCII_WORD = re.compile(r"^[a-z0-9 ./&-]+$")
# Headers numbered like the items of a form: "1、单位名称", "(2)车架号", "三、购置日期".
_NUMBERING = re.compile(r"^([0-9]{1,2}|[一二三四五六七八九十]{1,3})[、.)]")
_UNIT_TAIL = re.compile(r"[/_](单位[:]?)?(万元|千元|元)$")


@dataclass(frozen=True)
class Column:
    """One column of the upload template (headers.yaml)."""

    key: str
    header: str
    en: str
    required: bool
    note: str
    joined: bool = False  # several columns meaning this one are joined, not reported as duplicates


@dataclass(frozen=True)
class HeaderMatch:
    """What a header means: a column (with the strength of the match), several, or nothing."""

    key: str | None = None
    strength: int = 0
    candidates: tuple[str, ...] = ()
    ignored: bool = False
    scale: float | None = None  # price header stating a unit: the factor to 万元

    @property
    def ambiguous(self) -> bool:
        return bool(self.candidates)


@cache
def _data() -> dict:
    with _SOURCE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


class HeaderSet:
    """The columns of one kind of upload and how their headers are recognised: the acquisitions of
    the upload template (headers.yaml) or another table read the same way, such as the purchase plan
    (plan_headers.yaml, whose columns may take a column of headers.yaml as their base). Ignored
    headers, instruction sheets, totals rows and price units are shared by every kind."""

    def __init__(self, columns: list[dict], ambiguous: dict[str, list[str]], *, amount_key: str | None, kept_from_title: frozenset[str] | None = None) -> None:
        self.columns: tuple[Column, ...] = tuple(
            Column(c["key"], c["header"], c["en"], bool(c["required"]), c.get("note", ""), bool(c.get("join", False)))
            for c in columns
        )
        self.by_key: dict[str, Column] = {c.key: c for c in self.columns}
        self.keys: tuple[str, ...] = tuple(c.key for c in self.columns)
        self.required_keys: tuple[str, ...] = tuple(c.key for c in self.columns if c.required)
        # The column whose header or a note above the table may state a unit of money (万元, 元).
        self.amount_key = amount_key
        # Columns a line above the table may fill for every row (“填报单位：…”): not identifiers or amounts.
        self.from_title = kept_from_title if kept_from_title is not None else frozenset(self.keys)
        exact: dict[str, str] = {}
        weak: dict[str, str] = {}
        rules: list[_Rule] = []
        for column in columns:
            for spelling in (column["key"], column["header"], column["en"], *column.get("synonyms", [])):
                exact.setdefault(fold_header(str(spelling)), column["key"])
            for spelling in column.get("weak", []):
                weak.setdefault(fold_header(str(spelling)), column["key"])
            for rule in column.get("keywords", []):
                rules.append(_Rule(column["key"], rule["all"], rule.get("none", [])))
        self._exact, self._weak, self._rules = exact, weak, tuple(rules)
        self._ambiguous = {fold_header(str(k)): tuple(v) for k, v in ambiguous.items()}
        self._ignored = frozenset(fold_header(str(s)) for s in _data()["ignored"])
        self.match = lru_cache(maxsize=4096)(self._match)

    def _match(self, text: str) -> HeaderMatch:
        full = _strip_markers(fold(text))
        base = fold_header(text)
        if base in self._ignored or _unit_note(full):
            return HeaderMatch(ignored=True)
        key, strength = None, 0
        if base in self._exact:
            key, strength = self._exact[base], EXACT
        elif base in self._weak:
            key, strength = self._weak[base], WEAK
        elif base in self._ambiguous:
            return HeaderMatch(candidates=self._ambiguous[base])
        else:
            spaced = _spaced(re.sub(r"[*※★]", " ", text))
            found = list(dict.fromkeys(r.key for r in self._rules if r.matches(base, spaced)))
            if len(found) > 1:
                return HeaderMatch(candidates=tuple(found))
            if found:
                key, strength = found[0], KEYWORD
        if key is None:
            return HeaderMatch()
        return HeaderMatch(key=key, strength=strength, scale=_price_scale(full) if key == self.amount_key else None)

    @classmethod
    def based_on_acquisitions(cls, source: Path) -> HeaderSet:
        """A set read from a YAML file of the same shape as headers.yaml, in which a column written
        `base: KEY` takes the synonyms, weak synonyms and keyword rules of that acquisition column
        (adding its own), and `ambiguous` lists its own doubtful headers."""
        with source.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        acquisition = {c["key"]: c for c in _data()["columns"]}
        columns = []
        for column in data["columns"]:
            base = acquisition.get(column.get("base", ""), {})
            merged = {**base, **{k: v for k, v in column.items() if k != "base"}}
            for listed in ("synonyms", "weak", "keywords"):
                merged[listed] = [*base.get(listed, []), *column.get(listed, [])]
            columns.append(merged)
        return cls(columns, data.get("ambiguous", {}), amount_key=data.get("amount_key"),
                   kept_from_title=frozenset(data.get("from_title", [c["key"] for c in columns])))


def fold_header(text: str) -> str:
    """A header as compared: folded (fleet.base.vocab.fold), without required-markers and bracketed parts."""
    full = _strip_markers(fold(text))
    return _base(full) or full


def _strip_markers(folded: str) -> str:
    stripped = folded.strip(_MARKERS + ":")
    return stripped or folded


def _base(text: str) -> str:
    without = _OPEN_BRACKET_TAIL.sub("", _BRACKETED.sub("", text))
    without = _UNIT_TAIL.sub("", _NUMBERING.sub("", without)).strip(_MARKERS + ":/_-")
    return without


def _spaced(text: str) -> str:
    """For English words: NFKC, case-folded, runs of white space as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class _Rule:
    def __init__(self, key: str, groups: list[list[str]], excluded: list[str]) -> None:
        self.key = key
        self.groups = [[_Word(w) for w in group] for group in groups]
        self.excluded = [_Word(w) for w in excluded]

    def matches(self, folded: str, spaced: str) -> bool:
        return all(any(w.found(folded, spaced) for w in group) for group in self.groups) and not any(
            w.found(folded, spaced) for w in self.excluded
        )


class _Word:
    def __init__(self, word: str) -> None:
        self.folded = fold(str(word))
        self.ascii = bool(_ASCII_WORD.match(_spaced(str(word))))
        self.pattern = re.compile(rf"(?<![a-z]){re.escape(_spaced(str(word)))}(?![a-z])") if self.ascii else None

    def found(self, folded: str, spaced: str) -> bool:
        if self.pattern is not None:
            return bool(self.pattern.search(spaced))
        return self.folded in folded


def match_header(text: str) -> HeaderMatch:
    """What the header text written in an acquisitions file means."""
    return ACQUISITION_HEADERS.match(text)


ACQUISITION_HEADERS = HeaderSet(
    _data()["columns"],
    _data()["ambiguous"],
    amount_key="price",
    # Identifiers and amounts belong to one vehicle: never taken from a line above the table.
    kept_from_title=frozenset(c["key"] for c in _data()["columns"]) - {"vin", "plate", "price"},
)
COLUMNS: tuple[Column, ...] = ACQUISITION_HEADERS.columns
COLUMN_BY_KEY: dict[str, Column] = ACQUISITION_HEADERS.by_key
KEYS: tuple[str, ...] = ACQUISITION_HEADERS.keys
REQUIRED_KEYS: tuple[str, ...] = ACQUISITION_HEADERS.required_keys


def _price_scale(folded: str) -> float | None:
    units: dict[str, float] = _data()["price_units"]
    for unit in sorted(units, key=len, reverse=True):
        if fold(unit) in folded:
            return float(units[unit])
    return None


@cache
def _stated_unit_pattern() -> re.Pattern[str]:
    units = sorted((fold(u) for u in _data()["price_units"]), key=len, reverse=True)
    return re.compile(r"单位[:]?(" + "|".join(map(re.escape, units)) + ")")


def _unit_note(folded: str) -> bool:
    """A cell that only states the unit of the amounts (“金额单位：元”), not a column's header."""
    match = _stated_unit_pattern().search(folded)
    if match is None or match.end() != len(folded):
        return False
    return folded[: match.start()] in {fold(str(p)) for p in _data()["unit_note_prefixes"]}


def stated_unit(text: str) -> float | None:
    """The factor to 万元 of a unit note written above a table, such as “金额单位：元”; None if there is none."""
    match = _stated_unit_pattern().search(fold(text))
    if match is None:
        return None
    return float({fold(u): f for u, f in _data()["price_units"].items()}[match[1]])


def is_instruction_sheet(name: str) -> bool:
    """A sheet named as instructions: one of the words, or containing one of four characters or more
    (“填表说明（2025）” is, “车辆情况说明” is not)."""
    folded = fold(name)
    words = [fold(str(word)) for word in _data()["instruction_sheets"]]
    return any(folded == word or (len(word) >= 4 and word in folded) for word in words)


@cache
def _row_marks() -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    """Table-end words, subtotal words, and the first characters of both as they may be written."""
    ends = tuple(fold(w) for w in _data()["table_end"])
    subtotals = tuple(fold(w) for w in _data()["subtotal_rows"])
    initials = set()
    for word in (*ends, *subtotals):
        for char in {word[0], word[0].upper()}:
            initials.add(char)
            if "!" <= char <= "~":
                initials.add(chr(ord(char) + 0xFEE0))
    return ends, subtotals, frozenset(initials)


def row_mark(text: str) -> str | None:
    """What a leading cell says about its row: "end" (totals, a signature, a note under the table),
    "subtotal" (a subtotal inside the table) or None."""
    ends, subtotals, initials = _row_marks()
    # Called for the leading cells of every data row: the first and last characters decide most of them.
    stripped = text.strip()
    if stripped[:1] in initials:
        folded = fold(text)
        if folded.startswith(ends):
            return "end"
        if folded.startswith(subtotals):
            return "subtotal"
    totals, last_characters = _total_endings()
    if stripped[-1:] in last_characters and len(stripped) <= 12:
        # “全市合计”, “本页小计”, “华龙区小计”.
        folded = fold(text)
        if folded.endswith(totals):
            return "end"
        if folded.endswith(subtotals):
            return "subtotal"
    return None


@cache
def is_instruction_title(text: str) -> bool:
    """A first cell that is nothing but an instruction sheet's title (“填表说明”, not “填表说明：1. …”)."""
    folded = fold(text).strip(":")
    return bool(folded) and folded in {fold(str(word)) for word in _data()["instruction_sheets"]}


def row_mark_characters() -> frozenset[str]:
    """Characters a cell must start or end with for row_mark to find anything (white space included)."""
    return _row_marks()[2] | _total_endings()[1] | frozenset(" \t\n\r\u3000")


@cache
def _total_endings() -> tuple[tuple[str, ...], frozenset[str]]:
    totals = tuple(fold(w) for w in _data()["totals_endings"])
    subtotals = tuple(fold(w) for w in _data()["subtotal_rows"])
    return totals, frozenset(w[-1] for w in (*totals, *subtotals))


@cache
def _example_words() -> tuple[frozenset[str], tuple[str, ...]]:
    words = [fold(str(w)) for w in _data()["example_rows"]]
    return frozenset(words), tuple(w for w in words if len(w) >= 2)


@lru_cache(maxsize=1024)
def is_example_marker(text: str) -> bool:
    """A first cell such as 示例 that marks the template's example row."""
    words, prefixes = _example_words()
    folded = fold(text)
    return folded.strip(":") in words or folded.startswith(prefixes)


def header_search_rows() -> int:
    return int(_data()["header_search_rows"])


def header_min_columns() -> int:
    return int(_data()["header_min_columns"])


@cache
def _no_value_marks() -> frozenset[str]:
    """Folded texts (fleet.base.vocab.fold) that say a cell is empty: 无, 未上牌, -, /."""
    return frozenset(fold(str(mark)) for mark in _data()["no_value"])


def says_no_value(text: str) -> bool:
    """A cell that only says it is empty: 无, 未上牌, —, /."""
    # Most cells are longer than any mark: no need to fold them.
    return len(text) <= _longest_no_value_mark() + 2 and fold(text) in _no_value_marks()


@cache
def _longest_no_value_mark() -> int:
    return max(len(mark) for mark in _no_value_marks())


@cache
def ditto_marks() -> frozenset[str]:
    """Cell texts, as written, that mean "the same as the cell above"."""
    return frozenset(str(mark) for mark in _data()["ditto"])


def value_suffixes() -> tuple[str, ...]:
    return tuple(sorted(_data()["value_suffixes"], key=len, reverse=True))


def county_prefixes() -> tuple[str, ...]:
    return tuple(_data()["county_prefixes"])
