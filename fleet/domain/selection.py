"""Which agencies a figure counts: one, a county's, or all of them, as plain rows and as SQL conditions."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.models import Agency

AgencyRow = sa.Row[tuple[int, str, str, str]]  # id, name, kind, county


def agency_rows(session: Session, *, agency_id: int | None = None, county: str | None = None) -> list[AgencyRow]:
    """The agencies selected (one, a county's, or all), by name, as plain rows rather than ORM
    objects: a province has thousands of agencies."""
    query = sa.select(Agency.id, Agency.name, Agency.kind, Agency.county).order_by(Agency.name)
    if agency_id is not None:
        query = query.where(Agency.id == agency_id)
    if county is not None:
        query = query.where(Agency.county == county)
    return list(session.execute(query))


def selected_agencies(
    agency_column: sa.ColumnElement[int], agency_id: int | None, county: str | None, agency_ids: Collection[int] | None = None
) -> list[sa.ColumnElement[bool]]:
    """Conditions keeping rows to one agency, to a county's agencies, to the agencies of agency_ids,
    or (none) to every agency."""
    if agency_id is not None:
        return [agency_column == agency_id]
    if county is not None:
        return [agency_column.in_(_agency_ids(county))]
    if agency_ids is not None:
        return [agency_column.in_(sorted(agency_ids))]
    return []


def _agency_ids(county: str) -> sa.Select:
    return sa.select(Agency.id).where(Agency.county == county)
