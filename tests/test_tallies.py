"""acquisition_tallies, kept by the database's triggers, always equal a fresh count of acquisitions."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import sqlalchemy as sa

from fleet.base.models import Acquisition, AcquisitionTally
from fleet.domain.acquisitions import record_acquisitions
from fleet.domain.exemptions import add_catalogue_entry
from tests import factories


def _recount(session) -> Counter:
    """The tallies as they should be, counted in Python from every acquisition."""
    session.flush()
    session.expire_all()  # the triggers change acquisitions behind the ORM's back
    counts: Counter = Counter()
    for a in session.scalars(sa.select(Acquisition)):
        counts[
            (
                a.agency_id,
                a.acquired_on.replace(day=1),
                a.category,
                a.power,
                a.acquisition_kind,
                a.emission_standard or "",
                a.catalogue_entry_id is not None,
                a.exemption_state,
                a.reported_on.replace(day=1),
                (a.reported_on - a.acquired_on).days,
            )
        ] += 1
    return counts


def _tallies(session) -> Counter:
    session.flush()
    t = AcquisitionTally
    rows = session.execute(
        sa.select(
            t.agency_id, t.month, t.category, t.power, t.acquisition_kind, t.emission_standard,
            t.catalogued, t.exemption_state, t.reported_month, t.report_delay, t.acquisitions,
        )
    )  # fmt: skip
    return Counter({tuple(row[:-1]): row[-1] for row in rows})


def _record(agency, vin: str, **fields) -> dict:
    return {
        "agency_id": agency.id,
        "vin": vin,
        "category": "公务用车",
        "power": "汽油",
        "acquisition_kind": "新增",
        "acquired_on": dt.date(2025, 3, 5),
        "brand_model": "大众帕萨特",
        "emission_standard": "国六",
        "county": agency.county,
        **fields,
    }


def test_bulk_insert_and_update_keep_tallies_exact(session):
    police = factories.agency(session, "濮阳市公安局")
    buses = factories.agency(session, "濮阳市公交公司", kind="国有企业", sector="公交")
    vins = [factories.vin() for _ in range(40)]
    records = [
        _record(
            police if i % 3 else buses,
            vin,
            power="纯电动" if i % 2 else "汽油",
            emission_standard=None if i % 2 else "国六",
            acquired_on=dt.date(2025, 1 + i % 4, 1 + i % 28),
            acquisition_kind="更新" if i % 5 == 0 else "新增",
        )
        for i, vin in enumerate(vins)
    ]
    record_acquisitions(session, records, batch_id=None, reported_on=dt.date(2025, 5, 10))
    tallies = _tallies(session)
    assert tallies == _recount(session)
    assert sum(tallies.values()) == 40
    # Identical vehicles of one month share a tally.
    assert len(tallies) < 40

    # A re-upload moves vehicles between tallies: new month, category and power; nothing is counted twice.
    changed = [
        {**r, "acquired_on": dt.date(2025, 6, 2), "category": "执法执勤用车", "power": "柴油", "emission_standard": "国五"}
        for r in records[:10]
    ]
    record_acquisitions(session, changed, batch_id=None, reported_on=dt.date(2025, 7, 1))
    assert _tallies(session) == _recount(session)
    assert sum(_tallies(session).values()) == 40


def test_a_failed_bulk_insert_leaves_the_tallies_and_their_trigger_as_they_were(session):
    agency = factories.agency(session, "濮阳市公安局")
    factories.acquisition(session, agency)
    session.commit()
    before = _tallies(session)
    twice = factories.vin()
    # The same new VIN twice: the insert fails on the unique VIN after SQLite's trigger was set aside.
    with pytest.raises(Exception, match="uq_acquisitions_vin|UNIQUE constraint failed: acquisitions.vin"):
        record_acquisitions(session, [_record(agency, twice), _record(agency, twice)], batch_id=None, reported_on=dt.date(2025, 5, 1))
    session.rollback()
    assert _tallies(session) == before
    # The trigger is still there: a write outside the bulk path is counted.
    session.add(Acquisition(**_record(agency, factories.vin()), reported_on=dt.date(2025, 5, 1)))
    assert _tallies(session) == _recount(session)
    assert sum(_tallies(session).values()) == 2


def test_catalogue_matches_orm_writes_and_deletes_keep_tallies_exact(session):
    agency = factories.agency(session, "濮阳市城市管理局")
    admin = factories.user(session, "admin", role="admin")
    sweeper = factories.acquisition(session, agency, category="市政环卫车", power="柴油", brand_model="徐工 高空作业车")
    factories.acquisition(session, agency, category="市政环卫车", power="纯电动", emission_standard=None)
    # A catalogue entry marks the matching non-NEV: it leaves its tally for a catalogued one.
    add_catalogue_entry(
        session, category="市政环卫车", model_pattern="*高空作业车*", description="高空作业", reason="无同类新能源车型", user=admin
    )
    tallies = _tallies(session)
    assert tallies == _recount(session)
    assert any(key[6] for key in tallies)

    # A write through the ORM, outside record_acquisitions, is counted as well.
    sweeper.acquired_on = dt.date(2024, 12, 30)
    session.add(
        Acquisition(
            **{k: v for k, v in _record(agency, factories.vin()).items()},
            reported_on=dt.date(2025, 2, 1),
        )
    )
    assert _tallies(session) == _recount(session)

    session.delete(sweeper)
    assert _tallies(session) == _recount(session)
    session.execute(sa.delete(Acquisition))
    assert _tallies(session) == Counter()


def _state(session, acquisition) -> int:
    session.flush()
    return session.scalar(sa.select(Acquisition.exemption_state).where(Acquisition.id == acquisition.id))


def test_exemption_requests_set_the_vehicles_state_and_move_it_between_tallies(session):
    agency = factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交")
    bus = factories.acquisition(session, agency, category="公交车", power="柴油")
    other = factories.acquisition(session, agency, category="公交车", power="柴油")
    assert (_state(session, bus), _state(session, other)) == (0, 0)

    request = factories.exemption_request(session, bus, "pending")
    assert _state(session, bus) == 1
    assert _tallies(session) == _recount(session)
    request.status = "approved"
    assert _state(session, bus) == 2
    # A rejected request beside an approved one changes nothing; the approved one decides.
    factories.exemption_request(session, bus, "rejected")
    assert _state(session, bus) == 2
    rejected = factories.exemption_request(session, other, "pending")
    rejected.status = "rejected"
    assert _state(session, other) == 0
    assert _tallies(session) == _recount(session)
    assert sorted(key[7] for key, n in _tallies(session).items() for _ in range(n)) == [0, 2]

    session.delete(request)
    assert _state(session, bus) == 0
    assert _tallies(session) == _recount(session)
