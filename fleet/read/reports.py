"""The compliance report workbook for a period: an overview, a summary sheet per rule and a vehicle sheet,
laid out for printing. Used by the web export and attached to the monthly e-mail.

Text that users typed (agency names, brand and model, remarks, file names) is written so that a
spreadsheet can never read it as a formula (CWE-1236).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from flask import current_app
from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.orm import Session

from fleet.base.labels import result_status_label
from fleet.base.models import Acquisition, Agency
from fleet.base.periods import Period
from fleet.base.text import _, force_locale
from fleet.base.vocab import VOCABULARIES
from rules.engine import evaluate
from rules.explain import explain
from rules.packs import Rule, RulePack
from rules.results import RuleResult

# A cell whose text starts with one of these is a formula (or becomes one when exported to CSV and
# opened again) in Excel, LibreOffice and WPS.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

PERCENT = "0.0%"
# SQLite allows 32766 bound parameters; stay well below for IN lists.
_CHUNK = 5000
TITLE_FONT = Font(bold=True, size=14)
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE4EA")
TOTAL_FILL = PatternFill("solid", fgColor="F1F1F1")
STATUS_FILLS = {
    "pass": PatternFill("solid", fgColor="E3F2E4"),
    "fail": PatternFill("solid", fgColor="FBE3E3"),
}
THIN = Side(style="thin", color="B0BEC5")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="top")


def put(sheet: Worksheet, row: int, column: int, value: Any) -> Cell:
    """Write a value; text that would start a formula is stored as plain text with Excel's quote prefix."""
    cell = sheet.cell(row=row, column=column)
    if isinstance(value, Fraction):
        value = float(value)
    cell.value = value
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        # openpyxl marks text starting with "=" as a formula; force it back to a string. The quote
        # prefix keeps it text when someone edits the cell in Excel.
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


@dataclass(frozen=True)
class Column:
    header: str
    width: float
    number_format: str | None = None


