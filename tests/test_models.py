"""The model's constraints: one current record per VIN, one agency per name, history on change."""

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fleet.base.identifiers import with_check_digit
from fleet.base.models import Acquisition, AcquisitionVersion, Agency
from fleet.domain.acquisitions import VinOwnedElsewhere, record_acquisitions
from fleet.domain.agencies import upsert_agencies

VIN = with_check_digit("LGXCE4CB0S0123456")


def _agency(session, name="濮阳市公安局"):
    upsert_agencies(session, [{"name": name, "kind": "党政机关", "sector": "公安", "county": "市直", "contact_emails": [], "credit_code": None}])
    return session.scalar(sa.select(Agency).where(Agency.name == name))


def _record(agency, **changes):
    return {
        "agency_id": agency.id,
        "vin": VIN,
        "plate": "豫JD12345",
        "category": "执法执勤用车",
        "power": "纯电动",
        "acquisition_kind": "新增",
        "acquired_on": dt.date(2025, 3, 5),
        "county": "市直",
        "price": 18.5,
        **changes,
    }


def test_agency_name_is_unique(session):
    _agency(session)
    session.add(Agency(name="濮阳市公安局", kind="党政机关", sector="公安", county="市直", contact_emails=[]))
    with pytest.raises(IntegrityError):
        session.flush()


def test_vin_is_unique_among_current_records(session):
    agency = _agency(session)
    record_acquisitions(session, [_record(agency)], batch_id=None, reported_on=dt.date(2025, 3, 10))
    session.add(Acquisition(**{**_record(agency), "reported_on": dt.date(2025, 3, 10)}))
    with pytest.raises(IntegrityError):
        session.flush()


def test_reupload_with_a_change_keeps_the_old_version(session):
    agency = _agency(session)
    first = record_acquisitions(session, [_record(agency)], batch_id=None, reported_on=dt.date(2025, 3, 10))
    again = record_acquisitions(session, [_record(agency)], batch_id=None, reported_on=dt.date(2025, 4, 1))
    changed = record_acquisitions(session, [_record(agency, plate="豫JD54321", price=19)], batch_id=None, reported_on=dt.date(2025, 4, 2))
    assert (first.inserted, again.unchanged, changed.updated) == (1, 1, 1)
    current = session.scalar(sa.select(Acquisition).where(Acquisition.vin == VIN))
    assert current.plate == "豫JD54321" and current.version == 2
    # The first report date stays: timeliness is measured against when the vehicle was first reported.
    assert current.reported_on == dt.date(2025, 3, 10)
    old = session.scalars(sa.select(AcquisitionVersion)).one()
    assert old.version == 1 and old.data["plate"] == "豫JD12345" and old.data["price"] in ("18.5", "18.5000")


def test_same_vin_for_another_agency_is_refused(session):
    police = _agency(session)
    market = _agency(session, "濮阳市市场监督管理局")
    record_acquisitions(session, [_record(police)], batch_id=None, reported_on=dt.date(2025, 3, 10))
    with pytest.raises(VinOwnedElsewhere):
        record_acquisitions(session, [_record(market)], batch_id=None, reported_on=dt.date(2025, 3, 10))
