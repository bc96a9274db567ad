"""The demo city: Puyang's agencies, a user per role and twelve months of acquisitions (fleet/demo.yaml)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from openpyxl import Workbook
from sqlalchemy.orm import Session

from fleet.base.identifiers import with_check_digit
from fleet.base.models import Acquisition, Agency, ExemptionRequest, ImportBatch, MonthlyReport, UploadFile, User, utcnow
from fleet.base.vocab import NEV_POWER_TYPES, PURE_ELECTRIC
from fleet.domain import reporting
from fleet.domain import users as accounts
from fleet.domain.acquisitions import record_acquisitions
from fleet.domain.agencies import upsert_agencies
from fleet.domain.registrations.demo import load_demo_extract
from imports.normalise import to_text

_SOURCE = Path(__file__).with_name("demo.yaml")
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_SERIAL_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_YEAR_CODES = {2024: "R", 2025: "S", 2026: "T", 2027: "V"}
_HEAVY = {"公交车", "市政环卫车", "渣土车", "水泥罐车", "重型货车"}


@cache
def _plan() -> dict[str, Any]:
    with _SOURCE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@dataclass
class DemoSummary:
    agencies: int = 0
    acquisitions: int = 0
    batches: int = 0
    plans: int = 0
    registrations: int = 0  # loaded from the demo's registration extract
    users: list[tuple[str, str, str]] = field(default_factory=list)
    already_loaded: bool = False

    def describe(self) -> str:
        lines = []
        if self.already_loaded:
            lines.append("Demo data was already loaded; nothing added.")
        else:
            lines.append(
                f"Demo city loaded: {self.agencies} agencies, {self.acquisitions} acquisitions in {self.batches} uploads,"
                f" {self.plans} purchase plans, {self.registrations} registrations from the traffic police's extract."
            )
        lines.append("Demo users (username / password / role):")
        lines += [f"  {u} / {p} / {r}" for u, p, r in self.users]
        return "\n".join(lines)


def _vin(rng: random.Random, wmi: str, year: int) -> str:
    vds = "".join(rng.choice(_VIN_CHARS) for _ in range(5))
    serial = "".join(rng.choice("0123456789") for _ in range(6))
    plant = rng.choice("ABCDEFGHJK")
    return with_check_digit(f"{wmi}{vds}0{_YEAR_CODES.get(year, 'T')}{plant}{serial}")


def _plate(rng: random.Random, power: str, category: str, sector: str) -> str | None:
    if rng.random() < 0.06:
        return None  # bought but not yet registered
    digits = "".join(rng.choice("0123456789") for _ in range(4))
    if category == "执法执勤用车" and sector == "公安" and rng.random() < 0.5:
        return f"豫J{rng.choice('0123456789')}{digits[:3]}警"
    if power in NEV_POWER_TYPES:
        letter = "D" if power == PURE_ELECTRIC else "F"
        if category in _HEAVY:
            return f"豫J{digits}{rng.choice('0123456789')}{letter}"
        return f"豫J{letter}{rng.choice(_SERIAL_LETTERS)}{digits}"
    return f"豫J{rng.choice(_SERIAL_LETTERS)}{rng.choice(_SERIAL_LETTERS)}{digits[:3]}"


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _purchases(rng: random.Random, agency: dict[str, Any], today: dt.date) -> list[dict[str, Any]]:
    plan = _plan()
    first = (today.replace(day=1) - dt.timedelta(days=335)).replace(day=1)
    span = (today - first).days
    rows = []
    for category, count in agency["buys"].items():
        mix = plan["power_mix"].get(category, plan["power_mix"]["default"])
        catalogue = plan["models"][category]
        for _ in range(count):
            nev = rng.random() < agency["nev"]
            power = _weighted(rng, mix["nev" if nev else "other"])
            # One draw among the category's NEV (or non-NEV) models, as many as there always were, so
            # the demo city stays the same; the model is one of the drawn power type's.
            side = sum(len(models) for kind, models in catalogue.items() if (kind in NEV_POWER_TYPES) == nev)
            options = catalogue[power]
            wmi, model = options[rng.randrange(side) % len(options)]
            acquired_on = first + dt.timedelta(days=rng.randrange(span))
            rows.append(
                {
                    "agency_name": agency["name"],
                    "vin": _vin(rng, wmi, acquired_on.year),
                    "plate": _plate(rng, power, category, agency["sector"]),
                    "category": category,
                    "power": power,
                    "acquisition_kind": "更新" if rng.random() < 0.35 else "新增",
                    "acquired_on": acquired_on,
                    # As the importer keeps it (no space beside a Chinese character), so that the
                    # demo's own original uploaded again is found unchanged.
                    "brand_model": to_text(model),
                    "emission_standard": None if nev else ("国六" if category != "重型货车" or rng.random() < 0.8 else "国五"),
                    "county": agency["county"],
                    "price": round(rng.uniform(*((60, 260) if category in _HEAVY else (12, 32))), 2),
                    "exemption_reason": None if nev else plan["exemption_reasons"].get(category),
                    "remark": None,
                    "credit_code": None,
                }
            )
    return rows


def _workbook_bytes(rows: list[dict[str, Any]]) -> bytes:
    """The upload as an agency would have sent it, so the demo's batches keep an original file."""
    from imports.headers import COLUMNS

    keys = [c.key for c in COLUMNS]
    book = Workbook()
    sheet = book.active
    sheet.title = "车辆购置"
    sheet.append([c.header for c in COLUMNS])
    for row in rows:
        values = {**row, "agency": row["agency_name"], "acquisition": row["acquisition_kind"]}
        sheet.append([values.get(k) for k in keys])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _record_batch(session: Session, agency: Agency, uploader: User | None, rows: list[dict], reported_on: dt.date, sheet_name: str = "车辆购置") -> int:
    content = _workbook_bytes(rows)
    digest = hashlib.sha256(content).hexdigest()
    session.add(UploadFile(sha256=digest, size=len(content), content=content))
    uploaded_at = dt.datetime.combine(reported_on, dt.time(9, 30))
    batch = ImportBatch(
        uploaded_by=uploader,
        agency=agency,
        uploaded_at=uploaded_at,
        committed_at=uploaded_at,
        file_name=f"{agency.name}-{rows[0]['acquired_on']:%Y%m}.xlsx",
        sha256=digest,
        status="committed",
        rows=len(rows),
        valid_rows=len(rows),
        inserted=len(rows),
        progress=100,
    )
    session.add(batch)
    session.flush()
    records = [
        {**r, "agency_id": agency.id, "source_sheet": sheet_name, "source_row": i}
        for i, r in enumerate(rows, start=2)
    ]
    record_acquisitions(session, records, batch_id=batch.id, reported_on=reported_on)
    return batch.id


