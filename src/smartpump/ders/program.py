"""What a clinician or an order asks a pump to do (InfusionProgram) and what DERS answers (Verdict).

Programs and verdicts are plain immutable values: the same program checked against the same library
always gets the same verdict, on a pump, on the server and in a what-if replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, NamedTuple

from smartpump.library.limits import LimitKind
from smartpump.library.model import Route
from smartpump.units import Concentration, DoseUnit

DEFAULT_RATE_RESOLUTION_ML_PER_H: Final = Decimal("0.1")
DEFAULT_VTBI_RESOLUTION_ML: Final = Decimal("0.1")


class ProgramKind(StrEnum):
    """The kind of delivery being programmed."""

    CONTINUOUS = "continuous"
    INTERMITTENT = "intermittent"
    BOLUS = "bolus"
    LOADING = "loading"
    PCA = "pca"
    BASIC = "basic"


class VerdictLevel(StrEnum):
    """ok: may start; soft: may start only after an override with a reason; hard: must reprogram."""

    OK = "ok"
    SOFT = "soft"
    HARD = "hard"

    @property
    def rank(self) -> int:
        """0 for ok, 1 for soft, 2 for hard: the most severe alert decides the verdict."""
        return _RANK[self]


_RANK: Final = {VerdictLevel.OK: 0, VerdictLevel.SOFT: 1, VerdictLevel.HARD: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientParameters:
    """Weight (kg), height (cm) and BSA (m2) as entered; BSA is derived by Mosteller when absent."""

    weight_kg: Decimal | None = None
    height_cm: Decimal | None = None
    bsa_m2: Decimal | None = None


NO_PATIENT: Final = PatientParameters()


@dataclass(frozen=True, slots=True, kw_only=True)
class PCAProgram:
    """PCA settings as programmed, in the entry's PCA units (demand dose in e.g. mg)."""

    demand_dose: Decimal
    lockout_min: Decimal
    basal: Decimal | None = None
    loading_dose: Decimal | None = None
    max_dose: Decimal | None = None
    max_dose_window_h: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InfusionProgram:
    """An infusion as asked for: entry (None for a basic infusion), dose or rate, patient, volume.

    Exactly one of ``dose`` and ``rate_ml_per_h`` is given for continuous programs: a dose is
    turned into a rate, a rate into the dose it delivers. ``dose_unit`` defaults to the entry's
    dosing unit; another unit is accepted only when it converts exactly (mg <-> mcg, /min <-> /h).
    ``concentration`` may be omitted when the entry lists exactly one.
    """

    entry_id: str | None
    kind: ProgramKind = ProgramKind.CONTINUOUS
    route: Route = Route.IV
    dose: Decimal | None = None
    dose_unit: DoseUnit | None = None
    rate_ml_per_h: Decimal | None = None
    concentration: Concentration | None = None
    patient: PatientParameters = NO_PATIENT
    vtbi_ml: Decimal | None = None
    duration_min: Decimal | None = None
    pca: PCAProgram | None = None
    rate_resolution_ml_per_h: Decimal = DEFAULT_RATE_RESOLUTION_ML_PER_H
    vtbi_resolution_ml: Decimal = DEFAULT_VTBI_RESOLUTION_ML


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceLimits:
    """What the pump that will run the program can deliver: its rate range, largest VTBI, the
    configuration's rate cap and the volume left in the container on the channel (None: no bound).
    Each is a hard limit in the verdict (``ders.device.*``), next to the library's."""

    min_rate_ml_per_h: Decimal
    max_rate_ml_per_h: Decimal
    max_vtbi_ml: Decimal | None = None
    rate_cap_ml_per_h: Decimal | None = None
    container_left_ml: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliverable:
    """A rate and volume the pump can really run, and the dose it then delivers (entry's unit)."""

    rate_ml_per_h: Decimal
    vtbi_ml: Decimal | None
    dose: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One crossed limit: rule id, parameter, which bound, its value, the value programmed,
    the unit both are in, and how many times beyond the bound the value is (factor >= 1)."""

    rule: str
    parameter: str
    limit_kind: LimitKind
    limit: Decimal
    value: Decimal
    unit: str
    factor: Decimal | None
    level: VerdictLevel


class Verdict(NamedTuple):
    """The DERS answer: level, alerts, and the numbers the pump would run.

    ``rate_ml_per_h`` is rounded half-up to the program's resolution (what the pump delivers);
    ``rate_ml_per_h_exact`` is unrounded. ``dose`` is the dose the pump really delivers, in
    ``dose_unit`` (the entry's unit): at the rounded rate for a dose rate, and for a total dose
    the amount held by ``vtbi_ml``, the volume the pump will run. ``dose_programmed`` is the dose
    as asked (None when programmed as a rate). Dose limits hold both. ``deliverable`` lists the
    neighbouring rates or volumes inside the limits when rounding alone pushes the delivered dose
    across one (never clamped silently: the clinician chooses).

    An immutable NamedTuple rather than a frozen dataclass: DERS builds one on every check, and a
    frozen dataclass costs four times as much to build.
    """

    level: VerdictLevel
    alerts: tuple[Alert, ...]
    rate_ml_per_h: Decimal
    rate_ml_per_h_exact: Decimal
    dose: Decimal | None
    dose_unit: str
    entry_id: str | None
    care_area_id: str
    bsa_m2: Decimal | None = None
    is_unprotected: bool = False
    dose_programmed: Decimal | None = None
    vtbi_ml: Decimal | None = None
    deliverable: tuple[Deliverable, ...] = ()

    @property
    def may_start(self) -> bool:
        """True only for ok; a soft verdict needs an override first, a hard one never starts."""
        return self.level is VerdictLevel.OK
