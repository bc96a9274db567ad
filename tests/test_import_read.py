"""Reading real, messy workbooks: header found by content, rows with their Excel row numbers."""

from __future__ import annotations

import datetime as dt
import gc
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from imports.headers import KEYS
from imports.normalise import normalise
from imports.package import UnusableFile
from imports.read import RawTable, read_table
from tests.xlsx_factory import HEADERS, acquisition, sheet_rows, vin, write_upload, write_workbook

ALL = list(HEADERS)


def codes(table: RawTable) -> list[tuple]:
    """The findings as (sheet, row, column, code), the way the tests read them."""
    return [(i["sheet"], i["row"], i["column"], i["code"]) for i in table.issues]


def test_template_layout_reads_every_row_with_sheet_and_excel_row(tmp_path: Path) -> None:
    path = write_upload(tmp_path / "plain.xlsx", [acquisition(1), acquisition(2, power="汽油", plate="豫J12345")])
    table = read_table(path)
    assert list(table.frame.columns) == [*KEYS, "_sheet", "_row"]
    assert table.frame["_row"].tolist() == [2, 3]
    assert table.frame["_sheet"].tolist() == ["车辆购置", "车辆购置"]
    assert table.frame["vin"].tolist() == [vin(1), vin(2)]
    assert table.frame["power"].tolist() == ["纯电动", "汽油"]
    assert table.frame["credit_code"].tolist() == [None, None]
    assert table.frame["acquired_on"].iloc[0] in (dt.date(2025, 3, 5), dt.datetime(2025, 3, 5))
    assert table.frame["price"].iloc[0] == 120.5
    [sheet] = table.sheets
    assert (sheet.name, sheet.header_row) == ("车辆购置", 1)
    assert sheet.columns["vin"] == 2
    assert sheet.headers["price"] == "购置价格（万元）"
    assert table.issues == []


def test_title_rows_above_the_header(tmp_path: Path) -> None:
    rows = [
        ["2025年度新能源汽车购置情况统计表"],
        ["填报单位（盖章）：濮阳市公共交通有限公司", None, None, None, None, "填报日期：2025年4月1日"],
        [],
        *sheet_rows([acquisition(1), acquisition(2)]),
    ]
    path = write_workbook(tmp_path / "titles.xlsx", {"Sheet1": rows}, merged={"Sheet1": ["A1:N1", "A2:E2"]})
    table = read_table(path)
    assert table.sheets[0].header_row == 4
    assert table.frame["_row"].tolist() == [5, 6]
    assert table.frame["vin"].tolist() == [vin(1), vin(2)]
    assert table.issues == []


def test_agency_and_county_stated_above_the_table_fill_every_row(tmp_path: Path) -> None:
    keys = ["vin", "plate", "category", "power", "acquisition", "acquired_on"]
    rows = [["公务用车购置情况表"],
            ["填报单位（盖章）：濮阳市公安局    所属县区：市直", None, None, "填报日期：2025年4月1日"],
            ["统一社会信用代码：", "11410900MB1234567X"],
            *sheet_rows([acquisition(1), acquisition(2)], keys=keys)]
    table = read_table(write_workbook(tmp_path / "above.xlsx", {"S": rows}, merged={"S": ["A2:C2"]}))
    assert table.frame["agency"].tolist() == ["濮阳市公安局"] * 2
    assert table.frame["county"].tolist() == ["市直"] * 2
    assert table.frame["credit_code"].tolist() == ["11410900MB1234567X"] * 2
    # 填报日期 is the report's date, not a column of the table: the table's own dates stay.
    assert normalise(table.frame)["acquired_on"].tolist() == [dt.date(2025, 3, 5)] * 2
    assert sorted((i["column"], i["row"], i["code"]) for i in table.issues) == [
        ("agency", 2, "value_from_title"), ("county", 2, "value_from_title"), ("credit_code", 3, "value_from_title")]
    assert {i["column"]: i["value"] for i in table.issues}["agency"] == "濮阳市公安局"
    assert "agency" not in table.sheets[0].columns


def test_blank_form_line_above_the_table_gives_nothing(tmp_path: Path) -> None:
    keys = ["vin", "category", "power", "acquisition", "acquired_on", "county"]
    rows = [["填报单位：__________", None, None, "单位：万元"], *sheet_rows([acquisition(1)], keys=keys)]
    table = read_table(write_workbook(tmp_path / "blank-form.xlsx", {"S": rows}))
    assert codes(table) == [("S", 2, "agency", "missing_column")]


