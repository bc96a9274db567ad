"""The annotated workbook: flagged cells filled and commented, a first sheet listing every finding with links."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from xlsx_factory import HEADERS, acquisition, sheet_rows, write_upload, write_workbook

from imports.annotate import ERROR_FILL, FINDINGS_SHEET, WARNING_FILL, annotate_workbook
from imports.pipeline import validate_file
from imports.report import ValidationReport
from tests.factories import agency


@pytest.fixture
def bus_company(session):
    agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交", county="华龙区")
    session.commit()


def annotated(session, path):
    report = validate_file(session, path)
    return report, load_workbook(io.BytesIO(annotate_workbook(path, report)))


def column_letter(key: str) -> str:
    return "ABCDEFGHIJKLMN"[list(HEADERS).index(key)]


def test_flagged_cells_are_red_with_the_message_and_warnings_amber(session, tmp_path, bus_company):
    rows = [acquisition(1), acquisition(2, county="火星"), acquisition(3, plate="京AD00003")]
    report, book = annotated(session, write_upload(tmp_path / "u.xlsx", rows))
    sheet = book["车辆购置"]

    county = sheet[f"{column_letter('county')}3"]
    assert county.value == "火星"
    assert county.fill.fgColor.rgb.endswith(ERROR_FILL.fgColor.rgb[-6:])
    assert county.comment.text == report.errors[0].message

    plate = sheet[f"{column_letter('plate')}4"]
    assert plate.fill.fgColor.rgb.endswith(WARNING_FILL.fgColor.rgb[-6:])
    assert "京AD00003" in plate.comment.text

    untouched = sheet[f"{column_letter('county')}2"]
    assert untouched.comment is None and untouched.fill.fill_type is None


def test_the_findings_sheet_comes_first_and_links_to_each_cell(session, tmp_path, bus_company):
    rows = [acquisition(1, county="火星"), acquisition(2, vin="BAD")]
    report, book = annotated(session, write_upload(tmp_path / "u.xlsx", rows))
    assert book.sheetnames == [FINDINGS_SHEET, "车辆购置"]
    listing = book[FINDINGS_SHEET]
    lines = list(listing.iter_rows(min_row=2, values_only=True))
    assert [(sheet, row, column, code) for sheet, row, column, _h, _v, code, _s, _m in lines] == [
        ("车辆购置", 2, "county", "unknown_county"),
        ("车辆购置", 3, "vin", "vin_format"),
    ]
    assert listing["H2"].hyperlink.location == f"'车辆购置'!{column_letter('county')}2"
    assert listing["H3"].hyperlink.location == f"'车辆购置'!{column_letter('vin')}3"
    assert listing["H2"].value == report.errors[0].message


def test_a_missing_column_points_at_the_header_row(session, tmp_path, bus_company):
    keys = [k for k in HEADERS if k != "county"]
    rows = [["标题"], *sheet_rows([acquisition(1)], keys=keys)]
    report, book = annotated(session, write_workbook(tmp_path / "u.xlsx", {"车辆": rows}))
    assert [f.code for f in report.errors] == ["missing_column"]
    link = book[FINDINGS_SHEET]["H2"].hyperlink.location
    assert link.startswith("'车辆'!") and link.endswith("2")
    target = book["车辆"][link.split("!")[1]]
    assert target.comment is not None and "所属县区" in target.comment.text


def test_user_text_never_becomes_a_formula(session, tmp_path, bus_company):
    path = write_upload(tmp_path / "u.xlsx", [acquisition(1)])
    upload = load_workbook(path)
    cell = upload["车辆购置"][f"{column_letter('county')}2"]
    cell.value, cell.data_type = '=HYPERLINK("http://evil","点击")', "s"  # text that looks like a formula
    upload.save(path)
    _report, book = annotated(session, path)
    values = [cell for row in book[FINDINGS_SHEET].iter_rows(min_row=2) for cell in row]
    written = [c for c in values if isinstance(c.value, str) and c.value.startswith("=")]
    assert written, "the test needs a value starting with ="
    assert all(c.data_type == "s" and c.quotePrefix for c in written)
    assert book["车辆购置"][f"{column_letter('county')}2"].data_type == "s"


def test_a_stored_report_annotates_the_stored_original(session, tmp_path, bus_company):
    path = write_upload(tmp_path / "u.xlsx", [acquisition(1, county="火星")])
    report = validate_file(session, path)
    again = ValidationReport.from_record(report.to_record())
    book = load_workbook(io.BytesIO(annotate_workbook(path.read_bytes(), again)))
    assert book["车辆购置"][f"{column_letter('county')}2"].comment.text == report.errors[0].message


def test_an_annotated_file_uploaded_again_warns_nothing_about_its_findings_sheet(session, tmp_path, bus_company):
    _report, book = annotated(session, write_upload(tmp_path / "u.xlsx", [acquisition(1, county="火星")]))
    book["车辆购置"][f"{column_letter('county')}2"] = "华龙区"
    corrected = tmp_path / "corrected.xlsx"
    book.save(corrected)
    again = validate_file(session, corrected)
    assert again.sheets == ["车辆购置"]
    assert (again.errors, again.warnings) == ([], [])
