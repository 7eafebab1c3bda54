"""The pump's service configuration: settings biomedical engineering owns for one pump model of one
hospital, apart from the drug library (a pump-level rate cap, bedside verification, alert and reminder
timings), its canonical document and its Ed25519 signature.

A configuration is versioned per (hospital, model); version 0 is the factory default (today's
behaviour, ``factory_settings``), which is never signed. ``verify_configuration`` refuses, in this
order: an unknown algorithm or unusable key, a signature that does not match the exact payload, a
payload that is not a canonical configuration, a configuration for another hospital or another model,
and a version not strictly newer than the one the pump holds (anti-rollback). Alarm priorities and
the audio pause (IEC 60601-1-8) are deliberately not settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final

from smartpump.errors import ConfigurationError, RollbackError, SignatureError
from smartpump.library.signing import ALGORITHM, SignedDocument, sign_payload, verify_signature
from smartpump.pump.administration_set import DEFAULT_CHANGE_H
from smartpump.pump.capabilities import Capabilities, PumpModel, capabilities
from smartpump.pump.persistence import canonical_json

FORMAT: Final = "smartpump.pump-configuration/1"
SIGNED_FORMAT: Final = "smartpump.signed-configuration/1"
NEAR_END_ALERT_MIN_RANGE: Final = (1, 30)
SET_CHANGE_INTERVAL_H_RANGE: Final = (1, 168)
MAX_NAME_CHARS: Final = 255
MAX_HOSPITAL_CHARS: Final = 64
DOCUMENT_KEYS: Final = frozenset({"format", "hospital_id", "model", "version", "name", "settings"})

Problems = list[tuple[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigurationSettings:
    """What a configuration sets on the pump; the runtime reads every field.

    ``max_rate_ml_per_h``: a rate cap at or below the model's maximum, enforced like a hard limit
    (None: the model's own range only). ``require_verification``: bedside barcode verification before
    every start. ``near_end_alert_min``: lead time of the near-end-of-infusion alert.
    ``kvo_rate_ml_per_h``: the KVO rate when the care area sets none. ``set_change_interval_h``: the
    administration-set change reminder when the care area sets none.
    """

    max_rate_ml_per_h: Decimal | None
    require_verification: bool
    near_end_alert_min: int
    kvo_rate_ml_per_h: Decimal
    set_change_interval_h: int

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (decimals as exact strings)."""
        return {
            "max_rate_ml_per_h": None if self.max_rate_ml_per_h is None else str(self.max_rate_ml_per_h),
            "require_verification": self.require_verification,
            "near_end_alert_min": self.near_end_alert_min,
            "kvo_rate_ml_per_h": str(self.kvo_rate_ml_per_h),
            "set_change_interval_h": self.set_change_interval_h,
        }


SETTING_KEYS: Final = frozenset(f.name for f in fields(ConfigurationSettings))


def factory_settings(model: PumpModel | str) -> ConfigurationSettings:
    """The settings of configuration version 0: what a pump of this model does out of the box."""
    caps = capabilities(model)
    return ConfigurationSettings(
        max_rate_ml_per_h=None,
        require_verification=False,
        near_end_alert_min=int(caps.near_end_min),
        kvo_rate_ml_per_h=caps.default_kvo_ml_per_h,
        set_change_interval_h=DEFAULT_CHANGE_H,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PumpConfiguration:
    """One version of a hospital's configuration for one pump model."""

    hospital_id: str
    model: PumpModel
    version: int
    name: str
    settings: ConfigurationSettings

    def to_dict(self) -> dict[str, Any]:
        """The configuration document (format ``smartpump.pump-configuration/1``), JSON-ready."""
        return {
            "format": FORMAT,
            "hospital_id": self.hospital_id,
            "model": self.model.value,
            "version": self.version,
            "name": self.name,
            "settings": self.settings.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: object) -> PumpConfiguration:
        """Read and validate a configuration document; unknown keys are refused, settings left out take
        the model's factory values.

        Raises:
            ConfigurationError: ``configuration.invalid`` with one (field, reason) per problem.
        """
        if not isinstance(raw, Mapping):
            raise ConfigurationError(
                "a configuration is a JSON object", problems=(("configuration", "must be an object"),)
            )
        present = set(raw)
        problems: Problems = [(key, "unknown field") for key in sorted(present - DOCUMENT_KEYS, key=str)]
        problems += [(key, "required") for key in sorted(DOCUMENT_KEYS - present)]
        if "format" in present and raw["format"] != FORMAT:
            problems.append(("format", f"must be {FORMAT!r}"))
        hospital_id = (
            _text(raw["hospital_id"], "hospital_id", MAX_HOSPITAL_CHARS, problems)
            if "hospital_id" in present
            else None
        )
        name = _text(raw["name"], "name", MAX_NAME_CHARS, problems) if "name" in present else None
        version = (
            _whole(raw["version"], "version", (1, 2**31 - 1), problems) if "version" in present else None
        )
        caps = _caps(raw["model"], "model", problems) if "model" in present else None
        raw_settings = raw.get("settings")
        settings: ConfigurationSettings | None = None
        if "settings" in present and not isinstance(raw_settings, Mapping):
            problems.append(("settings", "must be an object"))
        elif isinstance(raw_settings, Mapping) and caps is not None:
            settings = _settings(raw_settings, caps, problems, "settings")
        _raise_if(problems)
        assert hospital_id is not None and name is not None and version is not None
        assert caps is not None and settings is not None
        return cls(hospital_id=hospital_id, model=caps.model, version=version, name=name, settings=settings)


def canonical_bytes(configuration: PumpConfiguration) -> bytes:
    """The exact bytes that get signed: sorted keys, no insignificant whitespace, UTF-8."""
    return canonical_json(configuration.to_dict())


def content_sha256(configuration: PumpConfiguration) -> str:
    """SHA-256 (hex) of the canonical bytes: what the pump reports and the server stores."""
    return hashlib.sha256(canonical_bytes(configuration)).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedConfiguration(SignedDocument):
    """A configuration's canonical bytes with who signed them (``key_id``), how, and the signature."""

    FORMAT: ClassVar[str] = SIGNED_FORMAT
    WHAT: ClassVar[str] = "signed configuration"


def sign_configuration(
    configuration: PumpConfiguration, private_key_pem: bytes, key_id: str
) -> SignedConfiguration:
    """Sign the configuration's canonical bytes with an Ed25519 key.

    Raises:
        SignatureError: ``key.malformed``, ``key.wrong_type``, ``signature.key_id``.
    """
    payload = canonical_bytes(configuration)
    return SignedConfiguration(
        payload=payload,
        key_id=key_id,
        algorithm=ALGORITHM,
        signature=sign_payload(payload, private_key_pem, key_id),
    )


def verify_configuration(
    signed: SignedConfiguration,
    public_key_pem: bytes,
    *,
    model: PumpModel,
    held_version: int,
    hospital_id: str | None = None,
) -> PumpConfiguration:
    """The signed configuration, once its signature, hospital, model and version are all accepted.

    Raises:
        SignatureError: ``signature.algorithm``, ``key.malformed``, ``key.wrong_type``, ``signature.invalid``,
            ``signature.payload`` (signed bytes that are not a canonical configuration),
            ``signature.wrong_hospital``, ``signature.wrong_model``.
        RollbackError: ``signature.rollback``, the version is not above ``held_version``.
    """
    verify_signature(signed, public_key_pem)
    configuration = _load_payload(signed.payload)
    if hospital_id is not None and configuration.hospital_id != hospital_id:
        raise SignatureError(
            f"configuration is for hospital {configuration.hospital_id!r}, not {hospital_id!r}",
            code="signature.wrong_hospital",
        )
    if configuration.model is not model:
        raise SignatureError(
            f"configuration is for the {configuration.model} model, this pump is {model}",
            code="signature.wrong_model",
        )
    if configuration.version <= held_version:
        raise RollbackError(
            f"configuration version {configuration.version} is not newer than version {held_version} "
            "held by the pump"
        )
    return configuration


def _load_payload(payload: bytes) -> PumpConfiguration:
    """The configuration in signed bytes, refused unless those bytes are exactly its canonical form."""
    try:
        configuration = PumpConfiguration.from_dict(json.loads(payload.decode("utf-8")))
    except ValueError as error:
        raise SignatureError(
            f"signed payload is not a valid configuration: {error}", code="signature.payload"
        ) from None
    if canonical_bytes(configuration) != payload:
        raise SignatureError("signed payload is not in canonical form", code="signature.payload")
    return configuration


# --- validation: each reader appends (field, reason) for what is wrong and returns None -------------


def _raise_if(problems: Problems) -> None:
    if problems:
        listed = "; ".join(f"{field}: {reason}" for field, reason in problems)
        raise ConfigurationError(f"pump configuration is not valid: {listed}", problems=tuple(problems))


def _caps(value: object, field: str, problems: Problems) -> Capabilities | None:
    known = [m.value for m in PumpModel]
    if isinstance(value, str) and value in known:
        return capabilities(value)
    problems.append((field, f"unknown pump model {value!r} (known: {', '.join(known)})"))
    return None


def _text(value: object, field: str, max_chars: int, problems: Problems) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        problems.append((field, f"must be a non-empty text of at most {max_chars} characters"))
        return None
    return value


def _whole(value: object, field: str, bounds: tuple[int, int], problems: Problems) -> int | None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append((field, f"must be a whole number, got {value!r}"))
        return None
    if not low <= value <= high:
        problems.append((field, f"must be within {low}-{high}, got {value}"))
        return None
    return value


def _flag(value: object, field: str, problems: Problems) -> bool | None:
    if not isinstance(value, bool):
        problems.append((field, f"must be true or false, got {value!r}"))
        return None
    return value


def _rate(
    value: object, field: str, caps: Capabilities, max_ml_per_h: Decimal, problems: Problems
) -> Decimal | None:
    """A rate the model can run exactly, from its minimum rate up to ``max_ml_per_h``."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        problems.append((field, f'must be a decimal number written as text ("2.5"), got {value!r}'))
        return None
    try:
        rate = Decimal(value)
    except InvalidOperation:
        problems.append((field, f"not a number: {value!r}"))
        return None
    if not rate.is_finite():
        problems.append((field, f"must be a finite number, got {value!r}"))
    elif rate < caps.min_rate_ml_per_h:
        problems.append(
            (field, f"{rate} mL/h is below the {caps.model} minimum of {caps.min_rate_ml_per_h} mL/h")
        )
    elif rate > max_ml_per_h:
        problems.append((field, f"{rate} mL/h is above the {caps.model} maximum of {max_ml_per_h} mL/h"))
    elif rate % caps.resolution_at(rate) != 0:
        step = caps.resolution_at(rate)
        problems.append((field, f"{rate} mL/h is not a multiple of the {step} mL/h resolution at that rate"))
    else:
        return rate
    return None


def _settings(
    raw: Mapping[str, Any], caps: Capabilities, problems: Problems, where: str
) -> ConfigurationSettings | None:
    before = len(problems)
    problems += [(f"{where}.{key}", "unknown setting") for key in sorted(set(raw) - SETTING_KEYS, key=str)]
    factory = factory_settings(caps.model)
    cap = raw.get("max_rate_ml_per_h")
    max_rate = (
        None
        if cap is None
        else _rate(cap, f"{where}.max_rate_ml_per_h", caps, caps.max_rate_ml_per_h, problems)
    )
    require = _flag(
        raw.get("require_verification", factory.require_verification),
        f"{where}.require_verification",
        problems,
    )
    near_end = _whole(
        raw.get("near_end_alert_min", factory.near_end_alert_min),
        f"{where}.near_end_alert_min",
        NEAR_END_ALERT_MIN_RANGE,
        problems,
    )
    kvo = _rate(
        raw.get("kvo_rate_ml_per_h", factory.kvo_rate_ml_per_h),
        f"{where}.kvo_rate_ml_per_h",
        caps,
        caps.max_kvo_ml_per_h,
        problems,
    )
    set_change = _whole(
        raw.get("set_change_interval_h", factory.set_change_interval_h),
        f"{where}.set_change_interval_h",
        SET_CHANGE_INTERVAL_H_RANGE,
        problems,
    )
    if len(problems) > before:
        return None
    assert require is not None and near_end is not None and kvo is not None and set_change is not None
    return ConfigurationSettings(
        max_rate_ml_per_h=max_rate,
        require_verification=require,
        near_end_alert_min=near_end,
        kvo_rate_ml_per_h=kvo,
        set_change_interval_h=set_change,
    )
