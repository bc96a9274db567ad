"""Finding acquisitions: the filtered, paginated list and one vehicle's detail with its version history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from fleet.base.models import (
    ACQUISITION_FIELDS,
    Acquisition,
    AcquisitionVersion,
    Agency,
    ExemptionRequest,
    ImportBatch,
    NoNevCatalogueEntry,
)
from fleet.base.pagination import Page, paginate
from fleet.base.vocab import NEV_POWER_TYPES


@dataclass(frozen=True)
class VehicleFilters:
    """What the vehicle list and the API can filter on; None means no filter."""

    text: str | None = None  # substring of VIN, plate or brand/model
    vin: str | None = None  # exact VIN
    agency_id: int | None = None
    agency_name: str | None = None
    category: str | None = None
    power: str | None = None
    county: str | None = None
    year: int | None = None
    acquired_from: dt.date | None = None
    acquired_to: dt.date | None = None
    batch_id: int | None = None
    nev: bool | None = None


def _conditions(filters: VehicleFilters, scope_agency_id: int | None) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if scope_agency_id is not None:
        conditions.append(Acquisition.agency_id == scope_agency_id)
    if filters.text:
        text = filters.text.strip()
        conditions.append(
            sa.or_(
                Acquisition.vin.icontains(text.upper(), autoescape=True),
                Acquisition.plate.icontains(text.upper(), autoescape=True),
                Acquisition.brand_model.icontains(text, autoescape=True),
            )
        )
    if filters.vin:
        conditions.append(Acquisition.vin == filters.vin.strip().upper())
    if filters.agency_id is not None:
        conditions.append(Acquisition.agency_id == filters.agency_id)
    if filters.agency_name:
        conditions.append(Agency.name == filters.agency_name)
    for column, value in (
        (Acquisition.category, filters.category),
        (Acquisition.power, filters.power),
        (Acquisition.county, filters.county),
    ):
        if value:
            conditions.append(column == value)
    # Date ranges rather than extract(year) so the (acquired_on, …) indexes serve the filter.
    if filters.year is not None:
        conditions.append(Acquisition.acquired_on.between(dt.date(filters.year, 1, 1), dt.date(filters.year, 12, 31)))
    if filters.acquired_from is not None:
        conditions.append(Acquisition.acquired_on >= filters.acquired_from)
    if filters.acquired_to is not None:
        conditions.append(Acquisition.acquired_on <= filters.acquired_to)
    if filters.batch_id is not None:
        conditions.append(Acquisition.batch_id == filters.batch_id)
    if filters.nev is True:
        conditions.append(Acquisition.power.in_(sorted(NEV_POWER_TYPES)))
    elif filters.nev is False:
        conditions.append(Acquisition.power.not_in(sorted(NEV_POWER_TYPES)))
    return conditions


@dataclass(frozen=True)
class VehicleRow:
    acquisition: Acquisition
    agency_name: str
    exemption_status: str | None  # the latest request's status, if any


def search_acquisitions(
    session: Session,
    filters: VehicleFilters,
    *,
    scope_agency_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[VehicleRow]:
    """One page of acquisitions matching `filters`, newest first; limited to one agency when scoped."""
    conditions = _conditions(filters, scope_agency_id)
    query = (
        sa.select(Acquisition, Agency.name)
        .join(Agency, Agency.id == Acquisition.agency_id)
        .where(*conditions)
        .order_by(Acquisition.acquired_on.desc(), Acquisition.id.desc())
    )
    count = sa.select(sa.func.count()).select_from(Acquisition).join(Agency, Agency.id == Acquisition.agency_id).where(*conditions)
    raw = paginate(session, query, count, page, per_page)
    statuses = latest_exemption_statuses(session, [acquisition.id for acquisition, _ in raw.items])
    rows = [VehicleRow(acquisition, name, statuses.get(acquisition.id)) for acquisition, name in raw.items]
    return Page(items=rows, total=raw.total, page=raw.page, per_page=raw.per_page)


def latest_exemption_statuses(session: Session, acquisition_ids: list[int]) -> dict[int, str]:
    if not acquisition_ids:
        return {}
    statuses: dict[int, str] = {}
    query = (
        sa.select(ExemptionRequest.acquisition_id, ExemptionRequest.status)
        .where(ExemptionRequest.acquisition_id.in_(acquisition_ids))
        .order_by(ExemptionRequest.requested_at, ExemptionRequest.id)
    )
    for acquisition_id, status in session.execute(query):
        statuses[acquisition_id] = status
    return statuses


def acquisition_record(acquisition: Acquisition, agency_name: str) -> dict[str, Any]:
    """An acquisition with the upload template's keys (agency by name), as the API and exports give it."""
    return {
        "id": acquisition.id,
        "agency": agency_name,
        "credit_code": acquisition.credit_code,
        "vin": acquisition.vin,
        "plate": acquisition.plate,
        "category": acquisition.category,
        "power": acquisition.power,
        "acquisition": acquisition.acquisition_kind,
        "acquired_on": acquisition.acquired_on.isoformat(),
        "brand_model": acquisition.brand_model,
        "emission_standard": acquisition.emission_standard,
        "county": acquisition.county,
        "price": float(acquisition.price) if acquisition.price is not None else None,
        "exemption_reason": acquisition.exemption_reason,
        "remark": acquisition.remark,
    }


