"""The compliance report workbook of a period: an overview with the dashboard's headline figures, a
summary sheet per rule and the vehicle detail, laid out for printing. Used by the web export, the
background report jobs and attached to the monthly e-mail.

Written with XlsxWriter, which writes a cell as it goes rather than keeping a model of the workbook:
every format is defined once per workbook (ReportBook.format), and a large report streams its rows
to a temporary file (constant memory), each row written as XML at once (streamed_sheet), so a city's
million vehicles take neither minutes nor gigabytes. The vehicle detail goes on to another sheet
before Excel's row limit.

Text that users typed (agency names, brand and model, remarks, file names) is written so that a
spreadsheet can never read it as a formula (CWE-1236).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
import xlsxwriter
from sqlalchemy.orm import Session
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from fleet.base.labels import result_status_label
from fleet.base.models import Acquisition, Agency
from fleet.base.periods import Period
from fleet.base.text import _, one_locale
from fleet.base.vocab import NEV_POWER_TYPES, VOCABULARIES
from fleet.domain.timeliness import late_counts
from fleet.read.dashboards import pending_exemptions
from fleet.read.streamed_sheet import (
    CellXml,
    StreamedWorksheet,
    blank_cell,
    number_cell,
    text_cell,
)
from rules.engine import evaluate
from rules.explain import MARKS, VehicleLine, explain_chunks
from rules.packs import Rule, RulePack
from rules.results import RuleResult

# A cell whose text starts with one of these is a formula (or becomes one when exported to CSV and
# opened again) in Excel, LibreOffice and WPS.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Rows of an Excel sheet; the vehicle detail continues on a new sheet before it.
EXCEL_ROWS = 1_048_576
SHEET_NAME_LIMIT = 31
# Characters Excel refuses in a sheet name.
_NOT_IN_SHEET_NAMES = re.compile(r"[\[\]:*?/\\]")
HEADER_ROWS = 3  # title, subtitle, column headers
EXCEL_EPOCH = dt.date(1899, 12, 30)
PERCENT = "0.0%"
# Vehicle rows read from the database at a time for a large report.
_CHUNK = 5000
# Beyond this many vehicle rows a report is streamed even when it is returned as bytes.
STREAMED_ROWS = 10_000

BORDER = {"border": 1, "border_color": "#B0BEC5"}
STATUS_COLOURS = {"pass": "#E3F2E4", "fail": "#FBE3E3"}
TOTAL_COLOUR = "#F1F1F1"

# A cell to write: how (as text, a number or nothing), its value and its format.
Cell = tuple[CellXml, Any, Format]
# The same cells through XlsxWriter's own methods, in a workbook put together in memory.
_XLSXWRITER_CELLS: dict[CellXml, Callable[[Worksheet, int, int, Any, Format], Any]] = {
    text_cell: Worksheet.write_string,
    number_cell: Worksheet.write_number,
    blank_cell: Worksheet.write_blank,
}


@dataclass(frozen=True)
class Column:
    header: str
    width: float
    kind: str = "text"  # text | int | percent | date


class ReportBook:
    """An XlsxWriter workbook with the report's formats, each made once and shared by every cell."""

    def __init__(self, target: str | Path | BinaryIO, *, streamed: bool) -> None:
        options: dict[str, Any] = {
            # User text is text: never a formula, a link or a number.
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        }
        # Streamed: each row goes to a temporary file as soon as the next starts (large reports).
        # Otherwise the whole workbook is put together in memory, quicker for a small one.
        options["constant_memory" if streamed else "in_memory"] = True
        self.streamed = streamed
        self.workbook = xlsxwriter.Workbook(target, options)
        self._formats: dict[tuple[tuple[str, Any], ...], Format] = {}
        self._names: set[str] = set()

    def format(self, **properties: Any) -> Format:
        key = tuple(sorted(properties.items()))
        if key not in self._formats:
            self._formats[key] = self.workbook.add_format(properties)
        return self._formats[key]

    def cell_format(self, kind: str, *, status: str | None = None, total: bool = False, quoted: bool = False) -> Format:
        properties: dict[str, Any] = {**BORDER, "text_wrap": True, "valign": "top"}
        number = {"int": "0", "percent": PERCENT, "date": "yyyy-mm-dd"}.get(kind)
        if number:
            properties["num_format"] = number
        if total:
            properties.update(bold=True, bg_color=TOTAL_COLOUR)
        if status in STATUS_COLOURS:
            properties["bg_color"] = STATUS_COLOURS[status]
        if quoted:
            properties["quote_prefix"] = True
        return self.format(**properties)

    def sheet_name(self, wanted: str) -> str:
        """A name Excel accepts, unique in the workbook, within its 31 characters."""
        base = _NOT_IN_SHEET_NAMES.sub(" ", wanted).strip().strip("'") or "-"
        name = base if len(base) <= SHEET_NAME_LIMIT else base[: SHEET_NAME_LIMIT - 1] + "…"
        number = 2
        while name.casefold() in self._names:
            suffix = f" ({number})"
            name = base[: SHEET_NAME_LIMIT - len(suffix)] + suffix
            number += 1
        self._names.add(name.casefold())
        return name

    def sheet(self, name: str, columns: Sequence[Column], title: str, subtitle: str) -> ReportSheet:
        worksheet_class = StreamedWorksheet if self.streamed else None
        return ReportSheet(self, self.workbook.add_worksheet(self.sheet_name(name), worksheet_class), columns, title, subtitle)

    def close(self) -> None:
        self.workbook.close()


