"""Synthetic data for the benchmarks: a registry of agencies and realistic, valid acquisitions at scale.

Rows look like what operators send: a title row above the header, the template's Chinese headers, a
mix of categories and power types, plates that match the power, an exemption reason where a non-NEV
falls under a 100% rule. Every row is valid, so validate measures the full path and import commits all.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stdnum.cn import uscc

from fleet.identifiers import with_check_digit
from fleet.vocab import AGENCY_KINDS, COUNTIES, NEV_POWER_TYPES, PURE_ELECTRIC, SECTORS
from imports.headers import COLUMNS

CACHE = Path(__file__).resolve().parent / ".cache"

# The template's headers (SPEC §3.1), as an operator's sheet writes them.
HEADERS = {c.key: c.header for c in COLUMNS}

# Category -> (weight, share of NEVs, heavy vehicle). Which categories need a reason for a non-NEV is
# the rule pack's business: every non-NEV here carries one, and every combustion vehicle its standard.
_CATEGORIES = {
    "公务用车": (30, 0.55, False),
    "执法执勤用车": (15, 0.62, False),
    "公交车": (10, 0.95, True),
    "市政环卫车": (8, 0.80, True),
    "城市物流配送车": (8, 0.85, False),
    "邮政快递车": (5, 0.85, False),
    "巡游出租车": (6, 0.90, False),
    "网约出租车": (6, 0.92, False),
    "渣土车": (3, 0.40, True),
    "水泥罐车": (3, 0.40, True),
    "重型货车": (4, 0.20, True),
    "其他": (2, 0.30, False),
}
_NEV_POWERS = ("纯电动", "纯电动", "纯电动", "插电式混合动力", "增程式", "燃料电池")
_COMBUSTION_POWERS = ("汽油", "汽油", "柴油", "天然气", "油电混合")
_HEAVY_COMBUSTION_POWERS = ("柴油", "柴油", "天然气")
_BRANDS = ("比亚迪 秦PLUS", "宇通 ZK6126BEVG", "吉利 帝豪", "大众 帕萨特", "红旗 H5", "东风 天锦", "福田 欧马可", "中通 LCK6809EVG")
# Serial characters of a plate: digits and letters without I and O (GA 36).
_SERIAL = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def agency_name(index: int) -> str:
    return f"濮阳测试单位{index:05d}"


def credit_code(index: int) -> str:
    """A valid unified social credit code: 党政机关 (11), Puyang's division code, a numbered body."""
    body = f"11410900{index:09d}"
    return body + uscc.calc_check_digit(body)


def agencies(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """Registry entries in the shape fleet.agencies.upsert_agencies takes."""
    rng = random.Random(seed)
    kinds, sectors, counties = AGENCY_KINDS.values, SECTORS.values, COUNTIES.values
    return [
        {
            "name": agency_name(i),
            "kind": kinds[i % len(kinds)] if i % 3 else "党政机关",
            "sector": rng.choice(sectors),
            "county": counties[i % len(counties)],
            "contact_emails": [f"fleet{i}@example.org"],
            "credit_code": credit_code(i),
        }
        for i in range(count)
    ]


def _serial(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, len(_SERIAL))
        chars.append(_SERIAL[digit])
    return "".join(reversed(chars))


def vin(number: int) -> str:
    """A unique, well-formed Chinese VIN (WMI L…) with a correct check digit."""
    body = []
    n = number
    for _ in range(6):
        n, digit = divmod(n, len(_VIN_CHARS))
        body.append(_VIN_CHARS[digit])
    # WMI + descriptor (5) + check placeholder + model year S (2025) + plant + 6-character serial.
    return with_check_digit("LSV" + "BD8E4" + "0" + "S" + "A" + "".join(reversed(body)))


def plate(number: int, power: str) -> str:
    if power == PURE_ELECTRIC:
        return "豫JD" + _serial(number, 5)
    if power in NEV_POWER_TYPES:
        return "豫JF" + _serial(number, 5)
    # Ordinary plates: a letter first keeps them apart from the NEV plates' letter sets.
    return "豫JZ" + _serial(number, 4)


def acquisitions(count: int, agency_names: list[str], *, seed: int = 11, start: int = 0,
                 first_day: dt.date = dt.date(2025, 1, 1), last_day: dt.date = dt.date(2026, 10, 31)) -> Iterator[dict[str, Any]]:
    """Valid acquisitions keyed by the template's keys; numbered from `start` so VINs stay unique."""
    rng = random.Random(seed)
    names = list(_CATEGORIES)
    weights = [c[0] for c in _CATEGORIES.values()]
    days = (last_day - first_day).days
    for number in range(start, start + count):
        category = rng.choices(names, weights)[0]
        _, nev_share, heavy = _CATEGORIES[category]
        nev = rng.random() < nev_share
        if nev:
            power = rng.choice(_NEV_POWERS)
        else:
            power = rng.choice(_HEAVY_COMBUSTION_POWERS if heavy else _COMBUSTION_POWERS)
        registered = rng.random() < 0.9
        agency = number % len(agency_names)
        yield {
            "agency": agency_names[agency],
            "credit_code": credit_code(agency),
            "vin": vin(number),
            "plate": plate(number, power) if registered else None,
            "category": category,
            "power": power,
            "acquisition": "更新" if rng.random() < 0.4 else "新增",
            "acquired_on": first_day + dt.timedelta(days=rng.randrange(days)),
            "brand_model": rng.choice(_BRANDS),
            "emission_standard": None if nev else "国六",
            "county": COUNTIES.values[number % len(COUNTIES.values)],
            "price": round(rng.uniform(8, 180), 2),
            "exemption_reason": None if nev else "续航和载重不能满足作业需求",
            "remark": "批量采购" if rng.random() < 0.1 else None,
        }


def write_workbook(path: Path, rows: Iterator[dict[str, Any]], *, title: str = "2025年度车辆购置情况统计表") -> Path:
    """An xlsx as an operator's office makes it: a title row, then the header, then the rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import numbers

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("车辆购置")
    sheet.append([title])
    sheet.append(list(HEADERS.values()))
    for row in rows:
        values = []
        for key in HEADERS:
            value = row[key]
            if isinstance(value, dt.date):
                cell = WriteOnlyCell(sheet, value)
                cell.number_format = numbers.FORMAT_DATE_YYYYMMDD2
                value = cell
            values.append(value)
        sheet.append(values)
    tmp = path.with_suffix(".tmp.xlsx")
    workbook.save(tmp)
    tmp.replace(path)
    return path


def cached_workbook(rows: int, agency_count: int) -> Path:
    """The benchmark workbook, written once per size and kept under bench/.cache/ (git-ignored)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"acquisitions-{rows}-{agency_count}.xlsx"
    if not path.exists():
        names = [agency_name(i) for i in range(agency_count)]
        write_workbook(path, acquisitions(rows, names))
    return path
