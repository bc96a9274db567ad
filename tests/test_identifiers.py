"""Identifier checks: VIN check digit, GA 36 plates and their power, credit codes."""

import random

import pytest

from fleet.base.identifiers import (
    PlateKind,
    clean_code,
    credit_code_ok,
    plate_is_local,
    plate_kind,
    plate_matches_power,
    vin_check_digit,
    vin_check_digit_mandatory,
    vin_check_digit_ok,
    vin_check_digits_ok,
    vin_is_well_formed,
    with_check_digit,
)


def test_the_textbook_vin_has_check_digit_x():
    assert vin_check_digit("1M8GDM9AXKP042788") == "X"
    assert vin_check_digit_ok("1M8GDM9AXKP042788")


# VINs published outside this project (encyclopaedia and decoder examples), with their check digits
# as printed, so the check is tested against the world and not against its own arithmetic.
PUBLISHED_VINS = ["1M8GDM9AXKP042788", "11111111111111111", "1HGCM82633A004352", "JH4KA7561PC008269"]


@pytest.mark.parametrize("vin", PUBLISHED_VINS)
def test_published_vins_pass_and_any_other_check_digit_fails(vin):
    assert vin_check_digit_ok(vin) and vin_check_digit(vin) == vin[8]
    others = [vin[:8] + digit + vin[9:] for digit in "0123456789X" if digit != vin[8]]
    assert not any(vin_check_digit_ok(other) for other in others)
    assert vin_check_digits_ok([vin, *others]).tolist() == [True] + [False] * 10


def test_a_chinese_vin_with_a_wrong_check_digit_fails_and_is_mandatory():
    vin = with_check_digit("LGXCE4CB0S0123456")
    wrong = vin[:8] + ("0" if vin[8] != "0" else "1") + vin[9:]
    assert vin_check_digit_ok(vin) and not vin_check_digit_ok(wrong)
    assert vin_check_digit_mandatory(wrong)
    assert not vin_check_digit_mandatory("KMTG341ABRU123456")


def test_many_vins_checked_at_once_agree_with_one_at_a_time():
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    rng = random.Random(7)
    written = ["".join(rng.choices(alphabet, k=17)) for _ in range(3000)]
    right = [with_check_digit(vin) for vin in written]
    vins = written + right + ["1M8GDM9AXKP042788", "1M8GDM9A0KP042788"]
    expected = [vin_check_digit_ok(vin) for vin in vins]
    assert vin_check_digits_ok(vins).tolist() == expected
    # Both outcomes and the X check digit are among the cases compared.
    assert sum(expected) >= 3000 and not all(expected)
    assert any(vin[8] == "X" for vin in right) and any(vin[8] == "X" and not ok for vin, ok in zip(written, expected))


def test_no_vins_checked_at_once_is_an_empty_answer():
    assert vin_check_digits_ok([]).tolist() == []


@pytest.mark.parametrize("vin", ["LGXCE4CB0S012345", "LGXCE4CB0S01234567", "LGXCE4CB0S012345I", "LGXCE4CB0S01234O6"])
def test_malformed_vins(vin):
    assert not vin_is_well_formed(vin)


def test_clean_code_folds_width_case_and_separators():
    assert clean_code("豫ｊ·ｄ１２３４５") == "豫JD12345"
    assert clean_code(" lgx ce4cb-0s0123456 ") == "LGXCE4CB0S0123456"


@pytest.mark.parametrize(
    ("plate", "kind"),
    [
        ("豫JA1234", PlateKind.ORDINARY),
        ("豫JD12345", PlateKind.NEV_PURE_ELECTRIC),
        ("豫JA12345", PlateKind.NEV_PURE_ELECTRIC),
        ("豫JF12345", PlateKind.NEV_OTHER),
        ("豫JK1A345", PlateKind.NEV_OTHER),
        ("豫J12345D", PlateKind.NEV_PURE_ELECTRIC),
        ("豫J12345F", PlateKind.NEV_OTHER),
        ("豫J1234警", PlateKind.SPECIAL),
        ("豫X1234应急", PlateKind.SPECIAL),
        ("豫S1234应急", PlateKind.SPECIAL),
        ("豫J1234挂", PlateKind.SPECIAL),
        ("豫J1234学", PlateKind.SPECIAL),
        ("豫JI1234", None),
        ("豫JO1234", None),
        ("JA12345", None),
        ("豫J123", None),
    ],
)
def test_plate_kinds(plate, kind):
    assert plate_kind(plate) is kind


def test_plate_outside_puyang_is_well_formed_but_not_local():
    assert plate_kind("京AD12345") is PlateKind.NEV_PURE_ELECTRIC
    assert not plate_is_local("京AD12345") and plate_is_local("豫JD12345")


@pytest.mark.parametrize(
    ("plate", "power", "consistent"),
    [
        ("豫JD12345", "纯电动", True),
        ("豫JF12345", "插电式混合动力", True),
        ("豫JF12345", "燃料电池", True),
        ("豫JF12345", "增程式", True),
        ("豫JA1234", "汽油", True),
        ("豫JA1234", "油电混合", True),
        ("豫JD12345", "汽油", False),
        ("豫JF12345", "纯电动", False),
        ("豫JA1234", "纯电动", False),
        ("豫J1234警", "纯电动", True),
        ("豫J1234警", "柴油", True),
    ],
)
def test_plate_power_consistency(plate, power, consistent):
    assert plate_matches_power(plate_kind(plate), power) is consistent


def test_credit_code_check_character():
    assert credit_code_ok("91110000600037341L")
    assert not credit_code_ok("91110000600037341X")
