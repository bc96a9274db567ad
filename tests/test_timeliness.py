"""Timeliness: late reports and agencies that have not reported."""

from __future__ import annotations

import datetime as dt

from fleet.base.periods import Period
from fleet.domain.timeliness import late_acquisitions, late_counts
from tests import factories

MARCH = Period.month(2025, 3)


def test_more_than_thirty_days_is_late_and_thirty_is_not(session):
    police = factories.agency(session, "濮阳市公安局")
    on_time = factories.acquisition(session, police, acquired_on=dt.date(2025, 2, 18), reported_on=dt.date(2025, 3, 20))
    late = factories.acquisition(session, police, acquired_on=dt.date(2025, 2, 17), reported_on=dt.date(2025, 3, 20))
    later = factories.acquisition(session, police, acquired_on=dt.date(2024, 12, 20), reported_on=dt.date(2025, 3, 20))
    found = late_acquisitions(session, MARCH, deadline_days=30)
    assert [(a.acquisition_id, a.days, a.days_late) for a in found] == [(later.id, 90, 60), (late.id, 31, 1)]
    assert on_time.id not in {a.acquisition_id for a in found}
    assert [a.acquisition_id for a in late_acquisitions(session, MARCH, deadline_days=60)] == [later.id]


def test_late_counts_per_agency_in_the_month_of_report(session):
    police = factories.agency(session, "濮阳市公安局")
    bureau = factories.agency(session, "华龙区城市管理局", sector="城市管理", county="华龙区")
    factories.acquisition(session, police, acquired_on=dt.date(2025, 1, 2), reported_on=dt.date(2025, 3, 1))
    factories.acquisition(session, police, acquired_on=dt.date(2025, 3, 1), reported_on=dt.date(2025, 3, 31))
    factories.acquisition(session, bureau, acquired_on=dt.date(2025, 1, 2), reported_on=dt.date(2025, 4, 1))
    counts = late_counts(session, MARCH, deadline_days=30)
    assert [(c.agency, c.reported, c.late) for c in counts] == [("濮阳市公安局", 2, 1)]
    april = late_counts(session, Period.month(2025, 4), deadline_days=30, county="华龙区")
    assert [(c.agency, c.reported, c.late) for c in april] == [("华龙区城市管理局", 1, 1)]
    assert late_counts(session, MARCH, deadline_days=30, agency_id=bureau.id) == []
    assert late_acquisitions(session, MARCH, deadline_days=30, agency_id=bureau.id) == []


def test_late_counts_over_whole_months_and_a_month_cut_short(session):
    police = factories.agency(session, "濮阳市公安局")
    factories.acquisition(session, police, acquired_on=dt.date(2025, 1, 2), reported_on=dt.date(2025, 3, 1))
    factories.acquisition(session, police, acquired_on=dt.date(2025, 3, 1), reported_on=dt.date(2025, 4, 2))
    factories.acquisition(session, police, acquired_on=dt.date(2025, 4, 1), reported_on=dt.date(2025, 4, 20))
    factories.acquisition(session, police, acquired_on=dt.date(2025, 1, 1), reported_on=dt.date(2025, 4, 21))
    to_date = late_counts(session, Period.year_to_date(dt.date(2025, 4, 20)), deadline_days=30)
    assert [(c.reported, c.late) for c in to_date] == [(3, 2)]
    year = late_counts(session, Period.year(2025), deadline_days=30)
    assert [(c.reported, c.late) for c in year] == [(4, 3)]
