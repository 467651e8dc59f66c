"""Password hashing (argon2id via argon2-cffi) and the password policy."""

from __future__ import annotations

import functools
import re
import threading
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256

# argon2-cffi's defaults, RFC 9106's low-memory profile: argon2id, 3 passes over 64 MiB, 4 lanes.
STANDARD_HASHER = PasswordHasher()
# Not a credential: verified against when the username is unknown (below).
_DUMMY_PASSWORD = "navigator-dummy-password-for-timing"  # noqa: S105

# Each argon2 hash or verification holds 64 MiB while it runs. Fifty navigators signing in at
# nine o'clock (or a flood of sign-in attempts) would otherwise run dozens at once in each
# worker's thread pool: the load test saw 2 GB appear for a few seconds. At most this many run
# at once per process; the rest wait their turn, a fraction of a second each.
CONCURRENT_HASHES = 4
_slots = threading.BoundedSemaphore(CONCURRENT_HASHES)


class _Hashing:
    """The hasher in use and a hash of the dummy password made with it: an unknown username
    costs the same one verification as a known one, so response time does not reveal which
    accounts exist."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.use(hasher)

    def use(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self.dummy_hash = hasher.hash(_DUMMY_PASSWORD)


_current = _Hashing(STANDARD_HASHER)


def use_hasher(hasher: PasswordHasher) -> None:
    """Hash and verify new passwords with `hasher`'s parameters from now on. Only the test suite
    calls this (argon2id at its minimum cost: otherwise each of its thousands of sign-ins spends
    a tenth of a second or more in argon2); the service always runs `STANDARD_HASHER`. A hash
    carries its own parameters, so hashes made either way still verify."""
    _current.use(hasher)


def hash_password(password: str) -> str:
    with _slots:
        return _current.hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    with _slots:
        try:
            stored = password_hash or _current.dummy_hash
            return _current.hasher.verify(stored, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False


def needs_rehash(password_hash: str) -> bool:
    return _current.hasher.check_needs_rehash(password_hash)


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files("app.auth").joinpath("data/common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def _core(password: str) -> str:
    """The password without leading/trailing digits and symbols ("Password123!" -> "password")."""
    return re.sub(r"^[\W\d_]+|[\W\d_]+$", "", password.lower())


def password_problems(password: str, *, username: str) -> list[str]:
    """Why a new password is not acceptable, in words a user can act on (empty when fine)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"Password must be {MAX_LENGTH} characters or fewer")
    lowered = password.lower()
    if username and username.lower() in lowered:
        problems.append("Password must not contain the username")
    common = common_passwords()
    if lowered in common or _core(password) in common or len(set(lowered)) <= 3:
        problems.append("Password is too common: choose a phrase that is hard to guess")
    return problems
