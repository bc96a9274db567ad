"""User accounts: creation, passwords, sessions that end, activation, API tokens.

Every change an administrator makes names the administrator (`actor_id`) in the audit log.
"""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.identifiers import has_control_characters
from fleet.base.models import ROLES, Agency, User
from fleet.base.text import _
from fleet.domain import identity


class UserError(ValueError):
    pass


def check_new_password(password: str, *, username: str, current_hash: str | None = None) -> None:
    problems = identity.password_problems(password, username=username, current_hash=current_hash)
    if problems:
        raise UserError(" ".join(problems))


def add_user(
    session: Session,
    username: str,
    *,
    role: str,
    password: str,
    agency_name: str | None = None,
    email: str | None = None,
    locale: str = "zh",
    actor_id: int | None = None,
    must_change_password: bool = False,
) -> User:
    """Create a user; an agency user belongs to a registered agency, other roles to none.

    `must_change_password`: the password was chosen by an administrator, so the user replaces it at
    the first login."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if not username or has_control_characters(username) or username != username.strip():
        raise UserError(f"user name {username!r} is empty or has spaces or control characters at its ends")
    check_new_password(password, username=username)
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username!r} already exists")
    agency = None
    if role == "agency":
        if not agency_name:
            raise UserError("an agency user needs --agency")
        agency = session.scalar(sa.select(Agency).where(Agency.name == agency_name))
        if agency is None:
            raise UserError(f"agency {agency_name!r} is not registered")
    elif agency_name:
        raise UserError(f"a {role} user does not belong to an agency")
    user = User(
        username=username,
        role=role,
        agency=agency,
        email=email,
        locale=locale,
        password_hash=identity.hash_password(password),
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    audit.record(session, "user.add", user_id=actor_id, target_type="user", target_id=user.id, detail={"role": role})
    return user


def end_sessions(user: User) -> None:
    """Every session the user has open, in any browser, is refused from its next request on."""
    user.session_generation = (user.session_generation or 0) + 1


def log_out(session: Session, user: User) -> None:
    """Logging out ends every session of the user, so a copied cookie dies with the one shown out."""
    end_sessions(user)
    audit.record(session, "user.logout", user_id=user.id, target_type="user", target_id=user.id)


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """The user's own change: the current password must be right, the new one pass the rules and differ."""
    if not identity.password_matches(user, current):
        raise UserError(_("当前密码不正确。"))
    check_new_password(new, username=user.username, current_hash=user.password_hash)
    user.password_hash = identity.hash_password(new)
    user.must_change_password = False
    end_sessions(user)
    audit.record(session, "user.password_changed", user_id=user.id, target_type="user", target_id=user.id)


def reset_password(session: Session, user: User, password: str, *, actor_id: int) -> None:
    """An administrator's reset: the user must change it at the next login; lockouts are lifted."""
    check_new_password(password, username=user.username, current_hash=user.password_hash)
    user.password_hash = identity.hash_password(password)
    user.must_change_password = True
    end_sessions(user)
    identity.unlock(session, user.username)
    audit.record(session, "user.password_reset", user_id=actor_id, target_type="user", target_id=user.id)


def set_active(session: Session, user: User, active: bool, *, actor_id: int) -> None:
    """Activate or deactivate an account; deactivation ends its sessions and revokes its API token."""
    if user.id == actor_id and not active:
        raise UserError("an administrator cannot deactivate their own account")
    user.active = active
    if not active:
        user.api_token_hash = None  # a deactivated account's scripts stop too
        end_sessions(user)
    audit.record(
        session, "user.activate" if active else "user.deactivate", user_id=actor_id, target_type="user", target_id=user.id
    )


def unlock(session: Session, user: User, *, actor_id: int) -> int:
    """Lift the login lockouts of an account; returns how many counters were cleared."""
    cleared = identity.unlock(session, user.username)
    audit.record(session, "user.unlock", user_id=actor_id, target_type="user", target_id=user.id, detail={"counters": cleared})
    return cleared


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(session: Session, user: User, *, actor_id: int) -> str:
    """A new API token for an active user; only its digest is stored, so it is shown once."""
    if not user.active:
        raise UserError("a deactivated account cannot get an API token")
    token = secrets.token_urlsafe(32)
    user.api_token_hash = _token_digest(token)
    audit.record(session, "user.token_issued", user_id=actor_id, target_type="user", target_id=user.id)
    return token


def user_for_token(session: Session, token: str) -> User | None:
    return session.scalar(sa.select(User).where(User.api_token_hash == _token_digest(token), User.active))
