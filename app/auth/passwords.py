"""Password rules: long enough, not the email, not on a list of commonly used passwords."""

from functools import lru_cache

from fastapi_users.password import PasswordHelper
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MAX_LENGTH = 256  # hashing cost grows with length; nobody types more


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # The 30,000 most used passwords from real leaks, as shipped with zxcvbn (MIT).
    return frozenset(FREQUENCY_LISTS["passwords"])


@lru_cache(maxsize=4)
def password_helper(*, memory_kib: int, time_cost: int, parallelism: int) -> PasswordHelper:
    """Hashes new passwords with Argon2id at this cost; a stored hash of another cost still verifies,
    and `verify_and_update` hands back its replacement at this cost."""
    hasher = Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism)
    return PasswordHelper(PasswordHash((hasher,)))


def password_problem(password: str, *, email: str, min_length: int) -> str | None:
    """A sentence saying what is wrong with the password, or None when it is acceptable."""
    if len(password) < min_length:
        return f"Password must be at least {min_length} characters long."
    if len(password) > MAX_LENGTH:
        return f"Password must be at most {MAX_LENGTH} characters long."
    lowered = password.strip().lower()
    email = email.strip().lower()
    if lowered in (email, email.split("@", 1)[0]):
        return "Password must not be your email address."
    if lowered in _common_passwords():
        return "This password is one of the most commonly used; choose one that is harder to guess."
    return None
