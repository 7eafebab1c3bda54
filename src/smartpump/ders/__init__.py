"""Dose error reduction: pure checks of an infusion program against the drug library."""

from smartpump.ders.check import check
from smartpump.ders.program import (
    NO_PATIENT,
    Alert,
    Deliverable,
    DeviceLimits,
    InfusionProgram,
    PatientParameters,
    PCAProgram,
    ProgramKind,
    Verdict,
    VerdictLevel,
)
from smartpump.ders.rules import RULES, rule_ids
from smartpump.ders.select import describe, find_entry

__all__ = [
    "NO_PATIENT",
    "RULES",
    "Alert",
    "Deliverable",
    "DeviceLimits",
    "InfusionProgram",
    "PCAProgram",
    "PatientParameters",
    "ProgramKind",
    "Verdict",
    "VerdictLevel",
    "check",
    "describe",
    "find_entry",
    "rule_ids",
]
