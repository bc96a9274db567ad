"""Who may sign in: the password rules and the throttling of failed logins.

Failed logins are counted in the database, in one statement per counter, so parallel guesses cannot
slip past a count read before another request wrote it: an attempt is counted *before* its password
is checked, and forgiven when the password was right. Three counters hold each attempt back:

- one source address guessing one account (`pair`): the owner's own typos, or a guesser, lock only
  that address out of that account, so a third party cannot keep the owner out;
- one address across accounts (`address`): password spraying, and guessing at unknown names;
- one account across addresses (`account`): a guesser spread over many addresses. Its limit is far
  above the pair's, so reaching it takes many addresses; an administrator can lift it (`unlock`).

Unknown and deactivated usernames go through the same counters and the same password hashing as real
accounts, so neither the answer, its status nor its time tells which accounts exist.
"""

from __future__ import annotations

import datetime as dt
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from fleet.base import audit
from fleet.base.models import LoginThrottle, User
from fleet.base.text import _

# --- passwords -------------------------------------------------------------------------------------

MIN_PASSWORD_LENGTH = 10
MIN_CHARACTER_CLASSES = 3
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt")
# A guessable word stays guessable with digits or symbols around it and letters swapped for
# look-alikes: "P@ssw0rd2026!" is "password".
_LOOK_ALIKES = str.maketrans("@4310$5!7+", "aaeiossitt")
_DECORATION = string.digits + string.punctuation + string.whitespace


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def character_classes(password: str) -> int:
    """How many of lower-case letters, upper-case letters, digits and other characters it has."""
    lower = any(c.islower() for c in password)
    upper = any(c.isupper() for c in password)
    digit = any(c.isdigit() for c in password)
    other = any(not (c.islower() or c.isupper() or c.isdigit()) for c in password)
    return lower + upper + digit + other


def _is_common(password: str) -> bool:
    lowered = password.lower()
    bare = lowered.strip(_DECORATION)
    forms = {lowered, bare, lowered.translate(_LOOK_ALIKES), bare.translate(_LOOK_ALIKES).strip(_DECORATION)}
    return bool(forms & common_passwords())


