"""Consistency and ISMP checks of a drug library: a table of small pure rules -> list[Finding].

Lint runs after the JSON Schema and before signing. Limit ordering is enforced when a LimitSet is
built, so ordering problems surface as LibraryFormatError when a file is read, not here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from smartpump.library.limits import LimitSet
from smartpump.library.model import (
    CareArea,
    DeliveryMode,
    DeviceType,
    DoseLimits,
    Drug,
    DrugLibrary,
    Entry,
    match_key,
)
from smartpump.units import (
    Basis,
    Concentration,
    Dimension,
    DoseUnit,
    convert_dose,
    dose_to_rate_ml_per_h,
    format_decimal,
    round_half_up,
)


class Severity(StrEnum):
    """How much a finding matters: errors block approval, warnings need a look, info is advice."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for error, 1 for warning, 2 for info (sort order, most severe first)."""
        return _SEVERITY_RANK[self]


_RATE_RESOLUTION_ML_PER_H: Final = Decimal("0.1")
_SEVERITY_RANK: Final = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One problem found by one rule: stable rule id, severity, where (``entry:<id>``...), message."""

    rule: str
    severity: Severity
    where: str
    message: str


Located = tuple[str, str]
"""(where, message) as yielded by a rule's check; the runner adds the rule id and severity."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RateRange:
    """The flow rates a kind of pump channel can run, in mL/h (given by the caller: the library
    layer does not know pump models)."""

    device_type: DeviceType
    min_ml_per_h: Decimal
    max_ml_per_h: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class LintOptions:
    """What lint may know beyond the library: the pumps' rate ranges (none: rules needing them are
    silent)."""

    rate_ranges: tuple[RateRange, ...] = ()

    def range_for(self, entry: Entry) -> RateRange | None:
        """The widest range of the entry's device types (any known type when it names none)."""
        ranges = [r for r in self.rate_ranges if not entry.devices or r.device_type in entry.devices]
        if not ranges:
            return None
        return RateRange(
            device_type=ranges[0].device_type,
            min_ml_per_h=min(r.min_ml_per_h for r in ranges),
            max_ml_per_h=max(r.max_ml_per_h for r in ranges),
        )


NO_OPTIONS: Final = LintOptions()
Check = Callable[[DrugLibrary, LintOptions], Iterator[Located]]


@dataclass(frozen=True, slots=True, kw_only=True)
class LintRule:
    """A lint rule: stable id, severity, one-line description, and a pure check over a library."""

    id: str
    severity: Severity
    description: str
    check: Check


def _library_only(check: Callable[[DrugLibrary], Iterator[Located]]) -> Check:
    """A check that needs nothing but the library, as a ``Check``."""

    def run(library: DrugLibrary, _options: LintOptions) -> Iterator[Located]:
        return check(library)

    run.__doc__ = check.__doc__
    return run


# Look-alike drug-name pairs with their Tall Man spelling, after the ISMP list of look-alike names
# with recommended Tall Man letters. A lower-case spelling means "no Tall Man letters recommended"
# (ISMP capitalises HYDROmorphone, not morphine); EPINEPHrine/NORepinephrine is a common institutional
# choice for a confusion ISMP reports, not an ISMP spelling.
LOOK_ALIKE_PAIRS: Final[tuple[tuple[str, str], ...]] = (
    ("DOPamine", "DOBUTamine"),
    ("EPINEPHrine", "ePHEDrine"),
    ("EPINEPHrine", "NORepinephrine"),
    ("HYDROmorphone", "morphine"),
    ("hydrALAZINE", "hydrOXYzine"),
    ("vinBLAStine", "vinCRIStine"),
    ("niCARdipine", "NIFEdipine"),
    ("CISplatin", "CARBOplatin"),
    ("DOXOrubicin", "DAUNOrubicin"),
    ("DOXOrubicin", "IDArubicin"),
    ("fentaNYL", "SUFentanil"),
    ("DOCEtaxel", "PACLitaxel"),
    ("PENTobarbital", "PHENobarbital"),
    ("levETIRAcetam", "levOCARNitine"),
)


def _where(entry: Entry) -> str:
    return f"entry:{entry.id}"


def _entry_label(library: DrugLibrary, entry: Entry) -> str:
    drug = library.drug(entry.drug_id).shown_name
    therapy = f" ({entry.therapy})" if entry.therapy else ""
    return f"{drug}{therapy} {entry.dosing_unit} in {library.care_area(entry.care_area_id).name}"


