"""Owners of registrations matched to agencies: by the one agency-name matcher (credit code, then the
name exactly, normalised, by alias or with the city prefix: fleet.domain.agency_names), then as a
reviewer decided.

Owners nothing matches (a sub-unit, a private buyer) wait for a reviewer, who
maps each to an agency or marks it not ours (a private buyer, a body the city does not oversee) once;
the decision holds for every later extract. Owners marked not ours are never shown to agencies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.identifiers import credit_code_ok
from fleet.base.models import Agency, Registration, RegistrationOwner, utcnow
from fleet.domain.agency_names import AgencyIndex, normalised

def owner_key(name: str) -> str:
    """The name as owners are compared and a reviewer's decision is remembered: normalised as the
    agency-name matcher normalises names."""
    return normalised(name)[:200]


@dataclass(frozen=True)
class OwnerIndex:
    """The registry (the one agency-name matcher: credit code, name, alias, city prefix) and the
    reviewers' decisions on the owners it does not match."""

    agencies: AgencyIndex
    decided: dict[str, int]  # owner key -> the agency a reviewer mapped it to
    not_ours: frozenset[str]  # owner keys a reviewer marked not ours

    def agency(self, key: str, name: str, code: str | None) -> int | None:
        match = self.agencies.match(name, code, suggest=False)
        return match.agency_id if match.found else self.decided.get(key)


def owner_index(session: Session) -> OwnerIndex:
    decided: dict[str, int] = {}
    not_ours: set[str] = set()
    for key, agency_id, dismissed in session.execute(
        sa.select(RegistrationOwner.owner_key, RegistrationOwner.agency_id, RegistrationOwner.not_ours)
    ):
        if dismissed:
            not_ours.add(key)
        elif agency_id is not None:
            decided[key] = agency_id
    return OwnerIndex(AgencyIndex.load(session), decided, frozenset(not_ours))


def unit_code(owner_id: str | None) -> str | None:
    """The owner's identification number when it is a unit's credit code; a person's is not kept."""
    return owner_id if owner_id is not None and len(owner_id) == 18 and credit_code_ok(owner_id) else None


@dataclass(frozen=True)
class UnmatchedOwner:
    owner_key: str
    name: str
    registrations: int
    first: dt.date
    last: dt.date
    suggestions: tuple[str, ...] = ()  # registered names most like it (a sub-unit's parent first)


def unmatched_owners(session: Session) -> list[UnmatchedOwner]:
    """Owners of loaded registrations no agency matches and no reviewer has decided on, most registrations first."""
    decided = sa.select(RegistrationOwner.owner_key)
    rows = session.execute(
        sa.select(
            Registration.owner_key,
            sa.func.min(Registration.owner),
            sa.func.count(),
            sa.func.min(Registration.registered_on),
            sa.func.max(Registration.registered_on),
        )
        .where(Registration.agency_id.is_(None), Registration.owner_key.not_in(decided))
        .group_by(Registration.owner_key)
        .order_by(sa.func.count().desc(), Registration.owner_key)
    )
    index = AgencyIndex.load(session)
    return [UnmatchedOwner(*row, suggestions=index.suggestions(row[1])) for row in rows]


class OwnerError(ValueError):
    """A decision that cannot be taken (an owner not in any extract, an agency that does not exist)."""


def decide_owner(session: Session, key: str, *, agency_id: int | None, user_id: int | None) -> RegistrationOwner:
    """Map an owner to an agency (agency_id), or mark it not ours (agency_id None); its registrations
    follow at once, and every later extract's too."""
    name = session.scalar(sa.select(Registration.owner).where(Registration.owner_key == key).limit(1))
    if name is None:
        raise OwnerError(key)
    if agency_id is not None and session.get(Agency, agency_id) is None:
        raise OwnerError(str(agency_id))
    decision = session.scalar(sa.select(RegistrationOwner).where(RegistrationOwner.owner_key == key))
    if decision is None:
        decision = RegistrationOwner(owner_key=key, name=name)
        session.add(decision)
    decision.agency_id = agency_id
    decision.not_ours = agency_id is None
    decision.decided_by_id = user_id
    decision.decided_at = utcnow()
    # A registration matched by its owner's credit code keeps that match.
    codes = sa.select(Agency.credit_code).where(Agency.credit_code.is_not(None))
    session.execute(
        sa.update(Registration)
        .where(Registration.owner_key == key, sa.or_(Registration.owner_code.is_(None), Registration.owner_code.not_in(codes)))
        .values(agency_id=agency_id)
    )
    session.flush()
    audit.record(
        session, "registrations.owner", user_id=user_id, target_type="registration_owner", target_id=decision.id,
        detail={"owner": name, "agency_id": agency_id, "not_ours": decision.not_ours},
    )
    return decision


def owner_decisions(session: Session) -> Iterable[RegistrationOwner]:
    """The reviewers' decisions, latest first."""
    return session.scalars(sa.select(RegistrationOwner).order_by(RegistrationOwner.decided_at.desc()))
