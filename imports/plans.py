"""The annual purchase plan (年度车辆购置计划) through the import steps: read -> map headers -> normalise -> validate.

The reader, header mapping, normalisation, findings and annotated workbook are the acquisitions'
(imports.read, imports.headers with the plan's columns from plan_headers.yaml, imports.normalise,
imports.report); what differs is the plan's own columns — a quantity and a planned month or quarter
instead of a VIN and a date — checked by the pandera schema below, and that a plan belongs to one
agency and one year. Storing it is fleet.domain.plans' part.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pandera.pandas as pa
from openpyxl import Workbook
from pandera.typing import Series
from sqlalchemy.orm import Session

from fleet.base.models import User
from fleet.base.text import _
from fleet.base.vocab import ACQUISITION_KINDS, CATEGORIES, COUNTIES, POWER_TYPES
from fleet.domain.agency_names import AgencyIndex, listed
from imports.annotate import findings_sheet_titles
from imports.headers import HeaderSet
from imports.normalise import normalise, to_numbers, to_text
from imports.package import UnusableFile, check_package
from imports.pipeline import reader_fault
from imports.read import RawTable, read_table
from imports.report import ERROR, UNKNOWN_AGENCY_SUGGESTED, WARNING, Finding, Messages, SheetLayout, ValidationReport
from imports.schema import MIN_EXEMPTION_REASON, VocabularySchema, blank, holds, non_nev
from imports.template import LIST_SHEET, write_data_sheet, write_instructions
from imports.validate import SHEET_ERRORS, agency_matches, issue_finding

PLAN_HEADERS = HeaderSet.based_on_acquisitions(Path(__file__).with_name("plan_headers.yaml"))
PLAN_SHEET = "购置计划"
INSTRUCTION_SHEET = "填表说明"

FULL_NEV_RULE = "_full_nev_rule"
# A plan row's month as (first day, last day): a month, or the three months of a quarter.
Months = tuple[dt.date, dt.date]

_CHINESE_QUARTERS = {"一": 1, "二": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_MONTH_TEXT = re.compile(
    r"^(?P<y>\d{4})\s*(?:[-/.年]\s*(?P<m>\d{1,2})\s*月?(?:\s*[-/.]\s*\d{1,2}\s*[日号]?)?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?|(?P<m6>\d{2}))$"
)
_QUARTER_TEXT = re.compile(r"^(?P<y>\d{4})\s*年?\s*[-/ ]?\s*(?:[Qq]\s*(?P<q>[1-4])|第?\s*(?P<qz>[1-4一二三四])\s*季度?)$")


def month_span(year: int, first_month: int, last_month: int) -> Months:
    return dt.date(year, first_month, 1), dt.date(year, last_month, calendar.monthrange(year, last_month)[1])


def parse_planned_month(value: Any) -> Months | None:
    """`2026-12`, `2026/12`, `2026年12月`, `202612`, a date in the month, or a quarter `2026Q4` /
    `2026年第四季度` / `2026年4季度`, as its first and last day; None when it is none of these."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return month_span(value.year, value.month, value.month)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not math.isfinite(value) or not float(value).is_integer():
            return None
        value = str(int(value))
    text = to_text(value)
    if text is None:
        return None
    text = text.replace("：", ":")
    if m := _MONTH_TEXT.match(text):
        year, month = int(m["y"]), int(m["m"] or m["m6"])
        return month_span(year, month, month) if 1 <= month <= 12 and 2000 <= year <= 2100 else None
    if m := _QUARTER_TEXT.match(text):
        year, quarter = int(m["y"]), _CHINESE_QUARTERS[m["q"] or m["qz"]]
        return month_span(year, 3 * quarter - 2, 3 * quarter) if 2000 <= year <= 2100 else None
    return None


def _is_months(value: Any) -> bool:
    return isinstance(value, tuple)


