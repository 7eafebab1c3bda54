"""The drug library as data: formulary, care areas, entries and their limits (frozen, typed).

A ``DrugLibrary`` holds a master formulary of ``Drug``s, the ``CareArea``s (profiles) with their
patient limits and device defaults, and the ``Entry``s: one drug x therapy x dosing unit in one
care area, with the concentrations it may be given in and every limit pharmacy configured. An
entry's concentrations share its limits; when limits differ per concentration (Alaris does this)
the concentrations become separate entries. Absent limits are "not configured", never zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Final, TypeVar

from smartpump.errors import LibraryError, LookupFailedError
from smartpump.library.limits import NO_LIMITS, LimitSet
from smartpump.units import AmountUnit, Concentration, DoseUnit

EXAMPLE_LABEL: Final = "EXAMPLE DATA - NOT FOR CLINICAL USE"


class EntryKind(StrEnum):
    """What is infused."""

    MEDICATION = "medication"
    IV_FLUID = "iv_fluid"
    BLOOD_PRODUCT = "blood_product"
    PARENTERAL_NUTRITION = "parenteral_nutrition"


class DeliveryMode(StrEnum):
    """How an entry is programmed: a dose rate, a dose over a duration, a PCA, or a plain rate."""

    CONTINUOUS = "continuous"
    INTERMITTENT = "intermittent"
    PCA = "pca"
    RATE = "rate"


class Route(StrEnum):
    """Route of administration; a program's route must equal its entry's."""

    IV = "IV"
    EPIDURAL = "epidural"
    SUBCUTANEOUS = "subcutaneous"
    ARTERIAL = "arterial"
    INTRATHECAL = "intrathecal"
    INTRAOSSEOUS = "intraosseous"
    NERVE_BLOCK = "nerve_block"
    ENTERAL = "enteral"


class LibraryStatus(StrEnum):
    """Lifecycle state of a library version."""

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    RELEASED = "released"
    RETIRED = "retired"


class DeviceType(StrEnum):
    """Kinds of pump channel an entry may run on."""

    LARGE_VOLUME = "large_volume"
    SYRINGE = "syringe"
    PCA = "pca"
    AMBULATORY = "ambulatory"


def match_key(name: str) -> str:
    """The key names are matched on: case-folded, leading sort dots and spaces stripped.

    >>> match_key("..IVF Maintenance") == match_key("ivf maintenance")
    True
    >>> match_key("DOPamine")
    'dopamine'
    """
    return " ".join(name.lstrip(". ").split()).casefold()


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """Limits of a parameter whose unit is fixed by its name (mL/h, mL, min, kg, m2), plus the
    default value offered to the clinician."""

    limits: LimitSet = NO_LIMITS
    default: Decimal | None = None


NO_BOUNDS: Final = Bounds()


@dataclass(frozen=True, slots=True, kw_only=True)
class DoseLimits:
    """Limits of a dose-like parameter expressed in ``unit``, plus its default value."""

    unit: DoseUnit
    limits: LimitSet = NO_LIMITS
    default: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomConcentration:
    """Permission to program a concentration not in the list, within concentration limits.

    ``limits`` bound the amount per mL in ``unit`` (e.g. mg/mL); ISMP asks for a hard minimum.
    """

    unit: AmountUnit
    limits: LimitSet = NO_LIMITS
    default_volume_ml: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PCALimits:
    """PCA parameters: demand dose, lockout, basal, loading, clinician bolus, and the maximum
    amount over a rolling window of ``max_dose_window_h`` hours (1-12)."""

    demand_dose: DoseLimits
    lockout_min: Bounds = NO_BOUNDS
    basal: DoseLimits | None = None
    loading_dose: DoseLimits | None = None
    clinician_bolus: DoseLimits | None = None
    max_dose: DoseLimits | None = None
    max_dose_window_h: int | None = None

    def __post_init__(self) -> None:
        window = self.max_dose_window_h
        if window is not None and not 1 <= window <= 12:
            raise LibraryError(f"PCA max-dose window must be 1-12 h, got {window}", code="library.pca_window")


@dataclass(frozen=True, slots=True, kw_only=True)
class Drug:
    """A master-formulary drug: names, codes, class and the ISMP high-alert flag."""

    id: str
    generic_name: str
    display_name: str = ""
    aliases: tuple[str, ...] = ()
    ehr_codes: tuple[str, ...] = ()
    drug_class: str | None = None
    is_high_alert: bool = False

    @property
    def shown_name(self) -> str:
        """The name a pump shows: the Tall Man display name when set, else the generic name."""
        return self.display_name or self.generic_name

    def names(self) -> tuple[str, ...]:
        """Every name this drug answers to (generic, display, aliases)."""
        return (self.generic_name, self.shown_name, *self.aliases)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One drug x therapy x dosing unit in one care area, with all its limits (a rule set).

    ``dose`` is the dosing unit with the dose limits (for fluids and rate-based entries the unit
    is mL/h). ``bolus``/``loading``/``pca`` are None when the entry does not allow them.
    ``dose_rate`` limits how fast an intermittent gives its dose (an amount per time, e.g.
    potassium chloride in mEq/h, phenytoin in mg/min), checked at the rate the pump runs.
    """

    id: str
    care_area_id: str
    drug_id: str
    dose: DoseLimits
    kind: EntryKind = EntryKind.MEDICATION
    mode: DeliveryMode = DeliveryMode.CONTINUOUS
    therapy: str | None = None
    route: Route = Route.IV
    concentrations: tuple[Concentration, ...] = ()
    custom_concentration: CustomConcentration | None = None
    rate_ml_per_h: Bounds = NO_BOUNDS
    vtbi_ml: Bounds = NO_BOUNDS
    duration_min: Bounds = NO_BOUNDS
    dose_rate: DoseLimits | None = None
    bolus: DoseLimits | None = None
    bolus_rate: DoseLimits | None = None
    loading: DoseLimits | None = None
    loading_duration_min: Bounds = NO_BOUNDS
    pca: PCALimits | None = None
    devices: tuple[DeviceType, ...] = ()
    allows_secondary: bool = False
    advisory: str | None = None
    ehr_codes: tuple[str, ...] = ()
    last_reviewed: str | None = None
    provenance: str | None = None
    _needs_weight: bool = field(init=False, repr=False, compare=False)
    _unprotected: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.dose_rate is not None:
            if self.mode is not DeliveryMode.INTERMITTENT:
                raise LibraryError(
                    f"{self.id}: dose-rate limits belong to intermittent entries, not {self.mode} ones",
                    code="library.dose_rate_mode",
                )
            if not self.dose_rate.unit.is_rate:
                raise LibraryError(
                    f"{self.id}: a dose-rate limit needs an amount per time (mEq/h, mg/min), "
                    f"not {self.dose_rate.unit}",
                    code="library.dose_rate_unit",
                )
            if self.dose_rate.unit.amount.dimension is not self.dose.unit.amount.dimension:
                raise LibraryError(
                    f"{self.id}: the dose rate ({self.dose_rate.unit}) and the dose ({self.dose.unit}) "
                    "measure different kinds of amount",
                    code="library.dose_rate_unit",
                )
            if self.dose_rate.unit.needs_bsa and not self.dose.unit.needs_bsa:
                raise LibraryError(
                    f"{self.id}: a dose rate per m2 needs a dose per m2 (the BSA is asked for the dose)",
                    code="library.dose_rate_unit",
                )
        object.__setattr__(self, "_needs_weight", any(u.needs_weight for u in self._dose_units()))
        unprotected = self.dose.limits.is_empty and self.rate_ml_per_h.limits.is_empty
        object.__setattr__(self, "_unprotected", unprotected)

    @property
    def dosing_unit(self) -> DoseUnit:
        """The unit doses of this entry are programmed and limited in."""
        return self.dose.unit

    @property
    def needs_weight(self) -> bool:
        """True when any dose of this entry (incl. bolus, loading and PCA doses) is weight-based."""
        return self._needs_weight

    def _dose_units(self) -> tuple[DoseUnit, ...]:
        optional = [self.dose_rate, self.bolus, self.loading]
        if self.pca is not None:
            p = self.pca
            optional += [p.demand_dose, p.basal, p.loading_dose, p.clinician_bolus, p.max_dose]
        return (self.dose.unit, *(d.unit for d in optional if d is not None))

    @property
    def needs_bsa(self) -> bool:
        """True when the dosing unit is BSA-based."""
        return self.dose.unit.needs_bsa

    @property
    def is_unprotected(self) -> bool:
        """True when neither dose nor rate limits are configured (a 'name-only' entry)."""
        return self._unprotected

    def has_concentration(self, concentration: Concentration) -> bool:
        """True when the concentration is one of the entry's listed ones (same strength and volume)."""
        return any(
            c.same_strength(concentration) and c.volume_ml == concentration.volume_ml
            for c in self.concentrations
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BasicInfusionPolicy:
    """Whether a care area allows library-less ('basic') infusions, and their rate limits."""

    allowed: bool = True
    rate_ml_per_h: Bounds = NO_BOUNDS
    advisory: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceDefaults:
    """Pump settings a care area imposes (Alaris 'module configuration')."""

    occlusion_pressure_mmhg: Decimal | None = None
    max_occlusion_pressure_mmhg: Decimal | None = None
    air_in_line_ul: Decimal | None = None
    accumulated_air_in_line: bool = True
    kvo_rate_ml_per_h: Decimal | None = None
    auto_restart_attempts: int | None = None
    secondary_allowed: bool = True
    max_rate_ml_per_h: Decimal | None = None
    max_vtbi_ml: Decimal | None = None
    tubing_change_h: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PCASettings:
    """Care-area PCA settings, including the physiologic pause thresholds (PCA Pause Protocol)."""

    bolus_delivery_rate_ml_per_h: Decimal | None = None
    max_dose_window_h: int | None = None
    pause_enabled: bool = False
    pause_spo2_min_percent: Decimal | None = None
    pause_etco2_max_mmhg: Decimal | None = None
    pause_resp_rate_min_bpm: Decimal | None = None
    pause_message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CareArea:
    """A care area (profile): patient limits, max rate, basic-infusion policy, device defaults."""

    id: str
    name: str
    weight_kg: Bounds = NO_BOUNDS
    bsa_m2: Bounds = NO_BOUNDS
    max_rate_ml_per_h: Decimal | None = None
    bsa_resolution_m2: Decimal | None = None
    basic_infusion: BasicInfusionPolicy = BasicInfusionPolicy()
    device: DeviceDefaults = DeviceDefaults()
    pca: PCASettings = PCASettings()
    channel_labels: tuple[str, ...] = ()
    advisory: str | None = None
    _rate_cap: LimitSet = field(init=False, repr=False, compare=False)
    _vtbi_cap: LimitSet = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        caps = [m for m in (self.max_rate_ml_per_h, self.device.max_rate_ml_per_h) if m is not None]
        object.__setattr__(self, "_rate_cap", LimitSet(hard_max=min(caps)) if caps else NO_LIMITS)
        vtbi = self.device.max_vtbi_ml
        object.__setattr__(self, "_vtbi_cap", LimitSet(hard_max=vtbi) if vtbi is not None else NO_LIMITS)

    @property
    def rate_cap(self) -> LimitSet:
        """The care area's maximum rate as a hard limit (the lower of area and device maxima)."""
        return self._rate_cap

    @property
    def vtbi_cap(self) -> LimitSet:
        """The care area's maximum VTBI as a hard limit."""
        return self._vtbi_cap


@dataclass(frozen=True, slots=True, kw_only=True)
class EhrMapping:
    """An EHR order identifier and the library name it maps to (auto-programming match)."""

    order_code: str
    alias: str
    additive_code: str | None = None
    diluent_code: str | None = None
    comment: str | None = None
    method: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """Where a library came from, and whether it is example data."""

    source: str = ""
    imported_from: str | None = None
    note: str | None = None
    is_example: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DrugLibrary:
    """A versioned drug library for one hospital (facility): the unit that is signed and deployed."""

    name: str
    version: int
    hospital_id: str
    drugs: tuple[Drug, ...]
    care_areas: tuple[CareArea, ...]
    entries: tuple[Entry, ...]
    status: LibraryStatus = LibraryStatus.DRAFT
    provenance: Provenance = Provenance()
    ehr_mappings: tuple[EhrMapping, ...] = ()
    syringes: tuple[str, ...] = ()
    _drugs: dict[str, Drug] = field(init=False, repr=False, compare=False)
    _care_areas: dict[str, CareArea] = field(init=False, repr=False, compare=False)
    _entries: dict[str, Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.version < 1:
            raise LibraryError(f"library version must be >= 1, got {self.version}", code="library.version")
        object.__setattr__(self, "_drugs", _index(self.drugs, "drug"))
        object.__setattr__(self, "_care_areas", _index(self.care_areas, "care area"))
        object.__setattr__(self, "_entries", _index(self.entries, "entry"))
        for entry in self.entries:
            if entry.drug_id not in self._drugs:
                raise LibraryError(
                    f"entry {entry.id!r} names unknown drug {entry.drug_id!r}",
                    code="library.reference",
                )
            if entry.care_area_id not in self._care_areas:
                raise LibraryError(
                    f"entry {entry.id!r} names unknown care area {entry.care_area_id!r}",
                    code="library.reference",
                )

    def drug(self, drug_id: str) -> Drug:
        """The drug with this id."""
        try:
            return self._drugs[drug_id]
        except KeyError:
            raise LookupFailedError(f"no drug with id {drug_id!r}", code="library.no_drug") from None

    def care_area(self, care_area_id: str) -> CareArea:
        """The care area with this id, or (case-insensitively) this name."""
        found = self._care_areas.get(care_area_id)
        if found is not None:
            return found
        key = match_key(care_area_id)
        matches = [a for a in self.care_areas if key in (match_key(a.id), match_key(a.name))]
        if len(matches) == 1:
            return matches[0]
        raise LookupFailedError(
            f"no care area {care_area_id!r}",
            candidates=tuple(a.id for a in self.care_areas),
            code="library.no_care_area",
        )

    def entry(self, entry_id: str) -> Entry:
        """The entry with this id."""
        try:
            return self._entries[entry_id]
        except KeyError:
            raise LookupFailedError(f"no entry with id {entry_id!r}", code="library.no_entry") from None

    def entries_in(self, care_area_id: str) -> Iterator[Entry]:
        """Entries of one care area, in library order."""
        return (e for e in self.entries if e.care_area_id == care_area_id)


_Identified = TypeVar("_Identified", Drug, CareArea, Entry)


def _index(items: tuple[_Identified, ...], what: str) -> dict[str, _Identified]:
    index: dict[str, _Identified] = {}
    for item in items:
        if item.id in index:
            raise LibraryError(f"duplicate {what} id {item.id!r}", code="library.duplicate_id")
        index[item.id] = item
    return index
