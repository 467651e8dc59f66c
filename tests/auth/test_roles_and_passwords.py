from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import Type

from app.auth import passwords
from app.auth.passwords import hash_password, password_problems, verify_password
from app.auth.roles import Role


def test_roles_are_ordered_by_rank_and_a_higher_role_includes_the_lower() -> None:
    assert Role.NAVIGATOR < Role.MANAGER < Role.ADMIN
    assert sorted([Role.ADMIN, Role.NAVIGATOR, Role.MANAGER]) == [
        Role.NAVIGATOR,
        Role.MANAGER,
        Role.ADMIN,
    ]
    assert Role.ADMIN.includes(Role.NAVIGATOR)
    assert Role.MANAGER.includes(Role.MANAGER)
    assert not Role.NAVIGATOR.includes(Role.MANAGER)
    assert Role("manager") is Role.MANAGER


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short-one", "at least 12 characters"),
        ("password1234", "too common"),
        ("Password2026!", "too common"),
        ("qwertyuiop!!", "too common"),
        ("aaaaaaaaaaaaaa", "too common"),
        ("my name is sam.jones ok", "must not contain the username"),
    ],
)
def test_the_password_policy_refuses_weak_passwords(password: str, problem: str) -> None:
    problems = password_problems(password, username="sam.jones")
    assert any(problem in message for message in problems), problems


def test_a_long_uncommon_passphrase_is_accepted() -> None:
    assert password_problems("marmalade orbit lantern", username="sam.jones") == []


def test_the_service_hashes_with_rfc_9106_low_memory_argon2id() -> None:
    # The tests hash cheaply (tests/conftest.py); the service keeps argon2-cffi's defaults.
    standard = passwords.STANDARD_HASHER
    assert (standard.type, standard.time_cost, standard.memory_cost) == (Type.ID, 3, 65536)
    assert standard.parallelism == 4
    stored = standard.hash("marmalade orbit lantern")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    # A hash carries its parameters: one made by the service verifies whatever hasher runs.
    assert verify_password(stored, "marmalade orbit lantern")


def test_passwords_are_stored_as_argon2_hashes_and_verified() -> None:
    stored = hash_password("marmalade orbit lantern")
    assert stored.startswith("$argon2id$")
    assert "marmalade" not in stored
    assert verify_password(stored, "marmalade orbit lantern")
    assert not verify_password(stored, "marmalade orbit lanterns")
    assert not verify_password(None, "marmalade orbit lantern")
    assert not verify_password("not-a-hash", "marmalade orbit lantern")


class CountingHasher:
    """Stands in for argon2: records how many hashes run at the same moment."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def verify(self, _hash: str, _password: str) -> bool:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
        return True


def test_many_sign_ins_at_once_run_only_a_few_argon2_hashes_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each argon2 verification holds 64 MiB: 40 at once in a worker's threads would hold 2.5 GB.
    counting = CountingHasher()
    monkeypatch.setattr(passwords._current, "hasher", counting)
    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(lambda _: verify_password("stored", "typed"), range(40)))
    assert all(results)
    assert counting.most == passwords.CONCURRENT_HASHES
