"""The GA 24 codes of the registration extract and what they say (extract.yaml, read once)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from fleet.base.vocab import ORDINARY_HYBRID, PLUG_IN_HYBRID, fold

SOURCE = Path(__file__).with_name("extract.yaml")
_VEHICLE_TYPE_CODE = re.compile(r"^[A-Z][0-9A-Z][0-9]$")


@cache
def data() -> dict[str, Any]:
    with SOURCE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@dataclass(frozen=True)
class CodeTable:
    """Codes and their names: an extract writes either."""

    names: dict[str, str]  # code -> name
    _by_name: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({fold(name): code for code, name in self.names.items()})

    def code(self, text: str | None) -> str | None:
        """The code a written code or name stands for; None when it is neither."""
        if text is None:
            return None
        if text.upper() in self.names:
            return text.upper()
        return self._by_name.get(fold(text))

    def label(self, code: str | None) -> str | None:
        """"A 非营运": the code and its name, as a reviewer reads it."""
        if code is None:
            return None
        name = self.names.get(code)
        return f"{code} {name}" if name else code


def _table(key: str, name_of: Any = str) -> CodeTable:
    return CodeTable({str(code): name_of(value) for code, value in data()[key].items()})


PLATE_KINDS = _table("plate_kinds")
USAGES = _table("usages")
STATUSES = _table("statuses")
FUELS = _table("fuels", lambda value: str(value["name"]))
VEHICLE_TYPES = _table("vehicle_types")
NEV_PLATE_KINDS: frozenset[str] = frozenset(str(k) for k in data()["nev_plate_kinds"])
# A reported acquisition is not_registered only when acquired more than this many days before the
# end of a covered period: registering takes time.
GRACE_DAYS: int = int(data()["registration_grace_days"])


def plate_kind_code(text: str | None) -> str | None:
    """A plate kind written as 2, 02 or 小型汽车, as its two-digit code; None when unknown."""
    if text is None:
        return None
    if text.isdigit() and len(text) <= 2:
        return text.zfill(2) if text.zfill(2) in PLATE_KINDS.names else None
    return PLATE_KINDS.code(text)


def vehicle_type_code(text: str | None) -> str | None:
    """A vehicle type written as K33 or 小型轿车; a well-formed code the table lacks is kept as it is."""
    if text is None:
        return None
    found = VEHICLE_TYPES.code(text)
    if found is None and _VEHICLE_TYPE_CODE.match(text.upper()):
        return text.upper()
    return found


def registered_power(fuel: str | None, plate_kind: str | None, *, green_plate: bool = False) -> str | None:
    """The power type (vocabularies.yaml) a registered fuel code says; O (混合动力) is a plug-in hybrid on an
    NEV plate kind (or a green plate when the kind is missing), stays 混合动力 on a plate that does not
    tell (a police plate), and is an ordinary hybrid otherwise."""
    if fuel not in FUELS.names:
        return None
    power = data()["fuels"][fuel]["power"]
    if power is not None:
        return str(power)
    if plate_kind in data()["unsettled_plate_kinds"]:
        return FUELS.names[fuel]
    return PLUG_IN_HYBRID if plate_kind in NEV_PLATE_KINDS or (plate_kind is None and green_plate) else ORDINARY_HYBRID


def same_power(reported: str, registered: str) -> bool:
    """Whether a reported power type says what the registered one says (a range-extended car is
    registered as a plug-in hybrid)."""
    return reported == registered or reported in data()["same_power"].get(registered, ())


def usage_agrees(category: str, usage: str | None) -> bool:
    """extract.yaml's table of usages and categories; a category it does not list agrees with any usage."""
    allowed = data()["usage_agrees"].get(category)
    return usage is None or allowed is None or usage in allowed


def category_expression(usage: Any, vehicle_type: Any, agency_kind: Any, sector: Any) -> Any:
    """The category an unreported registration is counted under, as SQL over its columns and its
    agency's: extract.yaml's first entry whose conditions all hold (the last has none)."""
    whens = []
    for entry in data()["category_from_registration"]:
        conditions = []
        if "usage" in entry:
            conditions.append(usage.in_(entry["usage"]))
        if "vehicle_type" in entry:
            conditions.append(sa.or_(*(vehicle_type.startswith(prefix) for prefix in entry["vehicle_type"])))
        if "agency_kind" in entry:
            conditions.append(agency_kind.in_(entry["agency_kind"]))
        if "sector" in entry:
            conditions.append(sector.in_(entry["sector"]))
        if not conditions:
            return sa.case(*whens, else_=sa.literal(str(entry["category"]))) if whens else sa.literal(str(entry["category"]))
        whens.append((sa.and_(*conditions), sa.literal(str(entry["category"]))))
    raise LookupError(f"{SOURCE.name}: category_from_registration needs a last entry without conditions")