def _is_quantity(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer() and value >= 1


def _is_amount(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value >= 0


class PlanSchema(VocabularySchema):
    """One row per planned line, values as normalise left them."""

    agency: Series[object] = pa.Field(nullable=True)
    category: Series[object] = pa.Field(nullable=True)
    power: Series[object] = pa.Field(nullable=True)
    acquisition: Series[object] = pa.Field(nullable=True)
    quantity: Series[object] = pa.Field(nullable=True)
    planned_month: Series[object] = pa.Field(nullable=True)
    county: Series[object] = pa.Field(nullable=True)
    budget: Series[object] = pa.Field(nullable=True)
    exemption_reason: Series[object] = pa.Field(nullable=True)
    remark: Series[object] = pa.Field(nullable=True)

    class Config:
        strict = False

    @pa.check(*PLAN_HEADERS.required_keys, name="required", ignore_na=False)
    def _required(cls, values: Series[object]) -> Series[bool]:
        return ~blank(values)

    @pa.check("quantity", name="quantity_invalid")
    def _quantity(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | holds(values, _is_quantity)

    @pa.check("planned_month", name="month_invalid")
    def _month(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | holds(values, _is_months)

    @pa.check("budget", name="budget_invalid")
    def _budget(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | holds(values, _is_amount)

    @pa.dataframe_check(name="exemption_reason_required")
    def _exemption_reason(cls, frame: pd.DataFrame) -> Series[bool]:
        given = holds(frame["exemption_reason"], lambda v: len(str(v).strip()) >= MIN_EXEMPTION_REASON)
        return ~(frame[FULL_NEV_RULE] & non_nev(frame["power"]) & ~given)


_DATAFRAME_CHECK_COLUMNS = {"exemption_reason_required": "exemption_reason"}


def normalise_plan(frame: pd.DataFrame, *, date1904: bool = False) -> pd.DataFrame:
    """The shared normalisation of the columns a plan has in common with acquisitions, then the
    quantity, budget and planned month."""
    out = normalise(frame, date1904=date1904)
    out["quantity"] = to_numbers(out["quantity"])
    out["budget"] = to_numbers(out["budget"])
    out["planned_month"] = pd.Series(
        [None if v is None or (isinstance(v, float) and math.isnan(v)) else (parse_planned_month(v) or to_text(v)) for v in out["planned_month"]],
        index=out.index,
        dtype=object,
    )
    return out


def _failures(frame: pd.DataFrame, full_nev_categories: frozenset[str]) -> pd.DataFrame:
    checked = frame[list(PLAN_HEADERS.keys)].astype(object)
    checked[FULL_NEV_RULE] = frame["category"].isin(sorted(full_nev_categories))
    try:
        PlanSchema.validate(checked, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return pd.DataFrame({"index": pd.Series(dtype="int64"), "column": [], "code": []})
    whole_row = cases["schema_context"].eq("DataFrameSchema")
    columns = cases["column"].where(~whole_row, cases["check"].map(_DATAFRAME_CHECK_COLUMNS))
    return pd.DataFrame({"index": cases["index"].astype("int64"), "column": columns, "code": cases["check"]}).drop_duplicates()


@dataclass
class ValidatedPlan:
    """A checked plan file: the report, its rows, and whose and which year's plan it is."""

    report: ValidationReport
    frame: pd.DataFrame  # normalised; planned_month as (first day, last day)
    agency_id: int | None
    agency: str | None
    year: int | None


def read_plan(path: Path, *, max_bytes: int, file_name: str | None = None) -> RawTable:
    """Raise UnusableFile when the file cannot be used as a plan (any format the reader takes)."""
    check_package(path, max_bytes=max_bytes)
    try:
        return read_table(path, name=file_name or path.name, headers=PLAN_HEADERS, own_sheets=(INSTRUCTION_SHEET, *findings_sheet_titles()))
    except UnusableFile:
        raise
    except Exception as exc:
        # The reader refuses a broken file as UnusableFile itself; anything else is a fault of ours.
        raise reader_fault(file_name or path.name) from exc


def validate_plan(
    session: Session,
    path: Path,
    *,
    file_name: str,
    full_nev_categories: frozenset[str],
    max_bytes: int,
    user: User | None = None,
) -> ValidatedPlan:
    """Every finding of a plan file, by sheet, row and column; raises UnusableFile."""
    raw = read_plan(path, max_bytes=max_bytes, file_name=file_name)
    frame = normalise_plan(raw.frame, date1904=raw.date1904)
    layout = {s.name: SheetLayout(header_row=s.header_row, columns=dict(s.columns), headers=dict(s.headers)) for s in raw.sheets}
    read_findings = [issue_finding(issue) for issue in raw.issues]
    unusable = {(f.sheet, f.column) for f in read_findings if f.code in SHEET_ERRORS and f.severity == ERROR}
    cases = _failures(frame, full_nev_categories)

    # The agency names matched as the acquisitions' are (fleet.domain.agency_names), suggestions included.
    agencies = AgencyIndex.load(session)
    own = user.agency_id if user is not None and user.role == "agency" else None
    ids, matches = agency_matches(agencies, frame["agency"], own)
    names = agencies.names
    extra: list[tuple[int, str, str, dict[str, Any]]] = []
    for index in frame.index[(ids.isna() & ~blank(frame["agency"])).to_numpy()]:
        extra.append((index, "agency", "unknown_agency", {}))
    if own is not None:
        for index in frame.index[(ids.notna() & ids.ne(own)).to_numpy()]:
            extra.append((index, "agency", "agency_not_allowed", {"own": names.get(own, "")}))
    known = ids.dropna()
    agency_id = int(known.iloc[0]) if len(known) else None
    for index in known.index[known.ne(agency_id).to_numpy()]:
        extra.append((index, "agency", "plan_agency_mixed", {"agency": names[agency_id]}))
    years = frame["planned_month"].map(lambda v: v[0].year if _is_months(v) else None).dropna()
    year = int(years.iloc[0]) if len(years) else None
    for index in years.index[years.ne(year).to_numpy()]:
        extra.append((index, "planned_month", "plan_year_mixed", {"year": year}))

    messages = Messages()
    choices = {"unknown_category": CATEGORIES, "unknown_power_type": POWER_TYPES, "unknown_acquisition_type": ACQUISITION_KINDS, "unknown_county": COUNTIES}
    found: list[Finding] = list(read_findings)
    bad_rows: set[int] = set()
    rows = [(int(i), c, code, {}) for i, c, code in cases[["index", "column", "code"]].itertuples(index=False)] + extra
    for index, column, code, params in rows:
        sheet, row = frame.at[index, "_sheet"], int(frame.at[index, "_row"])
        if (sheet, column) in unusable:
            continue
        if code in choices:
            params = {**params, "choices": "、".join(choices[code].values)}
        if code == "exemption_reason_required":
            params = {**params, "category": frame.at[index, "category"]}
        header = layout[sheet].headers.get(column) or PLAN_HEADERS.by_key[column].header
        template, suggestions = None, None
        if code == "unknown_agency":
            suggestions = list(matches[frame.at[index, "agency"]].suggestions)
            if suggestions:
                template, params = UNKNOWN_AGENCY_SUGGESTED, {**params, "suggested": listed(suggestions)}
        finding = messages.finding(
            code, sheet=sheet, row=row, column=column, header=header, value=raw.frame.at[index, column],
            template=template, suggestions=suggestions, **params,
        )
        found.append(finding)
        if finding.severity == ERROR:
            bad_rows.add(index)
    bad_rows |= set(frame.index[frame["_sheet"].isin({sheet for sheet, _c in unusable}).to_numpy()])
    order = {name: position for position, name in enumerate(layout)}
    column_order = {key: position for position, key in enumerate(PLAN_HEADERS.keys)}
    found.sort(key=lambda f: (order.get(f.sheet, -1), f.row or 0, column_order.get(f.column, -1), f.code))
    report = ValidationReport(
        file=file_name,
        sheets=list(layout),
        rows=len(frame),
        valid_rows=len(frame) - len(bad_rows),
        errors=[f for f in found if f.severity == ERROR],
        warnings=[f for f in found if f.severity == WARNING],
        layout=layout,
    )
    return ValidatedPlan(report, frame, agency_id, names.get(agency_id) if agency_id is not None else None, year)


_FORMATS = {"quantity": "0", "planned_month": "@", "budget": "0.00"}
_WIDTHS = {"agency": 30, "category": 14, "power": 16, "acquisition": 10, "quantity": 8, "planned_month": 16,
           "county": 22, "budget": 14, "exemption_reason": 40, "remark": 24}


def write_plan_template(path_or_buffer: str | IO[bytes]) -> None:
    """The plan template: data sheet with drop-down lists, instruction sheet, hidden list sheet."""
    book = Workbook()
    data = book.active
    data.title = PLAN_SHEET
    lists = book.create_sheet(LIST_SHEET)
    lists.sheet_state = "hidden"
    write_data_sheet(data, lists, PLAN_HEADERS.columns, formats=_FORMATS, widths=_WIDTHS)
    lines = [
        _("年度车辆购置计划填表说明"),
        _("1. 在“%(sheet)s”工作表中每行填写一类计划购置的车辆（类别、动力类型、购置方式、月份相同的合为一行），请勿修改表头。", sheet=PLAN_SHEET),
        _("2. 带 * 的列为必填列；一份计划只填一个单位、一个年度，重新上传即替换该年度的计划（历史版本保留）。"),
        _("3. 计划购置月份写作 2026-12、2026年12月，或季度 2026Q4、2026年第四季度。"),
        _("4. 属于 100% 新能源要求的类别计划购置非新能源车时，须填写未选用新能源原因；审核员可在购置前批准，购置上报时自动适用。"),
    ]
    write_instructions(book.create_sheet(INSTRUCTION_SHEET, 1), lines, PLAN_HEADERS.columns)
    book.active = 0
    book.save(path_or_buffer)
