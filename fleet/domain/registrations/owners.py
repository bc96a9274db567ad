"""Owners of registrations matched to agencies: by credit code, then by name, then as a reviewer decided.

Names in an extract differ from the registry's in the ways a registration clerk writes them:
有限责任公司 for 有限公司, full-width brackets, spaces. Owners nothing matches wait for a reviewer, who
maps each to an agency or marks it not ours (a private buyer, a body the city does not oversee) once;
the decision holds for every later extract. Owners marked not ours are never shown to agencies.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.identifiers import credit_code_ok
from fleet.base.models import Agency, Registration, RegistrationOwner, utcnow
from fleet.base.vocab import fold

# Spellings of one legal form, and marks that are no part of a name.
_LEGAL_FORMS = (("有限责任公司", "有限公司"), ("股份有限公司", "股份公司"))
_MARKS = re.compile(r"[()\[\]【】〔〕<>《》\"'“”‘’·・.,，、]")


def owner_key(name: str) -> str:
    """The name as owners are compared: folded (full-width to half-width, no spaces, case-folded),
    one spelling of each legal form, without brackets and punctuation."""
    key = fold(name)
    for long, short in _LEGAL_FORMS:
        key = key.replace(long, short)
    return _MARKS.sub("", key)[:200]


@dataclass(frozen=True)
class OwnerIndex:
    """What the registry and the reviewers' decisions say about owners."""

    by_code: dict[str, int]  # credit code -> agency id
    by_key: dict[str, int]  # owner key -> agency id (registry names, then reviewers' mappings)
    not_ours: frozenset[str]  # owner keys a reviewer marked not ours

    def agency(self, key: str, code: str | None) -> int | None:
        if code is not None and code in self.by_code:
            return self.by_code[code]
        return self.by_key.get(key)


def owner_index(session: Session) -> OwnerIndex:
    by_code: dict[str, int] = {}
    by_key: dict[str, int] = {}
    for agency_id, name, code in session.execute(sa.select(Agency.id, Agency.name, Agency.credit_code)):
        if code:
            by_code[code] = agency_id
        by_key.setdefault(owner_key(name), agency_id)
    not_ours: set[str] = set()
    for key, agency_id, dismissed in session.execute(
        sa.select(RegistrationOwner.owner_key, RegistrationOwner.agency_id, RegistrationOwner.not_ours)
    ):
        if dismissed:
            not_ours.add(key)
        elif agency_id is not None:
            # A name the registry already matches keeps that match; a reviewer maps only the others.
            by_key.setdefault(key, agency_id)
    return OwnerIndex(by_code, by_key, frozenset(not_ours))


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
    return [UnmatchedOwner(*row) for row in rows]


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
