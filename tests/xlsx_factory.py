"""Test helper: real xlsx uploads written with openpyxl, and valid acquisition rows to fill them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from fleet.base.identifiers import with_check_digit
from imports.headers import COLUMNS

HEADERS: dict[str, str] = {c.key: c.header for c in COLUMNS}


def vin(serial: int, wmi: str = "LZY") -> str:
    """A well-formed Chinese VIN with a correct check digit, distinct for each serial."""
    return with_check_digit(f"{wmi}BEV0A0R{serial:07d}")


def acquisition(serial: int = 1, **overrides: Any) -> dict[str, Any]:
    """A valid row (canonical keys) for an electric bus of a Puyang agency; override any field."""
    row: dict[str, Any] = {
        "agency": "濮阳市公共交通有限公司",
        "credit_code": None,
        "vin": vin(serial),
        "plate": f"豫JD{serial:05d}",
        "category": "公交车",
        "power": "纯电动",
        "acquisition": "新增",
        "acquired_on": dt.date(2025, 3, 5),
        "brand_model": "宇通牌ZK6105BEVG",
        "emission_standard": None,
        "county": "华龙区",
        "price": 120.5,
        "exemption_reason": None,
        "remark": None,
    }
    row.update(overrides)
    return row


def sheet_rows(rows: Iterable[dict[str, Any]], keys: Sequence[str] | None = None,
               headers: dict[str, str] | None = None) -> list[list[Any]]:
    """A header row then one list per acquisition; headers maps keys to the header texts to write."""
    keys = list(keys or HEADERS)
    names = {**HEADERS, **(headers or {})}
    return [[names[k] for k in keys], *([r.get(k) for k in keys] for r in rows)]


def write_workbook(path: Path, sheets: dict[str, list[list[Any]]], merged: dict[str, list[str]] | None = None) -> Path:
    """Write sheets (name -> rows of cell values, from A1) to path; merged lists ranges like "A1:N1"."""
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
        for cell_range in (merged or {}).get(name, []):
            sheet.merge_cells(cell_range)
    book.save(path)
    return path


def write_upload(path: Path, rows: Iterable[dict[str, Any]], **kwargs: Any) -> Path:
    """The simplest upload: one sheet with the template's headers and the given rows."""
    return write_workbook(path, {"车辆购置": sheet_rows(rows, **kwargs)})
