"""The template: the upload columns' headers, drop-downs from the vocabularies, and it reads back through the importer."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from fleet.base.vocab import VOCABULARIES
from imports.headers import COLUMNS
from imports.normalise import normalise
from imports.pipeline import validate_file
from imports.read import read_table
from imports.template import DATA_SHEET, INSTRUCTION_SHEET, LIST_SHEET, write_template
from tests.factories import agency
from tests.xlsx_factory import acquisition, vin


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "template.xlsx"
    write_template(path)
    return path


def test_headers_are_the_spec_columns_with_required_ones_marked(template: Path) -> None:
    sheet = load_workbook(template)[DATA_SHEET]
    written = [cell.value for cell in sheet[1]]
    assert written == [("*" if c.required else "") + c.header for c in COLUMNS]
    assert sheet.freeze_panes == "A2"
    assert all(sheet.column_dimensions[letter].width >= 10 for letter in "ABCDEFGHIJKLMN")


def test_every_vocabulary_column_has_a_drop_down_with_its_values(template: Path) -> None:
    book = load_workbook(template)
    sheet = book[DATA_SHEET]
    lists = book[LIST_SHEET]
    assert lists.sheet_state == "hidden"
    by_column = {}
    for validation in sheet.data_validations.dataValidation:
        if validation.type == "list":
            column = str(validation.sqref).split(":")[0].rstrip("0123456789")
            by_column[column] = validation.formula1
    for index, column in enumerate(COLUMNS, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        if column.key not in VOCABULARIES:
            assert letter not in by_column
            continue
        formula = by_column[letter]
        sheet_name, cells = formula.split("!")
        assert sheet_name.strip("'") == LIST_SHEET
        first, last = (ref.replace("$", "") for ref in cells.split(":"))
        listed = [row[0].value for row in lists[first:last]]
        assert listed == VOCABULARIES[column.key].values


def test_acquisition_date_column_is_formatted_as_a_date(template: Path) -> None:
    sheet = load_workbook(template)[DATA_SHEET]
    letter = get_column_letter([c.key for c in COLUMNS].index("acquired_on") + 1)
    assert sheet.column_dimensions[letter].number_format == "yyyy-mm-dd"
    assert sheet.max_row == 1


def test_instruction_sheet_lists_every_column(template: Path) -> None:
    book = load_workbook(template)
    assert book.sheetnames[:2] == [DATA_SHEET, INSTRUCTION_SHEET]
    text = [c.value for row in book[INSTRUCTION_SHEET].iter_rows() for c in row if c.value]
    assert all(column.header in text for column in COLUMNS)


def test_filled_template_reads_back_through_the_importer(template: Path, tmp_path: Path) -> None:
    book = load_workbook(template)
    sheet = book[DATA_SHEET]
    rows = [acquisition(1), acquisition(2, power="插混", plate="豫JF00002", acquired_on=dt.date(2025, 1, 2),
                                        county="经开区", category="网约车")]
    for row in rows:
        sheet.append([row[column.key] for column in COLUMNS])
    filled = tmp_path / "filled.xlsx"
    book.save(filled)
    table = read_table(filled)
    assert [i["code"] for i in table.issues] == ["sheet_skipped"]
    assert table.sheets[0].name == DATA_SHEET
    result = normalise(table.frame)
    assert result["_row"].tolist() == [2, 3]
    assert result["vin"].tolist() == [vin(1), vin(2)]
    assert result["power"].tolist() == ["纯电动", "插电式混合动力"]
    assert result["county"].tolist() == ["华龙区", "濮阳经济技术开发区"]
    assert result["category"].tolist() == ["公交车", "网约出租车"]
    assert result["acquired_on"].tolist() == [dt.date(2025, 3, 5), dt.date(2025, 1, 2)]


def test_a_filled_template_uploaded_warns_nothing_about_its_instruction_sheet(session, template: Path, tmp_path: Path) -> None:
    agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交", county="华龙区")
    session.commit()
    book = load_workbook(template)
    book[DATA_SHEET].append([acquisition(1)[column.key] for column in COLUMNS])
    filled = tmp_path / "filled.xlsx"
    book.save(filled)
    report = validate_file(session, filled)
    assert report.sheets == [DATA_SHEET]
    assert (report.errors, report.warnings) == ([], [])


def test_template_written_to_a_buffer(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    write_template(buffer)
    assert load_workbook(io.BytesIO(buffer.getvalue())).sheetnames[0] == DATA_SHEET
