"""Programs and steps as JSON-ready dicts for the pump's persisted state (SAF-PWR-02), and the sealed
form written to storage: the canonical JSON under an HMAC-SHA256 tag with the pump's own key (SAF-STO-01).

Decimals are written as exact strings, units and concentrations in their text form, so a
restored program is equal to the one saved and gets the same verdict from the same library.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from smartpump.ders.program import InfusionProgram, PatientParameters, PCAProgram, ProgramKind
from smartpump.errors import PumpError, SmartpumpError
from smartpump.library.model import Route
from smartpump.pump.delivery import Step
from smartpump.units import Concentration, DoseUnit

STATE_FORMAT: Final = "smartpump.pump-state/1"
SEALED_FORMAT: Final = "smartpump.pump-state-sealed/1"
MAC_ALGORITHM: Final = "HMAC-SHA256"
MIN_KEY_BYTES: Final = 32


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_key(key: bytes) -> None:
    """Refuse a missing or short state key (it is provisioned per device, never built in)."""
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise PumpError(
            f"the state key must be at least {MIN_KEY_BYTES} bytes (provisioned per device)",
            code="pump.state_key_invalid",
        )


def _mac(state_bytes: bytes, key: bytes) -> str:
    return hmac.new(key, state_bytes, hashlib.sha256).hexdigest()


def seal_state(state: dict[str, Any], key: bytes) -> bytes:
    """The bytes to store: the state and the HMAC-SHA256 of its canonical JSON under the pump's key."""
    check_key(key)
    body = canonical_json(state)
    return canonical_json(
        {"format": SEALED_FORMAT, "alg": MAC_ALGORITHM, "mac": _mac(body, key), "state": state}
    )


def open_state(stored: bytes, key: bytes) -> dict[str, Any]:
    """The state inside sealed bytes; raises PumpError ``pump.state_integrity`` when the bytes are torn,
    flipped or edited (not JSON, wrong shape, or a tag that does not match under this key)."""
    check_key(key)

    def damaged(why: str) -> PumpError:
        return PumpError(f"stored pump state failed its integrity check: {why}", code="pump.state_integrity")

    try:
        sealed = json.loads(stored.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise damaged("not a readable document (torn or corrupted write)") from None
    if not isinstance(sealed, dict) or set(sealed) != {"format", "alg", "mac", "state"}:
        raise damaged("not a sealed state document")
    if sealed["format"] != SEALED_FORMAT or sealed["alg"] != MAC_ALGORITHM:
        raise damaged(f"unknown format or algorithm {sealed['format']!r}/{sealed['alg']!r}")
    state, mac = sealed["state"], sealed["mac"]
    if not isinstance(state, dict) or not isinstance(mac, str):
        raise damaged("not a sealed state document")
    try:
        matches = hmac.compare_digest(_mac(canonical_json(state), key).encode(), mac.encode("utf-8"))
    except UnicodeEncodeError:
        matches = False
    if not matches:
        raise damaged("the tag does not match the content (edited, flipped or another pump's key)")
    return state


def text(value: Decimal | None) -> str | None:
    """A Decimal as its exact string (None stays None)."""
    return None if value is None else str(value)


def number(value: Any) -> Decimal | None:
    """An exact Decimal from a persisted string or int (None stays None); refuses anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PumpError(f"expected a number written as text, got {value!r}", code="pump.state_invalid")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise PumpError(f"not a number: {value!r}", code="pump.state_invalid") from None
    if not result.is_finite():
        raise PumpError(f"not a finite number: {value!r}", code="pump.state_invalid")
    return result


def required(value: Any) -> Decimal:
    """Like ``number`` but refuses a missing value."""
    result = number(value)
    if result is None:
        raise PumpError("a required number is missing", code="pump.state_invalid")
    return result


def program_to_dict(program: InfusionProgram) -> dict[str, Any]:
    """An InfusionProgram as a JSON-ready dict."""
    pca = program.pca
    return {
        "entry_id": program.entry_id,
        "kind": program.kind.value,
        "route": program.route.value,
        "dose": text(program.dose),
        "dose_unit": None if program.dose_unit is None else str(program.dose_unit),
        "rate_ml_per_h": text(program.rate_ml_per_h),
        "concentration": None if program.concentration is None else str(program.concentration),
        "weight_kg": text(program.patient.weight_kg),
        "height_cm": text(program.patient.height_cm),
        "bsa_m2": text(program.patient.bsa_m2),
        "vtbi_ml": text(program.vtbi_ml),
        "duration_min": text(program.duration_min),
        "rate_resolution_ml_per_h": str(program.rate_resolution_ml_per_h),
        "pca": None
        if pca is None
        else {
            "demand_dose": str(pca.demand_dose),
            "lockout_min": str(pca.lockout_min),
            "basal": text(pca.basal),
            "loading_dose": text(pca.loading_dose),
            "max_dose": text(pca.max_dose),
            "max_dose_window_h": pca.max_dose_window_h,
        },
    }


def program_from_dict(raw: dict[str, Any]) -> InfusionProgram:
    """Rebuild a program written by ``program_to_dict``; raises PumpError ``pump.state_invalid``."""
    try:
        pca_raw = raw["pca"]
        pca = (
            None
            if pca_raw is None
            else PCAProgram(
                demand_dose=required(pca_raw["demand_dose"]),
                lockout_min=required(pca_raw["lockout_min"]),
                basal=number(pca_raw["basal"]),
                loading_dose=number(pca_raw["loading_dose"]),
                max_dose=number(pca_raw["max_dose"]),
                max_dose_window_h=pca_raw["max_dose_window_h"],
            )
        )
        return InfusionProgram(
            entry_id=raw["entry_id"],
            kind=ProgramKind(raw["kind"]),
            route=Route(raw["route"]),
            dose=number(raw["dose"]),
            dose_unit=None if raw["dose_unit"] is None else DoseUnit.parse(raw["dose_unit"]),
            rate_ml_per_h=number(raw["rate_ml_per_h"]),
            concentration=None if raw["concentration"] is None else Concentration.parse(raw["concentration"]),
            patient=PatientParameters(
                weight_kg=number(raw["weight_kg"]),
                height_cm=number(raw["height_cm"]),
                bsa_m2=number(raw["bsa_m2"]),
            ),
            vtbi_ml=number(raw["vtbi_ml"]),
            duration_min=number(raw["duration_min"]),
            pca=pca,
            rate_resolution_ml_per_h=required(raw["rate_resolution_ml_per_h"]),
        )
    except PumpError:
        raise
    except (KeyError, TypeError, ValueError, SmartpumpError) as error:
        raise PumpError(f"persisted program is not valid: {error!r}", code="pump.state_invalid") from None


def steps_to_list(steps: list[Step] | tuple[Step, ...]) -> list[dict[str, str]]:
    """Multistep steps as JSON-ready dicts."""
    return [{"rate_ml_per_h": str(s.rate_ml_per_h), "volume_ml": str(s.volume_ml)} for s in steps]


def steps_from_list(raw: list[dict[str, Any]]) -> list[Step]:
    """Rebuild steps written by ``steps_to_list``."""
    try:
        return [
            Step(rate_ml_per_h=required(s["rate_ml_per_h"]), volume_ml=required(s["volume_ml"])) for s in raw
        ]
    except (KeyError, TypeError) as error:
        raise PumpError(f"persisted steps are not valid: {error!r}", code="pump.state_invalid") from None
