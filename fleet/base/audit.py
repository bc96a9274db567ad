"""The audit log: who did what to which record, from where, written in the same transaction as the change.

Entries are only ever added: nothing in the app updates or deletes one, and on PostgreSQL a trigger
refuses both (migration 0011_security).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from sqlalchemy.orm import Session

from fleet.base.models import AuditEntry

# The network address of the request being served, set by the web layer for the request's duration,
# so every entry a request writes says where it came from without each service passing it along.
source_address: ContextVar[str | None] = ContextVar("source_address", default=None)


def record(
    session: Session,
    action: str,
    *,
    user_id: int | None = None,
    target_type: str | None = None,
    target_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        action=action,
        user_id=user_id,
        target_type=target_type,
        target_id=target_id,
        detail=detail,
        address=source_address.get(),
    )
    session.add(entry)
    return entry
