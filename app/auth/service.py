"""Accounts and sign-in sessions: create and change users, authenticate, open and end sessions.

Services flush and raise DomainErrors; the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.auth.audit import record_audit
from app.auth.passwords import hash_password, needs_rehash, password_problems, verify_password
from app.auth.roles import Role
from app.auth.tables import User, UserSession
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.settings import Settings

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# One message for unknown user, wrong password, locked and deactivated accounts, so the
# answer never tells an attacker which usernames exist.
SIGN_IN_FAILED = "Enter a correct username and password"
# How often a session's last_seen_at is written: enough for the idle limit, without a write
# on every request.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


class SignInFailedError(InvalidInputError):
    status_code = 401
    code = "sign_in_failed"

    def __init__(self) -> None:
        super().__init__(SIGN_IN_FAILED)


def normalise_username(username: str) -> str:
    return username.strip().lower()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token_for(secret_key: str, session_token: str) -> str:
    """The synchroniser token of a session: derived from (never equal to) the cookie's token."""
    return hmac.new(
        secret_key.encode("utf-8"), b"csrf:" + session_token.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def csrf_token_matches(secret_key: str, session_token: str, candidate: str | None) -> bool:
    if not candidate:
        return False
    return hmac.compare_digest(csrf_token_for(secret_key, session_token), candidate)


# --- accounts -------------------------------------------------------------------------------


def validate_new_password(password: str, *, username: str) -> None:
    problems = password_problems(password, username=username)
    if problems:
        raise InvalidInputError(
            problems[0], details=[{"field": "password", "message": p} for p in problems]
        )


USERNAME_TAKEN = "That username is taken"


def user_problems(session: Session, *, username: str, password: str) -> list[dict[str, str]]:
    """Every reason a new account cannot be created, all at once (empty when it can)."""
    username = normalise_username(username)
    problems: list[dict[str, str]] = []
    if not USERNAME_PATTERN.match(username):
        problems.append(
            {
                "field": "username",
                "message": "Username must be 2 to 64 characters: letters, digits, '.', '_' or '-'",
            }
        )
    elif session.scalar(select(User.id).where(User.username == username)) is not None:
        problems.append({"field": "username", "message": USERNAME_TAKEN})
    problems += [
        {"field": "password", "message": problem}
        for problem in password_problems(password, username=username)
    ]
    return problems


def create_user(
    session: Session,
    *,
    username: str,
    role: Role,
    password: str,
    created_by: int | None = None,
) -> User:
    username = normalise_username(username)
    problems = user_problems(session, username=username, password=password)
    if problems == [{"field": "username", "message": USERNAME_TAKEN}]:
        raise ConflictError("An account with that username already exists", details=problems)
    if problems:
        raise InvalidInputError(problems[0]["message"], details=problems)
    user = User(
        username=username,
        role=Role(role).value,
        password_hash=hash_password(password),
        active=True,
        failed_attempts=0,
    )
    session.add(user)
    session.flush()
    record_audit(
        session,
        user_id=created_by,
        action="user.created",
        detail={"target_user_id": user.id, "role": user.role},
    )
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError("No account with that id")
    return user


def get_user_by_username(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == normalise_username(username)))
    if user is None:
        raise NotFoundError("No account with that username")
    return user


def set_password(session: Session, *, user_id: int, password: str, changed_by: int | None) -> User:
    """Replace a password (policy enforced); signs the account out everywhere."""
    user = get_user(session, user_id)
    validate_new_password(password, username=user.username)
    user.password_hash = hash_password(password)
    user.failed_attempts = 0
    user.locked_until = None
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    session.flush()
    record_audit(
        session, user_id=changed_by, action="user.password_set", detail={"target_user_id": user.id}
    )
    return user


def change_own_password(
    session: Session,
    *,
    user_id: int,
    current: str,
    new: str,
    confirm: str,
    keep_session_token: str | None,
    now: datetime,
) -> int:
    """A signed-in user replaces their own password: the current one must be right, the new
    one typed twice and within the password rules. Every problem is reported at once and
    nothing changes. On success the account's other sessions are signed out (this one is
    kept) and the change is audited; returns how many sessions were signed out."""
    user = get_user(session, user_id)
    problems: list[dict[str, str]] = []
    if not current:
        problems.append({"field": "current-password", "message": "Enter your current password"})
    elif not verify_password(user.password_hash, current):
        problems.append(
            {"field": "current-password", "message": "Your current password is not right"}
        )
    if not new:
        problems.append({"field": "new-password", "message": "Enter a new password"})
    else:
        problems += [
            {"field": "new-password", "message": problem}
            for problem in password_problems(new, username=user.username)
        ]
        if current and new == current:
            problems.append(
                {"field": "new-password", "message": "The new password must be a new one"}
            )
    if new and confirm != new:
        problems.append(
            {"field": "confirm-password", "message": "The two new passwords do not match"}
        )
    if problems:
        raise InvalidInputError("Your password was not changed.", details=problems)
    user.password_hash = hash_password(new)
    others = delete(UserSession).where(UserSession.user_id == user.id)
    if keep_session_token:
        others = others.where(UserSession.token_hash != hash_token(keep_session_token))
    result = session.execute(others)
    signed_out = int(getattr(result, "rowcount", 0) or 0)
    session.flush()
    record_audit(
        session,
        user_id=user.id,
        action="user.password_changed",
        detail={"target_user_id": user.id, "other_sessions_signed_out": signed_out},
        now=now,
    )
    return signed_out


