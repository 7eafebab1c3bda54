"""Synthetic patients for simulated pumps: fictitious names under an assigning authority that says so."""

from __future__ import annotations

from typing import Final

from smartpump.pump.patient import PatientIdentity

SYNTHETIC_AUTHORITY: Final = "SYNTHETIC"
"""PID-3.4 of every simulated patient: no real record can match it, and screens label it as synthetic."""
_FAMILY: Final = (
    "Avery",
    "Brook",
    "Castell",
    "Dorsey",
    "Ellwood",
    "Fenn",
    "Garrow",
    "Holt",
    "Ingram",
    "Jessup",
)
_GIVEN: Final = (
    "Alex",
    "Robin",
    "Sam",
    "Jordan",
    "Casey",
    "Morgan",
    "Quinn",
    "Riley",
    "Taylor",
    "Jamie",
    "Drew",
)


def synthetic_patient(index: int) -> PatientIdentity:
    """The fictitious patient of simulated pump ``index`` (0-based): ``SIM-00001`` and a made-up name."""
    return PatientIdentity(
        patient_id=f"SIM-{index + 1:05d}",
        authority=SYNTHETIC_AUTHORITY,
        id_type="MR",
        family_name=_FAMILY[index % len(_FAMILY)],
        given_name=_GIVEN[index % len(_GIVEN)],
    )