class ReportSheet:
    """A sheet of the report: title rows, column headers, then rows written in order."""

    def __init__(self, book: ReportBook, sheet: Worksheet, columns: Sequence[Column], title: str, subtitle: str) -> None:
        self.book, self.sheet, self.columns = book, sheet, list(columns)
        self.row = HEADER_ROWS
        last = len(self.columns) - 1
        sheet.merge_range(0, 0, 0, last, title, book.format(bold=True, font_size=14))
        sheet.merge_range(1, 0, 1, last, subtitle, book.format(text_wrap=True, valign="top"))
        sheet.set_row(1, 45)
        header = book.format(**BORDER, bold=True, bg_color="#DDE4EA", text_wrap=True, align="center", valign="vcenter")
        for index, column in enumerate(self.columns):
            sheet.set_column(index, index, column.width)
            sheet.write_string(2, index, column.header, header)
        self._cells = [self._cell(column.kind) for column in self.columns]
        self._plain = [book.cell_format(column.kind) for column in self.columns]
        self._quoted = book.cell_format("text", quoted=True)
        self._print_setup(title)

    def _cell(self, kind: str) -> Callable[[Any, Format, Format], Cell]:
        """How a value of the column is written: as text, a number or nothing, and in which format
        (given the cell's and the column's plain one)."""
        def text(value: Any, cell_format: Format, plain: Format) -> Cell:
            if value is None:
                return blank_cell, None, cell_format
            value = str(value)
            if value.startswith(FORMULA_TRIGGERS) and cell_format is plain:
                # Stored as text with Excel's quote prefix, which keeps it text when someone edits the cell.
                cell_format = self._quoted
            return text_cell, value, cell_format

        def number(value: Any, cell_format: Format, plain: Format) -> Cell:
            if value is None:
                return blank_cell, None, cell_format
            return number_cell, float(value) if isinstance(value, Fraction) else value, cell_format

        def date(value: Any, cell_format: Format, plain: Format) -> Cell:
            # An Excel date is a day number: written as such, without a datetime conversion per cell.
            return number(None if value is None else (value - EXCEL_EPOCH).days, cell_format, plain)

        return {"text": text, "date": date}.get(kind, number)

    def write(self, values: Sequence[Any], *, formats: Sequence[Format] | None = None) -> None:
        cells = [
            cell(value, cell_format, plain)
            for cell, value, cell_format, plain in zip(self._cells, values, formats or self._plain, self._plain, strict=True)
        ]
        if self.book.streamed:
            self.sheet.write_cells(self.row, cells)
        else:
            for column, (kind, value, cell_format) in enumerate(cells):
                _XLSXWRITER_CELLS[kind](self.sheet, self.row, column, value, cell_format)
        self.row += 1

    def write_result(self, values: Sequence[Any], status: str, *, status_column: int, total: bool = False) -> None:
        """A row of figures, its status cell coloured; a total row in bold on grey."""
        formats = [
            self.book.cell_format(c.kind, status=status if i == status_column else None, total=total)
            for i, c in enumerate(self.columns)
        ]
        self.write(values, formats=formats)

    @property
    def rows_written(self) -> int:
        return self.row - HEADER_ROWS

    def _print_setup(self, title: str) -> None:
        """Landscape A4, one page wide, the title and header repeated on every page, panes frozen below them."""
        sheet = self.sheet
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.fit_to_pages(1, 0)  # one page wide, as many tall as needed
        sheet.repeat_rows(0, HEADER_ROWS - 1)
        sheet.freeze_panes(HEADER_ROWS, 1)
        sheet.center_horizontally()
        sheet.set_margins(left=0.4, right=0.4)
        sheet.set_header("&C" + title.replace("&", "&&"))
        sheet.set_footer("&C" + _("第 &P 页，共 &N 页"))

    def finish(self) -> None:
        self.sheet.autofilter(HEADER_ROWS - 1, 0, max(self.row - 1, HEADER_ROWS - 1), len(self.columns) - 1)


