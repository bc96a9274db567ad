"""Normalisation: written values become canonical ones; what cannot be read stays as text for validation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from imports.headers import KEYS
from imports.normalise import AMBIGUOUS_HYBRID_VALUE, normalise

MARCH_5 = dt.date(2025, 3, 5)


def frame(**columns: list[Any]) -> pd.DataFrame:
    """A raw frame as read_table gives it: every key, absent ones all None, plus _sheet and _row."""
    length = len(next(iter(columns.values())))
    data = {k: pd.Series(columns.get(k, [None] * length), dtype=object) for k in KEYS}
    data["_sheet"] = pd.Series(["车辆购置"] * length, dtype=object)
    data["_row"] = pd.Series(range(2, length + 2), dtype="int64")
    return pd.DataFrame(data)


def one(key: str, value: Any, **others: Any) -> Any:
    return normalise(frame(**{key: [value]}, **{k: [v] for k, v in others.items()}))[key].iloc[0]


@pytest.mark.parametrize(
    "written",
    [
        dt.datetime(2025, 3, 5), MARCH_5, dt.datetime(2025, 3, 5, 14, 30),
        "2025-03-05", "2025/3/5", "2025.3.5", "2025年3月5日", "20250305", "2025-3-5 00:00:00",
        "45721", 45721.0, 45721, 45721.6, 20250305,
        "２０２５－０３－０５", "４５７２１", " 2025 年 3 月 5 日 ", "2025/03/05", "2025年3月5号",
    ],
)
def test_every_date_form_becomes_a_date(written: Any) -> None:
    assert one("acquired_on", written) == MARCH_5


@pytest.mark.parametrize("written", ["2025-02-30", "2025-13-01", "明年", "2025年3月", "3/5/25", "2025"])
def test_what_is_not_a_date_stays_as_text(written: str) -> None:
    assert one("acquired_on", written) == written


@pytest.mark.parametrize(
    ("written", "number"),
    [("25.5", 25.5), ("２５．５", 25.5), ("25.5万元", 25.5), ("1,234.5", 1234.5), (" 25.5 ", 25.5),
     (25.5, 25.5), (30, 30.0), ("255000元", 25.5), ("25.5万", 25.5), ("-3", -3.0), ("¥255,000元", 25.5),
     ("￥25.5万元", 25.5), ("RMB 25.5", 25.5), ("25.5（万元）", 25.5)],
)
def test_numbers_written_as_text_become_numbers(written: Any, number: float) -> None:
    assert one("price", written) == pytest.approx(number)
    assert isinstance(one("price", written), float)


@pytest.mark.parametrize("written", ["约25万", "面议", "25.5.1"])
def test_price_that_is_no_number_stays_as_text(written: str) -> None:
    assert one("price", written) == written


@pytest.mark.parametrize(
    ("key", "written", "clean"),
    [
        ("vin", " lzybev0a9r0000001 ", "LZYBEV0A9R0000001"),
        ("vin", "ＬＺＹＢＥＶ０Ａ９Ｒ００００００１", "LZYBEV0A9R0000001"),
        ("vin", "LZYBEV0A9-R000 0001", "LZYBEV0A9R0000001"),
        ("plate", "豫J·12345", "豫J12345"),
        ("plate", "豫ｊ・ｄ１２３４５", "豫JD12345"),
        ("plate", "豫J-D1234 5", "豫JD12345"),
        ("plate", "豫j12345", "豫J12345"),
        ("credit_code", "91410900 MA44ABCD1X", "91410900MA44ABCD1X"),
        ("plate", "豫JD12345（绿牌）", "豫JD12345"),
        # Written clean already: kept as written, unless it says there is no value.
        ("vin", "LZYBEV0A9R0000001", "LZYBEV0A9R0000001"),
        ("plate", "豫J1234警", "豫J1234警"),
        ("plate", "NONE", None),
        ("plate", "无", None),
        ("vin", "N/A", None),
        ("plate", "NULL", None),
    ],
)
def test_codes_are_folded_upper_cased_and_without_separators(key: str, written: str, clean: str) -> None:
    assert one(key, written) == clean


def test_text_is_trimmed_and_folded_and_empty_is_none() -> None:
    result = normalise(frame(agency=["  濮阳市  公安局 ", "", "   ", None],
                             remark=["ＯＫ", None, "\n", "EV  bus, 已于\n3 月报废"]))
    assert result["agency"].tolist() == ["濮阳市公安局", None, None, None]
    assert result["remark"].tolist() == ["OK", None, None, "EV bus,已于3月报废"]


@pytest.mark.parametrize(
    ("key", "written", "canonical"),
    [
        ("power", "纯电", "纯电动"), ("power", "BEV", "纯电动"), ("power", "C", "纯电动"), ("power", "ＰＨＥＶ", "插电式混合动力"),
        ("power", "A", "汽油"), ("power", "B", "柴油"), ("power", "P", "燃料电池"), ("power", "氢燃料", "燃料电池"),
        ("power", "增程", "增程式"), ("power", " 柴油 ", "柴油"),
        ("category", "环卫车", "市政环卫车"), ("category", "网约车", "网约出租车"), ("category", "公务车", "公务用车"),
        ("acquisition", "新购", "新增"), ("acquisition", "报废更新", "更新"),
        ("county", "经开区", "濮阳经济技术开发区"), ("county", "濮阳市华龙区", "华龙区"), ("county", "河南省濮阳市清丰县", "清丰县"),
        ("county", "濮阳县", "濮阳县"), ("county", "市直", "市直"),
        ("emission_standard", "国Ⅵ", "国六"), ("emission_standard", "国6b", "国六"), ("emission_standard", "国五", "国五"),
        # an explanation or a second spelling beside the value
        ("power", "纯电动（BEV）", "纯电动"), ("power", "纯电动/BEV", "纯电动"), ("category", "公务用车(一般)", "公务用车"),
        ("power", "燃料电池、氢能", "燃料电池"),
        # a generic ending the vocabulary lists without
        ("category", "执法执勤车辆", "执法执勤用车"), ("power", "天然气汽车", "天然气"), ("power", "纯电动车", "纯电动"),
        ("category", "公交车辆", "公交车"), ("county", "濮阳市华龙区（城区）", "华龙区"),
    ],
)
def test_vocabulary_synonyms_become_canonical_values(key: str, written: str, canonical: str) -> None:
    assert one(key, written) == canonical


@pytest.mark.parametrize(("key", "written"), [("category", "拖拉机"), ("power", "太阳能"), ("county", "郑州市"),
                                              ("acquisition", "租赁"), ("power", "纯电动/柴油")])
def test_unknown_vocabulary_value_stays_as_written(key: str, written: str) -> None:
    assert one(key, written) == written


@pytest.mark.parametrize(
    ("power", "plate", "settled"),
    [
        ("混合动力", "豫JF12345", "插电式混合动力"),
        ("O", "豫J·F12345", "插电式混合动力"),
        ("混动", "豫J12345", "油电混合"),
        ("混合动力", None, AMBIGUOUS_HYBRID_VALUE),
        ("混合动力", "豫J1234警", AMBIGUOUS_HYBRID_VALUE),
        ("混合动力", "not a plate", AMBIGUOUS_HYBRID_VALUE),
        ("混合动力汽车", "豫JF12345", "插电式混合动力"),
        ("混合动力（HEV/PHEV）", None, AMBIGUOUS_HYBRID_VALUE),
    ],
)
def test_hybrid_is_settled_by_the_plate(power: str, plate: str | None, settled: str) -> None:
    assert one("power", power, plate=plate) == settled


def test_same_rows_and_columns_and_nothing_raises_on_bad_data() -> None:
    raw = frame(
        vin=[12345678901234567.0, True, None],
        acquired_on=[dt.time(10, 0), float("nan"), "？"],
        price=[float("nan"), "abc", dt.datetime(2025, 1, 1)],
        category=[3.0, None, ""],
    )
    result = normalise(raw)
    assert result.shape == raw.shape
    assert list(result.columns) == list(raw.columns)
    assert result["_row"].tolist() == [2, 3, 4]
    assert result["price"].iloc[0] is None
    assert result["acquired_on"].iloc[1] is None
    assert result["category"].tolist() == ["3", None, None]


def test_whole_number_read_as_float_is_written_without_decimals() -> None:
    assert one("credit_code", 914109001234567.0) == "914109001234567"


@pytest.mark.parametrize(
    ("key", "written"),
    [("plate", "未上牌"), ("plate", "无"), ("plate", "—"), ("plate", "/"), ("exemption_reason", "无"),
     ("credit_code", "-"), ("price", "/"), ("acquired_on", "--"), ("brand_model", "暂无"), ("category", "/")],
)
def test_a_cell_saying_there_is_nothing_is_empty(key: str, written: str) -> None:
    assert one(key, written) is None


def test_no_emission_standard_is_not_applicable_not_empty() -> None:
    assert one("emission_standard", "无") == "不适用"
