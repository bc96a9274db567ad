"""Import policy: what the active rule pack asks of each uploaded row (a reason, an emission standard)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from imports.schema import ImportPolicy
from rules.active import active_pack
from rules.packs import RulePack


def import_policy(session: Session, *, on: dt.date | None = None) -> ImportPolicy:
    """What the active rule pack asks of an upload, from its rules in force on the given day (today):
    a 100% NEV rule that allows exemptions needs a reason for each non-NEV; an emission-standard rule
    needs the standard of each vehicle in its scope."""
    on = on or dt.date.today()
    pack = active_pack(session)
    rules = [r for r in pack.rules if r.effective_within(on, on) is not None]
    full_nev = full_nev_categories(pack, on)
    emission = tuple((r.scope.categories, r.scope.power_types) for r in rules if r.measure == "standard_share")
    return ImportPolicy(full_nev_categories=full_nev, emission_scopes=emission)


def full_nev_categories(
    pack: RulePack,
    on: dt.date | None = None,
    *,
    agency_kind: str | None = None,
    acquisition_kind: str | None = None,
) -> frozenset[str]:
    """Categories under a 100% NEV rule that allows exemptions: a non-NEV there needs a reason
    (the importer's exemption_reason check). Narrowed to the rules in force on a date, and to those
    that bind an agency kind or acquisition kind, when given."""
    categories: set[str] = set()
    for rule in pack.rules:
        if rule.measure != "nev_share" or rule.threshold != 1 or not rule.exemptions_allowed:
            continue
        if on is not None and rule.effective_within(on, on) is None:
            continue
        if agency_kind is not None and not rule.applies_to_kind(agency_kind):
            continue
        if acquisition_kind is not None and acquisition_kind not in rule.scope.acquisition_kinds:
            continue
        categories |= rule.scope.categories
    return frozenset(categories)