def test_header_merged_over_two_rows_with_group_titles(tmp_path: Path) -> None:
    top = ["序号", "单位名称", "车辆信息", None, None, None, None, "购置信息", None, None, "所属县区", "购置价格", "备注"]
    sub = [None, None, "车架号", "车牌号", "车辆类型", "燃料种类", "排放标准", "购置方式", "购置日期", "品牌型号", None,
           "（万元）", None]
    data = [1, "濮阳市公共交通有限公司", vin(1), "豫JD00001", "公交车", "纯电动", None, "新增", dt.date(2025, 3, 5),
            "宇通", "华龙区", 120.5, None]
    merged = ["A1:A2", "B1:B2", "C1:G1", "H1:J1", "K1:K2", "M1:M2"]
    path = write_workbook(tmp_path / "merged.xlsx", {"车辆": [top, sub, data]}, merged={"车辆": merged})
    table = read_table(path)
    sheet = table.sheets[0]
    assert sheet.header_row == 2
    assert sheet.columns == {"agency": 1, "vin": 2, "plate": 3, "category": 4, "power": 5, "emission_standard": 6,
                             "acquisition": 7, "acquired_on": 8, "brand_model": 9, "county": 10, "price": 11,
                             "remark": 12}
    assert sheet.headers["vin"] == "车架号"
    assert sheet.headers["price"] == "购置价格 （万元）"
    assert table.frame["_row"].tolist() == [3]
    assert table.frame["agency"].tolist() == ["濮阳市公共交通有限公司"]
    assert table.frame["price"].tolist() == [120.5]
    assert codes(table) == []


def test_header_merged_across_two_columns_is_one_column(tmp_path: Path) -> None:
    keys = ["agency", "vin", "category", "power", "acquisition", "acquired_on", "county"]
    rows = sheet_rows([acquisition(1)], keys=keys)
    rows = [[*rows[0], None], [*rows[1], "（城区）"]]
    table = read_table(write_workbook(tmp_path / "wide-county.xlsx", {"S": rows}, merged={"S": ["G1:H1"]}))
    assert table.sheets[0].columns["county"] == 6
    assert table.frame["county"].tolist() == ["华龙区"]
    assert codes(table) == []


def test_two_row_header_without_merged_cells(tmp_path: Path) -> None:
    top = ["单位名称", "车辆信息", None, None, None, "购置日期", "购置方式", "所属县区"]
    sub = [None, "车辆识别代号", "号牌号码", "车辆类别", "动力类型", None, None, None]
    data = ["濮阳市公安局", vin(1), "豫J12345", "执法执勤用车", "汽油", "2025-03-05", "更新", "市直"]
    path = write_workbook(tmp_path / "two-rows.xlsx", {"S": [["车辆购置表"], top, sub, data]})
    table = read_table(path)
    assert table.sheets[0].header_row == 3
    assert set(table.sheets[0].columns) == {"agency", "vin", "plate", "category", "power", "acquired_on",
                                            "acquisition", "county"}
    assert table.frame["_row"].tolist() == [4]
    assert table.frame["acquired_on"].tolist() == ["2025-03-05"]


def test_row_of_bracketed_notes_under_the_header_belongs_to_it(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1, price=1_205_000)], headers={"price": "购置价格"})
    notes = ["（必填）", None, "（必填，17位）", None, "(必填)", "(必填)", "(必填)", "（必填）", None, None, "(必填)",
             "（元）", None, None]
    table = read_table(write_workbook(tmp_path / "notes.xlsx", {"S": [rows[0], notes, rows[1]]}))
    assert table.sheets[0].header_row == 2
    assert table.frame["_row"].tolist() == [3]
    assert table.frame["price"].tolist() == [pytest.approx(120.5)]
    assert codes(table) == [("S", 2, "price", "price_unit_converted")]


def test_row_number_column_is_neither_data_nor_unknown(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1), acquisition(2)])
    rows = [["序号", *rows[0]], [1, *rows[1]], [2, *rows[2]], *[[n] for n in range(3, 30)]]
    table = read_table(write_workbook(tmp_path / "numbered.xlsx", {"S": rows}))
    assert table.sheets[0].columns["agency"] == 1
    assert table.frame["_row"].tolist() == [2, 3]
    assert codes(table) == []