def _ensure_users(session: Session, summary: DemoSummary) -> dict[str, User]:
    by_agency: dict[str, User] = {}
    for spec in _plan()["users"]:
        user = session.scalar(sa.select(User).where(User.username == spec["username"]))
        if user is None:
            user = accounts.add_user(
                session,
                spec["username"],
                role=spec["role"],
                password=spec["password"],
                agency_name=spec.get("agency"),
                email=spec.get("email"),
                locale=spec.get("locale", "zh"),
            )
        if spec.get("agency"):
            by_agency[spec["agency"]] = user
        summary.users.append((spec["username"], spec["password"], spec["role"]))
    return by_agency


def load_demo(session: Session, *, today: dt.date | None = None, seed: int = 2024, due_day: int = 10) -> DemoSummary:
    """Load the demo city once; a second run only makes sure the demo users exist. due_day: the
    monthly reports' due day in force (REPORTING_DUE_DAY)."""
    today = today or dt.date.today()
    rng = random.Random(seed)
    plan = _plan()
    summary = DemoSummary()
    if session.scalar(sa.select(sa.func.count()).select_from(Acquisition)):
        summary.already_loaded = True
        _ensure_users(session, summary)
        return summary

    upsert_agencies(
        session,
        [
            {"name": a["name"], "kind": a["kind"], "sector": a["sector"], "county": a["county"], "contact_emails": a["emails"], "credit_code": None, "aliases": a.get("aliases", [])}
            for a in plan["agencies"]
        ],
    )
    uploaders = _ensure_users(session, summary)
    agencies = {a.name: a for a in session.scalars(sa.select(Agency))}
    summary.agencies = len(plan["agencies"])
    # Registered before the year of purchases, so every agency owes the demo's months.
    registered = dt.datetime.combine((today.replace(day=1) - dt.timedelta(days=370)).replace(day=1), dt.time(9))
    for agency in agencies.values():
        agency.created_at = registered

    for spec in plan["agencies"]:
        by_month: dict[tuple[int, int], list[dict]] = {}
        for row in _purchases(rng, spec, today):
            by_month.setdefault((row["acquired_on"].year, row["acquired_on"].month), []).append(row)
        for (year, month), rows in sorted(by_month.items()):
            latest = max(r["acquired_on"] for r in rows)
            lag = rng.randint(35, 80) if rng.random() < spec["late"] else rng.randint(2, 20)
            reported_on = min(today, latest + dt.timedelta(days=lag))
            _record_batch(session, agencies[spec["name"]], uploaders.get(spec["name"]), rows, reported_on)
            summary.batches += 1
            summary.acquisitions += len(rows)

    _demo_exemptions(session, rng, uploaders)
    summary.plans = _demo_plans(session, rng, today, uploaders)
    _demo_reporting(session, rng, agencies, uploaders, today, due_day)
    session.flush()
    summary.registrations = load_demo_extract(session, rng, today).loaded
    return summary