class _Labels:
    """Words of the report in the requested language; vocabulary values in English for English reports."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        # A vehicle detail asks for the same few words a million times: each looked up once.
        self._english: dict[tuple[str, str], str] = {}

    def value(self, vocabulary: str, value: str | None) -> str | None:
        if value is None or self.locale != "en":
            return value
        key = (vocabulary, value)
        if key not in self._english:
            self._english[key] = VOCABULARIES[vocabulary].english(value)
        return self._english[key]

    def status(self, status: str) -> str:
        return result_status_label(status)

    def level(self, level: str) -> str:
        return {"mandatory": _("强制"), "in_principle": _("原则上")}.get(level, level)

    def yes(self, flag: bool) -> str:
        return _("是") if flag else _("否")

    def title(self, rule: Rule) -> str:
        return rule.title_in(self.locale)


def measure_text(rule: Rule) -> str:
    """What the rule counts among the vehicles in its scope."""
    if rule.measure == "nev_share":
        return _("新能源汽车")
    return _("达到排放标准（%(standards)s）的车辆", standards=_("、").join(sorted(rule.standards)))


def _period_text(period: Period) -> str:
    return _("%(start)s 至 %(end)s", start=period.start.isoformat(), end=period.end.isoformat())


def _with_period(title: str, period: Period) -> str:
    return _("%(title)s（%(period)s）", title=title, period=_period_text(period))


# Every sheet of figures has the same columns: "计入" is what the rule counts, named on each sheet.
def _figure_columns() -> list[Column]:
    return [
        Column(_("范围内购置（辆）"), 11, "int"),
        Column(_("计入（辆）"), 11, "int"),
        Column(_("已豁免（辆）"), 11, "int"),
        Column(_("待审豁免（辆）"), 11, "int"),
        Column(_("占比"), 11, "percent"),
        Column(_("要求"), 9, "percent"),
        Column(_("状态"), 9),
        Column(_("缺口（辆）"), 10, "int"),
    ]


STATUS_OF_FIGURES = 6  # the status among _figure_columns


def _figures(labels: _Labels, result: RuleResult) -> list[Any]:
    return [
        result.in_scope,
        result.nev,
        result.exempt,
        result.pending,
        result.share,
        result.threshold,
        labels.status(result.status),
        result.shortfall,
    ]


@dataclass(frozen=True)
class Headline:
    """The dashboard's figures for the agencies of the report, over its period."""

    acquired: int
    nev: int
    late: int
    deadline_days: int
    pending: int

    @property
    def share(self) -> Fraction | None:
        return Fraction(self.nev, self.acquired) if self.acquired else None


def _acquired_and_nev(period: Period) -> sa.Select:
    a = Acquisition
    nev = sa.func.coalesce(sa.func.sum(sa.case((a.power.in_(sorted(NEV_POWER_TYPES)), 1), else_=0)), 0)
    return sa.select(sa.func.count(), nev).where(a.acquired_on.between(period.start, period.end))


