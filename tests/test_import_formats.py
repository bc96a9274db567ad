"""Every format agencies really send reads as its xlsx twin: the same rows, the same findings.

Each file is written the way the program that makes it writes it: xlwt for Excel 97-2003, GBK bytes
with CRLF and 2025/3/5 dates for Excel's CSV on Chinese Windows, UTF-8 with a byte-order mark for
"CSV UTF-8", UTF-16 with tabs for "Unicode text", an HTML table named .xls, odfpy for .ods.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import xlwt
from factories import agency, login, user
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P
from openpyxl import load_workbook
from xlsx_factory import acquisition, sheet_rows, vin, write_upload

from imports.annotate import annotate_workbook
from imports.package import ReaderFault, UnusableFile
from imports.pipeline import validate_file
from imports.report import ValidationReport
from imports.sheets import read_book

AGENCY = "濮阳市公共交通有限公司"


def _rows() -> list[dict[str, Any]]:
    rows = [acquisition(i) for i in range(1, 31)]
    # Planted defects: a VIN whose check digit is wrong, a date that is no date, a price of text.
    wrong = vin(7)
    rows[6]["vin"] = wrong[:8] + ("0" if wrong[8] != "0" else "1") + wrong[9:]
    rows[11]["acquired_on"] = "去年三月"
    rows[19]["price"] = "面议"
    rows[24]["remark"] = "=HYPERLINK(\"http://x\")"
    return rows


def _text(value: Any, date_format: str) -> str:
    if isinstance(value, dt.date):
        return f"{value.year}{date_format}{value.month}{date_format}{value.day}" if date_format != "-" else value.isoformat()
    if value is None:
        return ""
    return str(value)


def _table(date_format: str = "/") -> list[list[str]]:
    return [[_text(v, date_format) for v in row] for row in sheet_rows(_rows())]


def _csv_line(row: list[str], separator: str) -> str:
    return separator.join('"' + v.replace('"', '""') + '"' if any(c in v for c in f'{separator}"\n') else v for v in row)


def write_gbk_csv(path: Path) -> Path:
    path.write_bytes("\r\n".join(_csv_line(r, ",") for r in _table()).encode("gbk") + b"\r\n")
    return path


def write_utf8_bom_csv(path: Path) -> Path:
    path.write_bytes(("\ufeff" + "\r\n".join(_csv_line(r, ",") for r in _table("-")) + "\r\n").encode("utf-8"))
    return path


def write_utf16_text(path: Path) -> Path:
    path.write_bytes(("\r\n".join("\t".join(r) for r in _table()) + "\r\n").encode("utf-16"))
    return path


def write_html_xls(path: Path) -> Path:
    """As government web systems export "Excel": a page with a title table and the data table."""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in _table("-"))
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head><body>'
        '<table><tr><td colspan="14">车辆购置情况导出</td></tr></table>'
        f'<table border="1">{body}</table></body></html>'
    )
    path.write_bytes(page.encode("gbk"))
    return path


def write_xls(path: Path) -> Path:
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("车辆购置")
    dates = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for r, row in enumerate(sheet_rows(_rows())):
        for c, value in enumerate(row):
            if isinstance(value, dt.date):
                sheet.write(r, c, value, dates)
            elif value is not None:
                sheet.write(r, c, value)
    book.save(str(path))
    return path


def write_ods(path: Path) -> Path:
    document = OpenDocumentSpreadsheet()
    table = Table(name="车辆购置")
    for row in sheet_rows(_rows()):
        table_row = TableRow()
        for value in row:
            if isinstance(value, float):
                cell = TableCell(valuetype="float", value=value)
            elif isinstance(value, dt.date):
                cell = TableCell(valuetype="date", datevalue=value.isoformat())
            else:
                cell = TableCell(valuetype="string")
            if value is not None:
                cell.addElement(P(text=_text(value, "-")))
            table_row.addElement(cell)
        table.addElement(table_row)
    document.spreadsheet.addElement(table)
    document.save(str(path))
    return path


FORMATS: dict[str, Callable[[Path], Path]] = {
    "fleet-97.xls": write_xls,
    "fleet-gbk.csv": write_gbk_csv,
    "fleet-utf8.csv": write_utf8_bom_csv,
    "fleet-export.xls": write_html_xls,
    "fleet-unicode.txt": write_utf16_text,
    "fleet.ods": write_ods,
}


@pytest.fixture
def bus_company(session):
    agency(session, AGENCY, kind="国有企业", sector="公交", county="华龙区")
    session.commit()


def _findings(report: ValidationReport) -> list[tuple]:
    return sorted((f.row, f.column, f.code, f.severity) for f in [*report.errors, *report.warnings])


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_validates_as_its_xlsx_twin(session, tmp_path, bus_company, name):
    twin = validate_file(session, write_upload(tmp_path / "fleet.xlsx", _rows()))
    path = FORMATS[name](tmp_path / name)
    report = validate_file(session, path, file_name=name)
    assert report.rows == twin.rows == 30
    assert report.valid_rows == twin.valid_rows
    assert _findings(report) == _findings(twin)
    codes = {f.code for f in report.errors}
    assert "vin_check_digit" in codes and "unknown_agency" not in codes


def test_a_csv_names_its_sheet_after_the_file(session, tmp_path, bus_company):
    report = validate_file(session, write_gbk_csv(tmp_path / "upload.csv"), file_name="fleet-gbk.csv")
    assert {f.sheet for f in report.errors} == {"fleet-gbk.csv"}
    # The row a person counts: the header is line 1, the seventh vehicle line 8.
    assert ("vin_check_digit", 8) in {(f.code, f.row) for f in report.errors}


def test_gbk_agency_name_is_decoded_not_mojibake(session, tmp_path, bus_company):
    path = write_gbk_csv(tmp_path / "fleet-gbk.csv")
    # The same bytes decoded the wrong way would name no agency of the registry.
    assert AGENCY not in path.read_bytes().decode("latin-1")
    rows = read_book(path).sheets[0].rows
    assert rows[1][0] == AGENCY
    report = validate_file(session, path)
    assert "unknown_agency" not in {f.code for f in report.errors}


def test_strict_decoding_order_is_bom_then_utf8_then_gb18030(tmp_path):
    cases = {
        "bom.csv": "\ufeff单位名称,备注\n濮阳市公安局,€\n".encode(),
        "utf8.csv": "单位名称,备注\n濮阳市公安局,€\n".encode(),
        "gb18030.csv": "单位名称,备注\n濮阳市公安局,€\n".encode("gb18030"),
        "utf16.csv": "单位名称\t备注\r\n濮阳市公安局\t€\r\n".encode("utf-16"),
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert read_book(path).sheets[0].rows == [["单位名称", "备注"], ["濮阳市公安局", "€"]], name


def test_html_page_reads_the_largest_table_with_a_header_and_merged_cells(tmp_path):
    page = (
        "<html><body><table><tr><td>首页</td><td>导出</td></tr></table>"
        "<table><tr><th>单位名称</th><th>车架号</th><th>备注</th></tr>"
        '<tr><td rowspan="2">濮阳市公安局</td><td>A1</td><td>x &amp; y</td></tr>'
        '<tr><td>A2</td><td colspan="1"></td></tr></table></body></html>'
    )
    path = tmp_path / "export.xls"
    path.write_text(page, encoding="utf-8")
    book = read_book(path, name="export.xls")
    assert book.format == "html"
    largest = book.sheets[0]
    assert largest.rows == [["单位名称", "车架号", "备注"], ["濮阳市公安局", "A1", "x & y"], ["", "A2", ""]]
    assert largest.merged == [((1, 0), (2, 0))]


def test_annotated_workbook_of_a_csv_is_an_xlsx_of_its_rows(session, tmp_path, bus_company):
    path = write_gbk_csv(tmp_path / "upload.csv")
    report = validate_file(session, path, file_name="fleet-gbk.csv")
    data = annotate_workbook(path.read_bytes(), report, file_name="fleet-gbk.csv")
    workbook = load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["错误清单", "fleet-gbk.csv"]
    sheet = workbook["fleet-gbk.csv"]
    assert sheet["A2"].value == AGENCY
    flagged = sheet[f"C{8}"]
    assert flagged.fill.fgColor.rgb.endswith("FFC7CE") and flagged.comment is not None
    # Text that Excel would run as a formula keeps the quote prefix.
    remark = sheet["N26"]
    assert remark.value.startswith("=") and remark.data_type == "s" and remark.quotePrefix


def test_annotated_xlsx_quotes_formula_like_text_it_copies(session, tmp_path, bus_company):
    path = write_upload(tmp_path / "fleet.xlsx", _rows())
    # Stored as text, as Excel stores what a clerk types after a quote or pastes as values.
    source = load_workbook(path)
    source["车辆购置"]["N26"].data_type = "s"
    source.save(path)
    report = validate_file(session, path)
    workbook = load_workbook(io.BytesIO(annotate_workbook(path, report)))
    remark = workbook["车辆购置"]["N26"]
    assert remark.value.startswith("=") and remark.quotePrefix


def test_annotated_download_of_a_non_xlsx_upload_is_named_after_it(session, client, tmp_path, bus_company):
    user(session, "clerk", role="agency", agency_name=AGENCY)
    session.commit()
    login(client, "clerk")
    content = write_gbk_csv(tmp_path / "x.csv").read_bytes()
    response = client.post("/uploads/", data={"file": (io.BytesIO(content), "../../fleet-gbk.csv")})
    assert response.status_code == 302
    batch = response.headers["Location"].rstrip("/").split("/")[-1]
    annotated = client.get(f"/uploads/{batch}/annotated")
    assert annotated.status_code == 200
    assert "fleet-gbk-" in annotated.headers["Content-Disposition"]
    assert ".xlsx" in annotated.headers["Content-Disposition"]
    load_workbook(io.BytesIO(annotated.data))
    original = client.get(f"/uploads/{batch}/original")
    assert ".." not in original.headers["Content-Disposition"]
    assert original.data == content


def test_a_fault_of_the_reader_is_internal_error_with_an_id_in_the_log(session, tmp_path, bus_company, caplog,
                                                                      monkeypatch):
    # A fault of the program, made real by removing a function the reader calls.
    import imports.read

    monkeypatch.delattr(imports.read, "_read_sheet")
    path = write_upload(tmp_path / "fleet.xlsx", [acquisition(1)])
    with caplog.at_level(logging.ERROR), pytest.raises(UnusableFile) as caught:
        validate_file(session, path)
    assert isinstance(caught.value, ReaderFault)
    assert caught.value.code == "internal_error"
    assert caught.value.error_id in caught.value.message
    logged = [r for r in caplog.records if caught.value.error_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None
