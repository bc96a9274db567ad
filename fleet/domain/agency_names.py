"""Agency names as people write them, matched to the registry: the one matcher of uploads, the API,
registration owners and purchase plans.

A written name is matched in steps, and never guessed beyond them:

1. by credit code, when one is given and the registry knows it (owners in a registration extract);
2. exactly as registered;
3. normalised: full-width forms, spaces and case folded, legal-form spellings made one
   (有限责任公司 = 有限公司, from vocabularies.yaml);
4. by an alias the registry keeps (简称 such as 市公安局, 曾用名 from before a reform);
5. with the city's prefix added or dropped (公安局, 濮阳公交公司 — the prefixes are data in
   vocabularies.yaml), counting only when exactly one agency answers.

A name no step matches, or that two agencies would answer, is not matched: it gets up to three
suggestions ranked by similarity (RapidFuzz), which a person then chooses from. A sub-unit
(濮阳市公安局交警支队) therefore never becomes its parent silently; the parent is suggested.

Build the index once (`AgencyIndex.load(session)`) and match every name of an upload against it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import sqlalchemy as sa
from rapidfuzz import fuzz, process
from sqlalchemy.orm import Session

from fleet.base.identifiers import clean_code
from fleet.base.models import Agency
from fleet.base.text import _
from fleet.base.vocab import AGENCY_NAMES, COUNTIES, fold

MatchedBy = Literal["credit_code", "exact", "normalised", "alias", "city_prefix"]

# How many suggestions an unmatched name gets, and how similar (RapidFuzz's normalised Indel ratio,
# 0-100, of the names without the city prefix) a registered name must be to be suggested: below it a
# suggestion is noise (某某科技有限公司 shares only 有限公司 with 公共交通有限公司: 50).
MAX_SUGGESTIONS = 3
SUGGESTION_CUTOFF = 55.0
# Ranks above any similarity: a name two agencies answer equally, then a registered name the written
# one starts with (a sub-unit: 公安局交通警察支队 starts with 公安局, however long its own part).
TIED = 200.0
PARENT = 100.0


def normalised(name: str) -> str:
    """The key names are compared by: folded (NFKC, no white space, case-folded), with the legal-form
    spellings that mean the same written one way."""
    key = fold(name)
    for spelling, same in AGENCY_NAMES.same_spellings:
        key = key.replace(spelling, same)
    return key


@cache
def _county_starts() -> tuple[str, ...]:
    return tuple(normalised(county) for county in COUNTIES.values)


def prefix_variants(key: str) -> set[str]:
    """A normalised name without each city prefix it starts with (濮阳市公安局 -> 公安局, 市公安局).
    A prefix that begins a county's name is no city prefix there (濮阳县公安局 stays as it is)."""
    if key.startswith(_county_starts()):
        return set()
    return {key[len(p) :] for p in AGENCY_NAMES.city_prefixes if key.startswith(p) and len(key) > len(p)}


def _bare(key: str) -> str:
    """The name without its longest city prefix: what suggestions are scored on, so that the prefix
    every city agency shares does not make unrelated names look alike."""
    return min(prefix_variants(key) | {key}, key=len)


@dataclass(frozen=True)
class AgencyMatch:
    """What a written name (and credit code) matched: the agency and the step, or suggestions."""

    written: str
    agency_id: int | None = None
    agency_name: str | None = None
    matched_by: MatchedBy | None = None
    # Registered names, most similar first, at most MAX_SUGGESTIONS; only for a name not matched.
    suggestions: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.agency_id is not None


