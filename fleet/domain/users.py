"""User accounts: creation, password checks, API tokens."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from fleet.base import audit
from fleet.base.models import ROLES, Agency, User


class UserError(ValueError):
    pass


MIN_PASSWORD_LENGTH = 8


def add_user(
    session: Session,
    username: str,
    *,
    role: str,
    password: str,
    agency_name: str | None = None,
    email: str | None = None,
    locale: str = "zh",
) -> User:
    """Create a user; an agency user belongs to a registered agency, other roles to none."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
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
        password_hash=generate_password_hash(password),
    )
    session.add(user)
    session.flush()
    audit.record(session, "user.add", target_type="user", target_id=user.id, detail={"role": role})
    return user


def set_password(user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = generate_password_hash(password)


def password_ok(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(user: User) -> str:
    """A new API token for the user; only its digest is stored, so it is shown once."""
    token = secrets.token_urlsafe(32)
    user.api_token_hash = _token_digest(token)
    return token


def user_for_token(session: Session, token: str) -> User | None:
    return session.scalar(sa.select(User).where(User.api_token_hash == _token_digest(token), User.active))