def password_problems(password: str, *, username: str | None = None, current_hash: str | None = None) -> list[str]:
    """What is wrong with a new password, in the user's words; empty when it may be used."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(_("密码至少需要 %(min)s 个字符。", min=MIN_PASSWORD_LENGTH))
    if character_classes(password) < MIN_CHARACTER_CLASSES:
        problems.append(_("密码须包含小写字母、大写字母、数字、符号中的至少三类。"))
    name = (username or "").strip().lower()
    if name and (password.lower() == name or (len(name) >= 3 and name in password.lower())):
        problems.append(_("密码不能包含用户名。"))
    if _is_common(password):
        problems.append(_("这是常见密码，容易被猜到，请换一个。"))
    if current_hash and check_password_hash(current_hash, password):
        problems.append(_("新密码不能与当前密码相同。"))
    return problems


def hash_password(password: str) -> str:
    return generate_password_hash(password)


# Checked against when the username is unknown, so an unknown name costs the same hashing as a real one.
_NO_ACCOUNT_HASH = generate_password_hash("no such account: " + string.ascii_letters)


def password_matches(user: User | None, password: str) -> bool:
    """The password check, taking the same time whether or not the user exists and is active."""
    matched = check_password_hash(user.password_hash if user is not None else _NO_ACCOUNT_HASH, password)
    return matched and user is not None and user.active


# --- throttling ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """After `failures` failed attempts the counter locks for `first_lockout`, doubling with each
    further failure up to `max_lockout`; failures are forgotten after `forget_after` without one."""

    kind: str
    failures: int
    first_lockout: dt.timedelta
    max_lockout: dt.timedelta
    forget_after: dt.timedelta

    def lockout_seconds(self, over: int) -> float:
        return min(self.first_lockout.total_seconds() * 2**over, self.max_lockout.total_seconds())

    def levels(self) -> int:
        """How many doublings until the lockout reaches its maximum."""
        level = 0
        while self.lockout_seconds(level) < self.max_lockout.total_seconds():
            level += 1
        return level


PAIR = Limit("pair", 5, dt.timedelta(seconds=30), dt.timedelta(hours=1), dt.timedelta(hours=24))
ADDRESS = Limit("address", 20, dt.timedelta(minutes=5), dt.timedelta(hours=1), dt.timedelta(hours=2))
ACCOUNT = Limit("account", 50, dt.timedelta(minutes=5), dt.timedelta(hours=1), dt.timedelta(hours=24))
LIMITS = (PAIR, ADDRESS, ACCOUNT)


def _key(limit: Limit, address: str, username: str) -> dict[str, str]:
    return {
        "kind": limit.kind,
        "address": address if limit.kind != "account" else "",
        "username": username if limit.kind != "address" else "",
    }


def _insert(session: Session):
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _count_attempt(session: Session, limit: Limit, key: dict[str, str], now: float) -> float | None:
    """Count one attempt against a counter in a single statement; the seconds it stays locked when it
    refuses the attempt, else None. The attempt that reaches the limit still goes ahead, and arms the
    lock for whatever comes after it, in that same statement."""
    table = LoginThrottle.__table__
    fresh = table.c.last_failure_at < now - limit.forget_after.total_seconds()
    failures = sa.case((fresh, 1), else_=table.c.failures + 1)
    lockouts = {level: limit.lockout_seconds(level) for level in range(limit.levels())}
    lockout = sa.case(lockouts, value=failures - limit.failures, else_=limit.max_lockout.total_seconds())
    insert = _insert(session)(table).values(**key, failures=1, last_failure_at=now, locked_until=None)
    statement = insert.on_conflict_do_update(
        index_elements=["kind", "address", "username"],
        set_={
            "failures": failures,
            "last_failure_at": now,
            "locked_until": sa.case((failures >= limit.failures, now + lockout), else_=None),
        },
        where=sa.or_(table.c.locked_until.is_(None), table.c.locked_until <= now),
    ).returning(table.c.failures)
    if session.execute(statement).first() is not None:
        return None
    locked_until = session.scalar(
        sa.select(table.c.locked_until).where(*(table.c[name] == value for name, value in key.items()))
    )
    return max(1.0, (locked_until or now) - now)


def _forgive(session: Session, limit: Limit, key: dict[str, str]) -> None:
    """Take back the attempt counted for a login that turned out right."""
    table = LoginThrottle.__table__
    where = [table.c[name] == value for name, value in key.items()]
    if limit is PAIR:
        session.execute(sa.delete(table).where(*where))
        return
    session.execute(
        sa.update(table)
        .where(*where)
        .values(
            failures=sa.case((table.c.failures > 0, table.c.failures - 1), else_=0),
            locked_until=sa.case((table.c.failures - 1 >= limit.failures, table.c.locked_until), else_=None),
        )
    )


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None = None
    retry_after: dt.timedelta | None = None

    @property
    def locked(self) -> bool:
        return self.retry_after is not None


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    address: str,
    clock: Callable[[], float] = time.time,
) -> LoginOutcome:
    """Check a login from `address` and audit its outcome. Commits the counting itself, since parallel
    attempts must see it before the (deliberately slow) password check; the caller commits the rest."""
    username = username.strip()[:80]
    now = clock()
    keys = [(limit, _key(limit, address, username)) for limit in LIMITS]
    for limit, key in keys:
        remaining = _count_attempt(session, limit, key, now)
        if remaining is not None:
            session.commit()
            return LoginOutcome(retry_after=dt.timedelta(seconds=remaining))
    session.commit()
    user = session.scalar(sa.select(User).where(User.username == username))
    if not password_matches(user, password):
        audit.record(
            session, "user.login_failed", target_type="user", target_id=user.id if user is not None else None,
            detail={"username": username},
        )
        return LoginOutcome()
    for limit, key in keys:
        _forgive(session, limit, key)
    audit.record(session, "user.login", user_id=user.id, target_type="user", target_id=user.id)
    return LoginOutcome(user=user)


def unlock(session: Session, username: str) -> int:
    """Lift every lockout of an account (an administrator's decision); returns how many counters."""
    table = LoginThrottle.__table__
    return session.execute(sa.delete(table).where(table.c.username == username)).rowcount


def forget_old_failures(session: Session, *, now: float | None = None) -> int:
    """Drop counters with no failure for longer than any limit remembers one, and no lockout running
    (names that are no account would otherwise pile up); returns how many."""
    now = now if now is not None else time.time()
    table = LoginThrottle.__table__
    oldest = now - max(limit.forget_after.total_seconds() for limit in LIMITS)
    stale = sa.and_(table.c.last_failure_at < oldest, sa.or_(table.c.locked_until.is_(None), table.c.locked_until <= now))
    return session.execute(sa.delete(table).where(stale)).rowcount


def locked_usernames(session: Session, *, now: float | None = None) -> set[str]:
    """Names with a lockout running on the account or on some address guessing it."""
    now = now if now is not None else time.time()
    table = LoginThrottle.__table__
    return set(session.scalars(sa.select(table.c.username).where(table.c.username != "", table.c.locked_until > now).distinct()))