# --- detail ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class VersionChange:
    """What a later upload changed: version `version` became `version + 1`."""

    version: int
    changed_at: dt.datetime
    batch_id: int | None  # the batch the old version came from
    replaced_by_batch_id: int | None
    changes: list[FieldChange]


@dataclass(frozen=True)
class VehicleDetail:
    acquisition: Acquisition
    batch: ImportBatch | None
    catalogue_entry: NoNevCatalogueEntry | None
    exemption_requests: list[ExemptionRequest]
    history: list[VersionChange] = field(default_factory=list)


def _display(name: str, value: Any) -> str | None:
    """A field's value as text for comparing versions (stored as JSON text) with the current row."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if name == "price":
        # The history keeps "12.5000", the row Decimal("12.5000"): compare them as numbers.
        return format(Decimal(str(value)).normalize(), "f")
    return str(value)


def version_history(acquisition: Acquisition, versions: list[AcquisitionVersion]) -> list[VersionChange]:
    """Each replacement as the fields it changed, oldest first; the last step ends at the current row."""
    snapshots = [v.data for v in versions] + [{f: getattr(acquisition, f) for f in ACQUISITION_FIELDS}]
    history = []
    for index, version in enumerate(versions):
        before, after = snapshots[index], snapshots[index + 1]
        changes = [
            FieldChange(f, _display(f, before.get(f)), _display(f, after.get(f)))
            for f in ACQUISITION_FIELDS
            if _display(f, before.get(f)) != _display(f, after.get(f))
        ]
        history.append(
            VersionChange(
                version=version.version,
                changed_at=version.replaced_at,
                batch_id=version.batch_id,
                replaced_by_batch_id=version.replaced_by_batch_id,
                changes=changes,
            )
        )
    return history


def acquisition_detail(session: Session, acquisition_id: int, *, scope_agency_id: int | None = None) -> VehicleDetail | None:
    query = (
        sa.select(Acquisition)
        .options(joinedload(Acquisition.agency), joinedload(Acquisition.batch))
        .where(Acquisition.id == acquisition_id)
    )
    if scope_agency_id is not None:
        query = query.where(Acquisition.agency_id == scope_agency_id)
    acquisition = session.scalar(query)
    if acquisition is None:
        return None
    versions = list(
        session.scalars(
            sa.select(AcquisitionVersion)
            .where(AcquisitionVersion.acquisition_id == acquisition.id)
            .order_by(AcquisitionVersion.version)
        )
    )
    requests = list(
        session.scalars(
            sa.select(ExemptionRequest)
            .options(joinedload(ExemptionRequest.requested_by), joinedload(ExemptionRequest.decided_by))
            .where(ExemptionRequest.acquisition_id == acquisition.id)
            .order_by(ExemptionRequest.requested_at.desc(), ExemptionRequest.id.desc())
        )
    )
    entry = session.get(NoNevCatalogueEntry, acquisition.catalogue_entry_id) if acquisition.catalogue_entry_id else None
    return VehicleDetail(
        acquisition=acquisition,
        batch=acquisition.batch,
        catalogue_entry=entry,
        exemption_requests=requests,
        history=version_history(acquisition, versions),
    )
