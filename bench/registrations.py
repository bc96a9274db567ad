"""Registration extract benchmark: `flask registrations load` of an extract against `flask import` of
an acquisition upload of the same number of rows.

    .venv/bin/python bench/registrations.py --rows 200000

Target (issue 16): loading a 200,000-row extract takes at most 3× the time of importing 200,000
acquisitions. Both run as whole processes (interpreter start included) on the same database (SQLite in
bench/.cache/, or TEST_DATABASE_URL), emptied before each run; the workbooks are made once and kept in
bench/.cache/. The extract is written the way the registration system exports it: a title row, the field
abbreviations, GA 24 codes, plates without the province character, owners as registered (some with
spaces and full-width digits) and, on every other row, their credit codes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _data  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import_bench = importlib.import_module("import")  # bench/import.py: its database and process helpers

TARGET = 3.0  # load time / import time
_FUELS = {"纯电动": "C", "插电式混合动力": "O", "增程式": "O", "燃料电池": "P", "汽油": "A", "柴油": "B",
          "天然气": "E", "油电混合": "O"}
_USAGES = {"公交车": "C", "巡游出租车": "D", "网约出租车": "T", "执法执勤用车": "H"}
_HEADER = ["HPZL", "HPHM", "CLSBDH", "CLLX", "SYXZ", "SYR", "SFZMHM", "RLZL", "PFBZ", "CCDJRQ", "ZT"]


def registrations(rows: int, agency_count: int) -> Iterator[list[Any]]:
    """One registration per acquisition of the acquisition benchmark, registered a few days after it."""
    names = [_data.agency_name(i) for i in range(agency_count)]
    codes = {name: _data.credit_code(i) for i, name in enumerate(names)}
    for n, row in enumerate(_data.acquisitions(rows, names)):
        plate = row["plate"]
        green = plate is not None and plate[2] in "DF"
        kind = ("51" if row["category"] in ("公交车", "重型货车") else "52") if green else "02"
        # Owners as a registration clerk writes them: now and then with spaces and full-width forms.
        owner = f"{row['agency'][:3]} {row['agency'][3:]}".replace("0", "０") if n % 3 == 0 else row["agency"]
        yield [
            kind, plate[1:] if plate else None, row["vin"], "K33", _USAGES.get(row["category"], "A"), owner,
            codes[row["agency"]] if n % 2 else None, _FUELS.get(row["power"], "Z"), row["emission_standard"],
            row["acquired_on"] + dt.timedelta(days=3 + n % 20), "A",
        ]


def cached_extract(rows: int, agency_count: int) -> Path:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import numbers

    _data.CACHE.mkdir(exist_ok=True)
    path = _data.CACHE / f"registrations-{rows}-{agency_count}.xlsx"
    if path.exists():
        return path
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("机动车登记信息")
    sheet.append(["濮阳市公安局交通警察支队车辆管理所 机动车登记信息"])
    sheet.append(_HEADER)
    for values in registrations(rows, agency_count):
        cell = WriteOnlyCell(sheet, values[9])
        cell.number_format = numbers.FORMAT_DATE_YYYYMMDD2
        values[9] = cell
        sheet.append(values)
    tmp = path.with_suffix(".tmp.xlsx")
    workbook.save(tmp)
    tmp.replace(path)
    return path


def empty_registrations(url: str) -> None:
    from fleet.base import db
    from fleet.base.models import AuditEntry, Registration, RegistrationExtract, RegistrationOwner

    engine = db.make_engine(url)
    with engine.begin() as connection:
        models = (Registration, RegistrationOwner, RegistrationExtract, AuditEntry)
        import_bench.empty(connection, (model.__table__ for model in models))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--agencies", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command; the median counts")
    args = parser.parse_args()
    url = import_bench.database_url()
    upload = _data.cached_workbook(args.rows, args.agencies)
    extract = cached_extract(args.rows, args.agencies)
    import_bench.prepare_database(url, args.agencies)
    imports, loads = [], []
    for _ in range(args.repeat):
        import_bench.empty_imports(url)
        seconds, peak, payload = import_bench.whole_process("import", upload, url)
        assert payload["inserted"] == args.rows, payload.get("errors", [])[:3]
        imports.append((seconds, peak))
        empty_registrations(url)
        seconds, peak, payload = registrations_process(extract, url)
        assert payload["loaded"] == args.rows and not payload["errors"], payload["errors"][:3]
        loads.append((seconds, peak))
    imported = statistics.median(s for s, _ in imports)
    loaded = statistics.median(s for s, _ in loads)
    ratio = loaded / imported
    print(f"rows: {args.rows:,}  agencies: {args.agencies:,}  database: {sa.make_url(url).get_backend_name()}")
    print(f"flask import (acquisitions):      {imported:7.1f} s  peak {max(p for _, p in imports) / 2**20:,.0f} MiB")
    print(f"flask registrations load:          {loaded:7.1f} s  peak {max(p for _, p in loads) / 2**20:,.0f} MiB")
    print(f"load / import: {ratio:.2f}  (target ≤ {TARGET:.0f}: {import_bench.verdict(ratio <= TARGET)})")


def registrations_process(path: Path, url: str) -> tuple[float, int, dict]:
    """`flask registrations load PATH --json` as its own process, measured as bench/import.py measures `flask import`."""
    return import_bench.whole_process("registrations load", path, url)


if __name__ == "__main__":
    main()