def test_several_sheets_are_read_and_the_instruction_sheet_skipped(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "sheets.xlsx", {
        "填表说明": [["填表说明"], ["1. 每行填写一辆车"], ["列名", "说明"], *[[h, "…"] for h in HEADERS.values()],
                  list(HEADERS.values())],
        "公交车": sheet_rows([acquisition(1), acquisition(2)]),
        "Sheet3": [],
        "出租车": [["出租车购置"], *sheet_rows([acquisition(3, category="巡游出租车")])],
        "统计": [["本表由系统生成"], ["共 3 辆"]],
    })
    table = read_table(path)
    assert [s.name for s in table.sheets] == ["公交车", "出租车"]
    assert table.frame[["_sheet", "_row"]].values.tolist() == [["公交车", 2], ["公交车", 3], ["出租车", 3]]
    assert codes(table) == [("填表说明", None, None, "sheet_skipped"), ("统计", None, None, "sheet_skipped")]
    assert all(i["severity"] == "warning" for i in table.issues)
    assert "填表说明" in table.issues[0]["message"]


def test_sheet_titled_as_instructions_is_skipped_whatever_its_name(tmp_path: Path) -> None:
    instructions = [["填表说明"], ["1. 按下表格式填写，示例："], list(HEADERS.values()), list(acquisition(9).values())]
    path = write_workbook(tmp_path / "titled.xlsx", {"Sheet1": sheet_rows([acquisition(1)]), "Sheet2": instructions})
    table = read_table(path)
    assert table.frame["vin"].tolist() == [vin(1)]
    assert codes(table) == [("Sheet2", None, None, "sheet_skipped")]


def test_instructions_above_the_table_of_a_data_sheet_do_not_skip_it(tmp_path: Path) -> None:
    rows = [["填报说明：1. 每行一辆车；2. 带*为必填。"], *sheet_rows([acquisition(1)])]
    table = read_table(write_workbook(tmp_path / "note-above.xlsx", {"车辆": rows}))
    assert table.frame["vin"].tolist() == [vin(1)]


def test_hidden_sheet_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "hidden.xlsx", {"当前": sheet_rows([acquisition(1)]),
                                                      "旧数据": sheet_rows([acquisition(2)])})
    book = load_workbook(path)
    book["旧数据"].sheet_state = "hidden"
    book.save(path)
    table = read_table(path)
    assert table.frame["vin"].tolist() == [vin(1)]
    assert codes(table) == [("旧数据", None, None, "sheet_skipped")]


def test_hidden_sheet_is_read_when_it_holds_the_only_list(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "only-hidden.xlsx", {"图表": [["见隐藏数据"]], "数据": sheet_rows([acquisition(1)])})
    book = load_workbook(path)
    book["数据"].sheet_state = "hidden"
    book.save(path)
    table = read_table(path)
    assert table.frame["vin"].tolist() == [vin(1)]
    assert codes(table) == [("图表", None, None, "sheet_skipped")]


def test_full_width_and_messy_headers(tmp_path: Path) -> None:
    headers = {"agency": "＊单位 名称", "vin": "车辆识别代号\n（ＶＩＮ）", "category": " 车辆类别 ", "power": "动力\n类型",
               "acquisition": "※购置方式", "acquired_on": "购置日期(年-月-日)", "county": "所属县区[必填]",
               "price": "购置价格\n【万元】"}
    path = write_upload(tmp_path / "messy.xlsx", [acquisition(1)], keys=list(headers), headers=headers)
    table = read_table(path)
    assert set(table.sheets[0].columns) == set(headers)
    assert table.sheets[0].headers["vin"] == "车辆识别代号\n（ＶＩＮ）"
    assert codes(table) == []


def test_colloquial_and_reworded_headers(tmp_path: Path) -> None:
    headers = {"agency": "使用单位", "vin": "车架号", "plate": "车牌号", "category": "车辆类型", "power": "燃料种类",
               "acquisition": "新增/更新", "acquired_on": "购车日期", "county": "县（市、区）", "brand_model": "厂牌型号",
               "exemption_reason": "未选用新能源汽车的原因说明"}
    path = write_upload(tmp_path / "colloquial.xlsx", [acquisition(1)], keys=list(headers), headers=headers)
    table = read_table(path)
    assert table.sheets[0].headers == {k: headers[k] for k in KEYS if k in headers}
    assert codes(table) == []


