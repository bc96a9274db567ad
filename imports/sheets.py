"""The one guarded reader of every file users send: workbooks, CSV and tab-separated text, web-page tables.

read_book(path) gives the file's sheets as rows of cell values, whatever the format, refusing with
UnusableFile what cannot be read or goes beyond the limits (imports.guards). Every route that reads a
user's file goes through it: uploads and the API (imports.read), the agency registry, registration
extracts.

- xlsx/xlsm, xls (Excel 97-2003), xlsb, ods: read by python-calamine, after their bytes are scanned.
- CSV / tab-separated text: the encoding is decoded strictly in a stated order, never guessed from the
  name: a byte-order mark (UTF-8, UTF-16) first, else UTF-8, else GB18030 (a superset of GBK and
  GB2312, what Excel on Chinese Windows writes). Strict UTF-8 fails on almost every GBK text with
  Chinese in it, so the order is safe for the files agencies send; no detector guesses are involved.
- HTML: every <table> of the page (web systems export "Excel" as a page named .xls), colspan and
  rowspan given as merged cells.

Row i of a sheet is the row a person counts: Excel's row number, the CSV's record number, the
table's row; an empty cell is "" (as calamine gives it).
"""

from __future__ import annotations

import codecs
import csv
import gc
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from python_calamine import CalamineError, CalamineWorkbook, PasswordError, SheetTypeEnum, SheetVisibleEnum

from fleet.base.text import _
from imports.guards import (
    LIMITS,
    Limits,
    cell_too_large,
    scan_ods,
    scan_xls,
    scan_xlsb,
    scan_xlsx,
    too_deep,
    too_many_cells,
    too_many_rows,
    too_wide_area,
)
from imports.package import UnusableFile, check_contents, corrupt, encrypted

Cell = Any
Merge = tuple[tuple[int, int], tuple[int, int]]  # ((first row, first column), (last row, last column)), 0-based


@dataclass
class Sheet:
    name: str
    rows: list[list[Cell]]  # rows[0] is the sheet's row 1; every row as wide as the widest
    merged: list[Merge] = field(default_factory=list)
    hidden: bool = False


@dataclass
class Book:
    format: str  # xlsx, xls, xlsb, ods, csv, html
    sheets: list[Sheet]
    # Date serials count from 1904 (Excel for Mac before 2011): a serial written as a number or text
    # then means another day. Cells formatted as dates are read right either way.
    date1904: bool = False


def read_book(path: Path, *, name: str | None = None, limits: Limits = LIMITS) -> Book:
    """Every worksheet of the file at path (chart sheets left out), refusing what cannot be read.

    name is the file's name as the user knows it (the sheet name of a CSV; path's name by default).
    Raises UnusableFile; anything else raised is a fault of the program, not of the file."""
    path = Path(path)
    name = name or path.name
    kind = check_contents(path)
    with _no_cycle_collection():
        if kind == "csv":
            return Book(kind, [_read_text(path, name, limits)])
        if kind == "html":
            return Book(kind, _read_html(path, name, limits))
        date1904 = False
        if kind == "xlsx":
            scan_xlsx(path, limits)
            date1904 = _xlsx_date1904(path)
        elif kind == "xls":
            date1904 = scan_xls(path, limits).date1904
        elif kind == "xlsb":
            scan_xlsb(path, limits)
        elif kind == "ods":
            scan_ods(path, limits)
        return Book(kind, _read_workbook(path, kind), date1904)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector: a sheet's cells are a million new objects without cycles, and the
    collector, set off by the allocations, would walk them again and again (0.17 s of a 1.7 s read)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_SUFFIXES = {"xlsx": (".xlsx", ".xlsm"), "xls": (".xls",), "xlsb": (".xlsb",), "ods": (".ods",)}


def _open_workbook(path: Path, kind: str) -> CalamineWorkbook:
    """calamine chooses its reader by the file's name, or by the content when given the bytes."""
    if path.suffix.lower() in _SUFFIXES[kind]:
        return CalamineWorkbook.from_path(str(path))
    with path.open("rb") as fh:
        return CalamineWorkbook.from_filelike(fh)


def _read_workbook(path: Path, kind: str) -> list[Sheet]:
    sheets = []
    try:
        with _open_workbook(path, kind) as workbook:
            for meta in workbook.sheets_metadata:
                if meta.typ != SheetTypeEnum.WorkSheet:
                    continue
                sheet = workbook.get_sheet_by_name(meta.name)
                sheets.append(
                    Sheet(
                        name=meta.name,
                        rows=sheet.to_python(skip_empty_area=False),
                        merged=list(sheet.merged_cell_ranges or []),
                        hidden=meta.visible != SheetVisibleEnum.Visible,
                    )
                )
    except PasswordError:
        raise encrypted() from None
    except CalamineError:
        # calamine's own errors (XML, zip, BIFF records) are about the file.
        raise corrupt() from None
    return sheets


