"""Header mapping: synonyms, colloquial and reworded headers map; ambiguous ones are never guessed."""

from __future__ import annotations

import pytest

from imports.headers import (
    COLUMN_BY_KEY,
    COLUMNS,
    EXACT,
    KEYWORD,
    REQUIRED_KEYS,
    WEAK,
    is_instruction_sheet,
    match_header,
)


def test_columns_are_those_of_the_spec_in_order() -> None:
    assert [c.key for c in COLUMNS] == [
        "agency", "credit_code", "vin", "plate", "category", "power", "acquisition", "acquired_on",
        "brand_model", "emission_standard", "county", "price", "exemption_reason", "remark",
    ]
    assert COLUMN_BY_KEY["price"].header == "购置价格（万元）"
    assert set(REQUIRED_KEYS) == {"agency", "vin", "category", "power", "acquisition", "acquired_on", "county"}


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: c.key)
def test_template_header_and_english_name_map_to_their_column(column) -> None:
    assert match_header(column.header).key == column.key
    assert match_header(column.en).key == column.key


@pytest.mark.parametrize(
    ("header", "key"),
    [
        # messy writing: markers, spaces, line breaks, full-width forms, units in brackets
        ("*单位名称", "agency"),
        ("※ 单位 名称", "agency"),
        ("车辆识别代号\n（VIN）", "vin"),
        ("ＶＩＮ", "vin"),
        ("  号牌号码  ", "plate"),
        ("购置价格(万元)", "price"),
        ("购置价格[万元]", "price"),
        ("购置价格【万元】", "price"),
        ("购置价格/万元", "price"),
        ("县（市、区）", "county"),
        ("购置方式\n(新增/更新)", "acquisition"),
        # colloquial names
        ("车架号", "vin"),
        ("车架号码", "vin"),
        ("VIN码", "vin"),
        ("车牌号", "plate"),
        ("车牌", "plate"),
        ("燃料种类", "power"),
        ("燃料类型", "power"),
        ("能源类型", "power"),
        ("车辆类型", "category"),
        ("购置时间", "acquired_on"),
        ("购车日期", "acquired_on"),
        ("单位", "agency"),
        ("使用单位", "agency"),
        ("所属单位", "agency"),
        ("厂牌型号", "brand_model"),
        ("排放阶段", "emission_standard"),
        ("新增/更新", "acquisition"),
        # English
        ("Plate Number", "plate"),
        ("purchase date", "acquired_on"),
        ("Fuel type", "power"),
        ("Remarks", "remark"),
        # reworded headers found by keyword rules
        ("未选用新能源汽车的原因说明", "exemption_reason"),
        ("选择非新能源车辆的理由", "exemption_reason"),
        ("不能选用新能源车的情况说明", "exemption_reason"),
        ("车辆识别代号/车架号", "vin"),
        ("单位统一社会信用代码", "credit_code"),
        ("车辆品牌及型号", "brand_model"),
        ("车辆购置日期", "acquired_on"),
        ("车辆的动力类型", "power"),
        ("车辆所属县区", "county"),
        ("购车发票金额", "price"),
        ("单价（元）", "price"),
        ("资产原值(元)", "price"),
        ("备注（其他情况）", "remark"),
        ("所在县（区）", "county"),
        ("行政区划", "county"),
        ("车辆名称", "brand_model"),
        ("购置年月", "acquired_on"),
        ("VIN No.", "vin"),
        ("1、单位名称", "agency"),
        ("三、购置日期", "acquired_on"),
        ("Unit name", "agency"),
        ("Purchase method", "acquisition"),
        ("Energy type", "power"),
        ("原因", "exemption_reason"),
        ("License Plate No.", "plate"),
    ],
)
def test_real_world_header_maps(header: str, key: str) -> None:
    assert match_header(header).key == key


def test_exact_synonym_is_stronger_than_a_keyword_match_and_registration_date_is_weak() -> None:
    assert match_header("购置日期").strength == EXACT
    assert match_header("车辆购置日期").strength == KEYWORD
    assert match_header("登记日期").key == "acquired_on"
    assert match_header("登记日期").strength == WEAK


@pytest.mark.parametrize(
    ("header", "candidates"),
    [("类型", {"category", "power"}), ("类别", {"category", "power"}), ("日期", {"acquired_on"}),
     ("车型", {"category", "brand_model"}), ("号码", {"vin", "plate"}), ("名称", {"agency", "brand_model"})],
)
def test_header_that_could_mean_two_columns_is_ambiguous(header: str, candidates: set[str]) -> None:
    match = match_header(header)
    assert match.key is None
    assert match.ambiguous
    assert set(match.candidates) == candidates


@pytest.mark.parametrize("header", ["号牌颜色", "号牌种类", "是否新能源", "单位性质", "联系电话", "Driving license",
                                    "发动机号", "资金来源"])
def test_header_of_another_thing_is_unknown(header: str) -> None:
    match = match_header(header)
    assert match.key is None and not match.ambiguous


@pytest.mark.parametrize("header", ["序号", "No.", "#"])
def test_row_number_column_is_ignored_not_unknown(header: str) -> None:
    assert match_header(header).ignored


@pytest.mark.parametrize(
    ("header", "scale"),
    [("购置价格（万元）", 1.0), ("购置价格（元）", 0.0001), ("价格(元)", 0.0001), ("金额（单位：元）", 0.0001),
     ("购置价格", None), ("Price (CNY)", 0.0001), ("Price (10k yuan)", 1.0), ("Price (10k CNY)", 1.0)],
)
def test_price_unit_stated_in_the_header(header: str, scale: float | None) -> None:
    match = match_header(header)
    assert match.key == "price"
    assert match.scale == scale


@pytest.mark.parametrize(
    ("name", "instructions"),
    [("填表说明", True), ("填表说明（2025）", True), ("说明", True), ("Instructions", True), ("示例", True),
     ("车辆情况说明", False), ("Sheet1", False), ("公交车", False)],
)
def test_instruction_sheet_is_known_by_its_name(name: str, instructions: bool) -> None:
    assert is_instruction_sheet(name) is instructions