def test_ambiguous_header_is_an_error_and_not_guessed(tmp_path: Path) -> None:
    keys = ["agency", "vin", "category", "acquisition", "acquired_on", "county", "power"]
    path = write_upload(tmp_path / "ambiguous.xlsx", [acquisition(1)], keys=keys, headers={"power": "类型"})
    table = read_table(path)
    assert "power" not in table.sheets[0].columns
    assert table.frame["power"].tolist() == [None]
    [issue] = table.issues
    assert (issue["code"], issue["severity"], issue["header"], issue["row"]) == ("ambiguous_header", "error", "类型", 1)
    assert "车辆类别" in issue["message"] and "动力类型" in issue["message"]


def test_unknown_column_is_a_warning_and_ignored(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1)])
    rows = [[*rows[0], "号牌颜色", "驾驶员"], [*rows[1], "绿色", "张三"]]
    table = read_table(write_workbook(tmp_path / "extra.xlsx", {"S": rows}))
    assert [(i["header"], i["code"], i["severity"]) for i in table.issues] == [
        ("号牌颜色", "unknown_column", "warning"), ("驾驶员", "unknown_column", "warning")]
    assert "号牌颜色" not in table.frame.columns


def test_missing_required_columns_one_error_each(tmp_path: Path) -> None:
    keys = ["agency", "vin", "plate", "category", "acquired_on"]
    table = read_table(write_upload(tmp_path / "missing.xlsx", [acquisition(1)], keys=keys))
    assert codes(table) == [("车辆购置", 1, "power", "missing_column"), ("车辆购置", 1, "acquisition", "missing_column"),
                            ("车辆购置", 1, "county", "missing_column")]
    assert table.issues[0]["header"] == "动力类型"
    assert "动力类型" in table.issues[0]["message"]
    assert table.frame["county"].tolist() == [None]


def test_totals_row_ends_the_table_and_trailing_rows_are_ignored(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1), acquisition(2), acquisition(3)])
    rows = [["序号", *rows[0]], [1, *rows[1]], [None] * 15, [2, *rows[2]], [3, *rows[3]],
            ["合  计", None, None, None, None, None, None, None, None, None, None, None, 361.5],
            ["填表人：张三", None, None, "联系电话：12345678"], [], [None, "   "], ["注：本表一式两份"]]
    table = read_table(write_workbook(tmp_path / "totals.xlsx", {"S": rows}))
    assert table.frame["_row"].tolist() == [2, 4, 5]
    assert codes(table) == []


# 汇总 is the label of the totals row of an Excel table in Chinese Excel.
@pytest.mark.parametrize("word", ["合计", "总计", "共计", "汇总", "Total"])
def test_totals_row_in_the_agency_column(tmp_path: Path, word: str) -> None:
    rows = sheet_rows([acquisition(1)])
    rows = [*rows, [f"{word}：1辆", None, None, None, None, None, None, None, None, None, None, 120.5]]
    rows.append(list(sheet_rows([acquisition(9)])[1]))
    table = read_table(write_workbook(tmp_path / "totals.xlsx", {"S": rows}))
    assert table.frame["vin"].tolist() == [vin(1)]


def test_subtotal_rows_are_skipped_and_the_table_goes_on_to_the_total(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1), acquisition(2), acquisition(3)])
    rows = [["序号", *rows[0]], [1, *rows[1]], ["小计", None, None, None, None, None, None, None, None, None, None, None, 120.5],
            [2, *rows[2]], [3, *rows[3]], ["华龙区小计", "2辆"], ["全市合计", "3辆"], [4, *sheet_rows([acquisition(4)])[1]]]
    table = read_table(write_workbook(tmp_path / "subtotals.xlsx", {"S": rows}))
    assert table.frame["_row"].tolist() == [2, 4, 5]


def test_note_under_the_table_ends_it(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1)])
    rows = [*rows, ["注：“购置价格”含车辆购置税。"], sheet_rows([acquisition(2)])[1]]
    table = read_table(write_workbook(tmp_path / "note.xlsx", {"S": rows}))
    assert table.frame["_row"].tolist() == [2]


