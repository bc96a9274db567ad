"""What went out: a SentSummary row per (month, recipient, kind) once its message was sent, so that a
month's message is never sent twice (a --resend excepted)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.models import SentSummary, utcnow
from fleet.read.mail.recipients import Delivery


def sent_keys(session: Session, month: str) -> set[tuple[str, str]]:
    rows = session.execute(sa.select(SentSummary.recipient, SentSummary.kind).where(SentSummary.month == month))
    return {(recipient.casefold(), kind) for recipient, kind in rows}


def should_notify(delivery: Delivery, already_sent: set[tuple[str, str]], *, resend: bool = False) -> bool:
    return resend or (delivery.recipient.casefold(), delivery.kind) not in already_sent


def record_sent(session: Session, month: str, delivery: Delivery) -> None:
    """Remember that the message went out; a --resend of a recorded message updates the time."""
    existing = session.scalar(
        sa.select(SentSummary).where(
            SentSummary.month == month, SentSummary.recipient == delivery.recipient, SentSummary.kind == delivery.kind
        )
    )
    if existing is None:
        session.add(SentSummary(month=month, recipient=delivery.recipient, kind=delivery.kind))
    else:
        existing.sent_at = utcnow()
