"""The audit log: who did what to which record, written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fleet.base.models import AuditEntry


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
        action=action, user_id=user_id, target_type=target_type, target_id=target_id, detail=detail
    )
    session.add(entry)
    return entry
