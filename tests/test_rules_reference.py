"""The SQL engine against a plain-Python reading of the counting rules (rules/README.md) on a random city: every figure must agree."""

from __future__ import annotations

import datetime as dt
import math
import random
from fractions import Fraction

import pytest
import sqlalchemy as sa

from fleet.base.models import Acquisition, Agency, ExemptionRequest
from fleet.base.periods import Period
from fleet.base.vocab import (
    ACQUISITION_KINDS,
    AGENCY_KINDS,
    CATEGORIES,
    COUNTIES,
    EMISSION_STANDARDS,
    NEV_POWER_TYPES,
    POWER_TYPES,
)
from rules.engine import evaluate
from rules.explain import explain
from rules.packs import get_pack
from tests import factories


def _reference(session, pack, period, agency_ids):
    """(rule id, agency id or None) -> (in_scope, nev, exempt, pending), straight from the rows."""
    agencies = {a.id: a for a in session.scalars(sa.select(Agency))}
    states: dict[int, set[str]] = {}
    for request in session.scalars(sa.select(ExemptionRequest)):
        states.setdefault(request.acquisition_id, set()).add(request.status)
    found = {}
    for rule in pack.rules:
        window = rule.effective_within(period.start, period.end)
        if window is None:
            continue
        per_agency: dict[int, list[int]] = {a: [0, 0, 0, 0] for a in agency_ids if rule.applies_to_kind(agencies[a].kind)}
        for acq in session.scalars(sa.select(Acquisition)):
            if acq.agency_id not in per_agency or not window[0] <= acq.acquired_on <= window[1]:
                continue
            scope = rule.scope
            if acq.category not in scope.categories or acq.acquisition_kind not in scope.acquisition_kinds:
                continue
            if scope.power_types is not None and acq.power not in scope.power_types:
                continue
            meets = acq.power in NEV_POWER_TYPES if rule.measure == "nev_share" else acq.emission_standard in rule.standards
            status = states.get(acq.id, set())
            counts = per_agency[acq.agency_id]
            if rule.exemptions_allowed and not meets and (acq.catalogue_entry_id is not None or "approved" in status):
                counts[2] += 1
                continue
            counts[0] += 1
            counts[1] += meets
            counts[3] += rule.exemptions_allowed and not meets and "pending" in status
        for agency_id, counts in per_agency.items():
            found[(rule.id, agency_id)] = tuple(counts)
        found[(rule.id, None)] = tuple(sum(c[i] for c in per_agency.values()) for i in range(4))
    return found


@pytest.fixture
def city(session):
    rng = random.Random(20240110)
    agencies = [
        factories.agency(session, f"测试单位{i:02d}", kind=rng.choice(AGENCY_KINDS.values), county=rng.choice(COUNTIES.values[:3]))
        for i in range(8)
    ]
    serial = 0
    for _ in range(260):
        serial += 1
        acquisition = factories.acquisition(
            session,
            rng.choice(agencies),
            vin=factories.vin(900000 + serial),
            category=rng.choice(CATEGORIES.values),
            power=rng.choice(POWER_TYPES.values),
            acquisition_kind=rng.choice(ACQUISITION_KINDS.values),
            acquired_on=dt.date(2023, 12, 20) + dt.timedelta(days=rng.randrange(760)),
            emission_standard=rng.choice([None, *EMISSION_STANDARDS.values]),
        )
        roll = rng.random()
        if roll < 0.08:
            factories.exemption_request(session, acquisition, rng.choice(["approved", "pending", "rejected"]))
        elif roll < 0.1:
            factories.exemption_request(session, acquisition, "rejected")
            factories.exemption_request(session, acquisition, rng.choice(["approved", "pending"]))
        elif roll < 0.13:
            factories.catalogue_match(session, acquisition)
    return agencies


@pytest.mark.parametrize("pack_id", ["puyang-2024", "example-province"])
@pytest.mark.parametrize(
    "period",
    [Period.year(2024), Period.year(2025), Period.month(2024, 1), Period.month(2025, 12), Period.year_to_date(dt.date(2025, 7, 14))],
    ids=lambda p: p.label,
)
def test_engine_agrees_with_the_reference(session, city, pack_id, period):
    pack = get_pack(pack_id)
    expected = _reference(session, pack, period, [a.id for a in city])
    results = evaluate(session, pack, period)
    assert {(r.rule.id, None) for r in results if r.agency_id is None} == {k for k in expected if k[1] is None}
    for r in results:
        in_scope, nev, exempt, pending = expected[(r.rule.id, r.agency_id)]
        assert (r.in_scope, r.nev, r.exempt, r.pending) == (in_scope, nev, exempt, pending), (r.rule.id, r.agency)
        assert r.share == (Fraction(nev, in_scope) if in_scope else None)
        assert r.shortfall == max(0, math.ceil(r.rule.threshold * in_scope) - nev)
        assert r.status == ("no_data" if not in_scope else "pass" if Fraction(nev, in_scope) >= r.rule.threshold else "fail")
        if r.agency_id is not None:
            lines = explain(session, pack, r.rule.qualified_id, period, r.agency_id)
            assert len(lines) == r.in_scope + r.exempt
            assert sum(line.counts and line.mark != "exempt" for line in lines) == r.nev
            assert sum(line.mark == "pending" for line in lines) == r.pending


def test_series_and_counties_agree_with_the_reference(session, city):
    pack = get_pack("puyang-2024")
    series = factories.monthly_series(session, pack, 2025)
    for label, results in series.items():
        expected = _reference(session, pack, Period.parse_month(label), [a.id for a in city])
        for r in results:
            assert (r.in_scope, r.nev, r.exempt, r.pending) == expected[(r.rule.id, None)]
    county = city[0].county
    in_county = [a.id for a in city if a.county == county]
    expected = _reference(session, pack, Period.year(2025), in_county)
    for r in evaluate(session, pack, Period.year(2025), county=county):
        assert (r.in_scope, r.nev, r.exempt, r.pending) == expected[(r.rule.id, r.agency_id)]