def _amount_dimensions(entry: Entry) -> dict[Dimension, str]:
    doses = [entry.dose, entry.dose_rate, entry.bolus, entry.bolus_rate, entry.loading]
    if entry.pca is not None:
        pca = entry.pca
        doses += [pca.demand_dose, pca.basal, pca.loading_dose, pca.clinician_bolus, pca.max_dose]
    found: dict[Dimension, str] = {}
    for dose in doses:
        if dose is not None and not dose.unit.is_volume:
            found.setdefault(dose.unit.amount.dimension, str(dose.unit))
    return found


def check_concentration_dimension(library: DrugLibrary) -> Iterator[Located]:
    """Concentrations (listed and custom) whose amount dimension differs from the entry's dose units,
    or, in an mL-based entry, concentrations of more than one kind."""
    for entry in library.entries:
        dose_dimensions = _amount_dimensions(entry)
        strengths: list[tuple[str, Dimension]] = [(str(c), c.unit.dimension) for c in entry.concentrations]
        if entry.custom_concentration is not None:
            unit = entry.custom_concentration.unit
            strengths.append((f"custom concentration in {unit}/mL", unit.dimension))
        label = _entry_label(library, entry)
        if dose_dimensions:
            for text, dimension in strengths:
                for dose_dimension, unit_text in dose_dimensions.items():
                    if dimension is not dose_dimension:
                        yield (
                            _where(entry),
                            f"{label}: {text} is in {dimension} but doses are in {unit_text} "
                            f"({dose_dimension}); the pump cannot turn the dose into a rate",
                        )
        elif len({dimension for _, dimension in strengths}) > 1:
            kinds = ", ".join(text for text, _ in strengths)
            yield (_where(entry), f"{label}: concentrations of different kinds in one entry: {kinds}")


def _basis_check(
    basis: Basis, limits_of: Callable[[CareArea], LimitSet], what: str
) -> Callable[[DrugLibrary], Iterator[Located]]:
    def check(library: DrugLibrary) -> Iterator[Located]:
        for area in library.care_areas:
            limits = limits_of(area)
            if limits.hard_min is not None or limits.hard_max is not None:
                continue
            based = [e for e in library.entries_in(area.id) if _uses_basis(e, basis)]
            if based:
                names = ", ".join(_entry_label(library, e) for e in based[:3])
                more = f" and {len(based) - 3} more" if len(based) > 3 else ""
                yield (
                    f"care_area:{area.id}",
                    f"{area.name} has {len(based)} {what}-based entries ({names}{more}) "
                    f"but no hard patient {what} limit",
                )

    check.__doc__ = f"Care areas with {what}-based entries but no hard patient {what} limit."
    return check


def _uses_basis(entry: Entry, basis: Basis) -> bool:
    return entry.needs_weight if basis is Basis.KG else entry.needs_bsa


def _dose_hard_max(entry: Entry) -> Decimal | None:
    """The entry's dose hard max; for a PCA entry without one, the demand dose hard max."""
    if entry.dose.limits.hard_max is not None:
        return entry.dose.limits.hard_max
    if entry.pca is not None:
        return entry.pca.demand_dose.limits.hard_max
    return None


def check_high_alert_hard_max(library: DrugLibrary) -> Iterator[Located]:
    """Entries of ISMP high-alert drugs without a dose hard max."""
    for entry in library.entries:
        if library.drug(entry.drug_id).is_high_alert and _dose_hard_max(entry) is None:
            yield (
                _where(entry),
                f"{_entry_label(library, entry)}: high-alert drug without a dose hard max (ISMP)",
            )


def _strength_key(concentration: Concentration) -> tuple[Dimension, Decimal]:
    return concentration.unit.dimension, concentration.per_ml.scaleb(concentration.unit.exponent10)


def _concentrations_overlap(first: Entry, second: Entry) -> bool:
    """True when both list no concentration, or share one (same strength and container volume, as
    ``Entry.has_concentration`` matches: 12.5 g/50 mL and 25 g/100 mL are two choices on a pump)."""
    if not first.concentrations and not second.concentrations:
        return True
    return any(second.has_concentration(c) for c in first.concentrations)


