"""Synthetic data for the benchmarks: a registry of agencies and realistic, valid acquisitions at scale.

Rows look like what operators send: a title row above the header, the template's Chinese headers, a
mix of categories and power types, plates that match the power, an exemption reason where a non-NEV
falls under a 100% rule. Every row is valid, so validate measures the full path and import commits all.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stdnum.cn import uscc

from fleet.base.identifiers import with_check_digit
from fleet.base.vocab import AGENCY_KINDS, COUNTIES, NEV_POWER_TYPES, PURE_ELECTRIC, SECTORS
from imports.headers import COLUMNS

CACHE = Path(__file__).resolve().parent / ".cache"

# The template's headers, as an operator's sheet writes them.
HEADERS = {c.key: c.header for c in COLUMNS}

# Category -> (share of NEVs, heavy vehicle). Which categories need a reason for a non-NEV is the rule
# pack's business: every non-NEV here carries one, and every combustion vehicle its standard.
_CATEGORIES = {
    "公务用车": (0.55, False),
    "执法执勤用车": (0.62, False),
    "公交车": (0.95, True),
    "市政环卫车": (0.80, True),
    "城市物流配送车": (0.85, False),
    "邮政快递车": (0.85, False),
    "巡游出租车": (0.90, False),
    "网约出租车": (0.92, False),
    "渣土车": (0.40, True),
    "水泥罐车": (0.40, True),
    "重型货车": (0.20, True),
    "其他": (0.30, False),
}
# What an agency of each kind buys, with weights: a police bureau buys no buses, a bus company no
# official cars.
_KIND_CATEGORIES = {
    "党政机关": {"公务用车": 65, "执法执勤用车": 35},
    "事业单位": {"公务用车": 50, "市政环卫车": 30, "其他": 20},
    "国有企业": {"公交车": 35, "市政环卫车": 15, "城市物流配送车": 15, "邮政快递车": 15, "重型货车": 10, "巡游出租车": 10},
    "民营企业": {"城市物流配送车": 25, "网约出租车": 20, "巡游出租车": 10, "渣土车": 15, "水泥罐车": 15, "重型货车": 15},
}
# Enterprises buy most vehicles, public bodies the rest.
_ENTERPRISE_SHARE = 0.8
_ENTERPRISES = ("国有企业", "民营企业")
# Lot sizes: a public body's tender, and an operator's (log-normal: median 12, mean about 20).
_PUBLIC_LOTS = (1, 1, 2, 2, 3, 4, 5, 8)
_OPERATOR_LOT = (2.5, 1.0)
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


def agency_kind(index: int) -> str:
    return AGENCY_KINDS.values[index % len(AGENCY_KINDS.values)] if index % 3 else "党政机关"


def agencies(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """Registry entries in the shape fleet.domain.agencies.upsert_agencies takes."""
    rng = random.Random(seed)
    sectors, counties = SECTORS.values, COUNTIES.values
    return [
        {
            "name": agency_name(i),
            "kind": agency_kind(i),
            "sector": rng.choice(sectors),
            "county": counties[i % len(counties)],
            "contact_emails": [f"fleet{i}@example.org"],
            "credit_code": credit_code(i),
        }
        for i in range(count)
    ]


def _agency_weights(count: int) -> list[float]:
    """How much each agency buys: enterprises by Zipf's law (a few operators buy tens of thousands
    of vehicles a year, most a handful), public bodies evenly."""
    enterprises = [i for i in range(count) if agency_kind(i) in _ENTERPRISES]
    random.Random(5).shuffle(enterprises)
    rank = {agency: n + 1 for n, agency in enumerate(enterprises)}
    harmonic = sum(1 / r for r in rank.values()) or 1
    public = (count - len(enterprises)) or 1
    return [
        _ENTERPRISE_SHARE / (rank[i] * harmonic) if i in rank else (1 - _ENTERPRISE_SHARE) / public
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
    """Valid acquisitions keyed by the template's keys; numbered from `start` so VINs stay unique.

    Fleets buy in lots: one tender delivers identical vehicles on one day — a few cars for a public
    body, tens of buses or taxis for an operator — so rows come in runs that share everything but
    the VIN, the plate and the price."""
    rng = random.Random(seed)
    days = (last_day - first_day).days
    # Lots are drawn, so an agency's chance of the next lot is its share over its mean lot size.
    mean_lot = {True: math.exp(_OPERATOR_LOT[0] + _OPERATOR_LOT[1] ** 2 / 2), False: statistics.mean(_PUBLIC_LOTS)}
    weights = [w / mean_lot[agency_kind(i) in _ENTERPRISES] for i, w in enumerate(_agency_weights(len(agency_names)))]
    cumulative = list(itertools.accumulate(weights))
    number = start
    while number < start + count:
        agency = rng.choices(range(len(agency_names)), cum_weights=cumulative)[0]
        kind = agency_kind(agency)
        choices = _KIND_CATEGORIES[kind]
        category = rng.choices(list(choices), list(choices.values()))[0]
        nev_share, heavy = _CATEGORIES[category]
        nev = rng.random() < nev_share
        if nev:
            power = rng.choice(_NEV_POWERS)
        else:
            power = rng.choice(_HEAVY_COMBUSTION_POWERS if heavy else _COMBUSTION_POWERS)
        if kind in _ENTERPRISES:
            size = min(300, max(1, int(rng.lognormvariate(*_OPERATOR_LOT))))
        else:
            size = rng.choice(_PUBLIC_LOTS)
        lot = {
            "agency": agency_names[agency],
            "credit_code": credit_code(agency),
            "category": category,
            "power": power,
            "acquisition": "更新" if rng.random() < 0.4 else "新增",
            "acquired_on": first_day + dt.timedelta(days=rng.randrange(days)),
            "brand_model": rng.choice(_BRANDS),
            "emission_standard": None if nev else "国六",
            "county": COUNTIES.values[agency % len(COUNTIES.values)],
            "exemption_reason": None if nev else "续航和载重不能满足作业需求",
        }
        for number in range(number, min(number + size, start + count)):
            yield {
                **lot,
                "vin": vin(number),
                "plate": plate(number, power) if rng.random() < 0.9 else None,
                "price": round(rng.uniform(8, 180), 2),
                "remark": "批量采购" if rng.random() < 0.1 else None,
            }
        number += 1


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
    # "lots": the rows come in purchase lots (see acquisitions); workbooks made before are not reused.
    path = CACHE / f"acquisitions-lots-{rows}-{agency_count}.xlsx"
    if not path.exists():
        names = [agency_name(i) for i in range(agency_count)]
        write_workbook(path, acquisitions(rows, names))
    return path
