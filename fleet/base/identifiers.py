"""Identifier checks: VIN (ISO 3779 / GB 16735), plates (GA 36-2018), credit codes (GB 32100)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from enum import Enum

import numpy as np
from stdnum.cn import uscc

from fleet.base.vocab import NEV_POWER_TYPES, PLATES, PURE_ELECTRIC

_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9))),
    **dict(zip("JKLMN", range(1, 6))),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10))),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
VIN_PATTERN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
# The same transliteration indexed by ASCII code, for checking many VINs at once.
_VIN_VALUE_BY_CODE = np.zeros(128, dtype=np.int64)
_VIN_VALUE_BY_CODE[[ord(c) for c in _VIN_VALUES]] = list(_VIN_VALUES.values())


def clean_code(text: str) -> str:
    """Full-width to half-width, upper case, without spaces or the plate separator (·, ・, -, .)."""
    folded = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s·・•‧∙.\-_]", "", folded).upper()


def vin_check_digit(vin: str) -> str:
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def vin_is_well_formed(vin: str) -> bool:
    return bool(VIN_PATTERN.match(vin))


def vin_check_digit_ok(vin: str) -> bool:
    return vin_is_well_formed(vin) and vin[8] == vin_check_digit(vin)


def vin_check_digits_ok(vins: Sequence[str]) -> np.ndarray:
    """vin_check_digit_ok for many well-formed VINs at once (vin_is_well_formed must hold for each)."""
    if not vins:
        return np.zeros(0, dtype=bool)
    codes = np.frombuffer("".join(vins).encode("ascii"), dtype=np.uint8).reshape(len(vins), len(_VIN_WEIGHTS))
    remainder = _VIN_VALUE_BY_CODE[codes] @ np.array(_VIN_WEIGHTS) % 11
    expected = np.where(remainder == 10, ord("X"), remainder + ord("0"))
    return codes[:, 8] == expected


def vin_check_digit_mandatory(vin: str) -> bool:
    """GB 16735 makes the check digit mandatory for vehicles made in China (WMI starting with L)."""
    return vin.startswith("L")


def with_check_digit(vin17: str) -> str:
    """The VIN with position 9 set to its check digit (for demo data and tests)."""
    return vin17[:8] + vin_check_digit(vin17) + vin17[9:]


def credit_code_ok(code: str) -> bool:
    return uscc.is_valid(code)


class PlateKind(Enum):
    ORDINARY = "ordinary"
    NEV_PURE_ELECTRIC = "nev_pure_electric"
    NEV_OTHER = "nev_other"
    SPECIAL = "special"


_SERIAL = "[A-HJ-NP-Z0-9]"
_PREFIX = f"[{PLATES.provinces}][A-Z]"
_SPECIAL_PATTERNS = (
    re.compile(f"^{_PREFIX}{_SERIAL}{{4}}(警|挂|学)$"),
    re.compile(f"^{_PREFIX}{_SERIAL}{{4}}应急$"),
)
_ORDINARY = re.compile(f"^{_PREFIX}{_SERIAL}{{5}}$")
_NEV_LETTERS = "".join(sorted(PLATES.nev_pure_electric_letters | PLATES.nev_other_letters))
_NEV_SMALL = re.compile(f"^{_PREFIX}([{_NEV_LETTERS}]){_SERIAL}{{5}}$")
_NEV_LARGE = re.compile(f"^{_PREFIX}[0-9]{{5}}([DF])$")


def plate_kind(plate: str) -> PlateKind | None:
    """What a cleaned plate is, or None when it is not a well-formed GA 36 plate."""
    if any(p.match(plate) for p in _SPECIAL_PATTERNS):
        return PlateKind.SPECIAL
    if match := _NEV_SMALL.match(plate) or _NEV_LARGE.match(plate):
        letter = match.group(1)
        if letter in PLATES.nev_pure_electric_letters:
            return PlateKind.NEV_PURE_ELECTRIC
        return PlateKind.NEV_OTHER
    if _ORDINARY.match(plate):
        return PlateKind.ORDINARY
    return None


def plate_is_local(plate: str) -> bool:
    return plate.startswith(PLATES.home_prefix)


def plate_matches_power(kind: PlateKind, power: str) -> bool:
    """D plate for battery-electric, F plate for other NEVs, ordinary plate for combustion; special plates pass."""
    if kind is PlateKind.SPECIAL:
        return True
    if kind is PlateKind.NEV_PURE_ELECTRIC:
        return power == PURE_ELECTRIC
    if kind is PlateKind.NEV_OTHER:
        return power in NEV_POWER_TYPES and power != PURE_ELECTRIC
    return power not in NEV_POWER_TYPES


def has_control_characters(text: str) -> bool:
    """Line breaks, tabs and other control or invisible format characters: a name with one breaks
    mail headers, log lines and file names, so names are refused with them at entry."""
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)
