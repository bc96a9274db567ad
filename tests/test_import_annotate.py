"""The annotated workbook: flagged cells filled and commented, a first sheet listing every finding with links."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from flask_babel import force_locale
from openpyxl import load_workbook
from openpyxl.xml.constants import SHEET_MAIN_NS
from xlsx_factory import HEADERS, acquisition, sheet_rows, write_upload, write_workbook

from imports.annotate import ERROR_FILL, FINDINGS_SHEET, WARNING_FILL, annotate_workbook, findings_sheet_titles
from imports.guards import LIMITS
from imports.package import UnusableFile
from imports.pipeline import validate_file
from imports.report import CODES, ERROR, WARNING, Finding, SheetLayout, ValidationReport
from imports.template import DATA_SHEET, write_template
from tests.factories import agency
from tests.test_hostile_files import (
    ROOT,
    _members,
    _rezip,
    _sharing_strings,
    lying_dimension,
)


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
    # Headers as written and what each code means, in words: no internal keys or codes.
    assert [line[:3] + line[4:6] for line in lines] == [
        ("车辆购置", 2, HEADERS["county"], str(CODES["unknown_county"].description), "错误"),
        ("车辆购置", 3, HEADERS["vin"], str(CODES["vin_format"].description), "错误"),
    ]
    assert listing["G2"].hyperlink.location == f"'车辆购置'!{column_letter('county')}2"
    assert listing["G3"].hyperlink.location == f"'车辆购置'!{column_letter('vin')}3"
    assert listing["G2"].value == report.errors[0].message


def test_the_english_annotated_file_has_english_sheet_titles_and_words(session, tmp_path, bus_company):
    path = write_upload(tmp_path / "u.xlsx", [acquisition(1, county="火星")])
    with force_locale("en"):
        report, book = annotated(session, path)
        english_title = str(FINDINGS_SHEET)
    assert english_title != "错误清单" and english_title in findings_sheet_titles() and "错误清单" in findings_sheet_titles()
    assert book.sheetnames == [english_title, "车辆购置"]  # the upload's own sheets keep their names
    listing = book[english_title]
    assert [c.value for c in listing[1]] == ["Sheet", "Row", "Column", "Value entered", "Problem", "Severity", "Explanation"]
    sheet, row, column, _value, problem, severity, message = next(listing.iter_rows(min_row=2, values_only=True))
    assert (sheet, row, column, severity) == ("车辆购置", 2, HEADERS["county"], "Error")  # the header as written
    assert problem == "County/district not in the list of allowed values" and message == report.errors[0].message


def test_a_missing_column_points_at_the_header_row(session, tmp_path, bus_company):
    keys = [k for k in HEADERS if k != "county"]
    rows = [["标题"], *sheet_rows([acquisition(1)], keys=keys)]
    report, book = annotated(session, write_workbook(tmp_path / "u.xlsx", {"车辆": rows}))
    assert [f.code for f in report.errors] == ["missing_column"]
    link = book[FINDINGS_SHEET]["G2"].hyperlink.location
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


def test_the_uploads_layout_and_notes_are_kept(session, tmp_path, bus_company):
    path = tmp_path / "filled.xlsx"
    write_template(str(path))
    upload = load_workbook(path)
    sheet = upload[DATA_SHEET]
    for row in sheet_rows([acquisition(1), acquisition(2, county="火星")])[1:]:
        sheet.append(row)
    other = upload.create_sheet("另表")
    for row in [["2025年度车辆购置情况统计表"], *sheet_rows([acquisition(3)])]:
        other.append(row)
    other.merge_cells("A1:N1")
    upload.save(path)
    upload = load_workbook(path)  # as the reader sees it
    sheet = upload[DATA_SHEET]
    report, book = annotated(session, path)
    assert book.sheetnames == [FINDINGS_SHEET, *upload.sheetnames]
    assert [book[name].sheet_state for name in upload.sheetnames] == [s.sheet_state for s in upload.worksheets]
    data = book[DATA_SHEET]
    widths = {k: d.width for k, d in sheet.column_dimensions.items()}
    assert {k: d.width for k, d in data.column_dimensions.items()} == widths
    assert data.row_dimensions[1].height == sheet.row_dimensions[1].height
    assert data.freeze_panes == sheet.freeze_panes and data.auto_filter.ref == sheet.auto_filter.ref
    assert len(data.data_validations.dataValidation) == len(sheet.data_validations.dataValidation)
    # The template's notes on its headers stay; the flagged cell's comment is its finding.
    assert [data.cell(1, c).comment.text for c in range(1, 15)] == [sheet.cell(1, c).comment.text for c in range(1, 15)]
    assert data[f"{column_letter('county')}3"].comment.text == report.errors[0].message
    for upload_cell, cell in zip(sheet[2], data[2]):
        assert (cell.value, cell.number_format, cell.font.b) == (upload_cell.value, upload_cell.number_format,
                                                                 upload_cell.font.b)
    assert [str(r) for r in book["另表"].merged_cells.ranges] == ["A1:N1"]
    assert not book[DATA_SHEET].sheet_view.tabSelected and book[FINDINGS_SHEET].sheet_view.tabSelected


def test_formatting_far_below_the_table_is_not_copied(session, tmp_path, bus_company):
    path = write_upload(tmp_path / "u.xlsx", [acquisition(1, county="火星")])
    members = _members(path)
    members["xl/worksheets/sheet1.xml"] = members["xl/worksheets/sheet1.xml"].replace(
        b"</sheetData>", b'<row r="1048576"><c r="XFD1048576" s="1"/></row></sheetData>')
    _rezip(path, members)
    report, book = annotated(session, path)
    assert [f.code for f in report.errors] == ["unknown_county"]
    assert (book["车辆购置"].max_row, book["车辆购置"].max_column) == (2, len(HEADERS))


def test_annotation_refuses_what_the_reader_refuses(tmp_path):
    # A report never comes from such a file; the annotation checks the limits on its own all the same.
    path = lying_dimension(tmp_path / "lying.xlsx")
    with pytest.raises(UnusableFile) as refused:
        annotate_workbook(path, ValidationReport(file="lying.xlsx", sheets=[], rows=0, valid_rows=0))
    assert refused.value.code == "too_large"


# --- the largest upload the reader accepts, annotated in a process of its own ---------------------------

PEAK_MB = 1024

_ANNOTATE = """
import json, sys, time
from pathlib import Path
from imports.annotate import annotate_workbook
from imports.report import ValidationReport
path, report, out = map(Path, sys.argv[1:4])
start = time.perf_counter()
data = annotate_workbook(path, ValidationReport.from_record(json.loads(report.read_text(encoding="utf-8"))))
seconds = time.perf_counter() - start
out.write_bytes(data)
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024
print(peak, f"{seconds:.1f}")
"""


def large_upload(path: Path, rows: int) -> tuple[Path, ValidationReport]:
    """An upload of `rows` acquisitions under the template's header, all 14 columns filled, text in shared
    strings and dates as formatted serials, as Excel saves them; a county no one knows every 100th row
    (an error), a plate from elsewhere every 1000th (a warning), formula-like text every 500th. The
    report names those cells."""
    members = _members(write_upload(path, [acquisition(1, remark="备注")]))
    date_style = re.search(rb'<c r="H2" s="([0-9]+)"', members["xl/worksheets/sheet1.xml"])[1].decode()
    keys = list(HEADERS)
    fixed = {**acquisition(1), "credit_code": "12410900MB1234567X", "emission_standard": "国六",
             "exemption_reason": "续航不能满足作业需求"}
    strings: dict[str, int] = {}
    cells = []
    for letter, key in zip("ABCDEFGHIJKLMN", keys):
        if key == "acquired_on":
            cells.append(f'<c r="{letter}{{r}}" s="{date_style}"><v>45721</v></c>')
        elif key == "price":
            cells.append(f'<c r="{letter}{{r}}"><v>120.5</v></c>')
        else:
            index = f"{{{key}}}" if key in ("vin", "plate", "county", "remark") else strings.setdefault(fixed[key], len(strings))
            cells.append(f'<c r="{letter}{{r}}" t="s"><v>{index}</v></c>')
    template = '<row r="{r}">' + "".join(cells) + "</row>"
    header = "".join(f'<c r="{letter}1" t="s"><v>{strings.setdefault(HEADERS[key], len(strings))}</v></c>'
                     for letter, key in zip("ABCDEFGHIJKLMN", keys))
    body = ['<row r="1">' + header + "</row>"]
    errors, warnings = [], []
    for serial in range(1, rows + 1):
        r = serial + 1
        county = "火星" if serial % 100 == 0 else "华龙区"
        plate = f"京AD{serial:05d}" if serial % 1000 == 0 else f"豫JD{serial:05d}"
        texts = {"vin": f"LZYBEV0A0R{serial:07d}", "plate": plate, "county": county,
                 "remark": "=1+1" if serial % 500 == 0 else "批量采购"}
        body.append(template.format(r=r, **{k: strings.setdefault(v, len(strings)) for k, v in texts.items()}))
        if serial % 100 == 0:
            errors.append(Finding("车辆购置", r, "county", HEADERS["county"], county, "unknown_county", ERROR,
                                  f"“{county}”不是有效的县区"))
        if serial % 1000 == 0:
            warnings.append(Finding("车辆购置", r, "plate", HEADERS["plate"], plate, "plate_not_local", WARNING,
                                    f"号牌“{plate}”不是本地号牌"))
    members["xl/worksheets/sheet1.xml"] = (
        f'<worksheet xmlns="{SHEET_MAIN_NS}"><dimension ref="A1:N{rows + 1}"/><sheetData>'.encode()
        + "".join(body).encode() + b"</sheetData></worksheet>"
    )
    members["xl/sharedStrings.xml"] = (
        f'<sst xmlns="{SHEET_MAIN_NS}" count="{len(strings)}" uniqueCount="{len(strings)}">'
        + "".join(f"<si><t>{text}</t></si>" for text in strings) + "</sst>"
    ).encode()
    layout = SheetLayout(header_row=1, columns={k: i for i, k in enumerate(keys)}, headers=dict(HEADERS))
    report = ValidationReport(file=path.name, sheets=["车辆购置"], rows=rows, valid_rows=rows - len(errors),
                              errors=errors, warnings=warnings, layout={"车辆购置": layout})
    return _rezip(path, _sharing_strings(members)), report


def test_the_largest_upload_is_annotated_in_bounded_memory(tmp_path):
    # As many acquisitions of 14 columns as a file may hold under its header: 3 million cells.
    rows = LIMITS.cells // len(HEADERS) - 1
    path, report = large_upload(tmp_path / "large.xlsx", rows)
    record = tmp_path / "report.json"
    record.write_text(json.dumps(report.to_record(), ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "annotated.xlsx"
    done = subprocess.run([sys.executable, "-c", _ANNOTATE, str(path), str(record), str(out)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    peak, seconds = done.stdout.split()
    assert int(peak) < PEAK_MB, f"annotating {rows} rows took {peak} MB ({seconds} s)"

    book = load_workbook(out, read_only=True)
    assert book.sheetnames == [FINDINGS_SHEET, "车辆购置"]
    lines = list(book[FINDINGS_SHEET].iter_rows(min_row=2, values_only=True))
    assert len(lines) == len(report.errors) + len(report.warnings)
    assert lines[0][:3] == ("车辆购置", 101, HEADERS["county"])
    assert lines[-1][:3] == ("车辆购置", report.warnings[-1].row, HEADERS["plate"])
    sheet = book["车辆购置"]
    filled = {}
    for row in sheet.iter_rows(min_row=1, max_row=2001):
        for cell in row:
            if cell.fill.fill_type is not None:
                filled[cell.coordinate] = cell.fill.fgColor.rgb[-6:]
    assert filled == {
        **{f"K{serial + 1}": ERROR_FILL.fgColor.rgb[-6:] for serial in range(100, 2001, 100)},
        **{f"D{serial + 1}": WARNING_FILL.fgColor.rgb[-6:] for serial in (1000, 2000)},
    }
    second = next(sheet.iter_rows(min_row=2, max_row=2))
    assert second[7].value == dt.datetime(2025, 3, 5)
    remark = next(sheet.iter_rows(min_row=501, max_row=501))[13]
    assert remark.value == "=1+1" and remark.data_type == "s" and remark.style_array.quotePrefix
    book.close()
    with zipfile.ZipFile(out) as package:
        comments = [name for name in package.namelist() if name.startswith("xl/comments")]
        assert len(comments) == 1
        assert package.read(comments[0]).count(b"<comment ") == len(report.errors) + len(report.warnings)


def test_an_english_annotated_file_uploaded_again_warns_nothing_about_its_findings_sheet(session, tmp_path, bus_company):
    with force_locale("en"):
        _report, book = annotated(session, write_upload(tmp_path / "u.xlsx", [acquisition(1, county="火星")]))
    assert book.sheetnames[0] != "错误清单"
    book["车辆购置"][f"{column_letter('county')}2"] = "华龙区"
    corrected = tmp_path / "corrected.xlsx"
    book.save(corrected)
    again = validate_file(session, corrected)  # by a Chinese user
    assert (again.sheets, again.errors, again.warnings) == (["车辆购置"], [], [])