def check_duplicate_entry(library: DrugLibrary) -> Iterator[Located]:
    """Two entries in one care area with the same drug, therapy and dosing unit sharing a concentration."""
    groups: dict[tuple[str, str, str, str], list[Entry]] = defaultdict(list)
    for entry in library.entries:
        key = (entry.care_area_id, entry.drug_id, match_key(entry.therapy or ""), str(entry.dosing_unit))
        groups[key].append(entry)
    for entries in groups.values():
        for index, first in enumerate(entries):
            for second in entries[index + 1 :]:
                if _concentrations_overlap(first, second):
                    yield (
                        _where(second),
                        f"{_entry_label(library, second)}: duplicates entry {first.id!r} "
                        "(same drug, therapy, dosing unit and concentration); a pump could not choose",
                    )


def _has_tall_man(name: str) -> bool:
    """True when the name mixes case after its first letter (DOPamine), the Tall Man convention."""
    return any(c.isupper() for c in name[1:]) and any(c.islower() for c in name)


def check_tall_man(library: DrugLibrary) -> Iterator[Located]:
    """Drugs of a look-alike pair (both in the library) shown without their Tall Man letters."""
    by_name: dict[str, Drug] = {match_key(d.generic_name): d for d in library.drugs}
    reported: set[str] = set()
    for pair in LOOK_ALIKE_PAIRS:
        keys = [match_key(spelling) for spelling in pair]
        if not all(key in by_name for key in keys):
            continue
        for spelling, key, other in zip(pair, keys, reversed(pair), strict=True):
            drug = by_name[key]
            if drug.id in reported or not _has_tall_man(spelling) or _has_tall_man(drug.shown_name):
                continue
            reported.add(drug.id)
            yield (
                f"drug:{drug.id}",
                f"{drug.generic_name} looks like {other.lower()}, which is also in the library; "
                f"show it in Tall Man letters ({spelling})",
            )


def _max_rate(area: CareArea) -> Decimal | None:
    """The care area's max rate: the lower of its own and its device setting, when configured."""
    present = [r for r in (area.max_rate_ml_per_h, area.device.max_rate_ml_per_h) if r is not None]
    return min(present) if present else None


def check_rate_beyond_care_area(library: DrugLibrary) -> Iterator[Located]:
    """Rate limits (or mL/h dose limits) above the care area's max rate."""
    for entry in library.entries:
        area = library.care_area(entry.care_area_id)
        max_rate = _max_rate(area)
        if max_rate is None:
            continue
        sets = [("rate", entry.rate_ml_per_h.limits)]
        if entry.dosing_unit.is_volume and entry.dosing_unit.is_rate:
            sets.append(("dose (mL/h)", entry.dose.limits))
        for what, limits in sets:
            for kind, value in limits.items():
                if kind.is_max and value > max_rate:
                    yield (
                        _where(entry),
                        f"{_entry_label(library, entry)}: {what} {kind} {format_decimal(value)} mL/h is "
                        f"above the care area max rate {format_decimal(max_rate)} mL/h",
                    )


def _max_rate_for(area: CareArea, entry: Entry, options: LintOptions) -> tuple[Decimal, str] | None:
    """The lower of the care area's max rate and the pump's max rate, and which one it is."""
    candidates: list[tuple[Decimal, str]] = []
    area_max = _max_rate(area)
    if area_max is not None:
        candidates.append((area_max, "care area max rate"))
    pump = options.range_for(entry)
    if pump is not None:
        candidates.append((pump.max_ml_per_h, "pump's maximum rate"))
    return min(candidates, key=lambda c: c[0]) if candidates else None


def check_dose_unreachable(library: DrugLibrary, options: LintOptions) -> Iterator[Located]:
    """Dose hard max that, at the lowest listed concentration and the care area's max weight/BSA,
    needs a rate above the care area's (or the pump's) max rate (checked when those numbers exist)."""
    for entry in library.entries:
        unit = entry.dosing_unit
        hard_max = entry.dose.limits.hard_max
        area = library.care_area(entry.care_area_id)
        cap = _max_rate_for(area, entry, options)
        usable = [c for c in entry.concentrations if c.unit.dimension is unit.amount.dimension]
        if hard_max is None or cap is None or not unit.is_rate or unit.is_volume or not usable:
            continue
        max_rate, which = cap
        weight = area.weight_kg.limits.hard_max
        bsa = area.bsa_m2.limits.hard_max
        if (unit.needs_weight and weight is None) or (unit.needs_bsa and bsa is None):
            continue
        weakest = min(usable, key=lambda c: _strength_key(c)[1])
        rate = dose_to_rate_ml_per_h(hard_max, unit, weakest, weight_kg=weight, bsa_m2=bsa)
        if rate > max_rate:
            shown = format_decimal(round_half_up(rate, _RATE_RESOLUTION_ML_PER_H))
            patient = " for the largest patient allowed" if unit.basis is not Basis.NONE else ""
            yield (
                _where(entry),
                f"{_entry_label(library, entry)}: dose hard max {format_decimal(hard_max)} {unit} at "
                f"{weakest}{patient} needs {shown} mL/h, above the "
                f"{which} {format_decimal(max_rate)} mL/h",
            )


