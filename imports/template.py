"""The upload template: the upload columns (headers.yaml) with drop-down lists, written with openpyxl.

The headers, notes and required flags come from imports/headers.yaml, the drop-down values from
fleet/vocabularies.yaml, so the template always matches what the importer reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation

from fleet.base.periods import Period
from fleet.base.text import _
from fleet.base.vocab import VOCABULARIES
from imports.headers import COLUMNS, Column

DATA_SHEET = "车辆购置"
INSTRUCTION_SHEET = "填表说明"
LIST_SHEET = "下拉选项"
# Drop-downs cover the whole column below the header.
_LAST_ROW = 1048576
# Text keeps a VIN or plate as typed (no leading zeros lost, no long digit strings turned into numbers).
_FORMATS = {"acquired_on": "yyyy-mm-dd", "vin": "@", "plate": "@", "credit_code": "@", "price": "0.00"}
REQUIRED_MARK = "*"

_WIDTHS = {"agency": 30, "credit_code": 22, "vin": 22, "plate": 12, "category": 14, "power": 16,
           "acquisition": 10, "acquired_on": 12, "brand_model": 22, "emission_standard": 10, "county": 22,
           "price": 14, "exemption_reason": 36, "remark": 24}
_REQUIRED_FILL = PatternFill("solid", fgColor="FCE4D6")
_OPTIONAL_FILL = PatternFill("solid", fgColor="DDEBF7")


def _header_text(header: str, required: bool) -> str:
    return f"{REQUIRED_MARK}{header}" if required else header


# An agency's template fills its own name, credit code and county down this many rows.
PREFILLED_ROWS = 1000
_PREFILLED_KEYS = ("agency", "credit_code", "county")


@dataclass(frozen=True)
class Prefill:
    """What an agency user's template states for it: its own registry values and the month it reports."""

    agency: str
    credit_code: str | None
    county: str
    month: Period

    def value(self, key: str) -> str | None:
        return {"agency": self.agency, "credit_code": self.credit_code, "county": self.county}[key]


def write_template(path_or_buffer: str | IO[bytes], *, prefill: Prefill | None = None) -> None:
    """Write the template (data sheet, instruction sheet, hidden drop-down list sheet) to a path or buffer.

    With `prefill` (an agency user's download) a title row names the agency and the month, and the
    agency's own 单位名称, 统一社会信用代码 and 所属县区 are merged down the first PREFILLED_ROWS rows (the
    reader gives each vehicle row the value; rows without a vehicle stay blank), each limited by a
    data validation to that one value."""
    book = Workbook()
    data = book.active
    data.title = DATA_SHEET
    lists = book.create_sheet(LIST_SHEET)
    lists.sheet_state = "hidden"
    write_data_sheet(
        data, lists, COLUMNS, formats=_FORMATS, widths=_WIDTHS,
        header_row=1 if prefill is None else 2, own=() if prefill is None else _PREFILLED_KEYS,
    )
    if prefill is not None:
        _prefill(data, prefill)
    write_instructions(book.create_sheet(INSTRUCTION_SHEET, 1), _instruction_lines(), COLUMNS)
    book.active = 0
    book.save(path_or_buffer)


