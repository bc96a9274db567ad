"""Rule packs: reading the YAML files of rules/packs/ and checking them against a schema.

A pack is policy as data: the source document, each rule's clause, scope, measure and threshold. A broken pack is refused with the file, the rule and the field
named; vocabulary values are checked against fleet.base.vocab so a pack cannot name a category the importer
would never produce.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from fleet.base.vocab import ACQUISITION_KINDS, AGENCY_KINDS, CATEGORIES, EMISSION_STANDARDS, POWER_TYPES, Vocabulary

PACKS_DIR = Path(__file__).resolve().parent / "packs"
DEFAULT_PACK = "puyang-2024"


class PackError(ValueError):
    """A pack that cannot be used; the message names the file, the rule and the field."""

    def __init__(self, message: str, *, path: Path | None = None, rule: str | None = None, field: str | None = None):
        super().__init__(message)
        self.path = path
        self.rule = rule
        self.field = field


@dataclass(frozen=True)
class Scope:
    categories: frozenset[str]
    agency_kinds: frozenset[str] | None  # None: any kind of agency
    acquisition_kinds: frozenset[str]
    power_types: frozenset[str] | None  # None: any power type


@dataclass(frozen=True)
class Rule:
    pack_id: str
    id: str
    title: dict[str, str]  # {"zh": …, "en": …}
    clause: str  # the original Chinese sentence the rule encodes
    scope: Scope
    measure: str  # "nev_share" | "standard_share"
    standards: frozenset[str]  # accepted emission standards (standard_share only)
    threshold: Fraction
    level: str  # "mandatory" | "in_principle"
    exemptions_allowed: bool
    effective_from: dt.date
    effective_to: dt.date | None
    note: dict[str, str]  # how the pack reads the clause, {"zh": …, "en": …}: shown to users

    @property
    def qualified_id(self) -> str:
        return f"{self.pack_id}/{self.id}"

    def title_in(self, locale: str) -> str:
        return self.title.get(locale) or self.title["zh"]

    def note_in(self, locale: str) -> str:
        return self.note.get(locale) or self.note["zh"]

    def applies_to_kind(self, agency_kind: str) -> bool:
        return self.scope.agency_kinds is None or agency_kind in self.scope.agency_kinds

    def covers(self, *, category: str, agency_kind: str, acquisition_kind: str, power: str, acquired_on: dt.date) -> bool:
        """Whether the rule counts a vehicle like this one: in its scope and bought while it is in force."""
        return self.applies_to_kind(agency_kind) and self.covers_between(category, acquisition_kind, power, acquired_on, acquired_on)

    def covers_between(self, category: str, acquisition_kind: str, power: str, first: dt.date, last: dt.date) -> bool:
        """Whether a vehicle of this kind, bought between first and last (a planned month or quarter), is
        in the rule's scope, agency kinds aside: the Python twin of the engine's SQL scope
        (rules.counting.rule_conditions), for vehicles that exist only in a plan."""
        scope = self.scope
        return (
            category in scope.categories
            and acquisition_kind in scope.acquisition_kinds
            and (scope.power_types is None or power in scope.power_types)
            and self.effective_within(first, last) is not None
        )

    def effective_within(self, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date] | None:
        """The part of [start, end] in which the rule is in force, or None when it is not at all."""
        first = max(start, self.effective_from)
        last = end if self.effective_to is None else min(end, self.effective_to)
        return (first, last) if first <= last else None


@dataclass(frozen=True)
class RulePack:
    id: str
    title: dict[str, str]
    source: str  # the document the pack encodes
    source_date: dt.date
    example: bool  # a demonstration pack, not policy in force
    rules: tuple[Rule, ...]
    path: Path
    reporting_due_day: int | None = None  # overrides REPORTING_DUE_DAY when the pack sets it

    def rule(self, rule_id: str) -> Rule:
        """A rule by its id or qualified id ("puyang-2024/bus")."""
        short = rule_id.removeprefix(f"{self.id}/")
        for rule in self.rules:
            if rule.id == short:
                return rule
        raise PackError(f"rule pack {self.id} has no rule {rule_id!r}", path=self.path, rule=rule_id)


# --- The schema -------------------------------------------------------------------------------------

_ID = r"^[a-z0-9][a-z0-9-]*$"
_FRACTION = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_WHOLE = re.compile(r"^\s*(\d+)\s*$")


def parse_threshold(value: Any) -> Fraction:
    """`1`, `"1/2"`, `"3/5"`, `"60%"` or `"62.5%"` as an exact fraction in (0, 1]; floats are refused
    because 0.6 is not exactly three fifths."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"write the threshold exactly, as 1, 1/2, 3/5 or \"60%\" (got {value!r})")
    text = str(value)
    if m := _FRACTION.match(text):
        if int(m.group(2)) == 0:
            raise ValueError(f"{text!r} divides by zero")
        fraction = Fraction(int(m.group(1)), int(m.group(2)))
    elif m := _PERCENT.match(text):
        fraction = Fraction(m.group(1)) / 100
    elif m := _WHOLE.match(text):
        fraction = Fraction(int(m.group(1)))
    else:
        raise ValueError(f"write the threshold exactly, as 1, 1/2, 3/5 or \"60%\" (got {value!r})")
    if not 0 < fraction <= 1:
        raise ValueError(f"{text!r} is not a share between 0 (excluded) and 1")
    return fraction


