"""The one exception tree of smartpump; every error we raise on purpose is one of these.

    SmartpumpError                 base: carries a stable ``code`` and a one-line message
    ├── UnitError                  unknown unit, wrong dimension, non-finite or negative quantity
    ├── LimitOrderError            a LimitSet whose bounds are out of order (LH <= LS <= US <= UH)
    ├── LibraryError               a drug library that cannot be built or read
    │   ├── LibraryFormatError     a file that does not follow its format (JSON Schema, CSV columns...)
    │   └── LookupFailedError      no (or more than one) care area / drug / entry matches a request
    ├── SignatureError             a signed library, configuration or command that does not verify
    │   ├── RollbackError          a signed library or configuration not newer than the one held
    │   └── SigningKeyError        a key (file) that is missing, unreadable, exposed, malformed or
    │                              not Ed25519 (``key.*``)
    ├── ConfigurationError         a pump configuration that fails its schema (``problems``: field, reason)
    ├── ProgramError               an infusion program that cannot be checked (missing weight,
    │                              route or concentration not in the entry, basic infusion refused)
    ├── PumpError                  a pump action refused in its current state (start after a hard
    │                              stop, start with the door open, PCA demand in lockout...)
    ├── interop.hl7v2.message.Hl7ParseError     an HL7 v2 message that cannot be parsed
    ├── interop.hl7v2.mllp.MllpError            broken MLLP framing or transport
    ├── interop.hl7v2.pcd03.OrderRejected       an infusion order refused, with its IHE PIV code
    ├── interop.fhir.mappers.FhirMappingError   a FHIR resource that cannot be mapped
    ├── transport.messages.MessageError         a pump <-> server message that fails validation
    │   └── transport.offers.OfferError         a program offer that does not follow its format
    ├── analytics.flow_accuracy.BenchError      a bench record or analysis that cannot be used
    └── server.errors.*                         NotFoundError, ConflictError, AccessDeniedError,
                                                AuthenticationError (ThrottledError), InvalidInputError

The outer-layer classes live beside the code that raises them and subclass SmartpumpError, so
callers can catch every deliberate error at the root.

Codes are dotted and stable (``unit.unknown``, ``program.weight_required``); the CLI, the API and
the event log show the same code.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "LibraryError",
    "LibraryFormatError",
    "LimitOrderError",
    "LookupFailedError",
    "ProgramError",
    "PumpError",
    "RollbackError",
    "SignatureError",
    "SigningKeyError",
    "SmartpumpError",
    "UnitError",
]


class SmartpumpError(Exception):
    """Base of every deliberate smartpump error: a stable code plus a one-line message."""

    code: str = "smartpump.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The one-line human-readable reason."""
        return str(self.args[0]) if self.args else self.code


class UnitError(SmartpumpError, ValueError):
    """A unit or quantity that is not part of the closed vocabulary, or not usable here."""

    code = "unit.invalid"


class LimitOrderError(SmartpumpError, ValueError):
    """Limit bounds that are not ordered hard_min <= soft_min <= soft_max <= hard_max."""

    code = "limits.order"


class LibraryError(SmartpumpError):
    """A drug library that cannot be built, read or used as asked."""

    code = "library.invalid"


class LibraryFormatError(LibraryError):
    """A library file that does not follow its declared format; ``problems`` lists every one."""

    code = "library.format"

    def __init__(self, message: str, *, problems: tuple[str, ...] = (), code: str | None = None):
        super().__init__(message, code=code)
        self.problems = problems


class LookupFailedError(LibraryError):
    """No match, or an ambiguous match, for a care area, drug or entry; ``candidates`` says which."""

    code = "library.lookup"

    def __init__(self, message: str, *, candidates: tuple[str, ...] = (), code: str | None = None):
        super().__init__(message, code=code)
        self.candidates = candidates


class SignatureError(SmartpumpError):
    """A signature that does not verify, or a signed document for another hospital."""

    code = "signature.invalid"


class RollbackError(SignatureError):
    """A signed library or configuration whose version is not newer than the one held (anti-rollback)."""

    code = "signature.rollback"


class SigningKeyError(SignatureError):
    """A signing key that cannot be used: ``key.missing``, ``key.unreadable``, ``key.permissions`` (a private
    key file others may read), ``key.malformed``, ``key.wrong_type`` (not Ed25519, or the other half)."""

    code = "key.malformed"


class ConfigurationError(SmartpumpError, ValueError):
    """A pump configuration that fails its schema; ``problems`` holds (field, reason) for every one."""

    code = "configuration.invalid"

    def __init__(
        self, message: str, *, problems: tuple[tuple[str, str], ...] = (), code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.problems = problems


class ProgramError(SmartpumpError, ValueError):
    """An infusion program that cannot be evaluated as given; the clinician must reprogram."""

    code = "program.invalid"


class PumpError(SmartpumpError):
    """A pump action refused in the pump's current state."""

    code = "pump.refused"
