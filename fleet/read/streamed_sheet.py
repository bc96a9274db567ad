"""An XlsxWriter worksheet that takes a whole row of a large report at once.

Written by hand because no maintained writer is fast enough from Python: XlsxWriter spends about
10 µs on a cell in its general path (a type dispatch, a regular expression per attribute, a write
per tag) and a city's vehicle detail has 15 million cells, 150 s of the report's time. Here a row
becomes one string with one regular-expression check per text, which is the same XML XlsxWriter
writes in its constant-memory mode (inline strings, the same escapes, the same number format), and
XlsxWriter still writes everything else of the workbook: sheets, styles, print setup, the package.

It relies on the constant-memory internals of the pinned XlsxWriter version (the row file, the last
row written, the used range); tests/test_reports.py compares its workbooks with XlsxWriter's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

# What XML text, or Excel's own _xHHHH_ escape of control characters, must not hold as it is.
_NEEDS_ESCAPING = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_EXCEL_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")

# A cell of a row: its reference's column letters, its value and its format → the <c> element.
CellXml = Callable[[str, str, Any, Format], str]


def _escaped(text: str) -> str:
    text = _EXCEL_ESCAPE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda match: f"_x{ord(match.group()):04X}_", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text_cell(column: str, row: str, value: str, cell_format: Format) -> str:
    if _NEEDS_ESCAPING.search(value):
        value = _escaped(value)
    space = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
    return f'<c r="{column}{row}" s="{cell_format._get_xf_index()}" t="inlineStr"><is><t{space}>{value}</t></is></c>'


def number_cell(column: str, row: str, value: int | float, cell_format: Format) -> str:
    number = value if type(value) is int else f"{value:.16G}"
    return f'<c r="{column}{row}" s="{cell_format._get_xf_index()}"><v>{number}</v></c>'


def blank_cell(column: str, row: str, value: None, cell_format: Format) -> str:
    return f'<c r="{column}{row}" s="{cell_format._get_xf_index()}"/>'


class StreamedWorksheet(Worksheet):
    """A worksheet of a constant-memory workbook (add_worksheet(worksheet_class=StreamedWorksheet))."""

    _columns: list[str] = []

    def write_cells(self, row: int, cells: Sequence[tuple[CellXml, Any, Format]]) -> None:
        """Row `row` (from 0, below every row written so far) from its cells in column order, each
        given as the function that writes it, its value and its format."""
        if len(self._columns) < len(cells):
            self._columns = [xl_col_to_name(column) for column in range(len(cells))]
        # XlsxWriter's own pending row (the column headers) goes out first, as its next row would.
        self._write_single_row(row)
        number = str(row + 1)
        columns = self._columns
        xml = "".join([write(columns[index], number, value, cell_format) for index, (write, value, cell_format) in enumerate(cells)])
        self.row_data_fh.write(f'<row r="{number}">{xml}</row>')
        self._check_dimensions(row, len(cells) - 1)
