"""check(library, care_area, program) -> Verdict: the dose error reduction decision, pure and exact.

The program is resolved first (entry, dose unit, concentration, patient, rate); anything that
makes it impossible to evaluate raises ProgramError with a stable code, so nothing is guessed.
Then every rule in ``rules.RULES`` runs and the most severe alert decides: ok, soft or hard.

Stated rules (docs/dosing.md, "Delivered equals checked"):
- the pump runs the rate rounded half-up once to the program's resolution; a total dose
  (intermittent, bolus, loading) is the volume that holds it, rounded half-up once to the VTBI
  resolution, unless a VTBI was programmed;
- the verdict's dose is the dose the pump really delivers at that rate or in that volume, and
  dose limits hold both it and the dose as programmed (the worse of the two is reported);
- rate limits, the care area's maxima and the device's limits hold the rate and volume the pump runs.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from smartpump.ders.program import (
    NO_PATIENT,
    Alert,
    Deliverable,
    DeviceLimits,
    InfusionProgram,
    ProgramKind,
    Verdict,
    VerdictLevel,
)
from smartpump.ders.rules import CheckContext, evaluate
from smartpump.errors import ProgramError, UnitError
from smartpump.library.limits import Breach, LimitSet
from smartpump.library.model import CareArea, DeliveryMode, DoseLimits, DrugLibrary, Entry
from smartpump.units import (
    Concentration,
    DoseUnit,
    bsa_mosteller_m2,
    convert_dose,
    dose_to_rate_ml_per_h,
    dose_to_volume_ml,
    dose_units_convertible,
    ml_per_dose,
    rate_to_dose,
    round_half_up,
    scale,
    to_decimal,
    volume_to_dose,
)

_ZERO = Decimal(0)
_ONE = Decimal(1)
_SIXTY = Decimal(60)
_BASIC = ProgramKind.BASIC
_PCA = ProgramKind.PCA
_OK = VerdictLevel.OK
_OVER_A_DURATION = frozenset({ProgramKind.INTERMITTENT, ProgramKind.BOLUS, ProgramKind.LOADING})


def check(
    library: DrugLibrary, care_area: CareArea, program: InfusionProgram, device: DeviceLimits | None = None
) -> Verdict:
    """Check a program against the library in one care area (and the pump's ``device`` limits).

    Returns:
        The Verdict: ``ok`` may start, ``soft`` needs an override with a reason, ``hard`` must be
        reprogrammed; one Alert per crossed limit.

    Raises:
        ProgramError: the program cannot be evaluated (missing weight, BSA, duration, VTBI or
            rate; route, unit or concentration that does not belong to the entry; basic infusion
            refused by the care area; entry from another care area).
    """
    if (program.kind is _BASIC) != (program.entry_id is None):
        raise ProgramError(
            "a basic infusion has no library entry, and a program without an entry is a basic infusion",
            code="program.mode_mismatch",
        )
    _validate_numbers(program)
    if program.entry_id is None:
        return _check_basic(care_area, program, device)
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
    ctx = _resolve(entry, care_area, program, device)
    alerts = evaluate(ctx)
    level = _level(alerts)
    # Positional, in field order: a NamedTuple built by keyword costs three times as much.
    return Verdict(
        level,
        alerts,
        ctx.rate_ml_per_h,
        ctx.rate_ml_per_h_exact,
        ctx.dose,
        str(ctx.dose_limits.unit) if ctx.dose_limits is not None else "mL/h",
        entry.id,
        care_area.id,
        ctx.bsa_m2,
        entry.is_unprotected,
        ctx.dose_programmed,
        ctx.vtbi_ml,
        () if level is _OK or ctx.dose == ctx.dose_programmed else _deliverable(ctx),
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


def _check_basic(care_area: CareArea, program: InfusionProgram, device: DeviceLimits | None) -> Verdict:
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
        vtbi_ml=program.vtbi_ml,
        device=device,
    )
    alerts = evaluate(ctx)
    level = _level(alerts)
    return Verdict(
        level=level,
        alerts=alerts,
        rate_ml_per_h=rate,
        rate_ml_per_h_exact=exact,
        dose=None,
        dose_unit="mL/h",
        entry_id=None,
        care_area_id=care_area.id,
        bsa_m2=bsa,
        is_unprotected=True,
        vtbi_ml=program.vtbi_ml,
    )


def _resolve(
    entry: Entry, care_area: CareArea, program: InfusionProgram, device: DeviceLimits | None
) -> CheckContext:
    limits = _dose_limits_for(entry, program.kind)
    unit = limits.unit
    weight, bsa = _patient(program, care_area, needs_bsa=unit.needs_bsa)
    if entry.needs_weight and weight is None:
        raise ProgramError(
            f"{entry.id}: a patient weight is needed for {unit}", code="program.weight_required"
        )
    concentration, is_custom = resolve_concentration(entry, program, unit)
    ctx = CheckContext(
        program=program,
        care_area=care_area,
        entry=entry,
        dose=None,
        dose_limits=limits,
        rate_ml_per_h=_ZERO,
        rate_ml_per_h_exact=_ZERO,
        concentration=concentration,
        is_custom_concentration=is_custom,
        weight_kg=weight,
        bsa_m2=bsa,
        duration_min=None,
        vtbi_ml=program.vtbi_ml,
        device=device,
    )
    if program.kind is _PCA:
        _resolve_pca(ctx, entry)
    elif unit.is_rate:
        ctx.duration_min = _duration(program, unit)
        _resolve_dose_rate(ctx, unit)
    else:
        ctx.duration_min = _duration(program, unit)
        _resolve_total_dose(ctx, unit)
    return ctx


def _resolve_pca(ctx: CheckContext, entry: Entry) -> None:
    """A PCA's demand dose, its basal rate as the pump runs it and the basal dose that delivers."""
    demand, exact_rate = _pca_dose_and_rate(entry, ctx.program, ctx.concentration, ctx.weight_kg, ctx.bsa_m2)
    ctx.dose = ctx.dose_programmed = demand
    ctx.rate_ml_per_h_exact = exact_rate
    ctx.rate_ml_per_h = _rounded(exact_rate, ctx.program)
    if exact_rate > _ZERO and entry.pca is not None and entry.pca.basal is not None:
        ctx.pca_basal_delivered = _dose_at_rate(ctx, entry.pca.basal.unit, ctx.rate_ml_per_h)


def _resolve_dose_rate(ctx: CheckContext, unit: DoseUnit) -> None:
    """A dose rate (continuous, or intermittent over a duration): the rate the pump runs and the
    dose that rate delivers; an intermittent's volume is the rate over its duration."""
    program = ctx.program
    numerator, denominator = _ml_per_dose(ctx, unit)
    if program.dose is not None:
        programmed = _convert_dose(program.dose, program.dose_unit, unit)
        exact_rate = scale(programmed, numerator, denominator)
    elif program.rate_ml_per_h is not None:
        exact_rate = _positive(program.rate_ml_per_h, "rate")
        programmed = scale(exact_rate, denominator, numerator)
    else:
        raise ProgramError("program needs a dose or a rate", code="program.dose_required")
    rate = _rounded(exact_rate, program)
    ctx.dose_programmed = programmed
    ctx.rate_ml_per_h_exact = exact_rate
    ctx.rate_ml_per_h = rate
    ctx.dose = programmed if rate == exact_rate else scale(rate, denominator, numerator)
    if program.kind in _OVER_A_DURATION and ctx.vtbi_ml is None:
        if ctx.duration_min is None:
            raise ProgramError(
                f"an infusion of kind {program.kind} needs a VTBI or a duration to end",
                code="program.vtbi_required",
            )
        ctx.vtbi_ml = round_half_up(rate * ctx.duration_min / _SIXTY, program.vtbi_resolution_ml)


def _ml_per_dose(ctx: CheckContext, unit: DoseUnit) -> tuple[Decimal, Decimal]:
    """The mL/h one ``unit`` of dose rate takes for this patient and container, as a fraction."""
    if unit.needs_weight:
        basis = ctx.weight_kg
        if basis is None:
            raise ProgramError(f"a patient weight is needed for {unit}", code="program.weight_required")
    elif unit.needs_bsa:
        basis = ctx.bsa_m2
        if basis is None:
            raise ProgramError(
                "a BSA (or weight and height) is needed for a /m2 dose", code="program.bsa_required"
            )
    else:
        basis = _ONE
    try:
        return ml_per_dose(unit, ctx.concentration, basis)
    except UnitError as error:
        raise ProgramError(error.message, code=f"program.{error.code.removeprefix('unit.')}") from None


def _resolve_total_dose(ctx: CheckContext, unit: DoseUnit) -> None:
    """A total dose over a duration: the volume that holds it (or the VTBI programmed), the rate
    that gives that volume over the duration, and the dose that volume really holds."""
    program = ctx.program
    needed = _needed_volume_ml(ctx, unit)
    if ctx.vtbi_ml is None:
        if needed is None:
            raise ProgramError(
                f"an infusion programmed as a rate in a {unit} entry needs a VTBI or a duration to end",
                code="program.vtbi_required",
            )
        ctx.vtbi_ml = round_half_up(needed, program.vtbi_resolution_ml)
    if program.dose is None:
        assert program.rate_ml_per_h is not None
        exact_rate = _positive(program.rate_ml_per_h, "rate")
    else:
        assert ctx.duration_min is not None
        exact_rate = ctx.vtbi_ml * _SIXTY / ctx.duration_min
    ctx.rate_ml_per_h_exact = exact_rate
    ctx.rate_ml_per_h = _rounded(exact_rate, program)
    ctx.dose = _dose_in_volume(ctx, unit, ctx.vtbi_ml)


def _needed_volume_ml(ctx: CheckContext, unit: DoseUnit) -> Decimal | None:
    """The volume that holds the programmed total dose (sets ``dose_programmed``), or the volume a
    programmed rate gives over the duration; None for a rate without a duration."""
    program = ctx.program
    try:
        if program.dose is not None:
            dose = _convert_dose(program.dose, program.dose_unit, unit)
            ctx.dose_programmed = dose
            return dose_to_volume_ml(
                dose, unit, ctx.concentration, weight_kg=ctx.weight_kg, bsa_m2=ctx.bsa_m2
            )
    except UnitError as error:
        raise ProgramError(error.message, code=f"program.{error.code.removeprefix('unit.')}") from None
    if program.rate_ml_per_h is None:
        raise ProgramError("program needs a dose or a rate", code="program.dose_required")
    rate = _positive(program.rate_ml_per_h, "rate")
    return None if ctx.duration_min is None else rate * ctx.duration_min / _SIXTY


def _dose_at_rate(ctx: CheckContext, unit: DoseUnit, rate_ml_per_h: Decimal) -> Decimal:
    """The dose rate in ``unit`` that a flow of ``rate_ml_per_h`` delivers to this patient."""
    try:
        return rate_to_dose(
            rate_ml_per_h, unit, ctx.concentration, weight_kg=ctx.weight_kg, bsa_m2=ctx.bsa_m2
        )
    except UnitError as error:
        raise ProgramError(error.message, code=f"program.{error.code.removeprefix('unit.')}") from None


def _dose_in_volume(ctx: CheckContext, unit: DoseUnit, volume_ml: Decimal) -> Decimal:
    """The total dose in ``unit`` that ``volume_ml`` of the container holds for this patient."""
    try:
        return volume_to_dose(volume_ml, unit, ctx.concentration, weight_kg=ctx.weight_kg, bsa_m2=ctx.bsa_m2)
    except UnitError as error:
        raise ProgramError(error.message, code=f"program.{error.code.removeprefix('unit.')}") from None


_SEVERITY_OF_NONE = 0


def _severity(breach: Breach | None) -> int:
    """0 inside the limits, 1 beyond a soft bound, 2 beyond a hard bound."""
    if breach is None:
        return _SEVERITY_OF_NONE
    return 2 if breach.kind.is_hard else 1


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` not above ``value``."""
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def _deliverable(ctx: CheckContext) -> tuple[Deliverable, ...]:
    """When rounding alone makes the delivered dose worse than the dose programmed: the
    neighbouring rates (dose rates) or volumes (total doses) whose delivered dose is no worse."""
    limits_holder = ctx.dose_limits
    if limits_holder is None or ctx.dose is None or ctx.dose_programmed is None:
        return ()
    limits: LimitSet = limits_holder.limits
    allowed = _severity(limits.classify(ctx.dose_programmed))
    if _severity(limits.classify(ctx.dose)) <= allowed:
        return ()
    unit = limits_holder.unit
    program = ctx.program
    found: list[Deliverable] = []
    if unit.is_rate:
        step = program.rate_resolution_ml_per_h
        low = _floor_to(ctx.rate_ml_per_h_exact, step)
        for rate in (low, low + step):
            if rate > _ZERO:
                dose = _dose_at_rate(ctx, unit, rate)
                if _severity(limits.classify(dose)) <= allowed:
                    found.append(Deliverable(rate_ml_per_h=rate, vtbi_ml=ctx.vtbi_ml, dose=dose))
        return tuple(found)
    needed = _needed_volume_ml(ctx, unit)
    duration = ctx.duration_min
    if needed is None or duration is None:
        return ()
    step = program.vtbi_resolution_ml
    low = _floor_to(needed, step)
    for volume in (low, low + step):
        if volume > _ZERO:
            dose = _dose_in_volume(ctx, unit, volume)
            rate = round_half_up(volume * _SIXTY / duration, program.rate_resolution_ml_per_h)
            if rate > _ZERO and _severity(limits.classify(dose)) <= allowed:
                found.append(Deliverable(rate_ml_per_h=rate, vtbi_ml=volume, dose=dose))
    return tuple(found)


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


def resolve_concentration(
    entry: Entry, program: InfusionProgram, unit: DoseUnit
) -> tuple[Concentration | None, bool]:
    """The concentration the program runs (the entry's only one when none is named; None for a
    dose in mL) and whether it is a custom one; refused with a ProgramError when not the entry's."""
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
    """The rate the pump runs: rounded half-up once to its resolution (0 below half a step, which
    the device rate rule then holds as a hard alert)."""
    return round_half_up(exact, program.rate_resolution_ml_per_h)


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