def headline(session: Session, period: Period, *, deadline_days: int, agency_id: int | None, county: str | None) -> Headline:
    a = Acquisition
    query = _acquired_and_nev(period)
    if agency_id is not None:
        query = query.where(a.agency_id == agency_id)
    elif county is not None:
        query = query.where(a.agency_id.in_(sa.select(Agency.id).where(Agency.county == county)))
    acquired, nev = session.execute(query).one()
    late = sum(c.late for c in late_counts(session, period, deadline_days=deadline_days, agency_id=agency_id, county=county))
    return Headline(int(acquired), int(nev), late, deadline_days, pending_exemptions(session, county=county, agency_id=agency_id))


def agency_headlines(session: Session, period: Period, *, deadline_days: int, pending: Mapping[int, int]) -> dict[int, Headline]:
    """headline() of every agency at once (the monthly mail attaches a report to each), given each
    agency's pending exemption requests; an agency that is missing has nothing to count."""
    counts = {
        agency_id: (int(acquired), int(nev))
        for acquired, nev, agency_id in session.execute(
            _acquired_and_nev(period).add_columns(Acquisition.agency_id).group_by(Acquisition.agency_id)
        )
    }
    late = {c.agency_id: c.late for c in late_counts(session, period, deadline_days=deadline_days)}
    return {
        agency_id: Headline(*counts.get(agency_id, (0, 0)), late.get(agency_id, 0), deadline_days, pending.get(agency_id, 0))
        for agency_id in counts.keys() | late.keys() | pending.keys()
    }


def _overview_sheet(
    book: ReportBook, labels: _Labels, pack: RulePack, period: Period, heading: str, totals: list[RuleResult],
    agency_results: dict[str, list[RuleResult]], figures: Headline, *, city: bool, vehicles_left_out: int,
) -> None:
    columns = [Column(_("规则"), 44), Column(_("性质"), 9), Column(_("计入"), 16), *_figure_columns()]
    if city:
        columns.append(Column(_("达标单位"), 10))
    title = _with_period(heading, period)
    sheet = book.sheet(_("总览"), columns, title, _("依据：%(source)s（%(date)s）", source=pack.source, date=pack.source_date.isoformat()))
    for r in totals:
        values = [labels.title(r.rule), labels.level(r.rule.level), measure_text(r.rule), *_figures(labels, r)]
        if city:
            of_rule = agency_results.get(r.rule.id, [])
            assessed = sum(1 for a in of_rule if a.status != "no_data")
            values.append(f"{sum(1 for a in of_rule if a.status == 'pass')} / {assessed}")
        sheet.write_result(values, r.status, status_column=3 + STATUS_OF_FIGURES)
    sheet.finish()
    # The dashboard's headline figures, below the table.
    label, value = book.format(bold=True), book.format()
    row = sheet.row + 1
    for text, figure, number_format in (
        (_("新购车辆中新能源汽车占比（%(nev)s / %(total)s 辆）", nev=figures.nev, total=figures.acquired), figures.share, PERCENT),
        (_("逾期报送的车辆（购置后超过 %(days)s 天）", days=figures.deadline_days), figures.late, "0"),
        (_("待审核的豁免申请"), figures.pending, "0"),
    ):
        sheet.sheet.write_string(row, 0, text, label)
        if figure is None:
            sheet.sheet.write_string(row, 1, "—", value)
        else:
            sheet.sheet.write_number(row, 1, float(figure), book.format(num_format=number_format))
        row += 1
    if vehicles_left_out:
        note = _("车辆明细（%(rows)s 行）过大，未包含在本报告中。", rows=vehicles_left_out)
        sheet.sheet.write_string(row + 1, 0, note, book.format(bold=True, font_color="#C62828"))


