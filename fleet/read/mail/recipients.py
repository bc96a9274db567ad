"""Who is told what each month: each agency contact gets the agency's summary, each reviewer with an
e-mail the city digest.

A message is identified by (month, recipient, kind) — kind "city" or "agency-<id>" — the key that
fleet.read.mail.records keeps after a successful send, so that a later run of the same month skips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.models import Agency, User
from fleet.base.text import LOCALES

CITY = "city"


def agency_kind(agency_id: int) -> str:
    return f"agency-{agency_id}"


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient: the unit that is sent, recorded and retried."""

    recipient: str
    kind: str
    locale: str
    agency_id: int | None = None
    agency_name: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"recipient": self.recipient, "kind": self.kind, "locale": self.locale, "agency": self.agency_name}


def planned_deliveries(session: Session) -> tuple[list[Delivery], list[Agency]]:
    """Every message a month's run sends (before skipping those already sent), an agency's contacts
    one after the other, and the agencies that cannot be told because they have no contact e-mail."""
    deliveries: list[Delivery] = []
    silent: list[Agency] = []
    seen: set[tuple[str, str]] = set()

    def add(delivery: Delivery) -> None:
        key = (delivery.recipient.casefold(), delivery.kind)
        if key not in seen:
            seen.add(key)
            deliveries.append(delivery)

    english = {
        (u.agency_id, u.email.casefold())
        for u in session.scalars(sa.select(User).where(User.email.is_not(None), User.locale == "en", User.active))
    }
    for agency in session.scalars(sa.select(Agency).order_by(Agency.name)):
        emails = [e.strip() for e in agency.contact_emails or [] if e and e.strip()]
        if not emails:
            silent.append(agency)
        for email in emails:
            # Contacts are addresses, not accounts: English only when that address is an English user's.
            locale = "en" if (agency.id, email.casefold()) in english else "zh"
            add(Delivery(email, agency_kind(agency.id), locale, agency.id, agency.name))
    reviewers = sa.select(User).where(User.role == "reviewer", User.active, User.email.is_not(None)).order_by(User.id)
    for user in session.scalars(reviewers):
        if user.email.strip():
            add(Delivery(user.email.strip(), CITY, user.locale if user.locale in LOCALES else "zh"))
    return deliveries, silent
