"""The vocabularies (power types, categories, counties, agency kinds and sectors), read once from vocabularies.yaml; everything else asks this module."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

_SOURCE = Path(__file__).with_name("vocabularies.yaml")


def fold(text: str) -> str:
    """The key text is compared by: NFKC (full-width to half-width), no white space, case-folded."""
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


@dataclass(frozen=True)
class Term:
    value: str
    en: str
    synonyms: tuple[str, ...]
    nev: bool = False


@dataclass(frozen=True)
class Vocabulary:
    name: str
    terms: tuple[Term, ...]

    @property
    def values(self) -> list[str]:
        return [t.value for t in self.terms]

    def lookup(self, text: str | None) -> str | None:
        """The canonical value for a written value or synonym, or None when it is not known."""
        if text is None:
            return None
        return self._index().get(fold(str(text)))

    def english(self, value: str) -> str:
        return next((t.en for t in self.terms if t.value == value), value)

    def _index(self) -> dict[str, str]:
        return _index_of(self)


@cache
def _index_of(vocabulary: Vocabulary) -> dict[str, str]:
    index: dict[str, str] = {}
    for term in vocabulary.terms:
        for spelling in (term.value, term.en, *term.synonyms):
            index.setdefault(fold(spelling), term.value)
    return index


@cache
def _data() -> dict:
    with _SOURCE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _vocabulary(name: str) -> Vocabulary:
    return Vocabulary(
        name,
        tuple(
            Term(t["value"], t["en"], tuple(str(s) for s in t.get("synonyms", [])), bool(t.get("nev", False)))
            for t in _data()[name]
        ),
    )


POWER_TYPES = _vocabulary("power_types")
CATEGORIES = _vocabulary("categories")
ACQUISITION_KINDS = _vocabulary("acquisition_kinds")
COUNTIES = _vocabulary("counties")
AGENCY_KINDS = _vocabulary("agency_kinds")
SECTORS = _vocabulary("sectors")
EMISSION_STANDARDS = _vocabulary("emission_standards")
EXEMPTION_REASONS = _vocabulary("exemption_reasons")

NEV_POWER_TYPES: frozenset[str] = frozenset(t.value for t in POWER_TYPES.terms if t.nev)
PURE_ELECTRIC = "纯电动"
PLUG_IN_HYBRID = "插电式混合动力"
ORDINARY_HYBRID = "油电混合"
AMBIGUOUS_HYBRID: frozenset[str] = frozenset(fold(s) for s in _data()["ambiguous_hybrid"])


@dataclass(frozen=True)
class PlateRules:
    home_prefix: str
    provinces: str
    nev_pure_electric_letters: frozenset[str]
    nev_other_letters: frozenset[str]
    special_suffixes: tuple[str, ...]


PLATES = PlateRules(
    home_prefix=_data()["plates"]["home_prefix"],
    provinces=_data()["plates"]["provinces"],
    nev_pure_electric_letters=frozenset(_data()["plates"]["nev_pure_electric_letters"]),
    nev_other_letters=frozenset(_data()["plates"]["nev_other_letters"]),
    special_suffixes=tuple(_data()["plates"]["special_suffixes"]),
)

@dataclass(frozen=True)
class AgencyNameRules:
    """City facts about how agency names are written, folded as names are compared."""

    city_prefixes: tuple[str, ...]  # longest first
    same_spellings: tuple[tuple[str, str], ...]  # (spelling, the one it is written as)


AGENCY_NAMES = AgencyNameRules(
    city_prefixes=tuple(sorted((fold(p) for p in _data()["agency_names"]["city_prefixes"]), key=len, reverse=True)),
    same_spellings=tuple((fold(a), fold(b)) for a, b in _data()["agency_names"]["same_spellings"].items()),
)

VOCABULARIES: dict[str, Vocabulary] = {
    "power": POWER_TYPES,
    "category": CATEGORIES,
    "acquisition": ACQUISITION_KINDS,
    "county": COUNTIES,
    "agency_kind": AGENCY_KINDS,
    "sector": SECTORS,
    "emission_standard": EMISSION_STANDARDS,
}


def is_nev(power: str | None) -> bool:
    return power in NEV_POWER_TYPES