def _rule_sheet(
    book: ReportBook, labels: _Labels, pack: RulePack, period: Period, rule: Rule, results: list[RuleResult], total: RuleResult | None, total_label: str
) -> None:
    columns = [Column(_("单位"), 34), *_figure_columns()]
    title = _with_period(labels.title(rule), period)
    subtitle = _(
        "依据：%(source)s。条款：%(clause)s（%(level)s，要求不低于 %(threshold)s）。计入：%(counted)s。",
        source=pack.source,
        clause=rule.clause,
        level=labels.level(rule.level),
        threshold=f"{float(rule.threshold):.0%}",
        counted=measure_text(rule),
    )
    sheet = book.sheet(labels.title(rule), columns, title, subtitle)
    for r in results:
        sheet.write_result([r.agency, *_figures(labels, r)], r.status, status_column=1 + STATUS_OF_FIGURES)
    if total is not None:
        sheet.write_result([total_label, *_figures(labels, total)], total.status, status_column=1 + STATUS_OF_FIGURES, total=True)
    sheet.finish()


def _mark(mark: str) -> str:
    marks = {
        "nev": _("计入新能源"),
        "not_nev": _("非新能源"),
        "met": _("符合标准"),
        "not_met": _("不符合标准"),
        "exempt": _("已豁免"),
        "pending": _("待审豁免"),
    }
    return marks.get(mark, mark)


def _exemption_text(exemption: dict[str, Any] | None) -> str | None:
    if not exemption:
        return None
    if exemption["source"] == "catalogue":
        return _("无新能源车型目录：%(description)s", description=exemption["description"])
    return _("%(category)s：%(reason)s", category=exemption["reason_category"], reason=exemption["reason"])


def _vehicle_columns() -> list[Column]:
    return [
        Column(_("规则"), 24),
        Column(_("单位"), 28),
        Column(_("车辆识别代号"), 20),
        Column(_("号牌号码"), 12),
        Column(_("车辆类别"), 12),
        Column(_("动力类型"), 12),
        Column(_("购置方式"), 8),
        Column(_("购置日期"), 11, "date"),
        Column(_("报送日期"), 11, "date"),
        Column(_("报送用时（天）"), 9, "int"),
        Column(_("逾期报送"), 8),
        Column(_("品牌型号"), 20),
        Column(_("排放标准"), 9),
        Column(_("标记"), 11),
        Column(_("豁免说明"), 30),
    ]


def _vehicle_rows(
    session: Session, labels: _Labels, pack: RulePack, period: Period, rules: list[Rule], *,
    agency_id: int | None, county: str | None, deadline_days: int, read: Mapping[str, Sequence[VehicleLine]] | None,
) -> Iterator[list[Any]]:
    """Each in-scope vehicle under each rule, read and written a chunk at a time (or as `read` holds
    them, by rule id)."""
    marks = {mark: _mark(mark) for mark in MARKS}  # translated once, not per vehicle
    late, on_time = labels.yes(True), labels.yes(False)
    for rule in rules:
        title = labels.title(rule)
        if read is None:
            chunks: Iterable[Sequence[VehicleLine]] = explain_chunks(
                session, pack, rule.qualified_id, period, agency_id, county=county, chunk=_CHUNK
            )
        else:
            chunks = [read.get(rule.id, ())]
        for lines in chunks:
            for line in lines:
                days = (line.reported_on - line.acquired_on).days
                yield [
                    title,
                    line.agency,
                    line.vin,
                    line.plate,
                    labels.value("category", line.category),
                    labels.value("power", line.power),
                    labels.value("acquisition", line.acquisition_kind),
                    line.acquired_on,
                    line.reported_on,
                    days,
                    late if days > deadline_days else on_time,
                    line.brand_model,
                    line.emission_standard,
                    marks[line.mark],
                    _exemption_text(line.exemption),
                ]


def _vehicle_sheets(book: ReportBook, rows: Iterable[list[Any]], period: Period, *, rows_per_sheet: int, progress: Callable[[int], None] | None) -> int:
    """The vehicle detail, continued on a new sheet ("车辆明细 (2)", …) when a sheet is full; returns
    the number of vehicle rows."""
    name = _("车辆明细")
    subtitle = _("每辆范围内购置车辆及其在各规则下的标记；同一车辆可出现在多条规则下。")
    columns = _vehicle_columns()
    capacity = rows_per_sheet - HEADER_ROWS
    sheet = book.sheet(name, columns, _with_period(name, period), subtitle)
    part, written = 1, 0
    for values in rows:
        if sheet.rows_written >= capacity:
            sheet.finish()
            part += 1
            continued = _("%(name)s（续 %(part)s）", name=name, part=part)
            sheet = book.sheet(continued, columns, _with_period(continued, period), subtitle)
        sheet.write(values)
        written += 1
        if progress is not None and written % 10_000 == 0:
            progress(written)
    sheet.finish()
    return written


