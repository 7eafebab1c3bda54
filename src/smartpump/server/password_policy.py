"""The password policy (after NIST SP 800-63B, 5.1.1.2): long enough, and not guessable from a list.

Refused: fewer than ``SMARTPUMP_PASSWORD_MIN_LENGTH`` characters; the username or this product's name
inside it; a password of the shipped common-password list (``data/common-passwords.txt``), also with
digits or symbols around it (``Password2026!``); one short unit repeated (``abcabcabcabc``); a run of
the alphabet, the digits or a keyboard row (``123456789012``, ``qwertyuiopas``). Comparisons ignore case.
"""

from __future__ import annotations

import string
from functools import lru_cache
from importlib import resources
from typing import Final

COMMON_PASSWORDS: Final = "common-passwords.txt"
CONTEXT_WORDS: Final = ("smartpump",)
_PADDING: Final = string.digits + string.punctuation + " "
_RUNS: Final = tuple(
    run * 3
    for base in (
        "0123456789",
        string.ascii_lowercase,
        "qwertyuiopasdfghjklzxcvbnm",
        "1qaz2wsx3edc4rfv5tgb6yhn",
    )
    for run in (base, base[::-1])
)
_MAX_UNIT: Final = 4


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, case-folded."""
    text = resources.files("smartpump.server").joinpath("data", COMMON_PASSWORDS).read_text("utf-8")
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def weakness(password: str, username: str, *, min_length: int) -> str | None:
    """Why ``password`` is refused for ``username``, or None when the policy accepts it."""
    if len(password) < min_length:
        return f"password must have at least {min_length} characters"
    folded = password.casefold()
    if username and username.casefold() in folded:
        return "password must not contain the username"
    if any(word in folded for word in CONTEXT_WORDS):
        return "password must not contain the product's name"
    common = common_passwords()
    if folded in common:
        return "password is one of the most common passwords"
    core = folded.strip(_PADDING)
    if core != folded and core in common:
        return "password is a common password with digits or symbols added"
    if any(folded == (folded[:unit] * len(folded))[: len(folded)] for unit in range(1, _MAX_UNIT + 1)):
        return "password repeats a few characters"
    if any(folded in run for run in _RUNS):
        return "password is a run of the alphabet, the digits or a keyboard row"
    return None
