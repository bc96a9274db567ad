"""Validation step: the schema's value checks plus the database checks, turned into a report of findings.

Each finding names the sheet, the Excel row, the column (canonical key and header as written) and the
value as written in the file; the normalised frame is only what the checks look at.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.identifiers import vin_check_digit, vin_check_digit_mandatory
from fleet.base.models import Acquisition, User
from fleet.base.vocab import ACQUISITION_KINDS, CATEGORIES, COUNTIES, POWER_TYPES
from fleet.domain.acquisitions import vin_conditions
from fleet.domain.agency_names import AgencyIndex, AgencyMatch, listed
from fleet.domain.reporting import locked_months
from imports.headers import COLUMN_BY_KEY, KEYS
from imports.read import RawTable
from imports.report import (
    AGENCY_COLUMN_FROM_USER,
    CODES,
    EMISSION_REQUIRED,
    ERROR,
    WARNING,
    Finding,
    Messages,
    PreviewRow,
    SheetLayout,
    UNKNOWN_AGENCY_SUGGESTED,
    ValidationReport,
    shown,
)
from imports.schema import ImportPolicy, blank, failures

# A file whose agency column is mostly not names (another column mapped there) would otherwise spend
# seconds on suggestions that no one reads past the first screen.
MAX_SUGGESTED_NAMES = 1000

# Codes that make a whole sheet unusable: its rows are not valid, and its columns' value checks are moot.
SHEET_ERRORS = ("missing_column", "ambiguous_header")
# The check page shows the file's first rows and then each row with a finding, up to so many rows in all:
# enough to see how the file was read without carrying a large file's rows in its report.
PREVIEW_FIRST_ROWS = 10
PREVIEW_MAX_ROWS = 200

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


def agency_matches(agencies: AgencyIndex, names: pd.Series, own_agency_id: int | None) -> tuple[pd.Series, dict[Any, AgencyMatch]]:
    """The registered agency of each written name, matched once per distinct name. An agency user is
    offered only its own agency as a suggestion: any other would not be allowed anyway."""
    among = None if own_agency_id is None else {own_agency_id}
    matches: dict[Any, AgencyMatch] = {}
    unmatched = 0
    for name in names.dropna().unique():
        match = matches[name] = agencies.match(str(name), suggest_among=among, suggest=unmatched < MAX_SUGGESTED_NAMES)
        unmatched += not match.found
    return names.map({name: match.agency_id for name, match in matches.items()}), matches


def _stored(session: Session, vins: list[str]) -> dict[str, tuple[int, dt.date]]:
    """The agency already holding each VIN, and the acquisition date it holds it under."""
    stored: dict[str, tuple[int, dt.date]] = {}
    for condition in vin_conditions(session, vins):
        query = sa.select(Acquisition.vin, Acquisition.agency_id, Acquisition.acquired_on).where(condition)
        stored.update({vin: (agency_id, acquired_on) for vin, agency_id, acquired_on in session.execute(query)})
    return stored


def _in_locked_month(
    session: Session, frame: pd.DataFrame, ids: pd.Series, stored: dict[str, tuple[int, dt.date]]
) -> tuple[pd.Series, dict[Any, dt.date]]:
    """Rows of a registered agency dated in one of its accepted (locked) months, and rows that would
    move one of its vehicles out of a locked month (a new date for a vehicle stored in it): the locked
    month's figures would change either way. Returns the rows, and the stored month of the moved ones."""
    known = ids.notna()
    locked = locked_months(session, ids[known].astype("int64").unique().tolist()) if known.any() else set()
    if not locked:
        return pd.Series(False, index=frame.index), {}
    months = pd.to_datetime(frame["acquired_on"], errors="coerce").dt.to_period("M").dt.start_time
    flagged, moved = [], {}
    for index, agency, month, vin in zip(frame.index, ids.to_numpy(), months.to_numpy(), frame["vin"], strict=True):
        if pd.isna(agency):
            flagged.append(False)
            continue
        holder, held_on = stored.get(str(vin), (None, None))
        if not pd.isna(month) and (int(agency), pd.Timestamp(month).date()) in locked:
            flagged.append(True)
        elif holder == int(agency) and (holder, held_on.replace(day=1)) in locked:
            flagged.append(True)
            moved[index] = held_on
        else:
            flagged.append(False)
    return pd.Series(flagged, index=frame.index, dtype=bool), moved


