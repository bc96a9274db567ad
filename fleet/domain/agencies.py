"""The agency registry: loading it from a spreadsheet, all rows or none."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.identifiers import clean_code
from fleet.base.models import Agency
from fleet.base.vocab import fold
from fleet.domain.agency_names import alias_conflicts, normalised
from fleet.domain.registry_checks import REGISTRY_COLUMNS, REQUIRED, VOCABULARIES, emails_of, row_errors
from imports.package import UnusableFile
from imports.sheets import read_book

# Aliases are separated like e-mails, but not by spaces: a name may be written with one.
_ALIAS_SEPARATORS = re.compile(r"[;；,，、]+")


class RegistryFileError(ValueError):
    """The file as a whole cannot be read as a registry; code is the reader's (too_large, corrupt, …)
    when the file could not be read at all."""

    def __init__(self, message: str, *, code: str = "registry_format") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class RegistryLoad:
    inserted: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def registry_rows(path: Path) -> list[list[Any]]:
    """The first sheet's rows (a web page's largest table), through the guarded reader of every upload."""
    try:
        book = read_book(path)
    except UnusableFile as exc:
        raise RegistryFileError(f"{path.name}: {exc.message}", code=exc.code) from None
    return book.sheets[0].rows if book.sheets else []


def _header_map(header: list[Any]) -> dict[str, int]:
    spellings = {fold(s): key for key, names in REGISTRY_COLUMNS.items() for s in names}
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = spellings.get(fold(str(cell))) if cell is not None else None
        if key and key not in found:
            found[key] = index
    return found


def _cells(rows: list[list[Any]], columns: dict[str, int]) -> pd.DataFrame:
    """The registry's rows as trimmed text by column key, each with its row number (header on row 1);
    blank rows are left out."""
    records = []
    for number, row in enumerate(rows, start=2):
        cells = {key: "" if (i := columns.get(key)) is None or i >= len(row) or row[i] is None else str(row[i]).strip()
                 for key in REGISTRY_COLUMNS}  # fmt: skip
        if any(cells.values()):
            records.append({**cells, "row": number})
    return pd.DataFrame(records, columns=[*REGISTRY_COLUMNS, "row"], dtype=object)


def _agency(cells: dict[str, Any], has_aliases: bool) -> dict:
    """A checked row as the registry stores it: vocabulary values canonical, codes clean."""
    values = {key: cells[key] for key in REGISTRY_COLUMNS}
    for key, vocabulary in VOCABULARIES.items():
        values[key] = vocabulary.lookup(values[key])
    values["contact_emails"] = emails_of(values["contact_emails"])
    values["credit_code"] = clean_code(values["credit_code"]) if values["credit_code"] else None
    # Without the column the agency keeps the aliases it has (None); a blank cell clears them.
    values["aliases"] = _aliases(values["name"], values["aliases"]) if has_aliases else None
    return values


def _aliases(name: str, cell: str) -> list[str]:
    """The cell's aliases, each once, without the agency's own name."""
    kept: dict[str, str] = {normalised(name): name}
    for alias in (a.strip() for a in _ALIAS_SEPARATORS.split(cell)):
        if alias:
            kept.setdefault(normalised(alias), alias)
    return list(kept.values())[1:]


def parse_registry(rows: Iterable[list[Any]]) -> tuple[list[dict], list[dict[str, Any]]]:
    """Agencies and row errors (row numbers as in the file, header on row 1)."""
    numbered, errors = _parse_numbered(rows)
    return [agency for _, agency in numbered], errors


def _parse_numbered(rows: Iterable[list[Any]]) -> tuple[list[tuple[int, dict]], list[dict[str, Any]]]:
    rows = list(rows)
    if not rows:
        raise RegistryFileError("the file is empty")
    columns = _header_map(rows[0])
    missing = [REGISTRY_COLUMNS[k][0] for k in REQUIRED if k not in columns]
    if missing:
        raise RegistryFileError(f"missing column(s): {', '.join(missing)}")
    frame = _cells(rows[1:], columns)
    errors = row_errors(frame)
    bad = {error["row"] for error in errors}
    agencies = [(cells["row"], _agency(cells, "aliases" in columns)) for cells in frame.to_dict("records") if cells["row"] not in bad]
    return agencies, errors


def load_registry(session: Session, path: Path, *, actor_id: int | None = None) -> RegistryLoad:
    """Insert or update agencies by name; when any row is bad nothing is written."""
    numbered, errors = _parse_numbered(registry_rows(path))
    agencies = [agency for _, agency in numbered]
    if not errors:
        rows = [number for number, _ in numbered]
        errors = [{**error, "row": rows[error["row"]]} for error in alias_errors(session, agencies)]
    if errors:
        return RegistryLoad(errors=errors)
    return upsert_agencies(session, agencies, actor_id=actor_id)


def alias_errors(session: Session, agencies: list[dict], *, replacing: int | None = None) -> list[dict[str, Any]]:
    """An error for each alias that, once these agencies are saved, would also mean another agency:
    {"row": position in agencies, "column": "aliases" (or "name" when the alias is another agency's,
    already registered), "message"} naming both. replacing: the registered agency the first of them
    replaces (an edit, which may rename it); others replace the registered agency of their name."""
    registry: dict[str, list[str]] = {
        name: list(aliases or [])
        for agency_id, name, aliases in session.execute(sa.select(Agency.id, Agency.name, Agency.aliases))
        if agency_id != replacing
    }
    position = {values["name"]: i for i, values in enumerate(agencies)}
    for values in agencies:
        if values.get("aliases") is not None:
            registry[values["name"]] = values["aliases"]
        else:
            registry.setdefault(values["name"], [])
    errors = []
    for name, alias, other in alias_conflicts(registry.items()):
        if name in position:
            row, column = position[name], "aliases"
        elif other in position:
            row, column = position[other], "name"
        else:
            continue  # two registered agencies already: not this entry's doing
        errors.append({"row": row, "column": column, "message": f"{alias!r} would name both {name!r} and {other!r}"})
    return errors


def upsert_agencies(
    session: Session, agencies: list[dict], *, actor_id: int | None = None, action: str = "agencies.load"
) -> RegistryLoad:
    """Insert or update agencies by name; audited as a registry load, or as `action` (one agency
    created in a form is "agency.create", not a load)."""
    existing = {a.name: a for a in session.scalars(sa.select(Agency))}
    result = RegistryLoad()
    for values in agencies:
        agency = existing.get(values["name"])
        if agency is None:
            session.add(Agency(**{**values, "aliases": values.get("aliases") or []}))
            result.inserted += 1
        else:
            for key, value in values.items():
                if (key != "credit_code" or value) and (key != "aliases" or value is not None):
                    setattr(agency, key, value)
            result.updated += 1
    session.flush()
    audit.record(session, action, user_id=actor_id, detail={"inserted": result.inserted, "updated": result.updated})
    return result


def save_agency(session: Session, agency: Agency | None, values: dict, *, actor_id: int) -> Agency | None:
    """Create or change one agency (values as parse_registry gives them); None when another agency
    already has the name."""
    same_name = agency_by_name(session, values["name"])
    if same_name is not None and same_name is not agency:
        return None
    if agency is None:
        upsert_agencies(session, [values], actor_id=actor_id, action="agency.create")
        return agency_by_name(session, values["name"])
    for key, value in values.items():
        setattr(agency, key, value)
    audit.record(session, "agency.update", user_id=actor_id, target_type="agency", target_id=agency.id, detail={"name": agency.name})
    return agency


def agency_by_name(session: Session, name: str) -> Agency | None:
    return session.scalar(sa.select(Agency).where(Agency.name == name))