def _is_unprotected(entry: Entry) -> bool:
    return entry.is_unprotected and (entry.pca is None or entry.pca.demand_dose.limits.is_empty)


def check_unprotected(library: DrugLibrary) -> Iterator[Located]:
    """Entries with neither dose nor rate limits (name-only, 'unprotected' entries)."""
    for entry in library.entries:
        if _is_unprotected(entry):
            yield (_where(entry), f"{_entry_label(library, entry)}: no dose and no rate limits")


def check_missing_hard_max(library: DrugLibrary) -> Iterator[Located]:
    """Entries of other than high-alert drugs that have some limits but no dose hard max."""
    for entry in library.entries:
        if library.drug(entry.drug_id).is_high_alert or _is_unprotected(entry):
            continue
        if _dose_hard_max(entry) is None:
            yield (_where(entry), f"{_entry_label(library, entry)}: no dose hard max")


def check_custom_concentration_hard_min(library: DrugLibrary) -> Iterator[Located]:
    """Custom concentrations allowed without a concentration hard min (ISMP)."""
    for entry in library.entries:
        custom = entry.custom_concentration
        if custom is not None and custom.limits.hard_min is None:
            yield (
                _where(entry),
                f"{_entry_label(library, entry)}: custom concentration allowed without a concentration "
                "hard min (ISMP)",
            )


def check_custom_concentration_hard_max(library: DrugLibrary) -> Iterator[Located]:
    """Custom concentrations allowed without a concentration hard max (an undiluted vial passes with
    a soft alert only)."""
    for entry in library.entries:
        custom = entry.custom_concentration
        if custom is not None and custom.limits.hard_max is None:
            above = custom.limits.soft_max
            shown = (
                f" (only a soft max of {format_decimal(above)} {custom.unit}/mL)" if above is not None else ""
            )
            yield (
                _where(entry),
                f"{_entry_label(library, entry)}: custom concentration allowed without a concentration "
                f"hard max{shown}: an undiluted or mis-entered strength is not stopped",
            )


_MAGNITUDE_FACTOR: Final = Decimal(100)


def _reference_dose(limits: DoseLimits) -> Decimal | None:
    """The largest configured upper dose limit (hard max, else soft max), the value compared."""
    chosen = limits.limits.hard_max if limits.limits.hard_max is not None else limits.limits.soft_max
    return chosen if chosen is not None and chosen > 0 else None


def _unit_family(unit: DoseUnit) -> tuple[Basis, bool, Dimension]:
    return unit.basis, unit.time is None, unit.amount.dimension