@dataclass
class AgencyIndex:
    """The registry's names, aliases and credit codes, looked up without the database."""

    names: dict[int, str]
    exact: dict[str, int] = field(default_factory=dict)
    by_code: dict[str, set[int]] = field(default_factory=dict)
    by_name: dict[str, set[int]] = field(default_factory=dict)
    by_alias: dict[str, set[int]] = field(default_factory=dict)
    by_variant: dict[str, set[int]] = field(default_factory=dict)
    # every name and alias without its city prefix, and its agency: what suggestions are ranked among
    _choices: list[str] = field(default_factory=list)
    _choice_ids: list[int] = field(default_factory=list)

    @classmethod
    def load(cls, session: Session) -> AgencyIndex:
        rows = session.execute(sa.select(Agency.id, Agency.name, Agency.aliases, Agency.credit_code)).all()
        return cls.of((agency_id, name, aliases or (), code) for agency_id, name, aliases, code in rows)

    @classmethod
    def of(cls, entries: Iterable[tuple[int, str, Iterable[str], str | None]]) -> AgencyIndex:
        """An index of (id, name, aliases, credit code) entries: the registry, or one about to be."""
        index = cls(names={})
        for agency_id, name, aliases, code in entries:
            index.names[agency_id] = name
            index.exact[name] = agency_id
            if code:
                index.by_code.setdefault(clean_code(code), set()).add(agency_id)
            keys = [(normalised(name), index.by_name)] + [(normalised(a), index.by_alias) for a in aliases]
            for key, table in keys:
                if not key:
                    continue
                table.setdefault(key, set()).add(agency_id)
                for variant in prefix_variants(key) | {key}:
                    index.by_variant.setdefault(variant, set()).add(agency_id)
                index._choices.append(_bare(key))
                index._choice_ids.append(agency_id)
        return index

    def match(
        self,
        name: str | None,
        credit_code: str | None = None,
        *,
        suggest: bool = True,
        suggest_among: Collection[int] | None = None,
    ) -> AgencyMatch:
        """The agency a written name (and credit code) means, else suggestions (unless suggest is
        False); suggest_among limits them to those agencies (an agency user is offered only its own)."""
        written = (name or "").strip()
        if credit_code and len(ids := self.by_code.get(clean_code(credit_code), set())) == 1:
            return self._found(written, next(iter(ids)), "credit_code")
        if not written:
            return AgencyMatch(written)
        if written in self.exact:
            return self._found(written, self.exact[written], "exact")
        key = normalised(written)
        tied: set[int] = set()
        for table, step in ((self.by_name, "normalised"), (self.by_alias, "alias")):
            ids = table.get(key, set())
            if len(ids) == 1:
                return self._found(written, next(iter(ids)), step)
            tied |= ids
        if not tied:
            ids = set().union(*(self.by_variant.get(v, set()) for v in prefix_variants(key) | {key}))
            if len(ids) == 1:
                return self._found(written, next(iter(ids)), "city_prefix")
            tied = ids
        if not suggest:
            return AgencyMatch(written)
        return AgencyMatch(written, suggestions=self.suggestions(written, tied=tied, among=suggest_among))

    def suggestions(self, name: str, *, tied: Collection[int] = (), among: Collection[int] | None = None) -> tuple[str, ...]:
        """Up to MAX_SUGGESTIONS registered names most like the written one, none when nothing is close.
        The agencies a name could equally mean come first, then those whose name the written one
        starts with (a sub-unit names its parent first), then by similarity."""
        scores: dict[int, float] = {agency_id: TIED for agency_id in tied}
        query = _bare(normalised(name))
        for _choice, score, position in process.extract(
            query, self._choices, scorer=fuzz.ratio, processor=None, score_cutoff=SUGGESTION_CUTOFF, limit=None
        ):
            agency_id = self._choice_ids[position]
            scores[agency_id] = max(score, scores.get(agency_id, 0.0))
        for position, choice in enumerate(self._choices):
            if len(choice) >= 2 and query.startswith(choice) and choice != query:
                agency_id = self._choice_ids[position]
                scores[agency_id] = max(PARENT + fuzz.ratio(query, choice) / 100, scores.get(agency_id, 0.0))
        if among is not None:
            scores = {agency_id: score for agency_id, score in scores.items() if agency_id in among}
        ranked = sorted(scores, key=lambda agency_id: (-scores[agency_id], self.names[agency_id]))
        return tuple(self.names[agency_id] for agency_id in ranked[:MAX_SUGGESTIONS])

    def _found(self, written: str, agency_id: int, step: MatchedBy) -> AgencyMatch:
        return AgencyMatch(written, agency_id, self.names[agency_id], step)


def match_agency(index: AgencyIndex | Session, name: str | None, credit_code: str | None = None) -> AgencyMatch:
    """The agency a written name (and credit code) means, or suggestions. Give an AgencyIndex when
    matching many names: a Session builds the index for this one call."""
    if not isinstance(index, AgencyIndex):
        index = AgencyIndex.load(index)
    return index.match(name, credit_code)


def listed(names: Iterable[str]) -> str:
    """Suggested names as a message lists them: “甲”、“乙”."""
    return "、".join(f"“{name}”" for name in names)


def not_registered(match: AgencyMatch) -> str:
    """The message for a name that matched no agency, with its suggestions when it has any."""
    if match.suggestions:
        return _("未登记的单位：%(name)s。是否指：%(suggested)s？", name=match.written, suggested=listed(match.suggestions))
    return _("未登记的单位：%(name)s", name=match.written)


def alias_conflicts(entries: Iterable[tuple[str, Iterable[str]]]) -> list[tuple[str, str, str]]:
    """(agency, alias, other agency) for every alias that could also mean another agency of the given
    registry (names with their aliases): equal to its name or alias once normalised, or with the city
    prefix added or dropped. Such an alias is refused at entry, naming both."""
    entries = [(name, list(aliases)) for name, aliases in entries]
    owners: dict[str, set[str]] = {}
    for name, aliases in entries:
        for written in (name, *aliases):
            key = normalised(written)
            for variant in prefix_variants(key) | {key}:
                owners.setdefault(variant, set()).add(name)
    conflicts = []
    for name, aliases in entries:
        for alias in aliases:
            key = normalised(alias)
            others = set().union(*(owners.get(v, set()) for v in prefix_variants(key) | {key})) - {name}
            conflicts.extend((name, alias, other) for other in sorted(others))
    return conflicts
