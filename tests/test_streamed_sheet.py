"""The streamed worksheet writes, row for row, the XML XlsxWriter writes for the same cells in its
constant-memory mode: its own faster path must not change a byte of the sheet."""

from __future__ import annotations

import io
import zipfile

import xlsxwriter
from openpyxl import load_workbook

from fleet.read.streamed_sheet import StreamedWorksheet, blank_cell, number_cell, text_cell

# Text that needs every escape: XML's, Excel's own _xHHHH_ (and its literal form), whitespace at
# either end, CJK, and a formula kept as text.
TEXTS = [
    "濮阳市公安局",
    "A & B <C> \"D\" 'E'",
    "tab\there\nand a line",
    " leading",
    "trailing\u3000",
    "bell\x07 and nul\x00",
    "_x0041_ looks escaped",
    "not a char \ufffe\uffff",
    '=HYPERLINK("http://evil.example")',
    "",
]
NUMBERS = [0, 7, -3, 45_678, 0.125, 1 / 3, 1e20, 2.5e-7]


def sheet_xml(write) -> tuple[bytes, bytes]:
    """The sheet and styles of a one-sheet constant-memory workbook whose rows `write` fills."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False})
    formats = [workbook.add_format({"border": 1}), workbook.add_format({"num_format": "0.0%"}), workbook.add_format({"quote_prefix": True})]
    write(workbook, formats)
    workbook.close()
    with zipfile.ZipFile(buffer) as package:
        return package.read("xl/worksheets/sheet1.xml"), package.read("xl/styles.xml")


def rows() -> list[list[tuple]]:
    lines = []
    for n, text in enumerate(TEXTS):
        number = NUMBERS[n % len(NUMBERS)]
        lines.append([(text_cell, text, n % 3), (number_cell, number, (n + 1) % 3), (blank_cell, None, n % 2)])
    return lines


def test_a_streamed_row_is_the_xml_xlsxwriter_writes_for_the_same_cells():
    def by_xlsxwriter(workbook, formats):
        sheet = workbook.add_worksheet("明细")
        sheet.write_string(0, 0, "标题", formats[0])
        for row, cells in enumerate(rows(), start=1):
            for column, (kind, value, style) in enumerate(cells):
                if kind is text_cell:
                    sheet.write_string(row, column, value, formats[style])
                elif kind is number_cell:
                    sheet.write_number(row, column, value, formats[style])
                else:
                    sheet.write_blank(row, column, value, formats[style])
        sheet.write_string(len(TEXTS) + 2, 0, "after", formats[0])

    def streamed(workbook, formats):
        sheet = workbook.add_worksheet("明细", StreamedWorksheet)
        sheet.write_string(0, 0, "标题", formats[0])
        for row, cells in enumerate(rows(), start=1):
            sheet.write_cells(row, [(kind, value, formats[style]) for kind, value, style in cells])
        # XlsxWriter's own writes go on below the streamed rows.
        sheet.write_string(len(TEXTS) + 2, 0, "after", formats[0])

    expected, streamed_xml = sheet_xml(by_xlsxwriter), sheet_xml(streamed)
    assert b"_x005F_x0041_" in expected[0] and b"&lt;C&gt;" in expected[0]  # the escapes are exercised
    assert streamed_xml == expected


def test_streamed_rows_read_back_as_written():
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"constant_memory": True})
    plain = workbook.add_format()
    sheet = workbook.add_worksheet("s", StreamedWorksheet)
    for row, text in enumerate(TEXTS):
        sheet.write_cells(row, [(text_cell, text, plain), (number_cell, row * 1.5, plain)])
    workbook.close()
    read = load_workbook(buffer, read_only=True)["s"]
    values = list(read.iter_rows(values_only=True))
    assert [row[1] for row in values] == [row * 1.5 for row in range(len(TEXTS))]
    assert values[0][0] == "濮阳市公安局" and values[1][0] == "A & B <C> \"D\" 'E'" and values[3][0] == " leading"
