"""Validation step: the schema's value checks plus the database checks, turned into a report of findings.

Each finding names the sheet, the Excel row, the column (canonical key and header as written) and the
value as written in the file; the normalised frame is only what the checks look at.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.identifiers import vin_check_digit, vin_check_digit_mandatory
from fleet.models import Acquisition, Agency, User
from fleet.vocab import ACQUISITION_KINDS, CATEGORIES, COUNTIES, POWER_TYPES, fold
from imports.headers import COLUMN_BY_KEY, KEYS
from imports.read import RawTable
from imports.report import (
    CODES,
    EMISSION_REQUIRED,
    ERROR,
    WARNING,
    Finding,
    SheetLayout,
    ValidationReport,
    finding,
    shown,
)
from imports.schema import ImportPolicy, blank, failures

# Codes that make a whole sheet unusable: its rows are not valid, and its columns' value checks are moot.
SHEET_ERRORS = ("missing_column", "ambiguous_header")
# SQLite allows 32766 bound parameters; stay well below for IN lists.
_CHUNK = 5000

_CHOICES = {
    "unknown_category": CATEGORIES,
    "unknown_power_type": POWER_TYPES,
    "unknown_acquisition_type": ACQUISITION_KINDS,
    "unknown_county": COUNTIES,
}


@dataclass
class Validated:
    """A validated upload: the report, and what commit needs when it is clean."""

    report: ValidationReport
    frame: pd.DataFrame  # normalised values, one row per acquisition
    agency_ids: pd.Series  # frame index -> registered agency id (NaN when unknown)


def _agency_ids(session: Session, names: pd.Series) -> tuple[pd.Series, dict[int, str]]:
    """Agency ids for the written names, matched tolerant of spaces and full-width forms."""
    registry = session.execute(sa.select(Agency.id, Agency.name)).all()
    by_folded = {fold(name): agency_id for agency_id, name in registry}
    ids = names.map({v: by_folded.get(fold(str(v))) for v in names.dropna().unique()})
    return ids, {agency_id: name for agency_id, name in registry}


def _owners(session: Session, vins: list[str]) -> dict[str, int]:
    """The agency already holding each VIN, one query per chunk of VINs."""
    owners: dict[str, int] = {}
    for start in range(0, len(vins), _CHUNK):
        chunk = vins[start : start + _CHUNK]
        query = sa.select(Acquisition.vin, Acquisition.agency_id).where(Acquisition.vin.in_(chunk))
        owners.update({vin: agency_id for vin, agency_id in session.execute(query)})
    return owners


@dataclass
class _Registry:
    """What the database says about the upload's agencies and VINs."""

    agency_ids: pd.Series  # frame index -> agency id, NaN when the name is not registered
    agency_names: dict[int, str]
    owners: dict[str, int]  # VIN -> agency already holding it


def _database_failures(
    session: Session, frame: pd.DataFrame, value_failures: pd.DataFrame, user: User | None
) -> tuple[pd.DataFrame, _Registry]:
    """unknown_agency, agency_not_allowed and vin_registered_elsewhere as (index, column, code) rows."""
    ids, names = _agency_ids(session, frame["agency"])
    found: list[pd.DataFrame] = [pd.DataFrame({"index": pd.Series(dtype="int64"), "column": [], "code": []})]

    def add(mask: pd.Series, column: str, code: str) -> None:
        found.append(pd.DataFrame({"index": frame.index[mask.to_numpy()], "column": column, "code": code}))

    add(ids.isna() & ~blank(frame["agency"]), "agency", "unknown_agency")
    if user is not None and user.role == "agency":
        add(ids.notna() & ids.ne(user.agency_id), "agency", "agency_not_allowed")

    vin_errors = value_failures.loc[
        value_failures["column"].eq("vin") & value_failures["code"].ne("vin_check_digit"), "index"
    ]
    checkable = ids.notna() & ~blank(frame["vin"]) & ~frame.index.isin(vin_errors)
    owners = _owners(session, frame.loc[checkable, "vin"].astype(str).unique().tolist())
    if owners:
        owner = frame["vin"].map(owners)
        add(checkable & owner.notna() & owner.ne(ids), "vin", "vin_registered_elsewhere")
    return pd.concat(found, ignore_index=True), _Registry(ids, names, owners)


def _issue_finding(issue: dict[str, Any]) -> Finding:
    return Finding(
        sheet=issue.get("sheet"),
        row=issue.get("row"),
        column=issue.get("column"),
        header=issue.get("header"),
        value=shown(issue.get("value")),
        code=issue["code"],
        severity=issue.get("severity") or CODES[issue["code"]].severity,
        message=issue["message"],
    )