def threshold_text(threshold: Fraction) -> str:
    """A threshold as people write it: "60%", "62.5%", or "2/3" when no short percentage is exact."""
    percent = threshold * 100
    if percent.denominator == 1:
        return f"{percent.numerator}%"
    if (percent * 10).denominator == 1:
        return f"{float(percent):.1f}%"
    return f"{threshold.numerator}/{threshold.denominator}"


def _in_vocabulary(values: list[str], vocabulary: Vocabulary) -> list[str]:
    unknown = [v for v in values if v not in vocabulary.values]
    if unknown:
        raise ValueError(f"{', '.join(map(str, unknown))} not one of {', '.join(vocabulary.values)}")
    if len(set(values)) != len(values):
        raise ValueError("a value is listed twice")
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Text(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class _Source(_Strict):
    document: str = Field(min_length=1)
    date: dt.date


class _Effective(_Strict):
    model_config = ConfigDict(populate_by_name=True)
    from_: dt.date = Field(alias="from")
    to: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Effective:
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"ends ({self.to}) before it starts ({self.from_})")
        return self


class _Scope(_Strict):
    categories: list[str] = Field(min_length=1)
    agency_kinds: Literal["any"] | list[str]
    acquisition_kinds: list[str] = Field(min_length=1)
    power_types: Literal["any"] | list[str] = "any"

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        return _in_vocabulary(v, CATEGORIES)

    @field_validator("agency_kinds")
    @classmethod
    def _agency_kinds(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list):
            if not v:
                raise ValueError("list at least one kind, or write any")
            return _in_vocabulary(v, AGENCY_KINDS)
        return v

    @field_validator("acquisition_kinds")
    @classmethod
    def _acquisition_kinds(cls, v: list[str]) -> list[str]:
        return _in_vocabulary(v, ACQUISITION_KINDS)

    @field_validator("power_types")
    @classmethod
    def _power_types(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list):
            if not v:
                raise ValueError("list at least one power type, or write any")
            return _in_vocabulary(v, POWER_TYPES)
        return v


