"""The exception tree: stable codes, messages, and the standard bases callers may catch."""

from __future__ import annotations

import pytest

from smartpump import errors
from smartpump.errors import (
    ConfigurationError,
    LibraryError,
    LibraryFormatError,
    LimitOrderError,
    LookupFailedError,
    ProgramError,
    PumpError,
    RollbackError,
    SignatureError,
    SmartpumpError,
    UnitError,
)


@pytest.mark.parametrize(
    ("cls", "code", "bases"),
    [
        (SmartpumpError, "smartpump.error", (Exception,)),
        (UnitError, "unit.invalid", (SmartpumpError, ValueError)),
        (LimitOrderError, "limits.order", (SmartpumpError, ValueError)),
        (LibraryError, "library.invalid", (SmartpumpError,)),
        (LibraryFormatError, "library.format", (LibraryError,)),
        (LookupFailedError, "library.lookup", (LibraryError,)),
        (SignatureError, "signature.invalid", (SmartpumpError,)),
        (RollbackError, "signature.rollback", (SignatureError,)),
        (ConfigurationError, "configuration.invalid", (SmartpumpError, ValueError)),
        (ProgramError, "program.invalid", (SmartpumpError, ValueError)),
        (PumpError, "pump.refused", (SmartpumpError,)),
    ],
)
def test_each_error_has_its_default_code_and_bases(
    cls: type[SmartpumpError], code: str, bases: tuple[type[Exception], ...]
) -> None:
    error = cls("something went wrong")
    assert error.code == code
    assert error.message == "something went wrong"
    for base in bases:
        assert isinstance(error, base)


def test_code_may_be_given_per_instance_without_changing_the_class() -> None:
    error = UnitError("bad", code="unit.unknown")
    assert error.code == "unit.unknown"
    assert UnitError.code == "unit.invalid"
    assert UnitError("other").code == "unit.invalid"


def test_message_falls_back_to_the_code_without_args() -> None:
    error = ProgramError("x")
    error.args = ()
    assert error.message == "program.invalid"


def test_format_error_carries_every_problem() -> None:
    error = LibraryFormatError("2 problems", problems=("a: missing", "b: wrong type"))
    assert error.problems == ("a: missing", "b: wrong type")
    assert str(error) == "2 problems"


def test_lookup_error_carries_candidates_and_code() -> None:
    error = LookupFailedError("which?", candidates=("x", "y"), code="library.ambiguous_entry")
    assert error.candidates == ("x", "y")
    assert error.code == "library.ambiguous_entry"
    assert LookupFailedError("none").candidates == ()


def test_every_error_class_is_drawn_in_the_module_docstring() -> None:
    doc = errors.__doc__ or ""
    for name, value in vars(errors).items():
        if isinstance(value, type) and issubclass(value, SmartpumpError):
            assert name in doc