@dataclass
class _Registry:
    """What the database says about the upload's agencies and VINs."""

    agency_ids: pd.Series  # frame index -> agency id, NaN when the name is not registered
    agency_names: dict[int, str]
    owners: dict[str, int]  # VIN -> agency already holding it
    moved_from_locked: dict[Any, dt.date]  # frame index -> the locked date its vehicle is stored under
    matches: dict[Any, AgencyMatch]  # written agency name -> what it matched, or its suggestions


def _own_agency_id(user: User | None) -> int | None:
    """The agency an agency user uploads for: its blank 单位名称 cells mean this one."""
    return user.agency_id if user is not None and user.role == "agency" else None


def _database_failures(
    session: Session, agencies: AgencyIndex, frame: pd.DataFrame, value_failures: pd.DataFrame, own: int | None
) -> tuple[pd.DataFrame, _Registry]:
    """unknown_agency, agency_not_allowed and vin_registered_elsewhere as (index, column, code) rows;
    own is the agency an agency user uploads for (None for a reviewer)."""
    ids, matches = agency_matches(agencies, frame["agency"], own)
    if own is not None:
        ids = ids.mask(blank(frame["agency"]), own)
    found: list[pd.DataFrame] = [pd.DataFrame({"index": pd.Series(dtype="int64"), "column": [], "code": []})]

    def add(mask: pd.Series, column: str, code: str) -> None:
        found.append(pd.DataFrame({"index": frame.index[mask.to_numpy()], "column": column, "code": code}))

    add(ids.isna() & ~blank(frame["agency"]), "agency", "unknown_agency")
    if own is not None:
        add(ids.notna() & ids.ne(own), "agency", "agency_not_allowed")

    vin_errors = value_failures.loc[
        value_failures["column"].eq("vin") & value_failures["code"].ne("vin_check_digit"), "index"
    ]
    checkable = ids.notna() & ~blank(frame["vin"]) & ~frame.index.isin(vin_errors)
    stored = _stored(session, frame.loc[checkable, "vin"].astype(str).unique().tolist())
    in_locked, moved = _in_locked_month(session, frame, ids, stored)
    add(in_locked, "acquired_on", "month_locked")
    owners = {vin: agency for vin, (agency, _held_on) in stored.items()}
    if owners:
        owner = frame["vin"].map(owners)
        add(checkable & owner.notna() & owner.ne(ids), "vin", "vin_registered_elsewhere")
    return pd.concat(found, ignore_index=True), _Registry(ids, agencies.names, owners, moved, matches)


def issue_finding(issue: dict[str, Any]) -> Finding:
    """A finding of the reading step (a RawTable issue) as the report gives it."""
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
    skip_locked: bool = False,
) -> Validated:
    """Check the normalised frame against the schema and the database; raw gives the values as written.

    skip_locked: the user chose to import the rows outside locked months; the rows dated in a locked
    month are then warnings and left out of what is committed, instead of errors that stop the file."""
    layout = {s.name: SheetLayout(header_row=s.header_row, columns=dict(s.columns), headers=dict(s.headers)) for s in raw.sheets}
    agencies = AgencyIndex.load(session)
    messages = Messages()
    read_findings = [issue_finding(issue) for issue in raw.issues]
    own = _own_agency_id(user)
    filled_sheets: set[str] = set()
    if own is not None:
        read_findings, filled_sheets = _agency_column_from_user(read_findings, agencies.names.get(own), messages)
    unusable = {
        (f.sheet, f.column) for f in read_findings if f.code in SHEET_ERRORS and f.severity == ERROR
    }
    unusable_sheets = {sheet for sheet, _ in unusable}

    value_failures = failures(frame, policy)
    if own is not None:
        value_failures = _blank_agency_from_user(value_failures, frame, filled_sheets)
    db_failures, registry = _database_failures(session, agencies, frame, value_failures, own)
    cases = _located(pd.concat([value_failures, db_failures], ignore_index=True), raw.frame, frame)
    skipped: set[int] = set()
    if skip_locked:
        locked = cases["code"].eq("month_locked")
        cases.loc[locked, "severity"] = WARNING
        skipped = set(cases.loc[locked, "index"])
    if unusable and not cases.empty:
        # A column the sheet lacks (or could not place) reports once, not once per row.
        moot = pd.Series(list(zip(cases["sheet"], cases["column"])), index=cases.index).isin(unusable)
        cases = cases[~moot]

    found = read_findings + _row_findings(cases, frame, layout, registry, user, messages)
    order = {name: position for position, name in enumerate(s.name for s in raw.sheets)}
    column_order = {key: position for position, key in enumerate(KEYS)}
    found.sort(key=lambda f: (order.get(f.sheet, -1), f.row or 0, column_order.get(f.column, -1), f.code))

    bad_rows = set(cases.loc[cases["severity"].eq(ERROR), "index"])
    bad_rows |= set(frame.index[frame["_sheet"].isin(unusable_sheets).to_numpy()])
    bad_rows |= skipped
    report = ValidationReport(
        file=file_name,
        sheets=[s.name for s in raw.sheets],
        rows=len(frame),
        valid_rows=len(frame) - len(bad_rows),
        errors=[f for f in found if f.severity == ERROR],
        warnings=[f for f in found if f.severity == WARNING],
        layout=layout,
        preview=preview_rows(frame, found),
    )
    if skipped:
        kept = ~frame.index.isin(list(skipped))
        return Validated(report=report, frame=frame[kept], agency_ids=registry.agency_ids[kept])
    return Validated(report=report, frame=frame, agency_ids=registry.agency_ids)


