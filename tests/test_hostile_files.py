"""Hostile files: each refused with its code, fast and small, by the one reader every route uses.

Each file is read in a process of its own, so that its peak memory (VmHWM, counted from exec) is the
read's alone; the interpreter with pandas and calamine loaded starts near 100 MB.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import xlwt

from tests.test_import_package import _one_long_string, _stored, _zip
from tests.xlsx_factory import acquisition, write_upload

ROOT = Path(__file__).parent.parent
PEAK_MB = 300
SECONDS = 5  # "well under a second" on a quiet machine; the suite shares two cores with others

_PROBE = """
import sys, time
from imports.package import UnusableFile
from fleet.domain.agencies import RegistryFileError, registry_rows
from imports.read import read_table
start = time.perf_counter()
try:
    if sys.argv[2] == "registry":
        registry_rows(__import__("pathlib").Path(sys.argv[1]))
    else:
        read_table(sys.argv[1])
    code = "read"
except (UnusableFile, RegistryFileError) as error:
    code = error.code
seconds = time.perf_counter() - start
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024
print(code, peak, f"{seconds:.3f}")
"""


def probe(path: Path, route: str = "upload") -> tuple[str, int, float]:
    """The code the reader gives the file, the process's peak memory in MB and the read's seconds."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), route], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    return out[0], int(out[1]), float(out[2])


def assert_refused(path: Path, code: str, route: str = "upload") -> None:
    found, peak, seconds = probe(path, route)
    assert (found, route) == (code, route)
    assert peak < PEAK_MB, f"{path.name}: {peak} MB"
    assert seconds < SECONDS, f"{path.name}: {seconds} s"


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as source:
        return {name: source.read(name) for name in source.namelist()}


def _rezip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in members.items():
            target.writestr(name, content)
    return path


def _with_sheet(path: Path, sheet_data: bytes, dimension: str = "A1:N2") -> Path:
    """A real upload whose first sheet's cells are replaced by sheet_data, under a stated dimension."""
    members = _members(write_upload(path, [acquisition(1)]))
    members["xl/worksheets/sheet1.xml"] = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + f'<dimension ref="{dimension}"/>'.encode()
        + b"<sheetData>" + sheet_data + b"</sheetData></worksheet>"
    )
    return _rezip(path, members)


def _sharing_strings(members: dict[str, bytes]) -> dict[str, bytes]:
    """The members with the workbook's relation to xl/sharedStrings.xml (openpyxl writes none for inline text)."""
    members = dict(members)
    members["xl/_rels/workbook.xml.rels"] = members["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>",
        b'<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"'
        b' Target="sharedStrings.xml" Id="rId9" /></Relationships>',
    )
    members["[Content_Types].xml"] = members["[Content_Types].xml"].replace(
        b"</Types>",
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        b'spreadsheetml.sharedStrings+xml"/></Types>',
    )
    return members


def lying_dimension(path: Path) -> Path:
    """2 KB: the dimension says A1:N2, one value sits in XFD1048576 (asked calamine for 512 GB)."""
    return _with_sheet(
        path,
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>\xe5\x8d\x95\xe4\xbd\x8d\xe5\x90\x8d\xe7\xa7\xb0</t></is></c></row>'
        b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>',
    )


def giant_shared_string(path: Path) -> Path:
    """One 19 MB shared string used by 40 cells."""
    members = _members(write_upload(path, [acquisition(1)]))
    cells = b"".join(f'<c r="{c}1" t="s"><v>0</v></c>'.encode() for c in "ABCDEFGHIJKLMNOPQRST")
    rows = b"".join(cells.replace(b'1" t', f'{r}" t'.encode()) .join([f'<row r="{r}">'.encode(), b"</row>"])
                    for r in (1, 2))
    members["xl/worksheets/sheet1.xml"] = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:T2"/>'
        b"<sheetData>" + rows + b"</sheetData></worksheet>"
    )
    stored = [_stored(name, content) for name, content in _sharing_strings(members).items()]
    return _zip(path, [*stored, _one_long_string(19)])


def sparse_million_rows(path: Path) -> Path:
    """1,048,575 rows of one value each, dimension A1:G1048576 (5 MB; reached 8 GB when annotated)."""
    rows = b"".join(b'<row r="%d"><c r="A%d"><v>1</v></c></row>' % (r, r) for r in range(2, 1_048_577))
    return _with_sheet(path, rows, dimension="A1:G1048576")


def merged_everywhere(path: Path) -> Path:
    """A real upload of 3,000 rows with 200,000 merged ranges over them: each filled cell by cell when
    read (8 billion assignments), from a 500 KB file."""
    members = _members(write_upload(path, [acquisition(n) for n in range(1, 3001)]))
    merges = b'<mergeCells count="200000">' + b'<mergeCell ref="A3:N3000"/>' * 200_000 + b"</mergeCells>"
    members["xl/worksheets/sheet1.xml"] = members["xl/worksheets/sheet1.xml"].replace(b"</sheetData>", b"</sheetData>" + merges, 1)
    return _rezip(path, members)


def merged_everywhere_xls(path: Path) -> Path:
    """An Excel 97-2003 file with 12,000 merged ranges under a real header."""
    book = xlwt.Workbook()
    sheet = book.add_sheet("车辆")
    for column, header in enumerate(("单位名称", "车辆识别代号", "车辆类别", "动力类型", "购置日期")):
        sheet.write(0, column, header)
    for row in range(1, 12_001):
        sheet.write_merge(row, row, 0, 4, "x")
    book.save(str(path))
    return path