def _table(sheet: Worksheet, header_row: int, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> int:
    """Header and rows with borders and formats; returns the last row written."""
    for index, column in enumerate(columns, start=1):
        cell = put(sheet, header_row, index, column.header)
        cell.font, cell.fill, cell.border = HEADER_FONT, HEADER_FILL, BOX
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    last = header_row
    for last, values in enumerate(rows, start=header_row + 1):
        for index, (column, value) in enumerate(zip(columns, values, strict=True), start=1):
            cell = put(sheet, last, index, value)
            cell.border = BOX
            cell.alignment = WRAP
            if column.number_format:
                cell.number_format = column.number_format
    return last


def _print_setup(sheet: Worksheet, header_row: int, columns: int, title: str) -> None:
    """Landscape A4, one page wide, the title and header repeated on every page, panes frozen below them."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages tall as needed
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = f"1:{header_row}"
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=2)
    sheet.print_options.horizontalCentered = True
    sheet.page_margins.left = sheet.page_margins.right = 0.4
    sheet.oddHeader.center.text = title.replace("&", "&&")
    sheet.oddFooter.center.text = _("第 &P 页，共 &N 页")
    sheet.auto_filter.ref = f"A{header_row}:{get_column_letter(columns)}{max(sheet.max_row, header_row)}"


def _title_rows(sheet: Worksheet, columns: int, title: str, subtitle: str) -> None:
    put(sheet, 1, 1, title).font = TITLE_FONT
    put(sheet, 2, 1, subtitle).alignment = Alignment(wrap_text=True, vertical="top")
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=columns)
    sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=columns)
    sheet.row_dimensions[2].height = 45


class _Labels:
    """Words of the report in the requested language; vocabulary values in English for English reports."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def value(self, vocabulary: str, value: str | None) -> str | None:
        if value is None or self.locale != "en":
            return value
        return VOCABULARIES[vocabulary].english(value)

    def status(self, status: str) -> str:
        return result_status_label(status)

    def level(self, level: str) -> str:
        return {"mandatory": _("强制"), "in_principle": _("原则上")}.get(level, level)

    def yes(self, flag: bool) -> str:
        return _("是") if flag else _("否")

    def title(self, rule: Rule) -> str:
        return rule.title_in(self.locale)


def _period_text(period: Period) -> str:
    return _("%(start)s 至 %(end)s", start=period.start.isoformat(), end=period.end.isoformat())


def _figure_columns(measure: str | None) -> list[Column]:
    """The columns of a result; an emission-standard rule counts vehicles meeting it, not NEVs, and the
    overview mixes both kinds."""
    counted, share = {
        "nev_share": (_("新能源（辆）"), _("新能源占比")),
        "standard_share": (_("符合标准（辆）"), _("符合标准占比")),
    }.get(measure or "", (_("计入（辆）"), _("占比")))
    return [
        Column(_("范围内购置（辆）"), 11, "0"),
        Column(counted, 11, "0"),
        Column(_("已豁免（辆）"), 11, "0"),
        Column(_("待审豁免（辆）"), 11, "0"),
        Column(share, 11, PERCENT),
        Column(_("要求"), 9, PERCENT),
        Column(_("状态"), 9),
        Column(_("缺口（辆）"), 10, "0"),
    ]


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


def _colour_status(sheet: Worksheet, first_row: int, last_row: int, status_column: int, statuses: list[str]) -> None:
    for row, status in zip(range(first_row, last_row + 1), statuses, strict=False):
        fill = STATUS_FILLS.get(status)
        if fill is not None:
            sheet.cell(row=row, column=status_column).fill = fill


def _rule_sheet(
    workbook: Workbook,
    labels: _Labels,
    pack: RulePack,
    period: Period,
    rule: Rule,
    results: list[RuleResult],
    total: RuleResult | None,
) -> None:
    sheet = workbook.create_sheet(rule.id[:31])
    columns = [Column(_("单位"), 34), *_figure_columns(rule.measure)]
    title = _with_period(labels.title(rule), period)
    _title_rows(
        sheet,
        len(columns),
        title,
        _(
            "依据：%(source)s。条款：%(clause)s（%(level)s，要求不低于 %(threshold)s）",
            source=pack.source,
            clause=rule.clause,
            level=labels.level(rule.level),
            threshold=f"{float(rule.threshold):.0%}",
        ),
    )
    header = 3
    rows = [[r.agency, *_figures(labels, r)] for r in results]
    statuses = [r.status for r in results]
    if total is not None:
        rows.append([_("全市合计"), *_figures(labels, total)])
        statuses.append(total.status)
    last = _table(sheet, header, columns, rows)
    _colour_status(sheet, header + 1, last, 8, statuses)
    if total is not None:
        for column in range(1, len(columns) + 1):
            cell = sheet.cell(row=last, column=column)
            cell.font, cell.fill = HEADER_FONT, TOTAL_FILL
    _print_setup(sheet, header, len(columns), title)


def _overview_sheet(
    sheet: Worksheet, labels: _Labels, pack: RulePack, period: Period, heading: str, results: list[RuleResult]
) -> None:
    columns = [Column(_("规则"), 44), Column(_("性质"), 9), *_figure_columns(None)]
    title = _with_period(heading, period)
    _title_rows(sheet, len(columns), title, _("依据：%(source)s（%(date)s）", source=pack.source, date=pack.source_date.isoformat()))
    header = 3
    rows = [[labels.title(r.rule), labels.level(r.rule.level), *_figures(labels, r)] for r in results]
    last = _table(sheet, header, columns, rows)
    _colour_status(sheet, header + 1, last, 9, [r.status for r in results])
    _print_setup(sheet, header, len(columns), title)


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


def _with_period(title: str, period: Period) -> str:
    return _("%(title)s（%(period)s）", title=title, period=_period_text(period))


def _exemption_text(exemption: dict[str, Any] | None) -> str | None:
    if not exemption:
        return None
    if exemption["source"] == "catalogue":
        return _("无新能源车型目录：%(description)s", description=exemption["description"])
    return _("%(category)s：%(reason)s", category=exemption["reason_category"], reason=exemption["reason"])


def _vehicle_sheet(
    workbook: Workbook,
    session: Session,
    labels: _Labels,
    pack: RulePack,
    period: Period,
    rules: list[Rule],
    agency_id: int | None,
    deadline_days: int,
) -> None:
    sheet = workbook.create_sheet(_("车辆明细")[:31])
    columns = [
        Column(_("规则"), 14),
        Column(_("单位"), 28),
        Column(_("车辆识别代号"), 20),
        Column(_("号牌号码"), 12),
        Column(_("车辆类别"), 12),
        Column(_("动力类型"), 12),
        Column(_("购置方式"), 8),
        Column(_("购置日期"), 11, "yyyy-mm-dd"),
        Column(_("报送日期"), 11, "yyyy-mm-dd"),
        Column(_("报送用时（天）"), 9, "0"),
        Column(_("逾期报送"), 8),
        Column(_("品牌型号"), 20),
        Column(_("排放标准"), 9),
        Column(_("标记"), 11),
        Column(_("豁免说明"), 30),
    ]
    title = _with_period(_("车辆明细"), period)
    _title_rows(sheet, len(columns), title, _("每辆范围内购置车辆及其在各规则下的标记；同一车辆可出现在多条规则下。"))
    lines = [(rule, line) for rule in rules for line in explain(session, pack, rule.qualified_id, period, agency_id)]
    brand_models = _brand_models(session, [line.acquisition_id for _rule, line in lines])
    rows = []
    for rule, line in lines:
        days = (line.reported_on - line.acquired_on).days
        rows.append(
            [
                rule.id,
                line.agency,
                line.vin,
                line.plate,
                labels.value("category", line.category),
                labels.value("power", line.power),
                labels.value("acquisition", line.acquisition_kind),
                line.acquired_on,
                line.reported_on,
                days,
                labels.yes(days > deadline_days),
                brand_models.get(line.acquisition_id),
                line.emission_standard,
                _mark(line.mark),
                _exemption_text(line.exemption),
            ]
        )
    _table(sheet, 3, columns, rows)
    _print_setup(sheet, 3, len(columns), title)


def _brand_models(session: Session, acquisition_ids: list[int]) -> dict[int, str | None]:
    found: dict[int, str | None] = {}
    for start in range(0, len(acquisition_ids), _CHUNK):
        chunk = sorted(set(acquisition_ids[start : start + _CHUNK]))
        query = sa.select(Acquisition.id, Acquisition.brand_model).where(Acquisition.id.in_(chunk))
        found.update({acquisition_id: brand_model for acquisition_id, brand_model in session.execute(query)})
    return found


def compliance_workbook(
    session: Session, pack: RulePack, period: Period, *, agency_id: int | None = None, locale: str = "zh"
) -> bytes:
    """The report as xlsx bytes: the whole city (each agency and the city total) or one agency only."""
    with force_locale(locale):
        labels = _Labels(locale)
        deadline_days = current_app.config["REPORTING_DEADLINE_DAYS"]
        results = evaluate(session, pack, period, agency_id=agency_id)
        evaluated = {r.rule.id for r in results}
        rules = [rule for rule in pack.rules if rule.id in evaluated]
        workbook = Workbook()
        overview = workbook.active
        overview.title = _("总览")[:31]
        if agency_id is None:
            heading = _("全市新能源汽车配备合规报告")
            totals = {r.rule.id: r for r in results if r.agency_id is None}
            _overview_sheet(overview, labels, pack, period, heading, list(totals.values()))
        else:
            agency = session.get(Agency, agency_id)
            heading = _("%(agency)s 新能源汽车配备合规报告", agency=agency.name if agency else str(agency_id))
            totals = {}
            _overview_sheet(overview, labels, pack, period, heading, results)
        for rule in rules:
            agency_results = [r for r in results if r.rule.id == rule.id and r.agency_id is not None]
            _rule_sheet(workbook, labels, pack, period, rule, agency_results, totals.get(rule.id))
        _vehicle_sheet(workbook, session, labels, pack, period, rules, agency_id, deadline_days)
        workbook.properties.title = heading
        workbook.properties.creator = _("濮阳市公共领域车辆电动化核查")
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()
