"""Small factories for tests: agencies, users and acquisitions made through the app's own services."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.identifiers import with_check_digit
from fleet.base.models import Acquisition, Agency, ExemptionRequest, NoNevCatalogueEntry, User
from fleet.domain.acquisitions import record_acquisitions
from fleet.domain.agencies import agency_by_name, upsert_agencies
from fleet.domain.selection import agency_rows
from fleet.domain.users import add_user
from rules.engine import agency_months, year_results
from rules.packs import RulePack
from rules.results import RuleResult

PASSWORD = "correct-horse-9"
_serial = itertools.count(1)


def agency(session: Session, name: str = "濮阳市公安局", **values: Any) -> Agency:
    upsert_agencies(
        session,
        [
            {
                "name": name,
                "kind": values.get("kind", "党政机关"),
                "sector": values.get("sector", "公安"),
                "county": values.get("county", "市直"),
                "contact_emails": values.get("contact_emails", []),
                "credit_code": values.get("credit_code"),
                "aliases": values.get("aliases"),
            }
        ],
    )
    return agency_by_name(session, name)


def user(session: Session, username: str, role: str = "agency", agency_name: str | None = None, **kw: Any) -> User:
    return add_user(session, username, role=role, password=kw.pop("password", PASSWORD), agency_name=agency_name, **kw)


def vin(serial: int | None = None) -> str:
    """A well-formed Chinese VIN with a correct check digit, unique per call."""
    number = next(_serial) if serial is None else serial
    return with_check_digit(f"LFV2A21K0{number:08d}")


def acquisition(session: Session, agency: Agency, *, batch_id: int | None = None, **fields: Any) -> Acquisition:
    reported_on = fields.pop("reported_on", dt.date(2025, 3, 20))
    record = {
        "agency_id": agency.id,
        "vin": fields.pop("vin", None) or vin(),
        "plate": None,
        "category": "公务用车",
        "power": "汽油",
        "acquisition_kind": "新增",
        "acquired_on": dt.date(2025, 3, 5),
        "brand_model": "大众帕萨特",
        "county": agency.county,
        "credit_code": None,
        "emission_standard": "国六",
        "price": None,
        "exemption_reason": None,
        "remark": None,
        "source_sheet": "Sheet1",
        "source_row": 2,
        **fields,
    }
    record_acquisitions(session, [record], batch_id=batch_id, reported_on=reported_on)
    return session.scalars(sa.select(Acquisition).where(Acquisition.vin == record["vin"])).one()


def login(client, username: str, password: str = PASSWORD):
    return client.post("/login", data={"username": username, "password": password})


def exemption_request(session: Session, acquisition: Acquisition, status: str = "pending", **fields: Any) -> ExemptionRequest:
    request = ExemptionRequest(
        acquisition_id=acquisition.id,
        reason_category=fields.pop("reason_category", "无适用车型"),
        reason=fields.pop("reason", "现有新能源车型无法满足作业需求。"),
        status=status,
        **fields,
    )
    session.add(request)
    session.flush()
    return request


def catalogue_match(session: Session, acquisition: Acquisition, **fields: Any) -> NoNevCatalogueEntry:
    """A no-NEV catalogue entry, and the acquisition marked as matching it (as the importer does)."""
    entry = NoNevCatalogueEntry(
        category=acquisition.category,
        model_pattern=fields.pop("model_pattern", acquisition.brand_model or "*"),
        description=fields.pop("description", "高空作业车"),
        reason=fields.pop("reason", "无同类新能源车型"),
        **fields,
    )
    session.add(entry)
    session.flush()
    acquisition.catalogue_entry_id = entry.id
    session.flush()
    return entry


def monthly_series(session: Session, pack: RulePack, year: int, *, agency_id: int | None = None) -> dict[str, list[RuleResult]]:
    """The month-by-month series as the dashboards count it (agency_months, then year_results): the
    city's aggregate, or one agency's own results."""
    agencies = agency_rows(session, agency_id=agency_id)
    if agency_id is not None and not agencies:
        return {}
    counts = agency_months(session, pack, year, [agency_id] if agency_id is not None else None)
    return year_results(pack, year, agencies, counts, agency_id=agency_id)[1]


def client_at(app, address: str):
    """A test client whose requests come from `address`."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client