def check_unit_magnitude(library: DrugLibrary) -> Iterator[Located]:
    """Entries of one drug whose dose unit differs in scale from the drug's other entries (mcg
    where the others use mg) and whose limits, converted, are 100x or more off theirs: a unit slip."""
    families: dict[tuple[str, tuple[Basis, bool, Dimension]], list[tuple[Entry, Decimal]]] = defaultdict(list)
    for entry in library.entries:
        unit = entry.dosing_unit
        reference = _reference_dose(entry.dose)
        if unit.is_volume or reference is None:
            continue
        families[(entry.drug_id, _unit_family(unit))].append((entry, reference))
    for members in families.values():
        units = {str(e.dosing_unit) for e, _ in members}
        if len(units) < 2:
            continue
        for entry, reference in members:
            others = [(e, r) for e, r in members if e.dosing_unit.amount is not entry.dosing_unit.amount]
            if not others:
                continue
            common = others[0][0].dosing_unit
            mine = convert_dose(reference, entry.dosing_unit, common)
            values = sorted(r for _, r in [(e, convert_dose(r, e.dosing_unit, common)) for e, r in others])
            typical = values[len(values) // 2]
            factor = max(mine, typical) / min(mine, typical)
            if factor >= _MAGNITUDE_FACTOR and len(others) >= len(members) - len(others):
                other_units = sorted({str(e.dosing_unit) for e, _ in others})
                yield (
                    _where(entry),
                    f"{_entry_label(library, entry)}: dose limits in {entry.dosing_unit} while the drug's "
                    f"other entries use {', '.join(other_units)}; converted, its upper limit "
                    f"{format_decimal(reference)} {entry.dosing_unit} is "
                    f"{format_decimal(round_half_up(factor, Decimal(1)))}x "
                    f"{'below' if mine < typical else 'above'} theirs (a unit slip?)",
                )


def _lightest(limits: LimitSet) -> Decimal | None:
    """The smallest patient programmed without an alert: the soft min, else the hard min."""
    return limits.soft_min if limits.soft_min is not None else limits.hard_min


def _low_doses(entry: Entry) -> list[tuple[str, Decimal]]:
    """The lowest doses a clinician is expected to program: the soft (else hard) min, the default."""
    limits = entry.dose.limits
    low = limits.soft_min if limits.soft_min is not None else limits.hard_min
    points = [("dose soft min" if limits.soft_min is not None else "dose hard min", low)]
    points.append(("default dose", entry.dose.default))
    return [(what, value) for what, value in points if value is not None and value > 0]


def check_dose_unreachable_low(library: DrugLibrary, options: LintOptions) -> Iterator[Located]:
    """Doses (soft/hard min, default) of continuous entries that need a rate below the pump's minimum
    rate even at the weakest listed concentration, for the smallest patient the care area takes
    without an alert (its weight/BSA soft min, else hard min)."""
    for entry in library.entries:
        unit = entry.dosing_unit
        pump = options.range_for(entry)
        usable = [c for c in entry.concentrations if c.unit.dimension is unit.amount.dimension]
        if pump is None or not unit.is_rate or unit.is_volume or not usable:
            continue
        area = library.care_area(entry.care_area_id)
        weight, bsa = _lightest(area.weight_kg.limits), _lightest(area.bsa_m2.limits)
        if (unit.needs_weight and weight is None) or (unit.needs_bsa and bsa is None):
            continue
        weakest = min(usable, key=lambda c: _strength_key(c)[1])
        for what, dose in _low_doses(entry):
            rate = dose_to_rate_ml_per_h(dose, unit, weakest, weight_kg=weight, bsa_m2=bsa)
            if rate < pump.min_ml_per_h:
                patient = " for the smallest usual patient" if unit.basis is not Basis.NONE else ""
                yield (
                    _where(entry),
                    f"{_entry_label(library, entry)}: {what} {format_decimal(dose)} {unit} at {weakest}"
                    f"{patient} needs {format_decimal(rate.normalize())} mL/h, below the pump's minimum "
                    f"rate {format_decimal(pump.min_ml_per_h)} mL/h",
                )
                break


def check_pca_limits(library: DrugLibrary) -> Iterator[Located]:
    """PCA entries without lockout limits or without max-dose limits."""
    for entry in library.entries:
        pca = entry.pca
        if pca is None and entry.mode is not DeliveryMode.PCA:
            continue
        missing = []
        if pca is None or pca.lockout_min.limits.is_empty:
            missing.append("lockout limits")
        if pca is None or pca.max_dose is None or pca.max_dose.limits.is_empty:
            missing.append("max-dose limits")
        if missing:
            yield (_where(entry), f"{_entry_label(library, entry)}: PCA entry without {' or '.join(missing)}")


def check_intermittent_speed(library: DrugLibrary) -> Iterator[Located]:
    """Intermittent entries of high-alert drugs dosed as an amount with nothing that bounds how fast
    the dose runs: no dose-rate hard max and no duration hard min."""
    for entry in library.entries:
        if entry.mode is not DeliveryMode.INTERMITTENT or entry.dose.unit.is_rate:
            continue
        if not library.drug(entry.drug_id).is_high_alert:
            continue
        rate_bounded = entry.dose_rate is not None and entry.dose_rate.limits.hard_max is not None
        if rate_bounded or entry.duration_min.limits.hard_min is not None:
            continue
        yield (
            _where(entry),
            f"{_entry_label(library, entry)}: high-alert intermittent with no dose-rate hard max and no "
            "duration hard min: nothing stops its whole dose running in minutes",
        )


RULES: Final[tuple[LintRule, ...]] = (
    LintRule(
        id="lint.units.concentration_dimension",
        severity=Severity.ERROR,
        description="Concentration of another kind of amount than the doses (mg dose, units concentration).",
        check=_library_only(check_concentration_dimension),
    ),
    LintRule(
        id="lint.weight.care_area_limits",
        severity=Severity.WARNING,
        description="Weight-based entries in a care area without hard patient weight limits.",
        check=_library_only(_basis_check(Basis.KG, lambda area: area.weight_kg.limits, "weight")),
    ),
    LintRule(
        id="lint.bsa.care_area_limits",
        severity=Severity.WARNING,
        description="BSA-based entries in a care area without hard patient BSA limits.",
        check=_library_only(_basis_check(Basis.M2, lambda area: area.bsa_m2.limits, "BSA")),
    ),
    LintRule(
        id="lint.high_alert.no_hard_max",
        severity=Severity.ERROR,
        description="High-alert drug entry without a dose hard max (ISMP).",
        check=_library_only(check_high_alert_hard_max),
    ),
    LintRule(
        id="lint.duplicate_entry",
        severity=Severity.ERROR,
        description="Two entries in one care area for the same drug, therapy, unit and concentration.",
        check=_library_only(check_duplicate_entry),
    ),
    LintRule(
        id="lint.tall_man.missing",
        severity=Severity.WARNING,
        description="Look-alike drug names both in the library, shown without Tall Man letters.",
        check=_library_only(check_tall_man),
    ),
    LintRule(
        id="lint.rate.beyond_care_area_max",
        severity=Severity.ERROR,
        description="Rate limits above the care area's max rate.",
        check=_library_only(check_rate_beyond_care_area),
    ),
    LintRule(
        id="lint.dose.unreachable",
        severity=Severity.WARNING,
        description="Dose hard max that would need a rate above the care area's (or pump's) max rate.",
        check=check_dose_unreachable,
    ),
    LintRule(
        id="lint.unprotected",
        severity=Severity.WARNING,
        description="Entry with no dose and no rate limits.",
        check=_library_only(check_unprotected),
    ),
    LintRule(
        id="lint.limits.missing_hard_max",
        severity=Severity.INFO,
        description="Entry (not high-alert) without a dose hard max.",
        check=_library_only(check_missing_hard_max),
    ),
    LintRule(
        id="lint.custom_concentration.no_hard_min",
        severity=Severity.ERROR,
        description="Custom concentration allowed without a concentration hard min (ISMP).",
        check=_library_only(check_custom_concentration_hard_min),
    ),
    LintRule(
        id="lint.custom_concentration.no_hard_max",
        severity=Severity.ERROR,
        description="Custom concentration allowed without a concentration hard max.",
        check=_library_only(check_custom_concentration_hard_max),
    ),
    LintRule(
        id="lint.units.magnitude",
        severity=Severity.ERROR,
        description="Dose unit of another scale than the drug's other entries, limits 100x off (unit slip).",
        check=_library_only(check_unit_magnitude),
    ),
    LintRule(
        id="lint.dose.unreachable_low",
        severity=Severity.WARNING,
        description="Low or default dose that needs a rate below the pump's minimum rate.",
        check=check_dose_unreachable_low,
    ),
    LintRule(
        id="lint.intermittent.unbounded_speed",
        severity=Severity.WARNING,
        description="High-alert intermittent without a dose-rate hard max or a duration hard min.",
        check=_library_only(check_intermittent_speed),
    ),
    LintRule(
        id="lint.pca.missing_limits",
        severity=Severity.WARNING,
        description="PCA entry without lockout limits or max-dose limits.",
        check=_library_only(check_pca_limits),
    ),
)

RULES_BY_ID: Final[dict[str, LintRule]] = {rule.id: rule for rule in RULES}


def lint(library: DrugLibrary, options: LintOptions = NO_OPTIONS) -> list[Finding]:
    """Every finding of every rule, in RULES order then library order (deterministic)."""
    return [
        Finding(rule=rule.id, severity=rule.severity, where=where, message=message)
        for rule in RULES
        for where, message in rule.check(library, options)
    ]


def has_errors(findings: list[Finding]) -> bool:
    """True when any finding has error severity (the library must not be approved)."""
    return any(f.severity is Severity.ERROR for f in findings)