def compliance_workbook(
    session: Session,
    pack: RulePack,
    period: Period,
    *,
    deadline_days: int,
    agency_id: int | None = None,
    county: str | None = None,
    locale: str = "zh",
    results: list[RuleResult] | None = None,
    vehicles: bool = True,
    target: str | Path | BinaryIO | None = None,
    rows_per_sheet: int = EXCEL_ROWS,
    progress: Callable[[int], None] | None = None,
    figures: Headline | None = None,
    vehicle_lines: Mapping[str, Sequence[VehicleLine]] | None = None,
) -> bytes:
    """The report as xlsx: the whole city (each agency and the city total), a county's agencies, or
    one agency only. `results` are evaluate()'s for the same selection when the caller has them.

    Written to `target` (a path or a file) and streamed when given, for a large report; returned as
    bytes otherwise (b"" when written to a target). Without `vehicles` the report has no vehicle
    detail (its summary sheets are instant whatever the size). `progress` is told the vehicle rows
    written so far. `figures` are headline()'s for the same selection when the caller has them
    (agency_headlines), `vehicle_lines` the vehicle detail of each rule (by rule id) when the caller
    has read it for many agencies at once (explain_by_agency)."""
    with one_locale(locale):
        labels = _Labels(locale)
        if results is None:
            results = evaluate(session, pack, period, agency_id=agency_id, county=county)
        evaluated = {r.rule.id for r in results}
        rules = [rule for rule in pack.rules if rule.id in evaluated]
        if agency_id is None:
            if county is None:
                heading, total_label = _("全市新能源汽车配备合规报告"), _("全市合计")
            else:
                county_name = labels.value("county", county)
                heading = _("%(county)s新能源汽车配备合规报告", county=county_name)
                total_label = _("%(county)s合计", county=county_name)
            totals = {r.rule.id: r for r in results if r.agency_id is None}
        else:
            agency = session.get(Agency, agency_id)
            heading = _("%(agency)s 新能源汽车配备合规报告", agency=agency.name if agency else str(agency_id))
            total_label, totals = "", {}
        by_rule: dict[str, list[RuleResult]] = {}
        for r in results:
            if r.agency_id is not None:
                by_rule.setdefault(r.rule.id, []).append(r)
        if figures is None:
            figures = headline(session, period, deadline_days=deadline_days, agency_id=agency_id, county=county)
        overview = list(totals.values()) if agency_id is None else results
        detail_rows = sum(r.in_scope + r.exempt for r in overview)
        left_out = 0 if vehicles else detail_rows
        buffer = io.BytesIO() if target is None else None
        # Returned as bytes, a large vehicle detail is still streamed (the city digest's attachment):
        # held in memory, its cells took several hundred megabytes.
        streamed = buffer is None or (vehicles and detail_rows > STREAMED_ROWS)
        book = ReportBook(target if buffer is None else buffer, streamed=streamed)
        _overview_sheet(
            book, labels, pack, period, heading, overview, by_rule, figures, city=agency_id is None, vehicles_left_out=left_out
        )
        for rule in rules:
            _rule_sheet(book, labels, pack, period, rule, by_rule.get(rule.id, []), totals.get(rule.id), total_label)
        if vehicles:
            rows = _vehicle_rows(
                session, labels, pack, period, rules, agency_id=agency_id, county=county, deadline_days=deadline_days,
                read=vehicle_lines,
            )
            _vehicle_sheets(book, rows, period, rows_per_sheet=rows_per_sheet, progress=progress)
        book.workbook.set_properties({"title": heading, "author": _("濮阳市公共领域车辆电动化核查")})
        book.close()
        return b"" if buffer is None else buffer.getvalue()
