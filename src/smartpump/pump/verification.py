"""Bedside verification: what was scanned or confirmed at the bedside, compared with the program.

Every mismatch is reported with its reason (patient, drug, concentration, route, line); an empty
result means the five checks agree and the start may proceed.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartpump.library.model import Drug, Route, match_key
from smartpump.units import Concentration


@dataclass(frozen=True, slots=True, kw_only=True)
class BedsideScan:
    """Scanned or confirmed at the bedside: wristband, medication label, route and line."""

    patient_id: str
    drug: str
    concentration: Concentration | None
    route: Route
    line_label: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Expected:
    """What the channel is programmed for."""

    patient_id: str | None
    drug: Drug | None
    concentration: Concentration | None
    route: Route
    line_label: str | None


def mismatches(scan: BedsideScan, expected: Expected) -> tuple[str, ...]:
    """Every reason the scan does not match the program (empty when it matches)."""
    reasons: list[str] = []
    if expected.patient_id is None:
        reasons.append("patient.not_associated: the pump has no patient associated")
    elif scan.patient_id != expected.patient_id:
        reasons.append(f"patient.mismatch: scanned {scan.patient_id!r}, pump has {expected.patient_id!r}")
    if expected.drug is None:
        reasons.append("drug.basic_infusion: a basic infusion has no drug to verify")
    elif match_key(scan.drug) not in {match_key(n) for n in expected.drug.names()}:
        reasons.append(f"drug.mismatch: label says {scan.drug!r}, program is {expected.drug.shown_name!r}")
    if (
        expected.concentration is not None
        and scan.concentration is not None
        and not scan.concentration.same_strength(expected.concentration)
    ):
        reasons.append(
            f"concentration.mismatch: label {scan.concentration}, program {expected.concentration}"
        )
    if expected.concentration is not None and scan.concentration is None:
        reasons.append("concentration.missing: the label gives no concentration")
    if scan.route is not expected.route:
        reasons.append(f"route.mismatch: scanned {scan.route}, program {expected.route}")
    if expected.line_label is not None and scan.line_label != expected.line_label:
        reasons.append(
            f"line.mismatch: scanned line {scan.line_label!r}, channel is on {expected.line_label!r}"
        )
    return tuple(reasons)
