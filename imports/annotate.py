"""Annotated workbook: the upload given back with flagged cells coloured and commented, and a first sheet listing every finding.

The workbook streams through: read row by row (an xlsx by openpyxl's read-only parser, any other format
by the guarded reader) and written row by row in openpyxl's write-only mode, so that the largest upload
the limits let in (imports.guards.Limits) is annotated in bounded memory. Loading it whole took
gigabytes. An xlsx is first checked against the same limits as every read of the file.

What an xlsx keeps of the original: every cell's value (formulas as formulas) and style, column widths,
row heights, merged cells, comments, frozen panes, hidden sheets, drop-down lists and the autofilter.
What write-only mode cannot stream cheaply is left out: hyperlinks, conditional formats, print
settings, images and charts; cells that only carry formatting past the table's last column or in rows
without a value.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from copy import copy
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES
from openpyxl.comments import Comment
from openpyxl.comments.comment_sheet import CommentSheet
from openpyxl.packaging.relationship import get_dependents, get_rels_path
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import coordinate_to_tuple, get_column_letter
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.cell_range import CellRange, MultiCellRange
from openpyxl.worksheet.dimensions import ColumnDimension, RowDimension
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.xml.constants import COMMENTS_NS
from openpyxl.xml.functions import fromstring

from fleet.base.text import LOCALES, _, _l, force_locale, get_locale
from imports.guards import LIMITS, Limits, scan_xlsx
from imports.package import check_contents
from imports.read import page_table
from imports.headers import COLUMN_BY_KEY
from imports.report import CODES, ERROR, Finding, ValidationReport
from imports.sheets import Sheet, read_book

# The first sheet's title, in the reader's language (str() it where it is written).
FINDINGS_SHEET = _l("错误清单")
ERROR_FILL = PatternFill("solid", fgColor="FFC7CE")
WARNING_FILL = PatternFill("solid", fgColor="FFE699")
_HEADER_FONT = Font(bold=True)
_LINK_FONT = Font(color="0563C1", underline="single")
# Text starting so is a formula to Excel once the cell is edited.
FORMULA_TRIGGERS = ("=", "+", "-", "@")
_UNFIT_TITLE = re.compile(r"[\[\]:*?/\\]")
_LISTING_WIDTHS = (14, 6, 18, 22, 30, 8, 90)
# The style tables of a workbook (what openpyxl's apply_stylesheet reads from xl/styles.xml).
_STYLE_TABLES = ("_fonts", "_fills", "_borders", "_alignments", "_protections", "_number_formats", "_cell_styles",
                 "_named_styles", "_differential_styles", "_table_styles", "_colors")

Flags = dict[int, dict[int, list[Finding]]]  # row -> column -> the findings of that cell (1-based)
Notes = dict[int, dict[int, Comment]]  # row -> column -> the upload's own comment on that cell


@dataclass
class _Placed:
    """Where the findings go: each finding with the cell its line links to, and the cells to mark by sheet."""

    listing: list[tuple[Finding, str | None]] = field(default_factory=list)
    flags: dict[str, Flags] = field(default_factory=lambda: defaultdict(lambda: defaultdict(dict)))


def annotate_workbook(
    source: bytes | Path, report: ValidationReport, *, file_name: str | None = None, limits: Limits = LIMITS
) -> bytes:
    """The workbook as uploaded, each flagged cell filled (red for errors, amber for warnings) with the
    messages in a comment, and an added first sheet 错误清单 linking to every flagged cell.

    An upload in another format (xls, CSV, a web page, …) comes back as an xlsx of the same rows, read
    by the same reader as the upload; file_name is the upload's name (a CSV's sheet is named after it).
    Raises UnusableFile for a file beyond the limits, as the reader does."""
    out = Workbook(write_only=True)
    with _as_path(source) as path:
        if check_contents(path) == "xlsx":
            scan_xlsx(path, limits)
            _annotate_xlsx(path, report, out)
        else:
            _annotate_rebuilt(path, report, out, file_name, limits)
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()


@contextmanager
def _as_path(source: bytes | Path) -> Iterator[Path]:
    if isinstance(source, Path):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="fleet-annotate-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(source)
        yield path


# --- where findings go -----------------------------------------------------------------------------

def _place(report: ValidationReport, titles: dict[str, str], header_row: Callable[[str, int], Sequence[Any]]) -> _Placed:
    """Each finding's cell in the annotated workbook; header_row(title, row) gives a sheet's header row's values."""
    placed = _Placed()
    for found in [*report.errors, *report.warnings]:
        coordinate = None
        if found.sheet in titles:
            title = titles[found.sheet]
            row, column = _cell_of(report, found, partial(header_row, title))
            placed.flags[title][row].setdefault(column, []).append(found)
            coordinate = f"{get_column_letter(column)}{row}"
        placed.listing.append((found, coordinate))
    return placed


