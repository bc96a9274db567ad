"""The pandera schema on normalised frames: each check's name is its error code, and no cascades."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from fleet.base.identifiers import with_check_digit
from imports.headers import KEYS
from imports.normalise import normalise
from imports.schema import AcquisitionSchema, ImportPolicy, failures

POLICY = ImportPolicy(
    full_nev_categories=frozenset({"公交车", "市政环卫车"}),
    emission_scopes=((frozenset({"重型货车"}), frozenset({"柴油", "汽油", "天然气", "油电混合", "其他"})),),
)
VIN = with_check_digit("LSVBD8E40SA000001")


def row(**values: Any) -> dict[str, Any]:
    base = dict.fromkeys(KEYS)
    base.update(
        agency="濮阳市公共交通有限公司",
        vin=VIN,
        plate="豫JD12345",
        category="公交车",
        power="纯电动",
        acquisition="新增",
        acquired_on=dt.date(2025, 3, 5),
        county="华龙区",
        price=120.5,
    )
    base.update(values)
    return base


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    df["_sheet"] = "车辆"
    df["_row"] = range(2, 2 + len(df))
    return df


def found(*rows: dict[str, Any], policy: ImportPolicy = POLICY) -> list[tuple[int, str, str]]:
    cases = failures(frame(*rows), policy)
    return sorted((int(i), c, code) for i, c, code in cases[["index", "column", "code"]].itertuples(index=False))


def test_a_valid_row_has_no_failures():
    assert found(row()) == []


@pytest.mark.parametrize("column", ["agency", "vin", "category", "power", "acquisition", "acquired_on", "county"])
def test_required_columns_report_required_only(column):
    assert found(row(**{column: None})) == [(0, column, "required")]
    assert found(row(**{column: "  "})) == [(0, column, "required")]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"vin": "LSVBD8E40SA00000"}, [(0, "vin", "vin_format")]),
        ({"vin": "LSVBD8E4OSA000001"}, [(0, "vin", "vin_format")]),
        ({"vin": "LSVBD8E41SA000001"}, [(0, "vin", "vin_check_digit")]),
        ({"plate": "豫J1234"}, [(0, "plate", "plate_format")]),
        ({"plate": "京AD12345"}, [(0, "plate", "plate_not_local")]),
        ({"plate": "豫J12345"}, [(0, "plate", "plate_power_mismatch")]),
        ({"category": "飞机"}, [(0, "category", "unknown_category")]),
        ({"power": "核动力"}, [(0, "power", "unknown_power_type")]),
        ({"power": "混合动力", "plate": None}, [(0, "power", "power_ambiguous")]),
        ({"acquisition": "租赁"}, [(0, "acquisition", "unknown_acquisition_type")]),
        ({"county": "郑州"}, [(0, "county", "unknown_county")]),
        ({"acquired_on": "2025-02-30"}, [(0, "acquired_on", "date_invalid")]),
        ({"acquired_on": dt.date(2014, 12, 31)}, [(0, "acquired_on", "date_out_of_range")]),
        ({"acquired_on": dt.date.today() + dt.timedelta(days=1)}, [(0, "acquired_on", "date_out_of_range")]),
        ({"price": -1.0}, [(0, "price", "price_invalid")]),
        ({"price": "十万"}, [(0, "price", "price_invalid")]),
        ({"credit_code": "91410900MA1234567X"}, [(0, "credit_code", "credit_code_invalid")]),
    ],
)
def test_each_bad_value_gives_its_own_code(values, expected):
    assert found(row(**values)) == expected


def test_earliest_and_today_are_in_range():
    assert found(row(acquired_on=dt.date(2015, 1, 1)), row(vin=with_check_digit("LSVBD8E40SA000002"), acquired_on=dt.date.today())) == []


def test_valid_credit_code_and_zero_price_pass():
    assert found(row(credit_code="91410900MA44L6PX5D", price=0.0)) == []


def test_second_and_later_occurrences_are_duplicates():
    assert found(row(), row(), row()) == [(1, "vin", "duplicate_vin"), (2, "vin", "duplicate_vin")]


def test_missing_vin_is_required_not_format_nor_duplicate():
    assert found(row(vin=None), row(vin=None)) == [(0, "vin", "required"), (1, "vin", "required")]


def test_malformed_repeated_vin_is_a_format_error_only():
    assert found(row(vin="BAD"), row(vin="BAD")) == [(0, "vin", "vin_format"), (1, "vin", "vin_format")]


def test_unknown_power_does_not_also_mismatch_the_plate():
    assert found(row(power="核动力", plate="豫J12345")) == [(0, "power", "unknown_power_type")]


def test_bad_plate_does_not_also_mismatch_the_power():
    assert found(row(plate="豫J1", power="柴油", category="公务用车")) == [(0, "plate", "plate_format")]


@pytest.mark.parametrize(
    ("plate", "power"),
    [("豫JD12345", "纯电动"), ("豫JF12345", "插电式混合动力"), ("豫JF12345", "燃料电池"), ("豫J12345", "汽油"), ("豫J1234警", "汽油"), ("豫J12345D", "纯电动")],
)
def test_consistent_plates_pass(plate, power):
    assert found(row(plate=plate, power=power, category="公务用车")) == []


def test_non_nev_under_a_full_rule_needs_a_reason_of_five_characters():
    diesel_bus = {"power": "柴油", "plate": "豫J12345"}
    assert found(row(**diesel_bus)) == [(0, "exemption_reason", "exemption_reason_required")]
    assert found(row(**diesel_bus, exemption_reason="不够长")) == [(0, "exemption_reason", "exemption_reason_required")]
    assert found(row(**diesel_bus, exemption_reason="山区线路续航不足")) == []


def test_the_full_rule_categories_come_from_the_policy():
    diesel_car = {"power": "柴油", "plate": "豫J12345", "category": "公务用车"}
    assert found(row(**diesel_car)) == []
    strict = ImportPolicy(full_nev_categories=frozenset({"公务用车"}))
    assert found(row(**diesel_car), policy=strict) == [(0, "exemption_reason", "exemption_reason_required")]


def test_unknown_category_does_not_also_need_a_reason():
    assert found(row(category="飞机", power="柴油", plate="豫J12345")) == [(0, "category", "unknown_category")]


def test_combustion_heavy_truck_needs_an_emission_standard():
    truck = {"category": "重型货车", "power": "柴油", "plate": "豫J12345"}
    assert found(row(**truck)) == [(0, "emission_standard", "required")]
    assert found(row(**truck, emission_standard="国六")) == []
    assert found(row(category="重型货车")) == []  # an electric truck has no tailpipe standard


def test_a_vin_written_as_a_number_is_text_after_normalisation_and_fails_its_format():
    cases = failures(normalise(frame(row(vin=12345))), POLICY)
    assert list(cases.itertuples(index=False, name=None)) == [(0, "vin", "vin_format")]


def test_a_value_normalisation_should_have_made_text_is_a_fault_of_the_app_not_of_the_file():
    with pytest.raises(RuntimeError, match="dtype"):
        failures(frame(row(vin=12345)), POLICY)


def test_uploads_and_plans_both_name_their_shared_vocabulary_checks_by_code():
    """Whichever of the two schemas pandera builds first, both report the codes, not method names."""
    from imports.plans import PlanSchema

    codes = {"unknown_category", "unknown_power_type", "power_ambiguous", "unknown_acquisition_type", "unknown_county"}
    for model in (PlanSchema, AcquisitionSchema, PlanSchema):
        names = {check.name for column in model.to_schema().columns.values() for check in column.checks}
        assert codes <= names, model.__name__
        assert not any(name.startswith("_") for name in names), model.__name__