class _Rule(_Strict):
    id: str = Field(pattern=_ID)
    title: _Text
    clause: str = Field(min_length=1)
    scope: _Scope
    measure: Literal["nev_share", "standard_share"]
    # Checked even when absent: a standard_share rule without standards names this field.
    standards: list[str] | None = Field(default=None, validate_default=True)
    threshold: Any
    level: Literal["mandatory", "in_principle"]
    exemptions_allowed: bool
    effective: _Effective
    note: _Text

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: Any) -> Fraction:
        return parse_threshold(v)

    @field_validator("standards")
    @classmethod
    def _standards(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        measure = info.data.get("measure")
        if measure == "standard_share" and not v:
            raise ValueError("a standard_share rule lists the accepted emission standards")
        if measure == "nev_share" and v:
            raise ValueError("only a standard_share rule has standards")
        return None if v is None else _in_vocabulary(v, EMISSION_STANDARDS)


class _Reporting(_Strict):
    # A day every month has: the monthly report is due on it in the following month.
    due_day: int = Field(ge=1, le=28)


class _Pack(_Strict):
    id: str = Field(pattern=_ID)
    title: _Text
    source: _Source
    example: bool = False
    reporting: _Reporting | None = None
    rules: list[_Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> _Pack:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self


def _pack_error(path: Path, raw: Any, exc: ValidationError) -> PackError:
    """The first problem as the message headline (file, rule, field), every problem listed after it."""
    lines: list[str] = []
    first: tuple[str | None, str | None] = (None, None)
    rules = raw.get("rules") if isinstance(raw, dict) else None
    for error in exc.errors():
        loc = list(error["loc"])
        rule_label: str | None = None
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            index = loc[1]
            rule_raw = rules[index] if isinstance(rules, list) and index < len(rules) else None
            rule_id = rule_raw.get("id") if isinstance(rule_raw, dict) else None
            rule_label = str(rule_id) if rule_id else f"#{index + 1}"
            loc = loc[2:]
        # Pydantic names the branch of a union it tried ("list[str]", "literal['any']"); readers want the field.
        field = ".".join(str(part) for part in loc if not (isinstance(part, str) and ("[" in part or part.startswith("function-"))))
        field = field.replace("from_", "from") or ("(whole rule)" if rule_label else "(whole pack)")
        message = error["msg"].removeprefix("Value error, ")
        where = f"rule {rule_label}, field {field}" if rule_label else f"field {field}"
        lines.append(f"{path.name}: {where}: {message}")
        if first == (None, None):
            first = (rule_label, field)
    unique = list(dict.fromkeys(lines))
    text = unique[0] if len(unique) == 1 else unique[0] + "\n" + "\n".join("  " + line for line in unique[1:])
    return PackError(text, path=path, rule=first[0], field=first[1])


def load_pack(path: str | Path) -> RulePack:
    """Read and check one pack file; PackError names the file, rule and field of the first problem."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except OSError as exc:
        raise PackError(f"{path}: cannot be read ({exc.strerror})", path=path) from None
    except yaml.YAMLError as exc:
        raise PackError(f"{path.name}: not valid YAML ({exc})", path=path) from None
    if not isinstance(raw, dict):
        raise PackError(f"{path.name}: a rule pack is a mapping with id, title, source and rules", path=path)
    try:
        pack = _Pack.model_validate(raw)
    except ValidationError as exc:
        raise _pack_error(path, raw, exc) from None
    rules = tuple(
        Rule(
            pack_id=pack.id,
            id=r.id,
            title={"zh": r.title.zh, "en": r.title.en},
            clause=r.clause,
            scope=Scope(
                categories=frozenset(r.scope.categories),
                agency_kinds=None if r.scope.agency_kinds == "any" else frozenset(r.scope.agency_kinds),
                acquisition_kinds=frozenset(r.scope.acquisition_kinds),
                power_types=None if r.scope.power_types == "any" else frozenset(r.scope.power_types),
            ),
            measure=r.measure,
            standards=frozenset(r.standards or ()),
            threshold=r.threshold,
            level=r.level,
            exemptions_allowed=r.exemptions_allowed,
            effective_from=r.effective.from_,
            effective_to=r.effective.to,
            note={"zh": r.note.zh, "en": r.note.en},
        )
        for r in pack.rules
    )
    return RulePack(
        id=pack.id,
        title={"zh": pack.title.zh, "en": pack.title.en},
        source=pack.source.document,
        source_date=pack.source.date,
        example=pack.example,
        rules=rules,
        path=path,
        reporting_due_day=pack.reporting.due_day if pack.reporting is not None else None,
    )


def check_packs(directory: str | Path = PACKS_DIR) -> tuple[dict[str, RulePack], list[PackError]]:
    """Every pack of a directory that loads, by id, and the errors of those that do not."""
    directory = Path(directory)
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml")) if directory.is_dir() else []
    packs, errors = _check_files(tuple((p, p.stat().st_mtime_ns) for p in files))
    return dict(packs), list(errors)


@lru_cache(maxsize=8)
def _check_files(files: tuple[tuple[Path, int], ...]) -> tuple[dict[str, RulePack], list[PackError]]:
    # Keyed on modification times, so an edited pack is read again and an unchanged one is not; a
    # few entries, since each edit makes a new key and the old ones are never asked for again.
    packs: dict[str, RulePack] = {}
    errors: list[PackError] = []
    for path, _mtime in files:
        try:
            pack = load_pack(path)
        except PackError as exc:
            errors.append(exc)
            continue
        if pack.id in packs:
            errors.append(
                PackError(f"{path.name}: field id: pack id {pack.id!r} is also used by {packs[pack.id].path.name}", path=path, field="id")
            )
            continue
        packs[pack.id] = pack
    return packs, errors


def get_pack(pack_id: str, directory: str | Path = PACKS_DIR) -> RulePack:
    packs, errors = check_packs(directory)
    if pack_id in packs:
        return packs[pack_id]
    broken = [e for e in errors if e.path is not None and e.path.stem == pack_id]
    if broken:
        raise PackError(f"rule pack {pack_id} is broken: {broken[0]}", path=broken[0].path)
    known = ", ".join(sorted(packs)) or "none"
    raise PackError(f"no rule pack {pack_id!r} (available: {known})")