def _cell_of(report: ValidationReport, found: Finding, header_row: Callable[[int], Sequence[Any]]) -> tuple[int, int]:
    """Where a finding points (row, column; 1-based): its cell; the header row for findings about a
    column or the sheet."""
    layout = report.layout.get(found.sheet or "")
    if layout is None:
        return 1, 1
    if found.row is None or found.row == layout.header_row or found.column not in layout.columns:
        row = found.row if found.row is not None else layout.header_row
        if found.column in layout.columns:
            return row, layout.columns[found.column] + 1
        return row, _header_column(header_row(layout.header_row), found.header)
    return found.row, layout.columns[found.column] + 1


def _header_column(values: Sequence[Any], header: str | None) -> int:
    """The column (1-based) of a header written in the header row; the first column when not found."""
    if header:
        for column, value in enumerate(values, start=1):
            if isinstance(value, str) and value.strip() == header.strip():
                return column
    return 1


# --- cells -----------------------------------------------------------------------------------------

def _user_value(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    """A user's value as written: text stays text (a value starting with = never becomes a formula, #N/A
    no error), and text Excel would take for a formula once the cell is edited keeps the quote prefix."""
    if not isinstance(value, str) or not (value.startswith(FORMULA_TRIGGERS) or value in ERROR_CODES):
        return value
    cell = WriteOnlyCell(sheet, value)
    _as_text(cell)
    return cell


def _as_text(cell: Cell) -> None:
    cell.data_type = "s"
    if cell.value.startswith(FORMULA_TRIGGERS):
        cell.quotePrefix = True


def _styled(sheet: WriteOnlyWorksheet, value: Any) -> Cell:
    """The value as a cell that can take a style (it may be one already)."""
    return value if isinstance(value, Cell) else WriteOnlyCell(sheet, value)


def _mark(cell: Cell, findings: list[Finding]) -> Cell:
    error = any(f.severity == ERROR for f in findings)
    cell.fill = ERROR_FILL if error else WARNING_FILL
    comment = Comment("\n".join(f.message for f in findings), "fleet")
    comment.width, comment.height = 320, min(60 + 40 * len(findings), 400)
    cell.comment = comment
    return cell


def _internal_link(sheet: str, coordinate: str) -> str:
    # Always quoted: sheet names with spaces, dashes or quotes stay unambiguous.
    return "'" + sheet.replace("'", "''") + "'!" + coordinate


def _write_listing(out: Workbook, placed: _Placed, titles: dict[str, str]) -> None:
    """The first sheet: one line per finding, its code coloured and its message linking to the cell."""
    title = str(FINDINGS_SHEET)
    while title in titles.values():  # a workbook annotated before and uploaded again keeps its old list
        title += "1"
    listing = out.create_sheet(title)
    for letter, width in zip("ABCDEFG", _LISTING_WIDTHS):
        listing.column_dimensions[letter].width = width
    listing.freeze_panes = "A2"
    listing.sheet_view.tabSelected = True
    headers = [_("工作表"), _("行"), _("列"), _("填写的值"), _("问题"), _("级别"), _("说明")]
    header_cells = [WriteOnlyCell(listing, header) for header in headers]
    for cell in header_cells:
        cell.font = _HEADER_FONT
    listing.append(header_cells)
    for found, coordinate in placed.listing:
        # Words for the reader: the header as written (or the template's), what the code means.
        values = [found.sheet, found.row, _header_shown(found), found.value, _code_text(found.code),
                  _("错误") if found.severity == ERROR else _("警告"), found.message]
        row = [_user_value(listing, value) for value in values]
        if coordinate is not None:
            problem = row[4] = _styled(listing, row[4])
            problem.fill = ERROR_FILL if found.severity == ERROR else WARNING_FILL
            link = row[6] = _styled(listing, row[6])
            link.hyperlink = Hyperlink(ref="", location=_internal_link(titles[found.sheet], coordinate))
            link.font = _LINK_FONT
        listing.append(row)


def _header_shown(found: Finding) -> str | None:
    """The column as the reader knows it: its header as written, else the template's in the reader's language."""
    if found.header:
        return found.header
    column = COLUMN_BY_KEY.get(found.column or "")
    if column is None:
        return None
    return column.en if str(get_locale()) == "en" else column.header


def _code_text(code: str) -> str:
    known = CODES.get(code)
    return str(known.description) if known is not None else code


def findings_sheet_titles() -> frozenset[str]:
    """The findings sheet's title in every language it is written in: an annotated file comes back in either."""
    titles = set()
    for locale in LOCALES:
        with force_locale(locale):
            titles.add(str(FINDINGS_SHEET))
    return frozenset(titles)


# --- an xlsx, as uploaded ---------------------------------------------------------------------------

def _annotate_xlsx(path: Path, report: ValidationReport, out: Workbook) -> None:
    # Opened from the file: openpyxl goes by the name's extension otherwise (a stored upload has none).
    with path.open("rb") as fh:
        upload = load_workbook(fh, read_only=True, keep_links=False)
        try:
            _copy_workbook(upload, report, out)
        finally:
            upload.close()


def _copy_workbook(upload: Workbook, report: ValidationReport, out: Workbook) -> None:
    for name in _STYLE_TABLES:
        # Cells keep their style by its number in these tables, as openpyxl copies a worksheet.
        setattr(out, name, getattr(upload, name))
    sheets = [sheet for sheet in upload.worksheets if isinstance(sheet, ReadOnlyWorksheet)]
    for sheet in sheets:
        # The size a sheet states can lie (A1:XFD1048576): rows are read as far as they go.
        sheet.reset_dimensions()
    titles = {sheet.title: sheet.title for sheet in sheets}
    placed = _place(report, titles, lambda title, row: _row_values(upload[title], row))
    _write_listing(out, placed, titles)
    for sheet in sheets:
        layout = report.layout.get(sheet.title)
        width = max(layout.columns.values(), default=-1) + 1 if layout else 0
        flags = placed.flags.get(sheet.title, {})
        _SheetCopy(sheet, out.create_sheet(sheet.title), flags, _notes(sheet), width).run()


def _row_values(sheet: ReadOnlyWorksheet, row: int) -> Sequence[Any]:
    return next(sheet.iter_rows(min_row=row, max_row=row, values_only=True), ())


def _notes(sheet: ReadOnlyWorksheet) -> Notes:
    """The sheet's own comments (the template's notes on its headers), found as openpyxl's reader finds them."""
    archive = sheet.parent._archive
    names = set(archive.namelist())
    relations = get_rels_path(sheet._worksheet_path)
    notes: Notes = defaultdict(dict)
    if relations not in names:
        return notes
    for part in get_dependents(archive, relations).find(COMMENTS_NS):
        if part.target in names:
            for ref, comment in CommentSheet.from_tree(fromstring(archive.read(part.target))).comments:
                row, column = coordinate_to_tuple(ref)
                notes[row][column] = comment
    return notes


class _SheetCopy:
    """One sheet copied row by row into a write-only sheet, its flagged cells marked.

    openpyxl's worksheet parser is driven here as its read-only worksheet drives it, for what that
    worksheet leaves out: the columns and the view (before the first row), the merged cells, drop-down
    lists and the filter (after the last row); write-only mode writes them in the same places.

    Rows holding no value are not copied (formatting can reach row 1,048,576 while the limits count
    values), nor formatted empty cells or comments right of the table (the widest of its header and any
    row so far)."""

    def __init__(self, source: ReadOnlyWorksheet, target: WriteOnlyWorksheet, flags: Flags, notes: Notes,
                 width: int) -> None:
        self.source, self.target, self.flags, self.notes, self.width = source, target, flags, notes, width
        self.styles = source.parent._cell_styles
        self.written = 0  # rows appended
        self.flagged = sorted(flags, reverse=True)  # flagged rows still to write, the next last
        self.started = False
        workbook = source.parent
        self.xml = source._get_source()
        self.parser = WorkSheetParser(self.xml, source._shared_strings, data_only=False, epoch=workbook.epoch,
                                      date_formats=workbook._date_formats,
                                      timedelta_formats=workbook._timedelta_formats)

    def run(self) -> None:
        self.target.sheet_state = self.source.sheet_state
        with self.xml:
            for number, cells in self.parser.parse():
                while self.flagged and self.flagged[-1] < number:
                    self._row(self.flagged.pop(), [])
                if self.flagged and self.flagged[-1] == number:
                    self.flagged.pop()
                self._row(number, cells)
            while self.flagged:
                self._row(self.flagged.pop(), [])
        self._start()
        merged = self.parser.merged_cells
        if merged is not None:
            self.target.merged_cells = MultiCellRange([CellRange(cell.ref) for cell in merged.mergeCell])
        for name in ("data_validations", "auto_filter"):
            if (value := getattr(self.parser, name, None)) is not None:
                setattr(self.target, name, value)

    def _start(self) -> None:
        """What write-only mode writes before the first row: column widths and styles, the view."""
        if self.started:
            return
        self.started = True
        for letter, attrs in self.parser.column_dimensions.items():
            self.target.column_dimensions[letter] = ColumnDimension(self.target, **self._styled_attrs(attrs, "style"))
        for name in ("sheet_properties", "sheet_format", "views"):
            if (value := getattr(self.parser, name, None)) is not None:
                setattr(self.target, name, value)
        for view in self.target.views.sheetView:
            view.tabSelected = False  # the list of findings is the sheet shown

    def _styled_attrs(self, attrs: dict[str, str], key: str) -> dict[str, Any]:
        attrs = {k: v for k, v in attrs.items() if not k.startswith("{")}
        if key in attrs:
            attrs[key] = self.styles[int(attrs[key])]
        return attrs

    def _row(self, number: int, cells: list[dict[str, Any]]) -> None:
        height = self.parser.row_dimensions.pop(str(number), None)
        marks = self.flags.get(number, {})
        filled = [cell["column"] for cell in cells if cell["value"] is not None]
        if not filled and not marks:
            return
        self._start()
        self.width = max(self.width, *filled, 0)
        # Comments go with the cells copied: one far off would stretch the sheet as formatting would.
        notes = {column: note for column, note in self.notes.get(number, {}).items() if column <= self.width}
        by_column: dict[int, dict[str, Any] | None] = {
            cell["column"]: cell for cell in cells if cell["value"] is not None or cell["column"] <= self.width
        }
        for column in [*marks, *notes]:
            by_column.setdefault(column, None)
        row: list[Any] = [None] * max(by_column, default=0)
        for column, cell in by_column.items():
            row[column - 1] = self._cell(cell, marks.get(column), notes.get(column))
        while self.written < number - 1:
            self.target.append(())
            self.written += 1
        if height is not None:
            self.target.row_dimensions[number] = RowDimension(self.target, **self._styled_attrs(height, "s"))
        self.target.append(row)
        self.written = number
        # Written with its row: held no longer.
        self.target.row_dimensions.pop(number, None)

    def _cell(self, cell: dict[str, Any] | None, findings: list[Finding] | None, note: Comment | None) -> Any:
        value, data_type, style = (cell["value"], cell["data_type"], cell["style_id"]) if cell else (None, "n", 0)
        plain = data_type in ("n", "b") or (data_type == "s" and not value.startswith(FORMULA_TRIGGERS)
                                              and value not in ERROR_CODES)
        if findings is None and note is None and not style and (value is None or plain):
            return value
        written = WriteOnlyCell(self.target)
        if style:
            written._style = copy(self.styles[style])
        if value is not None:
            written.value = value
            if data_type == "s":
                _as_text(written)
        if findings:
            _mark(written, findings)  # the findings take the place of a comment the cell had
        elif note is not None:
            written.comment = note
        return written


# --- another format, as an xlsx of the rows read ------------------------------------------------------

def _annotate_rebuilt(path: Path, report: ValidationReport, out: Workbook, file_name: str | None, limits: Limits) -> None:
    """An xlsx of the rows the reader read (a web page: its table of acquisitions)."""
    book = read_book(path, name=file_name, limits=limits)
    sheets = page_table(book.sheets) if book.format == "html" else book.sheets
    titles = _titles(sheets)
    by_title = {titles[sheet.name]: sheet for sheet in sheets}

    def header_row(title: str, row: int) -> Sequence[Any]:
        rows = by_title[title].rows
        return rows[row - 1] if 0 < row <= len(rows) else ()

    placed = _place(report, titles, header_row)
    _write_listing(out, placed, titles)
    for sheet in sheets:
        title = titles[sheet.name]
        target = out.create_sheet(title)
        if sheet.hidden:
            target.sheet_state = "hidden"
        flags = placed.flags.get(title, {})
        for number, values in enumerate(sheet.rows, start=1):
            row = [None if value == "" else _user_value(target, value) for value in values]
            for column, findings in flags.get(number, {}).items():
                row.extend([None] * (column - len(row)))
                row[column - 1] = _mark(_styled(target, row[column - 1]), findings)
            target.append(row)
        target.merged_cells = MultiCellRange([
            CellRange(min_row=top + 1, min_col=left + 1, max_row=bottom + 1, max_col=right + 1)
            for (top, left), (bottom, right) in sheet.merged
        ])


def _titles(sheets: list[Sheet]) -> dict[str, str]:
    """The title each sheet has in the xlsx (Excel's sheet titles are 31 characters at most, without []:*?/\\)."""
    titles: dict[str, str] = {}
    for sheet in sheets:
        title = _UNFIT_TITLE.sub("_", sheet.name)[:31].strip("'") or "Sheet"
        while title in titles.values():
            title = f"{title[:28]}_{len(titles) + 1}"
        titles[sheet.name] = title
    return titles