def test_example_row_and_repeated_header_are_not_data(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1), acquisition(2)])
    rows = [["序号", *rows[0]], ["示例", *rows[1]], [1, *rows[2]], ["序号", *rows[0]], [2, *rows[1]],
            [None, "例：濮阳市公安局", *rows[1][1:]]]
    table = read_table(write_workbook(tmp_path / "example.xlsx", {"S": rows}))
    assert table.frame["_row"].tolist() == [3, 5]


def test_agency_merged_down_several_rows_is_given_to_each(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1), acquisition(2, agency=None), acquisition(3, agency=None)])
    table = read_table(write_workbook(tmp_path / "merged-data.xlsx", {"S": rows}, merged={"S": ["A2:A4"]}))
    assert table.frame["agency"].tolist() == ["濮阳市公共交通有限公司"] * 3


def test_table_not_starting_in_column_a(tmp_path: Path) -> None:
    rows = [[None, None, *r] for r in sheet_rows([acquisition(1)])]
    table = read_table(write_workbook(tmp_path / "offset.xlsx", {"S": [[], *rows]}))
    assert table.sheets[0].columns["agency"] == 2
    assert table.sheets[0].header_row == 2
    assert table.frame["vin"].tolist() == [vin(1)]


def test_price_in_yuan_is_converted_with_a_warning(tmp_path: Path) -> None:
    path = write_upload(tmp_path / "yuan.xlsx", [acquisition(1, price=1_205_000), acquisition(2, price="255,000"),
                                                  acquisition(3, price="不详")],
                        headers={"price": "购置价格（元）"})
    table = read_table(path)
    assert table.frame["price"].tolist() == [pytest.approx(120.5), pytest.approx(25.5), "不详"]
    assert codes(table) == [("车辆购置", 1, "price", "price_unit_converted")]
    assert table.issues[0]["severity"] == "warning"


def test_two_columns_for_one_key_keep_the_better_and_warn(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1)])
    rows = [[*rows[0], "登记日期", "车牌"], [*rows[1], dt.date(2025, 4, 1), "豫J99999"]]
    table = read_table(write_workbook(tmp_path / "twice.xlsx", {"S": rows}))
    assert table.sheets[0].headers["acquired_on"] == "购置日期"
    assert table.sheets[0].headers["plate"] == "号牌号码"
    assert [(i["header"], i["code"]) for i in table.issues] == [("车牌", "duplicate_column"), ("登记日期", "duplicate_column")]


def test_registration_date_alone_is_taken_as_the_acquisition_date(tmp_path: Path) -> None:
    path = write_upload(tmp_path / "reg.xlsx", [acquisition(1)], headers={"acquired_on": "登记日期"})
    table = read_table(path)
    assert table.sheets[0].headers["acquired_on"] == "登记日期"
    assert codes(table) == []


