"""The password policy: length, username and product name, the shipped common-password list (also with
digits or symbols around), repeats and runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.server.password_policy import common_passwords, weakness

MIN = 12


def test_the_shipped_list_holds_the_most_common_passwords() -> None:
    common = common_passwords()
    assert len(common) >= 300
    assert {"123456", "password", "qwerty", "iloveyou", "letmein", "p@ssw0rd", "changeme"} <= common
    assert all(entry == entry.casefold() and entry.strip() == entry for entry in common)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 12 characters"),
        ("nina-likes-long-walks", "username"),
        ("my smartpump key!", "product's name"),
        ("password1234", "most common passwords"),
        ("QWERTYUIOP123", "most common"),
        ("Password2026!", "digits or symbols added"),
        ("!!Summer2025!!", "digits or symbols added"),
        ("p@ssw0rd2024!!", "digits or symbols added"),
        ("abcabcabcabc", "repeats"),
        ("zzzzzzzzzzzzzzzz", "repeats"),
        ("123456789012", "run"),
        ("qwertyuiopas", "run"),
        ("ZYXWVUTSRQPO", "run"),
    ],
)
def test_guessable_passwords_are_refused_with_the_reason(password: str, reason: str) -> None:
    found = weakness(password, "nina", min_length=MIN)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "Tr0ub4dor&3-mauve-kettle", "infusion rate 37 at dusk"]
)
def test_long_unguessable_passwords_are_accepted(password: str) -> None:
    assert weakness(password, "nina", min_length=MIN) is None


@given(
    st.sampled_from(sorted(p for p in common_passwords() if p.isalpha() and len(p) >= 4)),
    st.text(alphabet="0123456789!@#$%&*?. ", min_size=1, max_size=8),
    st.text(alphabet="0123456789!@#$%&*?. ", max_size=4),
    st.booleans(),
)
def test_a_common_password_padded_with_digits_or_symbols_is_refused(
    word: str, suffix: str, prefix: str, capitalised: bool
) -> None:
    password = prefix + (word.capitalize() if capitalised else word) + suffix
    assert weakness(password, "nina", min_length=1) is not None
