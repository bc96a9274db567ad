"""Loading a registration extract: read as uploads are read, codes normalised, checked with pandera,
owners matched, and the registrations not known yet added — all of them, or none when any row has an
error.

The reader is the upload's (imports.read) with the extract's own headers (extract.yaml): title rows,
the Chinese headers or the registration system's field abbreviations, whatever formats the reader
takes. A registration is identified by its VIN and first-registration date, so loading the same
registrations again adds nothing; the dates an extract covers are kept (RegistrationExtract), so that
no finding is ever made about a day no extract covers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa
from pandera.typing import Series
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.identifiers import VIN_PATTERN, PlateKind, plate_kind, vin_check_digits_ok
from fleet.base.models import Registration, RegistrationExtract
from fleet.base.text import _l
from fleet.base.vocab import PLATES
from fleet.domain.registrations import codes
from fleet.domain.registrations.owners import OwnerIndex, owner_index, owner_key, unit_code
from imports.headers import HeaderSet
from imports.normalise import normalise, per_value, to_code, to_dates, to_text
from imports.read import RawTable, read_table
from imports.report import ERROR, WARNING, Code, Finding, Messages, shown
from imports.stage import store_upload

EXTRACT_HEADERS = HeaderSet.based_on_acquisitions(codes.SOURCE)
# The earliest first registration an extract of new registrations can hold.
EARLIEST_REGISTRATION = dt.date(2000, 1, 1)
# SQLite allows 32766 bound parameters; VINs are looked up in IN lists well below that.
_CHUNK = 5000
# Codes that make a sheet unusable, from the reader.
_SHEET_ERRORS = ("missing_column", "ambiguous_header")

# The row checks of an extract: code -> severity, description (README) and message.
CODES: dict[str, Code] = {
    "required": Code(ERROR, _l("必填项为空"), _l("必须填写")),
    "vin_format": Code(
        ERROR, _l("车辆识别代号不是 17 位数字和字母（不含 I、O、Q）"), _l("“%(value)s”不是有效的车辆识别代号")
    ),
    "vin_check_digit": Code(
        WARNING, _l("车辆识别代号第 9 位校验位不正确（登记记录照样载入）"), _l("“%(value)s”的第 9 位校验位不正确")
    ),
    "date_invalid": Code(ERROR, _l("初次登记日期不是有效日期"), _l("“%(value)s”不是有效日期")),
    "date_out_of_range": Code(
        ERROR, _l("初次登记日期早于 2000 年或晚于今天"), _l("日期 %(value)s 应在 2000-01-01 至今天之间")
    ),
    "unknown_usage": Code(ERROR, _l("使用性质不是 GA 24.3 的代码或名称"), _l("“%(value)s”不是有效的使用性质")),
    "unknown_fuel": Code(ERROR, _l("燃料种类不是 GA 24.9 的代码或名称"), _l("“%(value)s”不是有效的燃料种类")),
    "unknown_plate_kind": Code(
        WARNING, _l("号牌种类不是 GA 24.7 的代码或名称"), _l("“%(value)s”不是已知的号牌种类")
    ),
    "plate_format": Code(WARNING, _l("号牌号码不符合 GA 36 格式"), _l("“%(value)s”不是有效的号牌号码")),
    "unknown_vehicle_type": Code(
        WARNING, _l("车辆类型不是 GA 24.4 的代码或名称"), _l("“%(value)s”不是已知的车辆类型")
    ),
    "unknown_status": Code(WARNING, _l("机动车状态不是 GA 24.17 的代码或名称"), _l("“%(value)s”不是已知的机动车状态")),
    "duplicate_registration": Code(
        WARNING,
        _l("同一车辆识别代号和初次登记日期在文件中重复出现，只载入第一次"),
        _l("车辆识别代号“%(value)s”的这次登记在文件中已出现过，已忽略"),
    ),
}
# Cross-column checks report on one column: the one that holds the problem.
_FRAME_CHECK_COLUMNS = {"duplicate_registration": "vin"}


# --- Normalising ---------------------------------------------------------------------------------------


def _with_province(plate: Any) -> Any:
    """A plate written without its province character (J12345) as the city writes it in full (豫J12345)."""
    if isinstance(plate, str) and plate[:1].isascii() and plate[:1].isalpha():
        full = PLATES.home_prefix[0] + plate
        if plate_kind(full) is not None:
            return full
    return plate


def _coded(lookup: Any) -> Any:
    """A converter of written values to codes that keeps the text of what it does not know, for the check to report."""

    def convert(value: Any) -> str | None:
        text = to_text(value)
        return None if text is None else (lookup(text) or text)

    return convert


def normalised(raw: RawTable) -> pd.DataFrame:
    """The extract's values as codes, dates and clean identifiers (per distinct value), plus the power
    type each registration's fuel code says."""
    frame = normalise(raw.frame, date1904=raw.date1904)  # vin, plate, emission_standard as in uploads
    frame["plate"] = per_value(frame["plate"], _with_province)
    frame["plate_kind"] = per_value(frame["plate_kind"], _coded(codes.plate_kind_code))
    frame["vehicle_type"] = per_value(frame["vehicle_type"], _coded(codes.vehicle_type_code))
    frame["usage"] = per_value(frame["usage"], _coded(codes.USAGES.code))
    frame["fuel"] = per_value(frame["fuel"], _coded(codes.FUELS.code))
    frame["status"] = per_value(frame["status"], _coded(codes.STATUSES.code))
    frame["owner"] = per_value(frame["owner"], to_text)
    frame["owner_id"] = per_value(frame["owner_id"], to_code)
    frame["registered_on"] = to_dates(frame["registered_on"], date1904=raw.date1904)
    green = per_value(frame["plate"], lambda p: plate_kind(p) is PlateKind.NEV_OTHER if isinstance(p, str) else False)
    frame["power"] = [
        codes.registered_power(fuel, kind, green_plate=bool(g))
        for fuel, kind, g in zip(frame["fuel"], frame["plate_kind"], green)
    ]
    return frame