# Of the last REPORTED_MONTHS months, the older ones are mostly accepted; the recent ones are a mix.
REPORTED_MONTHS = 6


def _demo_reporting(
    session: Session, rng: random.Random, agencies: dict[str, Agency], uploaders: dict[str, User], today: dt.date, due_day: int
) -> None:
    """Monthly reports of the last months in a realistic mix of states: accepted, submitted, zero
    reports, a few returned with a comment, late and missing ones, and the last month still open
    before its due date."""
    reviewer = session.scalar(sa.select(User).where(User.role == "reviewer").order_by(User.id))
    for age, month in enumerate(reporting.recent_months(today, REPORTED_MONTHS)):
        due = reporting.due_date(month, due_day)
        for name in sorted(agencies):
            agency = agencies[name]
            if today <= due and rng.random() < 0.6:
                continue  # not submitted yet: open
            if rng.random() < (0.04 if age >= 2 else 0.15):
                continue  # missing
            late = rng.random() < 0.15
            if late:
                on = due + dt.timedelta(days=rng.randint(1, 12))
            else:
                on = due - dt.timedelta(days=rng.randint(0, max(0, due_day - 2)))
            on = max(min(on, today), month.end + dt.timedelta(days=1))
            [state] = reporting.month_states(session, month, today=on, due_day=due_day, agency_id=agency.id)
            submitter = uploaders.get(name) or reviewer
            reporting.submit(session, agency, month, user=submitter, nil=not state.acquisitions, today=on, due_day=due_day)
            report = session.scalar(sa.select(MonthlyReport).where(MonthlyReport.agency_id == agency.id, MonthlyReport.month == month.start))
            report.submitted_at = dt.datetime.combine(on, dt.time(rng.randint(1, 9), rng.randint(0, 59)))  # 09:00–17:59 in Beijing
            decision = rng.random()
            if (age >= 2 and decision < 0.85) or (age == 1 and decision < 0.4):
                reporting.accept(session, agency, month, user=reviewer, today=on, due_day=due_day)
            elif decision > 0.93:
                reporting.return_report(
                    session, agency, month, user=reviewer, comment="请补充未报送的车辆后重新报送。", today=on, due_day=due_day
                )