# Refusals that protect the service from locking every administrator out: answered 409 (the
# state of the accounts forbids it), in words, never as "no permission".
LAST_ADMIN_DEMOTED = (
    "The last active administrator cannot lose the admin role: give another account the "
    "admin role first, so someone can still manage accounts"
)
LAST_ADMIN_DEACTIVATED = (
    "The last active administrator cannot be deactivated: give another account the admin "
    "role first, so someone can still manage accounts"
)
OWN_ACCOUNT_DEACTIVATED = (
    "You cannot deactivate your own account: ask another administrator to do it"
)


def _admins_left_after(session: Session, user: User) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN.value, User.active.is_(True), User.id != user.id)
        )
        or 0
    )


def change_role(session: Session, *, user_id: int, role: Role, changed_by: int) -> User:
    user = get_user(session, user_id)
    if (
        user.role == Role.ADMIN.value
        and role != Role.ADMIN
        and _admins_left_after(session, user) == 0
    ):
        raise ConflictError(LAST_ADMIN_DEMOTED)
    previous = user.role
    user.role = Role(role).value
    session.flush()
    record_audit(
        session,
        user_id=changed_by,
        action="user.role_changed",
        detail={"target_user_id": user.id, "from": previous, "to": user.role},
    )
    return user


def deactivation_refusal(session: Session, user: User, *, changed_by: int) -> str | None:
    """Why `changed_by` may not deactivate `user`, in words; None when they may."""
    if user.id == changed_by:
        return OWN_ACCOUNT_DEACTIVATED
    if user.role == Role.ADMIN.value and user.active and _admins_left_after(session, user) == 0:
        return LAST_ADMIN_DEACTIVATED
    return None


def set_active(session: Session, *, user_id: int, active: bool, changed_by: int) -> User:
    user = get_user(session, user_id)
    if not active:
        refusal = deactivation_refusal(session, user, changed_by=changed_by)
        if refusal:
            raise ConflictError(refusal)
        # Deactivation signs the account out everywhere at once.
        session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    user.active = active
    session.flush()
    record_audit(
        session,
        user_id=changed_by,
        action="user.activated" if active else "user.deactivated",
        detail={"target_user_id": user.id},
    )
    return user


def unlock(session: Session, *, user_id: int, changed_by: int | None) -> User:
    user = get_user(session, user_id)
    user.failed_attempts = 0
    user.locked_until = None
    session.flush()
    record_audit(
        session, user_id=changed_by, action="user.unlocked", detail={"target_user_id": user.id}
    )
    return user


# --- signing in -----------------------------------------------------------------------------


def authenticate(
    session: Session,
    settings: Settings,
    *,
    username: str,
    password: str,
    now: datetime,
) -> User:
    """The account these credentials open, or SignInFailedError (one message for every cause).

    Failures count towards a lockout of `login_lockout_minutes` after `login_max_failures`
    in a row; a locked account refuses even the right password until the lock expires or an
    administrator unlocks it.
    """
    user = session.scalar(select(User).where(User.username == normalise_username(username)))
    # Always run one argon2 verification so timing does not reveal whether the user exists.
    password_ok = verify_password(user.password_hash if user else None, password)
    if user is None:
        record_audit(
            session, now=now, user_id=None, action="sign_in.failed", detail={"reason": "unknown"}
        )
        raise SignInFailedError
    if not user.active:
        record_audit(
            session,
            now=now,
            user_id=user.id,
            action="sign_in.failed",
            detail={"reason": "inactive"},
        )
        raise SignInFailedError
    if user.is_locked(now):
        record_audit(
            session, now=now, user_id=user.id, action="sign_in.failed", detail={"reason": "locked"}
        )
        raise SignInFailedError
    if not password_ok:
        user.failed_attempts += 1
        reason = "password"
        if user.failed_attempts >= settings.login_max_failures:
            user.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
            user.failed_attempts = 0
            reason = "password_locked"
        session.flush()
        record_audit(
            session, now=now, user_id=user.id, action="sign_in.failed", detail={"reason": reason}
        )
        raise SignInFailedError
    user.failed_attempts = 0
    user.locked_until = None
    user.last_login = now
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    record_audit(session, now=now, user_id=user.id, action="sign_in.succeeded")
    return user


@dataclass(frozen=True)
class OpenedSession:
    token: str  # the cookie's value; only its hash is stored
    csrf_token: str
    expires_at: datetime


def open_session(
    session: Session, settings: Settings, user: User, *, now: datetime
) -> OpenedSession:
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=settings.session_absolute_hours)
    session.add(
        UserSession(
            token_hash=hash_token(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )
    # Expired sessions of this user are cleared as new ones open, so the table stays small.
    session.execute(
        delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now)
    )
    session.flush()
    return OpenedSession(
        token=token,
        csrf_token=csrf_token_for(settings.secret_key.get_secret_value(), token),
        expires_at=expires_at,
    )


def resolve_session(
    session: Session, settings: Settings, token: str | None, *, now: datetime
) -> User | None:
    """The active user a session token belongs to, or None when missing, expired or idle."""
    if not token or len(token) > 128:
        return None
    row = session.scalar(select(UserSession).where(UserSession.token_hash == hash_token(token)))
    if row is None:
        return None
    idle_limit = row.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if now >= row.expires_at or now >= idle_limit:
        session.delete(row)
        session.flush()
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        row.last_seen_at = now
        session.flush()
    return user


def end_session(session: Session, token: str | None) -> bool:
    if not token:
        return False
    result = session.execute(delete(UserSession).where(UserSession.token_hash == hash_token(token)))
    session.flush()
    return bool(getattr(result, "rowcount", 0))