# --- Checking ------------------------------------------------------------------------------------------


def _text(nullable: bool = True) -> Any:
    return pa.Field(nullable=nullable, coerce=True)


class ExtractSchema(pa.DataFrameModel):
    """What a registration must hold to be loaded, in the types it is stored with: each check's name is
    its error code; a failed conversion to a date is date_invalid."""

    vin: Series[pd.StringDtype] = _text()
    registered_on: Series[pa.DateTime] = pa.Field(nullable=True, coerce=True)
    plate: Series[pd.StringDtype] = _text()
    plate_kind: Series[pd.StringDtype] = _text()
    vehicle_type: Series[pd.StringDtype] = _text()
    usage: Series[pd.StringDtype] = _text()
    owner: Series[pd.StringDtype] = _text()
    owner_id: Series[pd.StringDtype] = _text()
    fuel: Series[pd.StringDtype] = _text()
    power: Series[pd.StringDtype] = _text()
    emission_standard: Series[pd.StringDtype] = _text()
    status: Series[pd.StringDtype] = _text()

    class Config:
        strict = False

    @pa.check(*EXTRACT_HEADERS.required_keys, name="required", ignore_na=False)
    def _required(cls, values: Series[Any]) -> Series[bool]:
        return values.notna()

    @pa.check("vin", name="vin_format")
    def _vin_format(cls, values: Series[str]) -> Series[bool]:
        return values.str.fullmatch(VIN_PATTERN.pattern)

    @pa.check("registered_on", name="date_out_of_range")
    def _date_range(cls, values: Series[Any]) -> Series[bool]:
        return values.between(pd.Timestamp(EARLIEST_REGISTRATION), pd.Timestamp(dt.date.today()))

    @pa.check("usage", name="unknown_usage")
    def _usage(cls, values: Series[str]) -> Series[bool]:
        return values.isin(list(codes.USAGES.names))

    @pa.check("fuel", name="unknown_fuel")
    def _fuel(cls, values: Series[str]) -> Series[bool]:
        return values.isin(list(codes.FUELS.names))


class ExtractWarnings(pa.DataFrameModel):
    """What is worth a reviewer's look without stopping the load; each check's name is its code. It
    looks at the values as normalised (a code it does not know is still the text written)."""

    vin: Series[object] = pa.Field(nullable=True)
    plate: Series[object] = pa.Field(nullable=True)
    plate_kind: Series[object] = pa.Field(nullable=True)
    vehicle_type: Series[object] = pa.Field(nullable=True)
    status: Series[object] = pa.Field(nullable=True)
    registered_on: Series[object] = pa.Field(nullable=True)

    class Config:
        strict = False

    @pa.check("vin", name="vin_check_digit")
    def _check_digit(cls, values: Series[Any]) -> Series[bool]:
        well_formed = values.astype(str).str.fullmatch(VIN_PATTERN.pattern).fillna(False).to_numpy(dtype=bool)
        ok = np.ones(len(values), dtype=bool)
        ok[well_formed] = vin_check_digits_ok(values.to_numpy()[well_formed].astype(str).tolist())
        return pd.Series(ok, index=values.index)

    @pa.check("plate", name="plate_format")
    def _plate(cls, values: Series[Any]) -> Series[bool]:
        return per_value(values, lambda p: plate_kind(str(p)) is not None).astype(bool) | values.isna()

    @pa.check("plate_kind", name="unknown_plate_kind")
    def _plate_kind(cls, values: Series[Any]) -> Series[bool]:
        return values.isna() | values.isin(list(codes.PLATE_KINDS.names))

    @pa.check("vehicle_type", name="unknown_vehicle_type")
    def _vehicle_type(cls, values: Series[Any]) -> Series[bool]:
        return values.isna() | per_value(values, lambda v: codes.vehicle_type_code(str(v)) is not None).astype(bool)

    @pa.check("status", name="unknown_status")
    def _status(cls, values: Series[Any]) -> Series[bool]:
        return values.isna() | values.isin(list(codes.STATUSES.names))

    @pa.dataframe_check(name="duplicate_registration")
    def _duplicate(cls, frame: pd.DataFrame) -> Series[bool]:
        known = frame["vin"].notna() & frame["registered_on"].map(lambda d: isinstance(d, dt.date))
        return ~(known & frame.duplicated(["vin", "registered_on"], keep="first"))