def _with_cached_values(path: Path, cached: dict[str, str]) -> None:
    """Give formula cells the cached value Excel stores next to the formula (openpyxl writes none)."""
    with zipfile.ZipFile(path) as source:
        members = {name: source.read(name) for name in source.namelist()}
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    for ref, value in cached.items():
        start = sheet.index(f'<c r="{ref}"')
        end = sheet.index("</c>", start)
        cell = sheet[start:end].replace("<v></v>", "").replace("<v />", "")
        sheet = sheet[:start] + cell.replace("<c ", '<c t="str" ', 1) + f"<v>{value}</v>" + sheet[end:]
    members["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in members.items():
            target.writestr(name, content)


def test_formula_cells_give_their_cached_values(tmp_path: Path) -> None:
    path = write_upload(tmp_path / "formula.xlsx", [acquisition(1, agency='=B10&"公司"', price="=100+20.5")])
    _with_cached_values(path, {"A2": "濮阳市公共交通有限公司", "L2": "120.5"})
    table = read_table(path)
    assert table.frame["agency"].tolist() == ["濮阳市公共交通有限公司"]
    assert normalise(table.frame)["price"].tolist() == [120.5]


def test_xlsm_is_read_and_its_macros_ignored(tmp_path: Path) -> None:
    path = write_upload(tmp_path / "macro.xlsm", [acquisition(1)])
    with zipfile.ZipFile(path) as source:
        members = {name: source.read(name) for name in source.namelist()}
    members["[Content_Types].xml"] = members["[Content_Types].xml"].replace(
        b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
    )
    members["xl/vbaProject.bin"] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in members.items():
            target.writestr(name, content)
    assert read_table(path).frame["vin"].tolist() == [vin(1)]


def test_every_date_form_in_a_real_file(tmp_path: Path) -> None:
    written = [dt.date(2025, 3, 5), dt.datetime(2025, 3, 5, 9, 30), "2025-03-05", "2025/3/5", "2025.3.5",
               "2025年3月5日", "20250305", "45721", 45721, "２０２５年３月５日", "2025-02-30"]
    path = write_upload(tmp_path / "dates.xlsx", [acquisition(i, acquired_on=d) for i, d in enumerate(written, 1)])
    dates = normalise(read_table(path).frame)["acquired_on"].tolist()
    assert dates == [dt.date(2025, 3, 5)] * 10 + ["2025-02-30"]


def test_serials_of_a_workbook_in_the_1904_date_system(tmp_path: Path) -> None:
    # Excel for Mac wrote workbooks counting from 1904: 5 March 2025 is serial 44259 there, not 45721.
    book = Workbook()
    book.epoch = CALENDAR_MAC_1904
    for row in sheet_rows([acquisition(i, acquired_on=d) for i, d in enumerate([dt.date(2025, 3, 5), 44259, "44259"], 1)]):
        book.active.append(row)
    book.save(tmp_path / "mac.xlsx")
    table = read_table(tmp_path / "mac.xlsx")
    assert table.date1904
    assert normalise(table.frame, date1904=table.date1904)["acquired_on"].tolist() == [dt.date(2025, 3, 5)] * 3
    assert not read_table(write_upload(tmp_path / "windows.xlsx", [acquisition(1)])).date1904


def test_full_width_codes_in_a_real_file(tmp_path: Path) -> None:
    path = write_upload(tmp_path / "fw.xlsx", [acquisition(1, vin="ｌｚｙｂｅｖ０ａ９ｒ００００００１", plate="豫Ｊ·Ｄ０００１２")])
    result = normalise(read_table(path).frame)
    assert result[["vin", "plate"]].values.tolist() == [["LZYBEV0A9R0000001", "豫JD00012"]]


def test_blank_rows_in_the_middle_are_skipped(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1), acquisition(2)])
    rows = [rows[0], rows[1], [], [None] * 14, [" "] * 14, rows[2]]
    table = read_table(write_workbook(tmp_path / "gaps.xlsx", {"S": rows}))
    assert table.frame["_row"].tolist() == [2, 6]


