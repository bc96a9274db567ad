"""The rule pack in force: the one an administrator chose (a stored setting), else the configured one."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.models import Setting
from rules.packs import DEFAULT_PACK, RulePack, get_pack

# The Setting row an administrator changes to switch packs at run time.
ACTIVE_PACK_SETTING = "rule_pack"


def active_pack_id(session: Session) -> str:
    """The Setting rule_pack when an administrator set one, else the RULE_PACK configuration (which
    the app's sessions carry in Session.info, fleet/base/db.py)."""
    chosen = session.scalar(sa.select(Setting.value).where(Setting.key == ACTIVE_PACK_SETTING))
    if chosen:
        return chosen
    return session.info.get("settings", {}).get("RULE_PACK", DEFAULT_PACK)


def active_pack(session: Session) -> RulePack:
    return get_pack(active_pack_id(session))


def set_active_pack(session: Session, pack_id: str, *, user_id: int | None = None) -> RulePack:
    """Make a pack the active one (it must load); recorded in the audit log."""
    pack = get_pack(pack_id)
    setting = session.get(Setting, ACTIVE_PACK_SETTING)
    if setting is None:
        session.add(Setting(key=ACTIVE_PACK_SETTING, value=pack.id))
    else:
        setting.value = pack.id
    session.flush()
    audit.record(session, "rules.activate", user_id=user_id, target_type="rule_pack", detail={"pack": pack.id})
    return pack