def _failures(schema: type[pa.DataFrameModel], frame: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The frame as the schema types it (None when it fails), and its failed checks as (index, column, code)."""
    try:
        return schema.validate(frame, lazy=True), pd.DataFrame({"index": [], "column": [], "code": []})
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    cases = cases[cases["index"].notna()]
    check = cases["check"].astype(str)
    # A value the date type cannot take is an invalid date; its dtype failure says the same again.
    code = check.where(~check.str.startswith("coerce_dtype"), "date_invalid")
    keep = ~check.str.startswith("dtype(")
    whole_row = cases["schema_context"].eq("DataFrameSchema")
    column = cases["column"].where(~whole_row, check.map(_FRAME_CHECK_COLUMNS))
    found = pd.DataFrame({"index": cases["index"].astype("int64"), "column": column, "code": code})[keep.to_numpy()]
    return None, found.drop_duplicates().reset_index(drop=True)


def _findings(raw: RawTable, frame: pd.DataFrame, cases: pd.DataFrame) -> list[Finding]:
    messages = Messages()
    headers = {s.name: s.headers for s in raw.sheets}
    found = []
    for index, column, code in cases[["index", "column", "code"]].itertuples(index=False):
        sheet = frame.at[index, "_sheet"]
        spec = CODES[code]
        found.append(
            messages.finding(
                code,
                sheet=sheet,
                row=int(frame.at[index, "_row"]),
                column=column,
                header=headers.get(sheet, {}).get(column) or EXTRACT_HEADERS.by_key[column].header,
                value=raw.frame.at[index, column],
                severity=spec.severity,
                template=spec.template,
            )
        )
    return found


def _reader_finding(issue: dict[str, Any]) -> Finding:
    return Finding(
        sheet=issue.get("sheet"), row=issue.get("row"), column=issue.get("column"), header=issue.get("header"),
        value=shown(issue.get("value")), code=issue["code"], severity=issue["severity"], message=issue["message"],
    )


# --- Loading -------------------------------------------------------------------------------------------


@dataclass
class ExtractLoad:
    """What loading an extract did (the command's JSON)."""

    file: str
    rows: int
    loaded: int
    first: dt.date | None
    last: dt.date | None
    matched: int  # distinct owners matched to an agency
    unmatched: int  # distinct owners waiting for a reviewer (neither matched nor marked not ours)
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    extract_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "loaded": self.loaded,
            "period": {"first": _iso(self.first), "last": _iso(self.last)},
            "owners": {"matched": self.matched, "unmatched": self.unmatched},
            "errors": [f.as_json() for f in self.errors],
            "warnings": [f.as_json() for f in self.warnings],
        }


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _owner_counts(frame: pd.DataFrame, index: OwnerIndex) -> tuple[list[int | None], list[str], int, int]:
    """Each row's agency and owner key, and how many distinct owners are matched and waiting."""
    keys = per_value(frame["owner"], lambda name: owner_key(str(name)))
    owner_codes = per_value(frame["owner_id"], lambda v: unit_code(str(v)))
    # Each distinct owner (name and code) is matched once: an extract repeats its owners many times over.
    matched: dict[tuple[str, str | None], int | None] = {}
    agencies = []
    for key, name, code in zip(keys, frame["owner"], owner_codes):
        if not isinstance(key, str):
            agencies.append(None)
            continue
        if (name, code) not in matched:
            matched[(name, code)] = index.agency(key, name, code)
        agencies.append(matched[(name, code)])
    found: set[str] = set()
    waiting: set[str] = set()
    for key, agency_id in zip(keys, agencies):
        if not isinstance(key, str):
            continue
        if agency_id is not None:
            found.add(key)
        elif key not in index.not_ours:
            waiting.add(key)
    return agencies, list(keys), len(found), len(waiting - found)


def load_extract(session: Session, path: Path, *, file_name: str | None = None, user_id: int | None = None) -> ExtractLoad:
    """Read, check and load an extract; nothing is written when any row has an error. The caller commits.

    Raises imports.package.UnusableFile when the file cannot be read as a table."""
    path = Path(path)
    raw = read_table(path, name=file_name or path.name, headers=EXTRACT_HEADERS)
    frame = normalised(raw)
    read_findings = [_reader_finding(issue) for issue in raw.issues]
    unusable = {f.sheet for f in read_findings if f.code in _SHEET_ERRORS and f.severity == ERROR}
    typed, error_cases = _failures(ExtractSchema, frame)
    _, warning_cases = _failures(ExtractWarnings, frame)
    cases = pd.concat([error_cases, warning_cases], ignore_index=True)
    if unusable and not cases.empty:
        cases = cases[~frame.loc[cases["index"], "_sheet"].isin(unusable).to_numpy()]
    found = read_findings + _findings(raw, frame, cases.sort_values(["index", "code"], kind="stable"))
    dates = [d for d in frame["registered_on"] if isinstance(d, dt.date)]
    agencies, keys, matched, unmatched = _owner_counts(frame, owner_index(session))
    result = ExtractLoad(
        file=file_name or path.name,
        rows=len(frame),
        loaded=0,
        first=min(dates, default=None),
        last=max(dates, default=None),
        matched=matched,
        unmatched=unmatched,
        errors=[f for f in found if f.severity == ERROR],
        warnings=[f for f in found if f.severity == WARNING],
    )
    if result.errors or typed is None or result.first is None or result.last is None:
        return result
    typed = typed.assign(agency_id=agencies, owner_key=keys)
    typed = typed[~typed.duplicated(["vin", "registered_on"], keep="first")]
    result.loaded, result.extract_id = _store(session, path, typed, result, user_id)
    return result


def _known(session: Session, vins: list[str]) -> set[tuple[str, dt.date]]:
    """The (VIN, first registration date) pairs already loaded among these VINs."""
    found: set[tuple[str, dt.date]] = set()
    for start in range(0, len(vins), _CHUNK):
        query = sa.select(Registration.vin, Registration.registered_on).where(Registration.vin.in_(vins[start : start + _CHUNK]))
        found.update((vin, day) for vin, day in session.execute(query))
    return found


def _store(session: Session, path: Path, typed: pd.DataFrame, result: ExtractLoad, user_id: int | None) -> tuple[int, int | None]:
    content = path.read_bytes()
    registered_on = [ts.date() for ts in typed["registered_on"]]
    vins = typed["vin"].astype(object).tolist()
    known = _known(session, sorted(set(vins)))
    new = [i for i, pair in enumerate(zip(vins, registered_on)) if pair not in known]
    covered = session.scalar(
        sa.select(sa.func.count()).select_from(RegistrationExtract).where(
            RegistrationExtract.first <= result.first, RegistrationExtract.last >= result.last
        )
    )
    if not new and covered:
        # The same registrations again: nothing to add, and their dates are covered already.
        return 0, None
    upload = store_upload(session, content)
    session.flush()  # the original first: the extract refers to it
    extract = RegistrationExtract(
        file_name=result.file[-255:], sha256=upload.sha256,
        loaded_by_id=user_id, first=result.first, last=result.last, rows=result.rows, loaded=len(new),
        report={"errors": [], "warnings": [f.as_json() for f in result.warnings]},
    )
    session.add(extract)
    session.flush()

    def column(name: str) -> list[Any]:
        values = typed[name].astype(object).to_numpy()
        return [None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v for v in values[new]]

    names = ("plate", "plate_kind", "vehicle_type", "usage", "owner", "fuel", "power", "emission_standard", "status", "owner_key")
    values = {name: column(name) for name in names}
    owner_codes = [unit_code(v) if v else None for v in column("owner_id")]
    agency_ids = column("agency_id")
    sheets, rows = column("_sheet"), column("_row")
    records = [
        {
            "extract_id": extract.id, "source_sheet": sheets[n], "source_row": int(rows[n]), "vin": vins[i],
            "registered_on": registered_on[i], "owner_code": owner_codes[n],
            "agency_id": None if agency_ids[n] is None else int(agency_ids[n]),
            **{name: values[name][n] for name in names},
        }
        for n, i in enumerate(new)
    ]
    if records:
        session.execute(sa.insert(Registration), records)
    audit.record(
        session, "registrations.load", user_id=user_id, target_type="registration_extract", target_id=extract.id,
        detail={"file": result.file, "rows": result.rows, "loaded": len(new)},
    )
    return len(new), extract.id
