"""check(library, care_area, program) -> Verdict: the dose error reduction decision, pure and exact.

The program is resolved first (entry, dose unit, concentration, patient, rate); anything that
makes it impossible to evaluate raises ProgramError with a stable code, so nothing is guessed.
Then every rule in ``rules.RULES`` runs and the most severe alert decides: ok, soft or hard.

Stated rules: dose limits hold the dose as programmed (exact); rate limits and the care area's
maximum hold the rate the pump delivers, i.e. rounded half-up once to the program's resolution.
"""

from __future__ import annotations

from decimal import Decimal

from smartpump.ders.program import NO_PATIENT, Alert, InfusionProgram, ProgramKind, Verdict, VerdictLevel
from smartpump.ders.rules import CheckContext, evaluate
from smartpump.errors import ProgramError, UnitError
from smartpump.library.model import CareArea, DeliveryMode, DoseLimits, DrugLibrary, Entry
from smartpump.units import (
    Concentration,
    DoseUnit,
    bsa_mosteller_m2,
    convert_dose,
    dose_to_rate_ml_per_h,
    dose_units_convertible,
    rate_to_dose,
    round_half_up,
    to_decimal,
)

_ZERO = Decimal(0)
_BASIC = ProgramKind.BASIC
_PCA = ProgramKind.PCA
_OK = VerdictLevel.OK


def check(library: DrugLibrary, care_area: CareArea, program: InfusionProgram) -> Verdict:
    """Check a program against the library in one care area.

    Returns:
        The Verdict: ``ok`` may start, ``soft`` needs an override with a reason, ``hard`` must be
        reprogrammed; one Alert per crossed limit.

    Raises:
        ProgramError: the program cannot be evaluated (missing weight, BSA, duration or rate;
            route, unit or concentration that does not belong to the entry; basic infusion
            refused by the care area; entry from another care area).
    """
    if (program.kind is _BASIC) != (program.entry_id is None):
        raise ProgramError(
            "a basic infusion has no library entry, and a program without an entry is a basic infusion",
            code="program.mode_mismatch",
        )
    _validate_numbers(program)
    if program.entry_id is None:
        return _check_basic(care_area, program)
    entry = library.entry(program.entry_id)
    if entry.care_area_id != care_area.id:
        raise ProgramError(
            f"entry {entry.id!r} belongs to care area {entry.care_area_id!r}, not {care_area.id!r}",
            code="program.care_area_mismatch",
        )
    if program.route is not entry.route:
        raise ProgramError(
            f"route {program.route} does not match the entry's route {entry.route}",
            code="program.route_mismatch",
        )
    ctx = _resolve(entry, care_area, program)
    alerts = evaluate(ctx)
    level = _level(alerts)
    return Verdict(
        level=level,
        alerts=alerts,
        rate_ml_per_h=ctx.rate_ml_per_h,
        rate_ml_per_h_exact=ctx.rate_ml_per_h_exact,
        dose=ctx.dose,
        dose_exact=ctx.dose,
        dose_unit=str(ctx.dose_limits.unit) if ctx.dose_limits is not None else "mL/h",
        entry_id=entry.id,
        care_area_id=care_area.id,
        bsa_m2=ctx.bsa_m2,
        is_unprotected=entry.is_unprotected,
    )


def _level(alerts: tuple[Alert, ...]) -> VerdictLevel:
    """The most severe alert's level; ok without alerts."""
    if not alerts:
        return _OK
    return max((a.level for a in alerts), key=lambda lv: lv.rank)


def _validate_numbers(program: InfusionProgram) -> None:
    """Refuse zero, negative and non-numeric volumes and PCA values before any rule reads them."""
    if program.vtbi_ml is not None:
        _positive(program.vtbi_ml, "VTBI")
    pca = program.pca
    if pca is not None:
        for what, value in (("PCA loading dose", pca.loading_dose), ("PCA max dose", pca.max_dose)):
            if value is not None:
                _positive(value, what)
        if pca.basal is not None:
            _non_negative(pca.basal, "PCA basal")


def _non_negative(value: Decimal, what: str) -> Decimal:
    try:
        checked = to_decimal(value, what=what)
    except UnitError as error:
        raise ProgramError(error.message, code="program.invalid_number") from None
    if checked < 0:
        raise ProgramError(f"{what} must not be negative, got {checked}", code="program.not_positive")
    return checked


