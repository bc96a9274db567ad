"""Test helper: registration extracts written the way the registration system exports them:
a title row, the Chinese headers or the field abbreviations, GA 24 codes or their names, plates
without the province character."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from fleet.domain.registrations import codes

# key -> (Chinese header, abbreviation), in the system's column order.
COLUMNS = {
    "plate_kind": ("号牌种类", "HPZL"),
    "plate": ("号牌号码", "HPHM"),
    "vin": ("车辆识别代号", "CLSBDH"),
    "vehicle_type": ("车辆类型", "CLLX"),
    "usage": ("使用性质", "SYXZ"),
    "owner": ("机动车所有人", "SYR"),
    "owner_id": ("身份证明号码", "SFZMHM"),
    "fuel": ("燃料种类", "RLZL"),
    "emission_standard": ("排放标准", "PFBZ"),
    "registered_on": ("初次登记日期", "CCDJRQ"),
    "status": ("机动车状态", "ZT"),
}
TITLE = "濮阳市公安局交通警察支队车辆管理所 机动车登记信息（新注册登记）"
_TABLES = {
    "plate_kind": codes.PLATE_KINDS,
    "vehicle_type": codes.VEHICLE_TYPES,
    "usage": codes.USAGES,
    "fuel": codes.FUELS,
    "status": codes.STATUSES,
}


def registration(vin: str, **values: Any) -> dict[str, Any]:
    """A registration as codes (plate as exported, without 豫): a petrol official car by default."""
    row = {
        "plate_kind": "02",
        "plate": "J12345",
        "vin": vin,
        "vehicle_type": "K33",
        "usage": "A",
        "owner": "濮阳市公安局",
        "owner_id": None,
        "fuel": "A",
        "emission_standard": "国六",
        "registered_on": dt.date(2026, 1, 5),
        "status": "A",
    }
    row.update(values)
    return row


def _cells(row: dict[str, Any], names: bool) -> list[Any]:
    cells = []
    for key in COLUMNS:
        value = row.get(key)
        if names and key in _TABLES and value is not None:
            value = _TABLES[key].names.get(value, value)
        cells.append(value)
    return cells


def extract_rows(rows: Iterable[dict[str, Any]], *, abbreviations: bool = True, names: bool = False,
                 title: bool = True) -> list[list[Any]]:
    header = [abbr if abbreviations else zh for zh, abbr in COLUMNS.values()]
    return [*([[TITLE]] if title else []), header, *(_cells(r, names) for r in rows)]


def write_extract(path: Path, rows: Iterable[dict[str, Any]], **style: Any) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = "机动车登记信息"
    for row in extract_rows(rows, **style):
        sheet.append(row)
    book.save(path)
    return path


def write_extract_csv(path: Path, rows: Iterable[dict[str, Any]], *, encoding: str = "gb18030", **style: Any) -> Path:
    """The same extract as CSV, dates as text (2026/1/5), as Excel on Chinese Windows saves it."""
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        for row in extract_rows(rows, **style):
            writer.writerow([f"{v.year}/{v.month}/{v.day}" if isinstance(v, dt.date) else ("" if v is None else v) for v in row])
    return path