def preview_rows(frame: pd.DataFrame, found: list[Finding]) -> list[PreviewRow]:
    """The first PREVIEW_FIRST_ROWS rows of the normalised frame and every later row with a finding, up to
    PREVIEW_MAX_ROWS rows, in file order, each with its values as they will be stored."""
    flagged: dict[tuple[str, int], dict[str | None, str]] = {}
    for finding in found:
        if finding.sheet is not None and finding.row is not None:
            cells = flagged.setdefault((finding.sheet, finding.row), {})
            if cells.get(finding.column) != ERROR:
                cells[finding.column] = finding.severity
    positions = np.arange(min(len(frame), PREVIEW_FIRST_ROWS))
    if flagged:
        places = pd.MultiIndex.from_arrays([frame["_sheet"], frame["_row"]])
        with_findings = places.isin(list(flagged))
        with_findings[: len(positions)] = True
        positions = np.flatnonzero(with_findings)[:PREVIEW_MAX_ROWS]
    rows = []
    for position in positions:
        record = frame.iloc[position]
        cells = flagged.get((record["_sheet"], int(record["_row"])), {})
        severities = set(cells.values())
        rows.append(
            PreviewRow(
                sheet=record["_sheet"],
                row=int(record["_row"]),
                values={key: _preview_text(record[key]) for key in KEYS},
                severity=ERROR if ERROR in severities else (WARNING if severities else None),
                flagged={key: severity for key, severity in cells.items() if key is not None},
            )
        )
    return rows


def _preview_text(value: Any) -> str | None:
    """A stored value as text: a date in ISO form, a price without float noise (万元 to 4 places)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def _located(cases: pd.DataFrame, raw_frame: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The failed checks with their sheet, Excel row, value (normalised and as written) and severity."""
    positions = frame.index.get_indexer(cases["index"])
    value = pd.Series(None, index=cases.index, dtype=object)
    written = pd.Series(None, index=cases.index, dtype=object)
    for column in cases["column"].unique():
        mask = cases["column"].eq(column).to_numpy()
        value[mask] = frame[column].to_numpy()[positions[mask]]
        written[mask] = raw_frame[column].to_numpy()[positions[mask]]
    severity = cases["code"].map({code: c.severity for code, c in CODES.items()})
    # An imported vehicle's VIN (not L…) may fail the check digit: a warning, not an error: GB 16735 makes the check digit mandatory only for vehicles made in China.
    check_digit = cases["code"].eq("vin_check_digit")
    imported = value[check_digit].map(lambda v: not vin_check_digit_mandatory(str(v))).astype(bool)
    severity[imported[imported].index] = WARNING
    return cases.assign(
        sheet=frame["_sheet"].to_numpy()[positions],
        row=frame["_row"].to_numpy()[positions],
        value=value,
        written=written,
        severity=severity,
        category=frame["category"].to_numpy()[positions],
        power=frame["power"].to_numpy()[positions],
    )