def _check_basic(care_area: CareArea, program: InfusionProgram) -> Verdict:
    policy = care_area.basic_infusion
    if not policy.allowed:
        raise ProgramError(
            f"care area {care_area.id!r} does not allow basic (library-less) infusions",
            code="program.basic_not_allowed",
        )
    if program.rate_ml_per_h is None:
        raise ProgramError("a basic infusion is programmed as a rate in mL/h", code="program.rate_required")
    exact = _positive(program.rate_ml_per_h, "rate")
    rate = _rounded(exact, program)
    weight, bsa = _patient(program, care_area, needs_bsa=False)
    ctx = CheckContext(
        program=program,
        care_area=care_area,
        entry=None,
        dose=None,
        dose_limits=None,
        rate_ml_per_h=rate,
        rate_ml_per_h_exact=exact,
        concentration=None,
        is_custom_concentration=False,
        weight_kg=weight,
        bsa_m2=bsa,
        duration_min=program.duration_min,
    )
    alerts = evaluate(ctx)
    level = _level(alerts)
    return Verdict(
        level=level,
        alerts=alerts,
        rate_ml_per_h=rate,
        rate_ml_per_h_exact=exact,
        dose=None,
        dose_exact=None,
        dose_unit="mL/h",
        entry_id=None,
        care_area_id=care_area.id,
        bsa_m2=bsa,
        is_unprotected=True,
    )


def _resolve(entry: Entry, care_area: CareArea, program: InfusionProgram) -> CheckContext:
    limits = _dose_limits_for(entry, program.kind)
    unit = limits.unit
    weight, bsa = _patient(program, care_area, needs_bsa=unit.needs_bsa)
    if entry.needs_weight and weight is None:
        raise ProgramError(
            f"{entry.id}: a patient weight is needed for {unit}", code="program.weight_required"
        )
    concentration, is_custom = _concentration(entry, program, unit)
    duration: Decimal | None = None
    dose: Decimal | None
    if program.kind is _PCA:
        dose, exact_rate = _pca_dose_and_rate(entry, program, concentration, weight, bsa)
    else:
        duration = _duration(program, unit)
        dose, exact_rate = _dose_and_rate(program, unit, concentration, weight, bsa, duration)
    return CheckContext(
        program=program,
        care_area=care_area,
        entry=entry,
        dose=dose,
        dose_limits=limits,
        rate_ml_per_h=_rounded(exact_rate, program),
        rate_ml_per_h_exact=exact_rate,
        concentration=concentration,
        is_custom_concentration=is_custom,
        weight_kg=weight,
        bsa_m2=bsa,
        duration_min=duration,
    )


def _pca_dose_and_rate(
    entry: Entry,
    program: InfusionProgram,
    concentration: Concentration | None,
    weight: Decimal | None,
    bsa: Decimal | None,
) -> tuple[Decimal, Decimal]:
    """A PCA's demand dose and its continuous (basal) rate in mL/h (0 without a basal)."""
    settings = program.pca
    if settings is None:
        raise ProgramError(f"{entry.id}: a PCA program needs its PCA settings", code="program.pca_required")
    demand = _positive(settings.demand_dose, "PCA demand dose")
    _positive(settings.lockout_min, "PCA lockout")
    if settings.basal is None or settings.basal == _ZERO:
        return demand, _ZERO
    assert entry.pca is not None
    if entry.pca.basal is None:
        raise ProgramError(f"{entry.id} does not allow a PCA basal rate", code="program.basal_not_allowed")
    try:
        rate = dose_to_rate_ml_per_h(
            _positive(settings.basal, "PCA basal"),
            entry.pca.basal.unit,
            concentration,
            weight_kg=weight,
            bsa_m2=bsa,
        )
    except UnitError as error:
        raise ProgramError(error.message, code=f"program.{error.code.removeprefix('unit.')}") from None
    return demand, rate


def _dose_limits_for(entry: Entry, kind: ProgramKind) -> DoseLimits:
    """The limits the programmed dose is held to: the entry's dose, bolus, loading or PCA demand."""
    if kind is ProgramKind.BOLUS:
        if entry.bolus is None:
            raise ProgramError(f"{entry.id} is not configured for a bolus", code="program.bolus_not_allowed")
        return entry.bolus
    if kind is ProgramKind.LOADING:
        if entry.loading is None:
            raise ProgramError(
                f"{entry.id} has no loading dose configured", code="program.loading_not_allowed"
            )
        return entry.loading
    if kind is ProgramKind.PCA:
        if entry.pca is None:
            raise ProgramError(f"{entry.id} is not a PCA entry", code="program.mode_mismatch")
        return entry.pca.demand_dose
    if kind is ProgramKind.INTERMITTENT and entry.mode is not DeliveryMode.INTERMITTENT:
        raise ProgramError(f"{entry.id} is not an intermittent entry", code="program.mode_mismatch")
    if kind is ProgramKind.CONTINUOUS and entry.mode in (DeliveryMode.INTERMITTENT, DeliveryMode.PCA):
        raise ProgramError(
            f"{entry.id} is a {entry.mode} entry, not a continuous one", code="program.mode_mismatch"
        )
    return entry.dose