def write_data_sheet(
    data,
    lists,
    columns: Sequence[Column],
    *,
    formats: dict[str, str],
    widths: dict[str, int],
    header_row: int = 1,
    own: tuple[str, ...] = (),
) -> None:
    """The header of `columns` in header_row (required ones marked) and the columns' drop-downs (values on
    the hidden sheet `lists`), formats and widths below it; the columns of `own`
    get their validation from _prefill instead."""
    # Every list goes down column A of the list sheet, one after the other: values side by side in a row
    # (“新增”, “濮阳县”, “纯电动 …”) would look like a header to the reader.
    list_row = 1
    first = header_row + 1
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        cell = data.cell(row=header_row, column=index, value=_header_text(column.header, column.required))
        cell.font = Font(bold=True, color="C00000" if column.required else "000000")
        cell.fill = _REQUIRED_FILL if column.required else _OPTIONAL_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        if column.note:
            cell.comment = Comment(column.note, "fleet")
        data.column_dimensions[letter].width = widths.get(column.key, 16)
        if column.key in VOCABULARIES and column.key not in own:
            values = VOCABULARIES[column.key].values
            for row, value in enumerate(values, start=list_row):
                lists.cell(row=row, column=1, value=value)
            source = f"{quote_sheetname(LIST_SHEET)}!$A${list_row}:$A${list_row + len(values) - 1}"
            list_row += len(values)
            validation = DataValidation(type="list", formula1=source, allow_blank=True)
            validation.error = _("请从下拉列表中选择。")
            validation.errorTitle = column.header
            validation.prompt = column.note
            validation.showErrorMessage = True
            validation.showInputMessage = bool(column.note)
            validation.add(f"{letter}{first}:{letter}{_LAST_ROW}")
            data.add_data_validation(validation)
        if column.key in formats:
            # A column format, not formatted cells: the sheet stays empty below the header, so rows
            # added by hand or by a program (openpyxl's append) start in row 2.
            data.column_dimensions[letter].number_format = formats[column.key]
        if column.key == "acquired_on":
            validation = DataValidation(type="date", operator="greaterThanOrEqual", formula1="DATE(2015,1,1)",
                                        allow_blank=True)
            validation.error = _("请填写 2015 年 1 月 1 日以后的日期，如 2025-03-05。")
            validation.errorTitle = column.header
            validation.showErrorMessage = True
            validation.add(f"{letter}{first}:{letter}{_LAST_ROW}")
            data.add_data_validation(validation)
    data.row_dimensions[header_row].height = 32
    data.freeze_panes = f"A{first}"
    data.auto_filter.ref = f"A{header_row}:{get_column_letter(len(columns))}{header_row}"


def _prefill(data, prefill: Prefill) -> None:
    """The title naming agency and month above the header, and the agency's own values merged down."""
    month = f"{prefill.month.start.year}-{prefill.month.start.month:02d}"
    data.cell(row=1, column=1, value=_("%(agency)s 车辆购置情况（%(month)s）", agency=prefill.agency, month=month)).font = Font(
        bold=True, size=14
    )
    data.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(COLUMNS))
    last = 2 + PREFILLED_ROWS
    for index, column in enumerate(COLUMNS, start=1):
        value = prefill.value(column.key) if column.key in _PREFILLED_KEYS else None
        if value is None:
            continue
        letter = get_column_letter(index)
        cell = data.cell(row=3, column=index, value=value)
        cell.alignment = Alignment(vertical="top", wrap_text=True)
        data.merge_cells(f"{letter}3:{letter}{last}")
        # A list of one: the agency's own value is the only one the template accepts.
        validation = DataValidation(type="list", formula1=f'"{value}"', allow_blank=True)
        validation.error = _("本单位的模板只能填写“%(value)s”。", value=value)
        validation.errorTitle = column.header
        validation.showErrorMessage = True
        validation.add(f"{letter}3:{letter}{_LAST_ROW}")
        data.add_data_validation(validation)


def _instruction_lines() -> list[str]:
    return [
        _("填表说明"),
        _("1. 在“%(sheet)s”工作表中每行填写一辆购置的车辆，请勿修改表头。", sheet=DATA_SHEET),
        _("2. 带 * 的列为必填列；排放标准对燃油、燃气重型货车必填。"),
        _("3. 车辆类别、动力类型、购置方式、所属县区、排放标准请从下拉列表中选择。"),
        _("4. 购置日期填写为日期，如 2025-03-05；购置价格单位为万元。"),
        _("5. 属于 100% 新能源要求的车辆未选用新能源车时，须填写未选用新能源原因。"),
    ]


def write_instructions(sheet, lines: Sequence[str], columns: Sequence[Column]) -> None:
    """The instruction sheet: the lines, then a table of the columns (required or not, note, values)."""
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["B"].width = 10
    sheet.column_dimensions["C"].width = 70
    sheet.column_dimensions["D"].width = 60
    for row, line in enumerate(lines, start=1):
        sheet.cell(row=row, column=1, value=line)
    sheet["A1"].font = Font(bold=True, size=14)
    top = len(lines) + 2
    for col, title in enumerate((_("列名"), _("是否必填"), _("填写说明"), _("可选值")), start=1):
        sheet.cell(row=top, column=col, value=title).font = Font(bold=True)
    for offset, column in enumerate(columns, start=1):
        row = top + offset
        sheet.cell(row=row, column=1, value=column.header)
        sheet.cell(row=row, column=2, value=_("必填") if column.required else _("选填"))
        sheet.cell(row=row, column=3, value=column.note).alignment = Alignment(wrap_text=True)
        if column.key in VOCABULARIES:
            sheet.cell(row=row, column=4, value="、".join(VOCABULARIES[column.key].values)).alignment = Alignment(
                wrap_text=True
            )