def validate_table(
    session: Session,
    raw: RawTable,
    frame: pd.DataFrame,
    *,
    file_name: str,
    policy: ImportPolicy,
    user: User | None = None,
) -> Validated:
    """Check the normalised frame against the schema and the database; raw gives the values as written."""
    layout = {s.name: SheetLayout(header_row=s.header_row, columns=dict(s.columns), headers=dict(s.headers)) for s in raw.sheets}
    read_findings = [_issue_finding(issue) for issue in raw.issues]
    unusable = {
        (f.sheet, f.column) for f in read_findings if f.code in SHEET_ERRORS and f.severity == ERROR
    }
    unusable_sheets = {sheet for sheet, _ in unusable}

    value_failures = failures(frame, policy)
    db_failures, registry = _database_failures(session, frame, value_failures, user)
    cases = pd.concat([value_failures, db_failures], ignore_index=True)
    sheet_of = frame["_sheet"]
    if unusable and not cases.empty:
        # A column the sheet lacks (or could not place) reports once, not once per row.
        moot = [(sheet_of.loc[i], c) in unusable for i, c in zip(cases["index"], cases["column"])]
        cases = cases[~pd.Series(moot, index=cases.index, dtype=bool)]

    row_findings = _row_findings(cases, raw.frame, frame, layout, registry, user)
    found = read_findings + row_findings
    order = {name: position for position, name in enumerate(s.name for s in raw.sheets)}
    column_order = {key: position for position, key in enumerate(KEYS)}
    found.sort(
        key=lambda f: (order.get(f.sheet, -1), f.row or 0, column_order.get(f.column, -1), f.code)
    )

    bad_rows = set(cases.loc[_error_mask(cases, frame), "index"])
    bad_rows |= set(frame.index[sheet_of.isin(unusable_sheets).to_numpy()])
    report = ValidationReport(
        file=file_name,
        sheets=[s.name for s in raw.sheets],
        rows=len(frame),
        valid_rows=len(frame) - len(bad_rows),
        errors=[f for f in found if f.severity == ERROR],
        warnings=[f for f in found if f.severity == WARNING],
        layout=layout,
    )
    return Validated(report=report, frame=frame, agency_ids=registry.agency_ids)


def _warning_vin(frame: pd.DataFrame, index: Any) -> bool:
    """An imported vehicle's VIN (not L…) may fail the check digit: a warning, not an error (SPEC §3.3)."""
    return not vin_check_digit_mandatory(str(frame.at[index, "vin"]))


def _severity(code: str, frame: pd.DataFrame, index: Any) -> str:
    if code == "vin_check_digit" and _warning_vin(frame, index):
        return WARNING
    return CODES[code].severity


def _error_mask(cases: pd.DataFrame, frame: pd.DataFrame) -> pd.Series:
    severities = [_severity(code, frame, index) for index, code in zip(cases["index"], cases["code"])]
    return pd.Series(severities, index=cases.index, dtype=object).eq(ERROR)


def _row_findings(
    cases: pd.DataFrame,
    raw_frame: pd.DataFrame,
    frame: pd.DataFrame,
    layout: dict[str, SheetLayout],
    registry: _Registry,
    user: User | None,
) -> list[Finding]:
    if cases.empty:
        return []
    duplicated = set(cases.loc[cases["code"].eq("duplicate_vin"), "index"])
    first_seen: dict[str, Any] = {}
    if duplicated:
        candidates = frame.loc[~frame.index.isin(duplicated), ["vin", "_sheet", "_row"]].dropna(subset=["vin"])
        first_seen = {vin: (sheet, row) for vin, sheet, row in candidates.drop_duplicates("vin").itertuples(index=False)}
    today = dt.date.today().isoformat()
    own_agency = registry.agency_names.get(user.agency_id) if user is not None and user.agency_id is not None else None

    result = []
    for index, column, code in cases[["index", "column", "code"]].itertuples(index=False):
        sheet, row = frame.at[index, "_sheet"], int(frame.at[index, "_row"])
        header = layout[sheet].headers.get(column) if sheet in layout else None
        params: dict[str, Any] = {}
        template = None
        value = frame.at[index, column]
        if code in _CHOICES:
            params["choices"] = "、".join(_CHOICES[code].values)
        elif code == "duplicate_vin":
            params["first_sheet"], params["first_row"] = first_seen.get(value, (sheet, row))
        elif code == "vin_check_digit":
            params["expected"] = vin_check_digit(str(value))
        elif code == "plate_power_mismatch":
            params["power"] = frame.at[index, "power"]
        elif code == "date_out_of_range":
            params["today"] = today
        elif code == "exemption_reason_required":
            params["category"] = frame.at[index, "category"]
        elif code == "required" and column == "emission_standard":
            template = EMISSION_REQUIRED
            params["category"] = frame.at[index, "category"]
        elif code == "vin_registered_elsewhere":
            params["owner"] = registry.agency_names.get(registry.owners.get(str(value)), "")
        elif code == "agency_not_allowed":
            params["own"] = own_agency
        result.append(
            finding(
                code,
                sheet=sheet,
                row=row,
                column=column,
                header=header or COLUMN_BY_KEY[column].header,
                value=raw_frame.at[index, column],
                severity=_severity(code, frame, index),
                template=template,
                **params,
            )
        )
    return result