def _patient(
    program: InfusionProgram, care_area: CareArea, *, needs_bsa: bool
) -> tuple[Decimal | None, Decimal | None]:
    patient = program.patient
    if patient is NO_PATIENT:
        if needs_bsa:
            raise ProgramError(
                "a BSA (or weight and height) is needed for a /m2 dose", code="program.bsa_required"
            )
        return None, None
    weight = _positive(patient.weight_kg, "weight") if patient.weight_kg is not None else None
    bsa: Decimal | None = None
    if patient.bsa_m2 is not None:
        bsa = _positive(patient.bsa_m2, "BSA")
    elif weight is not None and patient.height_cm is not None:
        bsa = bsa_mosteller_m2(weight, _positive(patient.height_cm, "height"))
    if needs_bsa and bsa is None:
        raise ProgramError(
            "a BSA (or weight and height) is needed for a /m2 dose", code="program.bsa_required"
        )
    if bsa is not None and care_area.bsa_resolution_m2 is not None:
        bsa = round_half_up(bsa, care_area.bsa_resolution_m2)
    return weight, bsa


def _concentration(
    entry: Entry, program: InfusionProgram, unit: DoseUnit
) -> tuple[Concentration | None, bool]:
    chosen = program.concentration
    if chosen is None:
        if unit.is_volume:
            return None, False
        if len(entry.concentrations) == 1:
            return entry.concentrations[0], False
        listed = ", ".join(str(c) for c in entry.concentrations) or "custom only"
        raise ProgramError(
            f"{entry.id}: choose a concentration ({listed})", code="program.concentration_required"
        )
    if any(c.same_strength(chosen) for c in entry.concentrations):
        return chosen, False
    custom = entry.custom_concentration
    if custom is not None and custom.unit.dimension is chosen.unit.dimension:
        return chosen, True
    raise ProgramError(
        f"{entry.id}: concentration {chosen} is not in the entry and custom concentrations are not allowed",
        code="program.concentration_not_in_entry",
    )


def _duration(program: InfusionProgram, unit: DoseUnit) -> Decimal | None:
    if program.duration_min is None:
        if not unit.is_rate and program.rate_ml_per_h is None:
            raise ProgramError(
                f"a duration is needed to give a dose in {unit}", code="program.duration_required"
            )
        return None
    return _positive(program.duration_min, "duration")


def _dose_and_rate(
    program: InfusionProgram,
    unit: DoseUnit,
    concentration: Concentration | None,
    weight: Decimal | None,
    bsa: Decimal | None,
    duration: Decimal | None,
) -> tuple[Decimal | None, Decimal]:
    """The dose in the entry's unit and the exact rate; one comes from the other."""
    try:
        if program.dose is not None:
            dose = _convert_dose(program.dose, program.dose_unit, unit)
            rate = dose_to_rate_ml_per_h(
                dose, unit, concentration, weight_kg=weight, bsa_m2=bsa, duration_min=duration
            )
            return dose, rate
        if program.rate_ml_per_h is None:
            raise ProgramError("program needs a dose or a rate", code="program.dose_required")
        rate = _positive(program.rate_ml_per_h, "rate")
        if duration is None and not unit.is_rate:
            return None, rate
        dose = rate_to_dose(rate, unit, concentration, weight_kg=weight, bsa_m2=bsa, duration_min=duration)
        return dose, rate
    except UnitError as error:
        raise ProgramError(error.message, code=f"program.{error.code.removeprefix('unit.')}") from None


def _convert_dose(value: Decimal, given: DoseUnit | None, target: DoseUnit) -> Decimal:
    """The programmed dose in the entry's unit; only exact, same-shape conversions are allowed."""
    dose = _positive(value, "dose")
    if given is None:
        return dose
    if not dose_units_convertible(given, target):
        raise ProgramError(
            f"dose unit {given} cannot be used for an entry dosed in {target}", code="program.unit_mismatch"
        )
    return convert_dose(dose, given, target)


def _rounded(exact: Decimal, program: InfusionProgram) -> Decimal:
    rate = round_half_up(exact, program.rate_resolution_ml_per_h)
    if rate == _ZERO and exact > _ZERO:
        raise ProgramError(
            f"rate {exact} mL/h is below the pump's resolution {program.rate_resolution_ml_per_h} mL/h",
            code="program.rate_below_resolution",
        )
    return rate


def _positive(value: Decimal, what: str) -> Decimal:
    if type(value) is Decimal and value.is_finite() and value > _ZERO:
        return value
    try:
        checked = to_decimal(value, what=what)
    except UnitError as error:
        raise ProgramError(error.message, code="program.invalid_number") from None
    if checked <= 0:
        raise ProgramError(f"{what} must be greater than zero, got {checked}", code="program.not_positive")
    return checked