def test_large_upload_is_read_and_normalised_quickly(tmp_path: Path) -> None:
    """A 5,000-row upload through the vectorised path, every row kept with its Excel row number."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("车辆购置")
    sheet.append(list(HEADERS.values()))
    for i in range(1, 5001):
        sheet.append(list(acquisition(i, acquired_on="2025/3/5" if i % 2 else dt.date(2025, 3, 5)).values()))
    path = tmp_path / "large.xlsx"
    book.save(path)
    result = normalise(read_table(path).frame)
    assert len(result) == 5000
    assert result["_row"].iloc[-1] == 5001
    assert (result["acquired_on"] == dt.date(2025, 3, 5)).all()


def test_unit_note_above_the_table_converts_prices(tmp_path: Path) -> None:
    rows = [["车辆购置情况表"], [None, None, None, None, None, None, None, None, None, None, "金额单位：元"],
            *sheet_rows([acquisition(1, price=1_205_000)], headers={"price": "购置价格"})]
    table = read_table(write_workbook(tmp_path / "note.xlsx", {"S": rows}))
    assert table.frame["price"].tolist() == [pytest.approx(120.5)]
    assert codes(table) == [("S", 3, "price", "price_unit_converted")]


def test_unit_note_in_the_header_row_is_no_column(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1, price=1_205_000)], headers={"price": "购置价格"})
    rows = [[*rows[0], "单位：元"], rows[1]]
    table = read_table(write_workbook(tmp_path / "note-in-header.xlsx", {"S": rows}))
    assert table.frame["price"].tolist() == [pytest.approx(120.5)]
    assert codes(table) == [("S", 1, "price", "price_unit_converted")]


def test_column_numbers_and_english_header_under_the_header_are_not_data(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1)])
    numbers = list(range(1, 15))
    english = ["Agency", "Credit code", "VIN", "Plate", "Category", "Power type", "Acquisition", "Acquisition date",
               "Brand and model", "Emission standard", "County", "Price", "Reason", "Remark"]
    table = read_table(write_workbook(tmp_path / "echo.xlsx", {"S": [rows[0], english, numbers, rows[1]]}))
    assert table.frame["_row"].tolist() == [4]


def test_column_numbers_under_a_header_in_another_order(tmp_path: Path) -> None:
    keys = ["vin", "agency", "county", "category", "power", "acquired_on", "acquisition"]
    rows = sheet_rows([acquisition(1)], keys=keys)
    table = read_table(write_workbook(tmp_path / "order.xlsx", {"S": [rows[0], list(range(1, 8)), rows[1]]}))
    assert table.frame["_row"].tolist() == [3]


def test_section_titles_between_groups_of_rows_are_not_data(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1), acquisition(2)])
    rows = [rows[0], ["一、公交车"], rows[1], ["（二）出租车"], rows[2], ["第三部分 其他"]]
    table = read_table(write_workbook(tmp_path / "sections.xlsx", {"S": rows}, merged={"S": ["A4:N4"]}))
    assert table.frame["_row"].tolist() == [3, 5]
    assert codes(table) == []


def test_summary_sheet_beside_the_vehicle_list_is_skipped(tmp_path: Path) -> None:
    summary = [["单位名称", "车辆类别", "动力类型", "购置方式", "数量"], ["濮阳市公共交通有限公司", "公交车", "纯电动", "新增", 2]]
    path = write_workbook(tmp_path / "summary.xlsx", {"明细": sheet_rows([acquisition(1), acquisition(2)]),
                                                       "汇总": summary})
    table = read_table(path)
    assert [s.name for s in table.sheets] == ["明细"]
    assert codes(table) == [("汇总", None, None, "sheet_skipped")]
    assert len(table.frame) == 2


def test_single_sheet_without_vin_reports_the_missing_column(tmp_path: Path) -> None:
    keys = ["agency", "category", "power", "acquisition", "acquired_on", "county"]
    table = read_table(write_upload(tmp_path / "novin.xlsx", [acquisition(1)], keys=keys))
    assert codes(table) == [("车辆购置", 1, "vin", "missing_column")]


def test_brand_and_model_in_two_columns_are_joined(tmp_path: Path) -> None:
    rows = [["单位名称", "车架号", "车辆型号", "车辆品牌", "车辆类型", "燃料类型", "购置时间", "县区", "购置方式", "备注", "说明"],
            ["濮阳市公安局", vin(1), "ZK6105BEVG", "宇通", "执法执勤用车", "纯电动", "2025-03-05", "市直", "新增", "警用", None],
            ["濮阳市公安局", vin(2), None, "比亚迪", "执法执勤用车", "纯电动", "2025-03-05", "市直", "新增", None, "备用车"]]
    table = read_table(write_workbook(tmp_path / "brand.xlsx", {"S": rows}))
    assert table.frame["brand_model"].tolist() == ["ZK6105BEVG 宇通", "比亚迪"]
    assert table.frame["remark"].tolist() == ["警用", "备用车"]
    assert table.sheets[0].headers["brand_model"] == "车辆型号 + 车辆品牌"
    assert table.sheets[0].columns["brand_model"] == 2
    assert codes(table) == []


def test_agency_merged_past_the_last_vehicle_makes_no_rows(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1), acquisition(2, agency=None)])
    rows += [[None] * 14] * 3
    table = read_table(write_workbook(tmp_path / "merged-tail.xlsx", {"S": rows}, merged={"S": ["A2:A6"]}))
    assert table.frame["_row"].tolist() == [2, 3]
    assert table.frame["agency"].tolist() == ["濮阳市公共交通有限公司"] * 2


def test_ambiguous_header_beside_the_columns_it_could_mean_is_only_unknown(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1)])
    rows = [[*rows[0], "日期"], [*rows[1], dt.date(2025, 4, 1)]]
    table = read_table(write_workbook(tmp_path / "date-twice.xlsx", {"S": rows}))
    assert [(i["header"], i["code"], i["severity"]) for i in table.issues] == [("日期", "unknown_column", "warning")]


def test_government_statistics_table_with_everything_at_once(tmp_path: Path) -> None:
    """A table as offices lay them out: title, unit note, grouped two-row header, column numbers,
    agency merged down, brand and model apart, a totals row and signatures."""
    title = ["濮阳市2025年公共领域新能源汽车购置情况统计表"]
    note = ["填报单位（盖章）：濮阳市城市管理局", None, None, None, None, None, None, None, None, None, None, None,
            None, None, "金额单位：元"]
    group = ["序号", "单位名称", "车辆基本信息", None, None, None, None, None, "购置信息", None, None, None, "县区",
             "未选用新能源原因", "备注"]
    sub = [None, None, "车架号", "车牌号", "车辆类型", "燃料种类", "品牌", "型号", "购置方式", "购置时间", "购置价格",
           "排放标准", None, None, None]
    numbers = list(range(1, 16))
    data = [
        [1, "濮阳市城市管理局", vin(1).lower(), "豫J·D12345", "环卫车", "纯电", "宇通", "YTZ5180", "新购", "2025.3.5",
         "1,250,000", "无", "华龙区", None, None],
        [2, None, vin(2), "未上牌", "环卫车辆", "柴油", "东风", "DFL1160", "报废更新", "2025年4月1日", 980000, "国Ⅵ",
         "濮阳市华龙区", "新能源车型无法满足高压冲洗作业需求", None],
        [None] * 15,
        ["合计", None, None, None, None, None, None, None, None, None, 2230000],
        ["填表人：张三", None, None, "审核人：李四", None, None, "联系电话：0393-1234567"],
    ]
    merged = ["A1:O1", "A3:A4", "B3:B4", "C3:H3", "I3:L3", "M3:M4", "N3:N4", "O3:O4", "B6:B7"]
    path = write_workbook(tmp_path / "office.xlsx", {
        "填报说明": [["填报说明"], ["请按表格填写"]],
        "2025年新增车辆": [title, note, group, sub, numbers, *data],
    }, merged={"2025年新增车辆": merged})
    table = read_table(path)
    sheet = table.sheets[0]
    assert sheet.header_row == 4
    assert sheet.headers["brand_model"] == "品牌 + 型号"
    assert codes(table) == [("填报说明", None, None, "sheet_skipped"), ("2025年新增车辆", 4, "price", "price_unit_converted")]
    result = normalise(table.frame)
    assert result["_row"].tolist() == [6, 7]
    assert result.drop(columns=["_sheet", "_row"]).to_dict("records") == [
        {"agency": "濮阳市城市管理局", "credit_code": None, "vin": vin(1), "plate": "豫JD12345", "category": "市政环卫车",
         "power": "纯电动", "acquisition": "新增", "acquired_on": dt.date(2025, 3, 5), "brand_model": "宇通YTZ5180",
         "emission_standard": "不适用", "county": "华龙区", "price": pytest.approx(125.0), "exemption_reason": None,
         "remark": None},
        {"agency": "濮阳市城市管理局", "credit_code": None, "vin": vin(2), "plate": None, "category": "市政环卫车",
         "power": "柴油", "acquisition": "更新", "acquired_on": dt.date(2025, 4, 1), "brand_model": "东风DFL1160",
         "emission_standard": "国六", "county": "华龙区", "price": pytest.approx(98.0),
         "exemption_reason": "新能源车型无法满足高压冲洗作业需求", "remark": None},
    ]


def test_ditto_marks_repeat_the_value_above(tmp_path: Path) -> None:
    rows = sheet_rows([acquisition(1), acquisition(2, agency="同上", county="〃", acquired_on='"'),
                       acquisition(3, agency="同上", category="同上")])
    result = normalise(read_table(write_workbook(tmp_path / "ditto.xlsx", {"S": rows})).frame)
    assert result["agency"].tolist() == ["濮阳市公共交通有限公司"] * 3
    assert result["county"].tolist() == ["华龙区"] * 3
    assert result["category"].tolist() == ["公交车"] * 3
    assert result["acquired_on"].tolist() == [dt.date(2025, 3, 5)] * 3


def test_reading_leaves_the_cycle_collector_as_it_found_it(tmp_path: Path) -> None:
    # read_table pauses Python's cycle collector while it builds the cells.
    good = write_upload(tmp_path / "good.xlsx", [acquisition(1)])
    empty = write_upload(tmp_path / "header-only.xlsx", [])
    assert gc.isenabled()
    read_table(good)
    assert gc.isenabled()
    with pytest.raises(UnusableFile):
        read_table(empty)
    assert gc.isenabled()
    gc.disable()
    try:
        read_table(good)
        assert not gc.isenabled()
    finally:
        gc.enable()
