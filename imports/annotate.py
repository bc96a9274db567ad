"""Annotated workbook: the upload given back with flagged cells coloured and commented, and a first sheet listing every finding."""

from __future__ import annotations

import io
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.cell import Cell
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from fleet.base.text import _
from imports.package import sniff_format
from imports.read import page_table
from imports.report import ERROR, Finding, ValidationReport
from imports.sheets import read_book

FINDINGS_SHEET = "错误清单"
ERROR_FILL = PatternFill("solid", fgColor="FFC7CE")
WARNING_FILL = PatternFill("solid", fgColor="FFE699")
_HEADER_FONT = Font(bold=True)
_LINK_FONT = Font(color="0563C1", underline="single")
# Text starting so is a formula to Excel once the cell is edited.
FORMULA_TRIGGERS = ("=", "+", "-", "@")
_UNFIT_TITLE = re.compile(r"[\[\]:*?/\\]")


def _as_text(cell: Cell, value: object) -> None:
    """Write user data as text: a value starting with = must never become a formula."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
        if value.startswith(FORMULA_TRIGGERS):
            cell.quotePrefix = True


@contextmanager
def _as_path(source: bytes | Path) -> Iterator[Path]:
    if isinstance(source, Path):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="fleet-annotate-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(source)
        yield path


def _quote_text(workbook: Workbook) -> None:
    """Text that Excel would take for a formula when the cell is edited keeps the quote prefix the reports use."""
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "s" and isinstance(cell.value, str) and cell.value.startswith(FORMULA_TRIGGERS):
                    cell.quotePrefix = True


def _rebuilt(path: Path, file_name: str | None) -> tuple[Workbook, dict[str, str]]:
    """An xlsx of the rows the reader read (a web page: its table of acquisitions), and the title each
    sheet has in it (Excel's sheet titles are 31 characters at most, without []:*?/\\)."""
    book = read_book(path, name=file_name)
    sheets = page_table(book.sheets) if book.format == "html" else book.sheets
    workbook = Workbook()
    workbook.remove(workbook.active)
    titles: dict[str, str] = {}
    for sheet in sheets:
        title = _UNFIT_TITLE.sub("_", sheet.name)[:31].strip("'") or "Sheet"
        while title in titles.values():
            title = f"{title[:28]}_{len(titles) + 1}"
        titles[sheet.name] = title
        target = workbook.create_sheet(title)
        for r, row in enumerate(sheet.rows, start=1):
            for c, value in enumerate(row, start=1):
                if value != "" and value is not None:
                    _as_text(target.cell(row=r, column=c), value)
        if sheet.hidden:
            target.sheet_state = "hidden"
    return workbook, titles


def _internal_link(sheet: str, coordinate: str) -> str:
    # Always quoted: sheet names with spaces, dashes or quotes stay unambiguous.
    return "'" + sheet.replace("'", "''") + "'!" + coordinate


def _header_cell(sheet: Worksheet, header_row: int, header: str | None) -> int:
    """The column (1-based) of a header written in the header row; the first column when not found."""
    if header:
        for cell in sheet[header_row]:
            if isinstance(cell.value, str) and cell.value.strip() == header.strip():
                return cell.column
    return 1


def _cell_of(sheet: Worksheet, report: ValidationReport, found: Finding) -> str | None:
    """Where a finding points: its cell; the header row for findings about a column or the sheet."""
    layout = report.layout.get(found.sheet or "")
    if layout is None:
        return "A1" if found.sheet else None
    if found.row is None or found.row == layout.header_row or found.column not in layout.columns:
        row = found.row if found.row is not None else layout.header_row
        if found.column in layout.columns:
            return f"{get_column_letter(layout.columns[found.column] + 1)}{row}"
        return f"{get_column_letter(_header_cell(sheet, layout.header_row, found.header))}{row}"
    return f"{get_column_letter(layout.columns[found.column] + 1)}{found.row}"


def annotate_workbook(source: bytes | Path, report: ValidationReport, *, file_name: str | None = None) -> bytes:
    """The workbook as uploaded, each flagged cell filled (red for errors, amber for warnings) with the
    messages in a comment, and an added first sheet 错误清单 linking to every flagged cell.

    An upload in another format (xls, CSV, a web page, …) comes back as an xlsx of the same rows, read
    by the same reader as the upload; file_name is the upload's name (a CSV's sheet is named after it)."""
    with _as_path(source) as path:
        if sniff_format(path) == "xlsx":
            with path.open("rb") as fh:
                workbook = load_workbook(fh)
            _quote_text(workbook)
            titles = {name: name for name in workbook.sheetnames}
        else:
            workbook, titles = _rebuilt(path, file_name)
    findings = [*report.errors, *report.warnings]

    by_cell: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    targets: list[tuple[Finding, str | None]] = []
    for found in findings:
        coordinate = None
        if found.sheet in titles:
            coordinate = _cell_of(workbook[titles[found.sheet]], report, found)
            by_cell[(titles[found.sheet], coordinate)].append(found)
        targets.append((found, coordinate))

    for (sheet_name, coordinate), cell_findings in by_cell.items():
        cell = workbook[sheet_name][coordinate]
        error = any(f.severity == ERROR for f in cell_findings)
        cell.fill = ERROR_FILL if error else WARNING_FILL
        text = "\n".join(f.message for f in cell_findings)
        comment = Comment(text, "fleet")
        comment.width, comment.height = 320, min(60 + 40 * len(cell_findings), 400)
        cell.comment = comment

    listing = workbook.create_sheet(FINDINGS_SHEET, 0)
    headers = [_("工作表"), _("行"), _("列"), _("表头"), _("填写的值"), _("代码"), _("级别"), _("说明")]
    listing.append(headers)
    for cell in listing[1]:
        cell.font = _HEADER_FONT
    for row_number, (found, coordinate) in enumerate(targets, start=2):
        values = [found.sheet, found.row, found.column, found.header, found.value, found.code,
                  _("错误") if found.severity == ERROR else _("警告"), found.message]
        for column_number, value in enumerate(values, start=1):
            _as_text(listing.cell(row=row_number, column=column_number), value)
        if coordinate is not None:
            link = listing.cell(row=row_number, column=8)
            link.hyperlink = Hyperlink(ref=link.coordinate, location=_internal_link(titles[found.sheet], coordinate))
            link.font = _LINK_FONT
            fill = ERROR_FILL if found.severity == ERROR else WARNING_FILL
            listing.cell(row=row_number, column=6).fill = fill
    for letter, width in zip("ABCDEFGH", (14, 6, 16, 18, 22, 26, 8, 90)):
        listing.column_dimensions[letter].width = width
    listing.freeze_panes = "A2"
    for sheet in workbook.worksheets:
        sheet.sheet_view.tabSelected = sheet is listing
    workbook.active = 0

    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