_DATE1904 = re.compile(rb"<(?:\w+:)?workbookPr\b[^>]*\bdate1904\s*=\s*[\"'](?:1|true)[\"']")


def _xlsx_date1904(path: Path) -> bool:
    """Whether the workbook uses the 1904 date system (workbookPr date1904 in xl/workbook.xml)."""
    with zipfile.ZipFile(path) as package:
        try:
            workbook = package.read("xl/workbook.xml")
        except KeyError:
            return False
    return _DATE1904.search(workbook) is not None


# --- text ------------------------------------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_DECODE_CHUNK = 1 << 20


def text_encoding(path: Path, head: bytes = b"") -> str:
    """The file's encoding: its byte-order mark, else UTF-8 when the whole file decodes strictly as UTF-8,
    else GB18030 when it decodes so; raises UnusableFile when neither does."""
    with path.open("rb") as fh:
        start = fh.read(4)
        for bom, encoding in _BOMS:
            if start.startswith(bom):
                return encoding
        for encoding in (head_encoding(head), "utf-8", "gb18030"):
            if encoding is None:
                continue
            fh.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)()
            try:
                while chunk := fh.read(_DECODE_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
                return encoding
            except UnicodeDecodeError:
                continue
    raise UnusableFile("csv_format", _("文件中的文字既不是 UTF-8 也不是 GBK/GB18030 编码，无法读取。请用 Excel 打开后另存为 xlsx 或“CSV UTF-8”再上传。"))


def head_encoding(head: bytes) -> str | None:
    """The encoding a web page declares (<meta charset=gb2312>); GBK and GB2312 read as GB18030, their superset."""
    found = re.search(rb"""charset\s*=\s*["']?([\w-]+)""", head[:4096], re.IGNORECASE)
    if found is None:
        return None
    declared = found[1].decode("ascii").lower()
    if declared in ("gbk", "gb2312", "gb_2312-80", "gb18030", "cp936", "x-gbk"):
        return "gb18030"
    try:
        return codecs.lookup(declared).name
    except LookupError:
        return None


def _read_text(path: Path, name: str, limits: Limits) -> Sheet:
    """A CSV or tab-separated text as one sheet named after the file, checked row by row as it is read."""
    encoding = text_encoding(path)
    rows: list[list[str]] = []
    width = cells = 0
    with path.open(encoding=encoding, newline="") as fh:
        delimiter = _delimiter(fh.read(64 << 10))
        fh.seek(0)
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            for row in reader:
                if len(rows) >= limits.rows:
                    raise too_many_rows(len(rows) + 1, limits.rows)
                cells += len(row)
                if cells > limits.cells:
                    raise too_many_cells(cells, limits.cells)
                if row and max(map(len, row)) > limits.cell_chars:
                    raise cell_too_large(limits.cell_chars)
                width = max(width, len(row))
                if width * (len(rows) + 1) > limits.area:
                    raise too_wide_area(len(rows) + 1, width)
                rows.append(row)
        except csv.Error:
            # The csv module stops at a field longer than its limit (131,072 characters).
            raise cell_too_large(limits.cell_chars) from None
    for row in rows:
        if len(row) < width:
            row.extend([""] * (width - len(row)))
    return Sheet(name=name, rows=rows)


def _delimiter(sample: str) -> str:
    """Tab for Excel's "Unicode text" and tab-separated exports, semicolon where it outnumbers commas, else comma."""
    first = next((line for line in sample.splitlines() if line.strip()), "")
    if "\t" in first:
        return "\t"
    return ";" if first.count(";") > first.count(",") else ","


# --- HTML ------------------------------------------------------------------------------------------

_MAX_SPAN = 1000
_HTML_CELL = re.compile(rb"<t[dh][\s>]", re.IGNORECASE)
_MAX_NESTED_TABLES = 8


@dataclass
class _Table:
    order: int
    rows: list[list[str]] = field(default_factory=list)
    merged: list[Merge] = field(default_factory=list)
    # Columns taken by a rowspan from a row above: column -> (rows still taken).
    taken: dict[int, int] = field(default_factory=dict)
    cell: list[str] | None = None  # the text of the cell being read
    at: int = 0  # its column
    cursor: int = 0  # the next column of the row being read
    cells: int = 0


class _TableParser(HTMLParser):
    """Collects the cells of every table as it is fed, counting them against the limits as it goes."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(convert_charrefs=True)
        self.limits = limits
        self.open: list[_Table] = []
        self.done: list[_Table] = []
        self.count = 0
        self.cells = 0
        self.cell_chars = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            if len(self.open) >= _MAX_NESTED_TABLES:
                raise too_deep()
            self.count += 1
            if self.count > self.limits.tables:
                raise too_many_cells(self.count, self.limits.tables)
            self.open.append(_Table(self.count))
        elif not self.open:
            return
        elif tag == "tr":
            self._end_cell()
            self._start_row()
        elif tag in ("td", "th"):
            self._end_cell()
            table = self.open[-1]
            if not table.rows:
                self._start_row()
            values = dict(attrs)
            self._place(table, _span(values.get("colspan")), _span(values.get("rowspan")))
            table.cell = []
            self.cell_chars = 0
        elif tag == "br" and self.open[-1].cell is not None:
            self.open[-1].cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if not self.open:
            return
        if tag in ("td", "th"):
            self._end_cell()
        elif tag == "table":
            self._end_cell()
            table = self.open.pop()
            if table.rows:
                self.done.append(table)

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1].cell is not None:
            self.cell_chars += len(data)
            if self.cell_chars > self.limits.cell_chars:
                raise cell_too_large(self.limits.cell_chars)
            self.open[-1].cell.append(data)

    def _start_row(self) -> None:
        table = self.open[-1]
        if len(table.rows) >= self.limits.rows:
            raise too_many_rows(len(table.rows) + 1, self.limits.rows)
        table.rows.append([])
        # Rowspans from above take their columns of the new row.
        table.taken = {c: n - 1 for c, n in table.taken.items() if n > 1}
        table.rows[-1].extend([""] * (max(table.taken, default=-1) + 1))
        table.cursor = 0

    def _place(self, table: _Table, colspan: int, rowspan: int) -> None:
        row = table.rows[-1]
        column = table.cursor
        while column in table.taken:
            column += 1
        width = column + colspan
        self.cells += colspan * rowspan
        table.cells += colspan * rowspan
        if self.cells > self.limits.cells:
            raise too_many_cells(self.cells, self.limits.cells)
        if width * len(table.rows) > self.limits.area:
            raise too_wide_area(len(table.rows), width)
        row.extend([""] * (width - len(row)))
        table.at, table.cursor = column, width
        if colspan > 1 or rowspan > 1:
            r = len(table.rows) - 1
            table.merged.append(((r, column), (r + rowspan - 1, column + colspan - 1)))
        for c in range(column, column + colspan):
            if rowspan > 1:
                table.taken[c] = rowspan
            else:
                table.taken.pop(c, None)

    def _end_cell(self) -> None:
        table = self.open[-1] if self.open else None
        if table is None or table.cell is None:
            return
        text = " ".join("".join(table.cell).replace("\xa0", " ").split())
        table.rows[-1][table.at] = text
        table.cell = None


def _span(value: str | None) -> int:
    try:
        return min(max(int(value or 1), 1), _MAX_SPAN)
    except ValueError:
        return 1


def _read_html(path: Path, name: str, limits: Limits) -> list[Sheet]:
    """The page's tables, largest first; one table is named after the file, several as “name（表N）”."""
    with path.open("rb") as fh:
        head = fh.read(4096)
        # Cells are counted on the bytes first (fast), spans while parsing: HTML parses slowly.
        cells = 0
        fh.seek(0)
        while chunk := fh.read(_DECODE_CHUNK):
            cells += len(_HTML_CELL.findall(chunk))
            if cells > limits.cells:
                raise too_many_cells(cells, limits.cells)
    encoding = text_encoding(path, head)
    parser = _TableParser(limits)
    with path.open(encoding=encoding, newline="") as fh:
        while chunk := fh.read(_DECODE_CHUNK):
            parser.feed(chunk)
    parser.close()
    while parser.open:
        parser.handle_endtag("table")
    tables = sorted(parser.done, key=lambda t: (-t.cells, t.order))
    sheets = []
    for table in tables:
        width = max(len(row) for row in table.rows)
        rows = [row + [""] * (width - len(row)) for row in table.rows]
        title = name if len(tables) == 1 else _("%(name)s（表%(number)s）", name=name, number=table.order)
        sheets.append(Sheet(name=title, rows=rows, merged=table.merged))
    return sheets
