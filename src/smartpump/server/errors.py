"""Server-side refusals (leaves of the smartpump exception tree); the API maps each to an HTTP status."""

from __future__ import annotations

from smartpump.errors import SmartpumpError


class NotFoundError(SmartpumpError):
    """No such object, or one outside the caller's facilities (never says which)."""

    code = "not_found"


class ConflictError(SmartpumpError):
    """The request is valid but the object's state forbids it (wrong lifecycle state, duplicate)."""

    code = "conflict"


class AccessDeniedError(SmartpumpError):
    """The caller is authenticated but not allowed to do this (role, facility, separation of duties)."""

    code = "access.denied"


class AuthenticationError(SmartpumpError):
    """Missing, wrong, expired or revoked credentials."""

    code = "auth.invalid"


class ThrottledError(AuthenticationError):
    """Too many failed logins: the account is locked for a while."""

    code = "auth.throttled"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidInputError(SmartpumpError, ValueError):
    """Input that is well-formed but not acceptable (unknown role, weak password, bad document)."""

    code = "input.invalid"

    def __init__(self, message: str, *, code: str | None = None, details: tuple[object, ...] = ()) -> None:
        super().__init__(message, code=code)
        self.details = details