def deep_xml(path: Path) -> Path:
    """A sheet nesting 200,000 elements inside one cell."""
    return _with_sheet(path, b'<row r="1"><c r="A1"><v>1</v>' + b"<x>" * 200_000 + b"</x>" * 200_000 + b"</c></row>")


def all_columns(path: Path) -> Path:
    """A header across all 16,384 columns and 400 rows under it."""
    first = b"".join(b'<c r="%s1"><v>1</v></c>' % _letters(c).encode() for c in range(1, 16_385))
    rest = b"".join(b'<row r="%d"><c r="A%d"><v>1</v></c></row>' % (r, r) for r in range(2, 401))
    return _with_sheet(path, b'<row r="1">' + first + b"</row>" + rest, dimension="A1:XFD400")


def _letters(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def far_cell_xls(path: Path) -> Path:
    """An Excel 97-2003 file of 6 KB with a value in the last cell (IV65536): a 16.7-million-cell grid."""
    book = xlwt.Workbook()
    sheet = book.add_sheet("车辆")
    sheet.write(0, 0, "单位名称")
    sheet.write(65535, 255, "x")
    book.save(str(path))
    return path


def huge_csv(path: Path) -> Path:
    """Half a million rows: refused at the row limit while reading, never held whole."""
    with path.open("w", encoding="gb18030", newline="") as fh:
        fh.write("单位名称,车架号\r\n")
        fh.writelines(f"濮阳市公安局,{i}\r\n" for i in range(500_000))
    return path


def huge_cell_csv(path: Path) -> Path:
    path.write_text("单位名称,备注\n濮阳市公安局," + "很" * 200_000 + "\n", encoding="utf-8")
    return path


def spanned_html(path: Path) -> Path:
    """A 40 KB web page whose cells span a thousand rows and columns each: billions of cells."""
    cells = '<td colspan="1000" rowspan="1000">1</td>' * 1000
    path.write_text(f"<html><body><table><tr><td>单位名称</td></tr><tr>{cells}</tr></table></body></html>")
    return path


def many_cells_html(path: Path) -> Path:
    """Four million plain cells (an 18 MB page): refused at the cell limit while parsing."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("<html><body><table>")
        row = "<tr>" + "<td>1" * 1000 + "\n"
        fh.writelines(row for _ in range(4_000))
        fh.write("</table></body></html>")
    return path


CORPUS = {
    "lying-dimension.xlsx": (lying_dimension, "too_large"),
    "giant-shared-string.xlsx": (giant_shared_string, "too_large"),
    "sparse-million-rows.xlsx": (sparse_million_rows, "too_large"),
    "deep-xml.xlsx": (deep_xml, "corrupt"),
    "merged-everywhere.xlsx": (merged_everywhere, "too_large"),
    "merged-everywhere.xls": (merged_everywhere_xls, "too_large"),
    "all-columns.xlsx": (all_columns, "too_large"),
    "far-cell.xls": (far_cell_xls, "too_large"),
    "huge.csv": (huge_csv, "too_large"),
    "huge-cell.csv": (huge_cell_csv, "too_large"),
    "spanned.xls": (spanned_html, "too_large"),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_hostile_upload_is_refused_fast_and_small(tmp_path: Path, name: str) -> None:
    make, code = CORPUS[name]
    path = make(tmp_path / name)
    assert path.stat().st_size < 20 << 20
    assert_refused(path, code)


@pytest.mark.parametrize("name", ["lying-dimension.xlsx", "far-cell.xls", "huge.csv", "spanned.xls"])
def test_hostile_registry_is_refused_by_the_same_reader(tmp_path: Path, name: str) -> None:
    make, code = CORPUS[name]
    assert_refused(make(tmp_path / name), code, route="registry")


def test_page_with_millions_of_cells_is_refused_before_parsing(tmp_path: Path) -> None:
    assert_refused(many_cells_html(tmp_path / "export.xls"), "too_large")


def test_the_limits_leave_a_real_upload_alone(tmp_path: Path) -> None:
    path = write_upload(tmp_path / "fleet.xlsx", [acquisition(i) for i in range(1, 2001)])
    found, peak, _seconds = probe(path)
    assert found == "read"
    assert peak < PEAK_MB


def test_formatting_to_the_last_cell_is_no_used_area(tmp_path: Path) -> None:
    # Self-closing cells carry a style only: calamine leaves them out of the grid, the guard too.
    path = _with_sheet(
        tmp_path / "styled.xlsx",
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>'
        b'<row r="1048576"><c r="XFD1048576" s="1"/></row>',
        dimension="A1:XFD1048576",
    )
    found, _peak, _seconds = probe(path)
    assert found == "no_header"


def test_shared_strings_used_many_times_count_as_text_per_use(tmp_path: Path) -> None:
    # 30,000 characters (under Excel's cell limit) in 20,000 cells: 1.8 GB of text once read.
    members = _members(write_upload(tmp_path / "base.xlsx", [acquisition(1)]))
    rows = b"".join(b'<row r="%d"><c r="A%d" t="s"><v>0</v></c></row>' % (r, r) for r in range(1, 20_001))
    members["xl/worksheets/sheet1.xml"] = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>' + rows
        + b"</sheetData></worksheet>"
    )
    members["xl/sharedStrings.xml"] = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>' + "濮".encode() * 30_000
        + b"</t></si></sst>"
    )
    assert_refused(_rezip(tmp_path / "reused.xlsx", _sharing_strings(members)), "too_large")