def _first_occurrences(frame: pd.DataFrame, duplicates: pd.DataFrame) -> dict[str, tuple[str, int]]:
    """Where each repeated VIN first appears: its one row not itself reported as a duplicate."""
    candidates = frame.loc[
        frame["vin"].isin(duplicates["value"].unique()) & ~frame.index.isin(duplicates["index"]), ["vin", "_sheet", "_row"]
    ]
    return {vin: (sheet, int(row)) for vin, sheet, row in candidates.drop_duplicates("vin").itertuples(index=False)}


def _agency_column_from_user(findings: list[Finding], own_name: str | None, messages: Messages) -> tuple[list[Finding], set[str]]:
    """For an agency user, a sheet without 单位名称 holds its own vehicles: the missing column becomes
    an agency_from_user warning. The findings, and the sheets so filled."""
    kept, filled = [], set()
    for finding in findings:
        if finding.code == "missing_column" and finding.column == "agency" and finding.sheet is not None:
            filled.add(finding.sheet)
            finding = messages.finding(
                "agency_from_user", sheet=finding.sheet, row=finding.row, column="agency",
                header=finding.header, template=AGENCY_COLUMN_FROM_USER, own=own_name,
            )
        kept.append(finding)
    return kept, filled


def _blank_agency_from_user(value_failures: pd.DataFrame, frame: pd.DataFrame, filled_sheets: set[str]) -> pd.DataFrame:
    """An agency user's blank 单位名称 cell is its own agency: agency_from_user instead of required,
    once per row; nothing per row in a sheet without the column (said once for the sheet)."""
    blank_agency = (value_failures["column"].eq("agency") & value_failures["code"].eq("required")).to_numpy()
    in_filled = frame.loc[value_failures["index"], "_sheet"].isin(filled_sheets).to_numpy()
    codes = value_failures["code"].to_numpy(dtype=object, copy=True)
    codes[blank_agency & ~in_filled] = "agency_from_user"
    return value_failures.assign(code=codes)[~(blank_agency & in_filled)]


def _row_findings(
    cases: pd.DataFrame,
    frame: pd.DataFrame,
    layout: dict[str, SheetLayout],
    registry: _Registry,
    user: User | None,
    messages: Messages,
) -> list[Finding]:
    if cases.empty:
        return []
    duplicates = cases[cases["code"].eq("duplicate_vin")]
    first_seen = _first_occurrences(frame, duplicates) if not duplicates.empty else {}
    today = dt.date.today().isoformat()
    own_agency = registry.agency_names.get(user.agency_id) if user is not None and user.agency_id is not None else None
    choices = {code: "、".join(vocabulary.values) for code, vocabulary in _CHOICES.items()}

    result = []
    for index, column, code, sheet, row, value, written, severity, category, power in cases[
        ["index", "column", "code", "sheet", "row", "value", "written", "severity", "category", "power"]
    ].itertuples(index=False):
        params: dict[str, Any] = {}
        template = None
        suggestions = None
        if code in choices:
            params["choices"] = choices[code]
        elif code == "duplicate_vin":
            params["first_sheet"], params["first_row"] = first_seen.get(value, (sheet, row))
        elif code == "vin_check_digit":
            params["expected"] = vin_check_digit(str(value))
        elif code == "plate_power_mismatch":
            params["power"] = power
        elif code == "date_out_of_range":
            params["today"] = today
        elif code == "exemption_reason_required":
            params["category"] = category
        elif code == "required" and column == "emission_standard":
            template = EMISSION_REQUIRED
            params["category"] = category
        elif code == "vin_registered_elsewhere":
            params["owner"] = registry.agency_names.get(registry.owners.get(str(value)), "")
        elif code in ("agency_not_allowed", "agency_from_user"):
            params["own"] = own_agency
        elif code == "unknown_agency":
            suggestions = list(registry.matches[value].suggestions)
            if suggestions:
                template = UNKNOWN_AGENCY_SUGGESTED
                params["suggested"] = listed(suggestions)
        elif code == "month_locked":
            params["month"] = pd.Timestamp(registry.moved_from_locked.get(index, value)).strftime("%Y-%m")
        header = layout[sheet].headers.get(column) if sheet in layout else None
        result.append(
            messages.finding(
                code,
                sheet=sheet,
                row=int(row),
                column=column,
                header=header or COLUMN_BY_KEY[column].header,
                value=written,
                severity=severity,
                template=template,
                suggestions=suggestions,
                **params,
            )
        )
    return result
