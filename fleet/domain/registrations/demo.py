"""The demo city's registration extract: the traffic police's record of the last three full months,
as the registration system exports it, agreeing with most reports and disagreeing with a realistic
handful — a few unreported vehicles, power types, owners, plates and usages that differ, reported
vehicles the extract lacks, and two owners for a reviewer to decide."""

from __future__ import annotations

import datetime as dt
import random
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from openpyxl import Workbook
from sqlalchemy.orm import Session

from fleet.base.identifiers import PlateKind, plate_kind, with_check_digit
from fleet.base.models import Acquisition, Agency
from fleet.domain.registrations.load import ExtractLoad, load_extract

# What the registration system writes for what the reports say (the demo's vehicles only).
_FUELS = {"纯电动": "C", "插电式混合动力": "O", "增程式": "O", "燃料电池": "P", "汽油": "A", "柴油": "B", "天然气": "E",
          "油电混合": "O", "其他": "Z"}
_TYPES = {"公交车": "K11", "市政环卫车": "Z51", "城市物流配送车": "H31", "邮政快递车": "H32", "巡游出租车": "K33",
          "网约出租车": "K33", "渣土车": "H17", "水泥罐车": "H14", "公务用车": "K33", "执法执勤用车": "K31", "重型货车": "H11"}
_USAGES = {"公交车": "C", "巡游出租车": "D", "网约出租车": "T", "城市物流配送车": "F", "邮政快递车": "F", "渣土车": "F",
           "水泥罐车": "F", "重型货车": "F"}
_LARGE = {"公交车", "市政环卫车", "渣土车", "水泥罐车", "重型货车"}
_HEADER = ["HPZL", "HPHM", "CLSBDH", "CLLX", "SYXZ", "SYR", "SFZMHM", "RLZL", "PFBZ", "CCDJRQ", "ZT"]


def _plate_kind(plate: str, category: str) -> str:
    kind = plate_kind(plate)
    if kind is PlateKind.SPECIAL:
        return "23"
    if kind in (PlateKind.NEV_PURE_ELECTRIC, PlateKind.NEV_OTHER):
        return "51" if category in _LARGE else "52"
    return "01" if category in _LARGE else "02"


def _row(a: Acquisition, registered_on: dt.date, **changes: Any) -> dict[str, Any]:
    usage = _USAGES.get(a.category, "H" if a.agency.sector == "公安" and a.category == "执法执勤用车" else "A")
    row = {
        "HPZL": _plate_kind(a.plate, a.category), "HPHM": a.plate[1:], "CLSBDH": a.vin, "CLLX": _TYPES.get(a.category, "K31"),
        "SYXZ": usage, "SYR": a.agency.name, "SFZMHM": a.agency.credit_code, "RLZL": _FUELS[a.power],
        "PFBZ": a.emission_standard, "CCDJRQ": registered_on, "ZT": "A",
    }
    row.update(changes)
    return row


def _month_start(day: dt.date, back: int) -> dt.date:
    month = day.year * 12 + day.month - 1 - back
    return dt.date(month // 12, month % 12 + 1, 1)


def load_demo_extract(session: Session, rng: random.Random, today: dt.date) -> ExtractLoad:
    """Write the demo's extract of the last three full months and load it as a reviewer would."""
    first, last = _month_start(today, 3), _month_start(today, 0) - dt.timedelta(days=1)
    acquisitions = session.scalars(
        sa.select(Acquisition).join(Agency).where(Acquisition.plate.is_not(None), Acquisition.acquired_on.between(first, last))
        .order_by(Acquisition.acquired_on, Acquisition.id)
    ).all()
    early = [a for a in acquisitions if (last - a.acquired_on).days > 40]
    rng.shuffle(early)
    not_registered = {a.id for a in early[:3]}
    nev = [a for a in early[3:] if a.power in ("插电式混合动力", "增程式", "纯电动")]
    changed: dict[int, dict[str, Any]] = {}
    for a in nev[:3]:  # registered as burning fuel: an ordinary hybrid, or petrol on an ordinary plate
        changed[a.id] = {"RLZL": "O", "HPZL": "02"} if a.power != "纯电动" else {"RLZL": "A", "HPZL": "02"}
    rest = [a for a in early[3:] if a.id not in changed]
    names = sorted({a.agency.name for a in rest})
    for a in rest[:2]:  # registered to another agency
        changed[a.id] = {"SYR": next(n for n in names if n != a.agency.name)}
    for a in rest[2:5]:  # another serial on the plate
        changed[a.id] = {"HPHM": a.plate[1:-1] + ("8" if a.plate[-1] != "8" else "9")}
    for a in [a for a in rest[5:] if a.category in ("公交车", "巡游出租车", "网约出租车")][:2]:  # registered as 非营运
        changed[a.id] = {"SYXZ": "A"}
    rows = []
    for a in acquisitions:
        registered_on = min(last, a.acquired_on + dt.timedelta(days=rng.randint(3, 12)))
        if a.id not in not_registered:
            owner = {"SYR": a.agency.name.replace("有限公司", "有限责任公司")} if rng.random() < 0.2 else {}
            rows.append(_row(a, registered_on, **{**owner, **changed.get(a.id, {})}))
    police = session.scalar(sa.select(Agency).where(Agency.sector == "公安").order_by(Agency.id))
    buses = session.scalar(sa.select(Agency).where(Agency.sector == "公交").order_by(Agency.id))
    extra = [  # vehicles nobody reported, and two owners no agency matches
        (police.name if police else "濮阳市公安局", "K33", "A", "A", "国六"),
        (police.name if police else "濮阳市公安局", "K31", "H", "B", "国六"),
        (buses.name if buses else "濮阳市公共交通有限公司", "K11", "C", "B", "国六"),
        ("濮阳市城市管理局华龙区大队", "K33", "A", "A", "国六"),
        ("王某某", "K33", "A", "A", "国六"),
    ]
    for n, (owner, vehicle_type, usage, fuel, standard) in enumerate(extra):
        vin = with_check_digit(f"LSVDEMA{n}0TA{rng.randrange(10**6):06d}")
        rows.append({"HPZL": "01" if vehicle_type == "K11" else "02", "HPHM": f"J{'ABCDE'[n]}{rng.randrange(10**4):04d}",
                     "CLSBDH": vin, "CLLX": vehicle_type, "SYXZ": usage, "SYR": owner, "SFZMHM": None, "RLZL": fuel,
                     "PFBZ": standard, "CCDJRQ": last - dt.timedelta(days=10 * n + 5), "ZT": "A"})
    rows.sort(key=lambda r: r["CCDJRQ"])
    book = Workbook()
    sheet = book.active
    sheet.title = "机动车登记信息"
    sheet.append([f"濮阳市公安局交通警察支队车辆管理所 新注册登记机动车信息（{first} 至 {last}）"])
    sheet.append(_HEADER)
    for row in rows:
        sheet.append([row[h] for h in _HEADER])
    with tempfile.TemporaryDirectory(prefix="fleet-demo-") as folder:
        path = Path(folder) / "extract.xlsx"
        book.save(path)
        return load_extract(session, path, file_name=f"车管所新注册登记信息-{first:%Y%m}-{last:%Y%m}.xlsx")