def _demo_exemptions(session: Session, rng: random.Random, uploaders: dict[str, User]) -> None:
    """A few requests for the reviewers to decide, and one already approved."""
    reviewer = session.scalar(sa.select(User).where(User.role == "reviewer"))
    candidates = session.scalars(
        sa.select(Acquisition)
        .where(Acquisition.category.in_(["公交车", "市政环卫车"]), Acquisition.power.not_in(NEV_POWER_TYPES))
        .order_by(Acquisition.id)
    ).all()
    for index, acquisition in enumerate(candidates[:6]):
        approved = index % 3 == 0
        session.add(
            ExemptionRequest(
                acquisition=acquisition,
                reason_category="续航不足" if acquisition.category == "公交车" else "专用功能无新能源车型",
                reason=acquisition.exemption_reason or "现有新能源车型无法满足作业需求。",
                status="approved" if approved else "pending",
                requested_by=uploaders.get(acquisition.agency.name),
                decided_by=reviewer if approved else None,
                decided_at=utcnow() if approved else None,
                comment="经核实，同意豁免。" if approved else None,
            )
        )


def _demo_plans(session: Session, rng: random.Random, today: dt.date, uploaders: dict[str, User]) -> int:
    """This year's purchase plan of most agencies (every fifth has none), uploaded through the plan
    pipeline: what was bought this year as planned lines by quarter, and the rest of the year's
    purchases planned for December, some of its non-NEVs under a 100% rule with an exemption decided."""
    from fleet.domain.plans import check_plan, decide_plan_exemption, store_plan
    from imports.plans import PLAN_HEADERS
    from rules.active import active_pack

    plan = _plan()
    pack = active_pack(session)
    reviewer = session.scalar(sa.select(User).where(User.role == "reviewer"))
    year = today.year
    stored = 0
    for index, spec in enumerate(plan["agencies"]):
        if index % 5 == 4:
            continue
        agency = session.scalar(sa.select(Agency).where(Agency.name == spec["name"]))
        bought = session.execute(
            sa.select(Acquisition.category, Acquisition.power, Acquisition.acquisition_kind, Acquisition.acquired_on)
            .where(Acquisition.agency_id == agency.id, Acquisition.acquired_on >= dt.date(year, 1, 1))
        ).all()
        lines: dict[tuple[str, str, str, str], int] = {}
        for category, power, kind, acquired_on in bought:
            key = (category, power, kind, f"{year}Q{(acquired_on.month - 1) // 3 + 1}")
            lines[key] = lines.get(key, 0) + 1
        for category, count in spec["buys"].items():
            mix = plan["power_mix"].get(category, plan["power_mix"]["default"])
            for _ in range(max(1, count // 6)):
                nev = rng.random() < spec["nev"]
                key = (category, _weighted(rng, mix["nev" if nev else "other"]), "新增", f"{year}-12")
                lines[key] = lines.get(key, 0) + 1
        if not lines:
            continue
        header = [c.header for c in PLAN_HEADERS.columns]
        book = Workbook()
        sheet = book.active
        sheet.title = "购置计划"
        sheet.append(header)
        for (category, power, kind, month), quantity in sorted(lines.items()):
            reason = None if power in NEV_POWER_TYPES else plan["exemption_reasons"].get(category)
            sheet.append([spec["name"], category, power, kind, quantity, month, spec["county"], None, reason, None])
        buffer = io.BytesIO()
        book.save(buffer)
        content = buffer.getvalue()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{spec['name']}-{year}年度车辆购置计划.xlsx"
            path.write_bytes(content)
            check = check_plan(session, path, pack, file_name=path.name, max_bytes=len(content) + 1)
        saved = store_plan(session, check, content, pack, user=uploaders.get(spec["name"]), file_name=path.name)
        if saved.version is None:
            continue
        stored += 1
        for number, line in enumerate(line for line in saved.lines if line.exemption_status == "pending"):
            if reviewer is not None and number % 2 == 0:
                decide_plan_exemption(session, line.id, user=reviewer, approve=True, comment="购置前已核实，同意豁免。")
    return stored
