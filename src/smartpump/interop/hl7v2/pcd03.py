"""IHE PCD-03 (PIV) orders: RGV^O15 -> InfusionOrder -> InfusionProgram, DERS-checked like a manual program.

Refusals carry the PIV application error code of TF Vol. 2 Appendix B.3 (``OrderRejected``), which
the RRG^O16 reports in ERR-5. Order kinds beyond the early profile: rate change (ORC-1 XO), bolus
and loading dose from a running infusion (ORC-1 CH + parent in ORC-8), multistep (RXG-1 steps),
PCA (OBX PCA parameters) and secondary/piggyback (RXR-4 IVPB).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Final

from smartpump.ders.check import check
from smartpump.ders.program import (
    InfusionProgram,
    PatientParameters,
    PCAProgram,
    ProgramKind,
    Verdict,
    VerdictLevel,
)
from smartpump.ders.select import find_entry
from smartpump.errors import LookupFailedError, ProgramError, SmartpumpError, UnitError
from smartpump.interop.hl7v2 import codes
from smartpump.interop.hl7v2.ack import AckCode, ErrorDetail, Severity, build_ack, build_rrg_o16
from smartpump.interop.hl7v2.message import Hl7ParseError, Message, Segment, parse_number, parse_timestamp
from smartpump.library.formats.ehr_mapping import resolve_alias
from smartpump.library.model import CareArea, DeliveryMode, Drug, DrugLibrary, EhrMapping, Entry, Route
from smartpump.units import ML_PER_H, Concentration, DoseUnit, dose_to_rate_ml_per_h

DEFAULT_MAX_ORDER_AGE: Final = timedelta(minutes=30)
_STRUCTURE: Final = re.compile(
    r"MSH( SFT)*( NTE)*( PID( PD1)?( NTE)*( PV1( PV2)?)?( AL1)*)?"
    r"( ORC( TQ1( TQ2)*)*( RXG( TQ1( TQ2)*)*( RXR)+( RXC)*( OBX( NTE)*)*)+)"
)
_NEW_ORDER_CONTROLS: Final = frozenset({"NW", "RE", "XO", "CH", ""})
_PIV_HL7_CONDITION: Final = {9003: "101", 9004: "102", 9008: "102"}


class OrderRejected(SmartpumpError):
    """An order the Infusion Order Consumer refuses; ``error_code`` is the PIV code (9001-9044)."""

    code = "order.rejected"

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(
            f"{error_code} {codes.PIV_ERRORS.get(error_code, '')}: {message}", code=f"piv.{error_code}"
        )
        self.error_code = error_code
        self.reason = message


class OrderIntent(StrEnum):
    """What the order asks the pump to do."""

    NEW = "new"
    TITRATION = "titration"
    BOLUS = "bolus"
    LOADING = "loading"
    PCA = "pca"
    SECONDARY = "secondary"
    MULTISTEP = "multistep"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderParameter:
    """An OBX program parameter (PCA, bolus, rate, step type): REFID, number or text, unit CWE."""

    refid: str
    value: Decimal | None
    text: str
    unit: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderStep:
    """One RXG give group: what to infuse in this step (a single-step order has one)."""

    number: int
    drug_code: str
    drug_text: str
    give_amount: Decimal | None
    give_unit: DoseUnit | None
    vtbi_ml: Decimal | None
    drug_amount: Decimal | None
    drug_amount_unit: str | None
    diluent_ml: Decimal | None
    concentration: Concentration | None
    duration_min: Decimal | None
    route: str
    device: str
    method: str
    parameters: tuple[OrderParameter, ...] = ()

    def parameter(self, refid: str) -> OrderParameter | None:
        """The OBX parameter with this REFID, if the step has one."""
        return next((p for p in self.parameters if p.refid == refid), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class InfusionOrder:
    """An RGV^O15 as understood: patient, order identity, drug, steps, pump and patient measures."""

    control_id: str
    sending_application: str
    patient_id: str
    patient_id_authority: str
    patient_name: str
    order_control: str
    order_id: str
    parent_order_id: str
    order_time: datetime | None
    clinician: str
    steps: tuple[OrderStep, ...]
    pump_id: str
    pump_vendor: str
    channel: str
    weight_kg: Decimal | None
    height_cm: Decimal | None
    bsa_m2: Decimal | None
    patient_id_type: str = ""
    patient_family_name: str = ""
    patient_given_name: str = ""
    prescriber_id: str = ""
    """ORC-12.1 (XCN ID) of the ordering provider; FHIR ``requester`` reference id."""
    prescriber_name: str = ""
    """ORC-12 prefix, given and family name (``Dr Ann Smith``); FHIR ``requester.display``."""

    @property
    def prescriber(self) -> str:
        """The ordering provider as the pump shows it: ``Dr Ann Smith (P-77)``, the part known, or empty."""
        if self.prescriber_name and self.prescriber_id:
            return f"{self.prescriber_name} ({self.prescriber_id})"
        return self.prescriber_name or self.prescriber_id

    @property
    def first(self) -> OrderStep:
        """Step 1 (the only step of a single-step order)."""
        return self.steps[0]

    @property
    def drug_code(self) -> str:
        """RXG-4.1 of step 1: the identifier the library mapping matches."""
        return self.first.drug_code

    @property
    def drug_text(self) -> str:
        """RXG-4.2 of step 1: the drug's name as the EHR writes it."""
        return self.first.drug_text

    @property
    def is_secondary(self) -> bool:
        """True for a piggyback order (RXR-4 IVPB)."""
        return self.first.method.upper() == "IVPB"

    @property
    def intent(self) -> OrderIntent:
        """What the order asks for, from ORC-1, the steps and the OBX parameters."""
        first = self.first
        if len(self.steps) > 1:
            return OrderIntent.MULTISTEP
        if first.parameter("MDC_DOSE_PCA_PATIENT") is not None:
            return OrderIntent.PCA
        if self.order_control == "CH":
            return (
                OrderIntent.LOADING if first.parameter("MDC_DOSE_LOADING") is not None else OrderIntent.BOLUS
            )
        if first.parameter("MDC_DOSE_LOADING") is not None:
            return OrderIntent.LOADING
        if self.order_control == "XO" and first.vtbi_ml is None:
            return OrderIntent.TITRATION
        if self.is_secondary:
            return OrderIntent.SECONDARY
        return OrderIntent.NEW


def parse_order(message: Message, *, local_zone: tzinfo = UTC) -> InfusionOrder:
    """Read an RGV^O15 into an InfusionOrder; timestamps without a UTC offset are read in ``local_zone``.

    Raises:
        Hl7ParseError: not an RGV^O15, segments out of order, bad numbers or timestamps.
        OrderRejected: 9008 for units we cannot read, 9003 for a step without a drug code or name.
    """
    if message.message_type[:2] != ("RGV", "O15"):
        raise Hl7ParseError(f"expected RGV^O15, got {message.type_text}", code="hl7.unsupported_type")
    if not _STRUCTURE.fullmatch(" ".join(message.segment_ids)):
        raise Hl7ParseError(
            f"segments {' '.join(message.segment_ids)} do not follow RGV^O15 (PID, ORC, RXG, RXR, OBX)",
            code="hl7.segment_order",
        )
    if len(message.all("ORC")) > 1:
        raise Hl7ParseError("one order (ORC) per RGV^O15 is supported", code="hl7.multiple_orders")
    pid = message.first("PID")
    orc = message.first("ORC")
    assert orc is not None
    steps: list[OrderStep] = []
    pump: tuple[str, str, str] = ("", "", "")
    patient_measures: dict[str, Decimal] = {}
    step_segments: list[list[Segment]] = []
    for seg in message.segments:
        if seg.id == "RXG":
            step_segments.append([seg])
        elif step_segments and seg.id in ("TQ1", "RXR", "OBX"):
            step_segments[-1].append(seg)
    for group in step_segments:
        parameters: list[OrderParameter] = []
        for obx in (s for s in group if s.id == "OBX"):
            refid = _obx_refid(obx)
            if refid == "MDC_DEV_PUMP_INFUS_VMD":
                pump = _pump_identity(obx)
            elif refid in ("MDC_ATTR_PT_WEIGHT", "MDC_ATTR_PT_HEIGHT", "MDC_AREA_BODY_SURF_ACTUAL"):
                patient_measures[refid] = _measure(obx, refid)
            else:
                parameters.append(
                    OrderParameter(
                        refid=refid,
                        value=_number_or_none(obx.value(5)),
                        text=obx.value(5),
                        unit=obx.components(6),
                    )
                )
        steps.append(_step(group, tuple(parameters), len(steps) + 1))
    return InfusionOrder(
        control_id=message.control_id,
        sending_application=message.msh.value(3),
        patient_id=pid.value(3).strip() if pid else "",
        patient_id_authority=pid.value(3, 4).strip() if pid else "",
        patient_name=" ".join(p for p in (pid.value(5, 2), pid.value(5, 1)) if p) if pid else "",
        order_control=orc.value(1).strip().upper(),
        order_id=orc.value(2).strip(),
        parent_order_id=orc.value(8).strip(),
        order_time=parse_timestamp(orc.value(9), local_zone=local_zone),
        clinician=(orc.value(19) or orc.value(12)).strip(),
        steps=tuple(steps),
        pump_id=pump[0],
        pump_vendor=pump[1],
        channel=pump[2],
        weight_kg=patient_measures.get("MDC_ATTR_PT_WEIGHT"),
        height_cm=patient_measures.get("MDC_ATTR_PT_HEIGHT"),
        bsa_m2=patient_measures.get("MDC_AREA_BODY_SURF_ACTUAL"),
        patient_id_type=pid.value(3, 5).strip() if pid else "",
        patient_family_name=pid.value(5, 1).strip() if pid else "",
        patient_given_name=pid.value(5, 2).strip() if pid else "",
        prescriber_id=orc.value(12, 1).strip(),
        prescriber_name=" ".join(
            p for p in (orc.value(12, 6), orc.value(12, 3), orc.value(12, 2)) if p.strip()
        ),
    )


def _obx_refid(obx: Segment) -> str:
    found = codes.find_term(obx.value(3, 1), obx.value(3, 2))
    return found.refid if found is not None else obx.value(3, 2).strip() or obx.value(3, 1).strip()


def _pump_identity(obx: Segment) -> tuple[str, str, str]:
    """(pump id, vendor, channel): EI-1 holds the ID; the deprecated convention puts it in EI-3."""
    ei = obx.components(18)
    parts = [*ei, "", "", "", ""]
    if parts[0].strip():
        return parts[0].strip(), (parts[2] or parts[3]).strip(), obx.value(4).strip()
    return parts[2].strip(), parts[3].strip(), obx.value(4).strip()


def _measure(obx: Segment, refid: str) -> Decimal:
    value = parse_number(obx.value(5), where=f"OBX {refid}")
    if value is None:
        raise OrderRejected(9003, f"{refid} OBX has no value")
    unit = obx.components(6)
    try:
        if refid == "MDC_ATTR_PT_WEIGHT":
            return value * codes.weight_factor_to_kg(unit)
        if refid == "MDC_ATTR_PT_HEIGHT":
            return value * codes.height_factor_to_cm(unit)
    except UnitError as error:
        raise OrderRejected(9008, error.message) from None
    return value


def _number_or_none(text: str) -> Decimal | None:
    try:
        return parse_number(text, where="OBX-5")
    except Hl7ParseError:
        return None


def _step(group: list[Segment], parameters: tuple[OrderParameter, ...], position: int) -> OrderStep:
    rxg = group[0]
    rxr = next((s for s in group if s.id == "RXR"), None)
    tq1 = next((s for s in group if s.id == "TQ1"), None)
    drug_code, drug_text = rxg.value(4, 1).strip(), rxg.value(4, 2).strip()
    if not drug_code and not drug_text:
        raise OrderRejected(9003, f"RXG-4 (give code) of step {position} is empty")
    try:
        vtbi = parse_number(rxg.value(5), where="RXG-5")
        if vtbi is not None:
            vtbi *= codes.volume_factor_to_ml(rxg.components(7))
        give_amount = parse_number(rxg.value(15), where="RXG-15")
        give_unit = codes.dose_unit_from_cwe(rxg.components(16)) if any(rxg.components(16)) else None
        amount = parse_number(rxg.value(17), where="RXG-17")
        amount_unit = _amount_unit(rxg.components(18)) if amount is not None else None
        diluent = parse_number(rxg.value(23), where="RXG-23")
        if diluent is not None:
            diluent *= codes.volume_factor_to_ml(rxg.components(24))
        duration = None
        if tq1 is not None:
            duration = parse_number(tq1.value(6, 1), where="TQ1-6")
            if duration is not None:
                duration *= codes.time_factor_to_min(tq1.components(6)[1:])
    except UnitError as error:
        raise OrderRejected(9008, error.message) from None
    concentration = None
    if amount is not None and amount_unit is not None and diluent is not None:
        try:
            concentration = Concentration(amount, DoseUnit.parse(amount_unit).amount, diluent)
        except UnitError as error:
            raise OrderRejected(9004, f"RXG-17/23 concentration: {error.message}") from None
    step_text = rxg.value(1).strip()
    return OrderStep(
        number=int(step_text) if (step_text.isascii() and step_text.isdigit()) else position,
        drug_code=drug_code,
        drug_text=drug_text,
        give_amount=give_amount,
        give_unit=give_unit,
        vtbi_ml=vtbi,
        drug_amount=amount,
        drug_amount_unit=amount_unit,
        diluent_ml=diluent,
        concentration=concentration,
        duration_min=duration,
        route=rxr.value(1).strip() if rxr else "",
        device=rxr.value(3).strip() if rxr else "",
        method=rxr.value(4).strip() if rxr else "",
        parameters=parameters,
    )


def _amount_unit(components: tuple[str, ...]) -> str:
    unit = codes.dose_unit_from_cwe(components)
    if unit.is_rate or unit.basis.value:
        raise UnitError(f"RXG-18 must be an amount unit, got {unit}", code="unit.unknown")
    return unit.amount.value


def resolve_drug(order: InfusionOrder, library: DrugLibrary, mapping: Sequence[EhrMapping] = ()) -> Drug:
    """The library drug the order names: EHR mapping (given, then the library's), EHR code, name.

    Raises:
        OrderRejected: 9010 when nothing in the library matches.
    """
    code = order.drug_code
    if code:
        for item in (*mapping, *library.ehr_mappings):
            if item.order_code == code:
                mapped = resolve_alias(library, item.alias)
                if mapped is not None:
                    return mapped
        by_code = next((d for d in library.drugs if code in d.ehr_codes), None)
        if by_code is not None:
            return by_code
    if order.drug_text:
        by_name = resolve_alias(library, order.drug_text)
        if by_name is not None:
            return by_name
    raise OrderRejected(9010, f"drug {code} ({order.drug_text}) is not in library {library.name!r}")


def order_to_program(
    order: InfusionOrder,
    library: DrugLibrary,
    care_area_id: str,
    mapping: Sequence[EhrMapping] = (),
    *,
    step: int = 1,
) -> InfusionProgram:
    """The InfusionProgram an order step asks for, with its entry chosen and units converted.

    Raises:
        OrderRejected: 9010 drug not in library, 9021 care area mismatch, 9029 no care area,
            9009/9037/9018 no single entry for the units/concentration, 9019/9020/9027 patient
            measures missing, 9003 missing parameter, 9013 piggyback refused, 9025 lockout
            missing, 9026 PCA dose limit missing, 9039/9042 bolus or loading dose not configured,
            9041 inconsistent multistep, 9043 multistep not allowed for the entry.
    """
    area = _care_area(library, care_area_id)
    drug = resolve_drug(order, library, mapping)
    if any((s.drug_code, s.drug_text) != (order.drug_code, order.drug_text) for s in order.steps):
        raise OrderRejected(9041, "every step of a multistep order must name the same drug")
    try:
        current = next(s for s in order.steps if s.number == step)
    except StopIteration:
        raise OrderRejected(9041, f"the order has no step {step}") from None
    intent = order.intent
    kind = _program_kind(intent)
    entry = _entry(library, area, drug, current, kind)
    if order.is_secondary and (not entry.allows_secondary or not area.device.secondary_allowed):
        raise OrderRejected(9013, f"{drug.shown_name} may not run as a secondary in {area.id}")
    if intent is OrderIntent.MULTISTEP:
        _check_multistep(entry, current)
    if kind is ProgramKind.CONTINUOUS and entry.mode is DeliveryMode.INTERMITTENT:
        kind = ProgramKind.INTERMITTENT
    _require_patient(order, entry)
    program = InfusionProgram(
        entry_id=entry.id,
        kind=kind,
        route=_route(current.route),
        concentration=current.concentration,
        patient=PatientParameters(weight_kg=order.weight_kg, height_cm=order.height_cm, bsa_m2=order.bsa_m2),
        vtbi_ml=current.vtbi_ml,
        duration_min=current.duration_min,
    )
    match kind:
        case ProgramKind.PCA:
            return replace(program, pca=_pca(current))
        case ProgramKind.BOLUS | ProgramKind.LOADING:
            return _bolus(program, current, entry, kind)
        case _:
            return _continuous(program, current)


MULTISTEP_MODES: Final = frozenset({DeliveryMode.CONTINUOUS, DeliveryMode.RATE})
"""Entry modes a multistep (ramp/taper) order may use: the library has no multistep flag of its own."""


def _check_multistep(entry: Entry, step: OrderStep) -> None:
    """9043 for an entry that is not a continuous or rate entry; 9041 for a step without a volume."""
    if entry.mode not in MULTISTEP_MODES:
        raise OrderRejected(9043, f"{entry.id} is a {entry.mode.value} entry and cannot run as a multistep")
    if step.vtbi_ml is None:
        raise OrderRejected(9041, f"step {step.number} of the multistep order has no volume (RXG-5)")


def _care_area(library: DrugLibrary, care_area_id: str) -> CareArea:
    if not care_area_id.strip():
        raise OrderRejected(9029, "no care area is selected on the pump")
    try:
        return library.care_area(care_area_id)
    except LookupFailedError:
        raise OrderRejected(9021, f"care area {care_area_id!r} is not in library {library.name!r}") from None


def _program_kind(intent: OrderIntent) -> ProgramKind:
    match intent:
        case OrderIntent.PCA:
            return ProgramKind.PCA
        case OrderIntent.BOLUS:
            return ProgramKind.BOLUS
        case OrderIntent.LOADING:
            return ProgramKind.LOADING
        case OrderIntent.NEW | OrderIntent.TITRATION | OrderIntent.SECONDARY | OrderIntent.MULTISTEP:
            return ProgramKind.CONTINUOUS


def _entry(library: DrugLibrary, area: CareArea, drug: Drug, step: OrderStep, kind: ProgramKind) -> Entry:
    in_area = [e for e in library.entries_in(area.id) if e.drug_id == drug.id]
    if not in_area:
        raise OrderRejected(9021, f"{drug.shown_name} has no entry in care area {area.id!r}")
    unit = step.give_unit
    by_unit = unit if unit is not None and not unit.is_volume and kind is ProgramKind.CONTINUOUS else None
    try:
        entry = find_entry(
            library, area.id, drug.generic_name, concentration=step.concentration, dose_unit=by_unit
        )
    except LookupFailedError as error:
        if error.code == "library.ambiguous_entry":
            raise OrderRejected(9018, f"{error.message}: {'; '.join(error.candidates)}") from None
        if by_unit is not None and _matches(library, area, drug, step.concentration, None):
            raise OrderRejected(
                9009, f"no {drug.shown_name} entry in {area.id!r} is dosed in {unit}"
            ) from None
        raise OrderRejected(
            9037, f"concentration {step.concentration} matches no {drug.shown_name} entry in {area.id!r}"
        ) from None
    return entry


def _matches(
    library: DrugLibrary,
    area: CareArea,
    drug: Drug,
    concentration: Concentration | None,
    unit: DoseUnit | None,
) -> bool:
    try:
        find_entry(library, area.id, drug.generic_name, concentration=concentration, dose_unit=unit)
    except LookupFailedError as error:
        return error.code == "library.ambiguous_entry"
    return True


def _require_patient(order: InfusionOrder, entry: Entry) -> None:
    if entry.needs_weight and order.weight_kg is None:
        raise OrderRejected(9019, f"{entry.id} is weight-based and the order carries no weight")
    if entry.needs_bsa and order.bsa_m2 is None:
        if order.weight_kg is not None and order.height_cm is None:
            raise OrderRejected(9020, f"{entry.id} is BSA-based and the order carries no height")
        if order.weight_kg is None or order.height_cm is None:
            raise OrderRejected(9027, f"{entry.id} is BSA-based and the order carries no BSA")


def _route(text: str) -> Route:
    if not text:
        return Route.IV
    for route in Route:
        if route.value.casefold() == text.casefold() or route.name.casefold() == text.casefold():
            return route
    raise OrderRejected(9004, f"route {text!r} (RXR-1) is not one we program")


def _continuous(program: InfusionProgram, step: OrderStep) -> InfusionProgram:
    if step.give_amount is None or step.give_unit is None:
        raise OrderRejected(9003, "RXG-15/16 (rate or dose rate with its unit) is missing")
    if step.give_unit == ML_PER_H:
        return replace(program, rate_ml_per_h=step.give_amount)
    if step.give_unit.is_volume:
        raise OrderRejected(9008, f"{step.give_unit} is not a rate the pump can run")
    rate = step.parameter("MDC_FLOW_FLUID_PUMP")
    if not step.give_unit.is_rate and program.duration_min is None and rate is not None:
        program = replace(
            program, duration_min=_duration_from_rate(program, step.give_amount, step.give_unit, rate)
        )
    return replace(program, dose=step.give_amount, dose_unit=step.give_unit)


def _bolus(program: InfusionProgram, step: OrderStep, entry: Entry, kind: ProgramKind) -> InfusionProgram:
    refid = "MDC_DOSE_LOADING" if kind is ProgramKind.LOADING else "MDC_DOSE_CLINICIAN"
    limits = entry.loading if kind is ProgramKind.LOADING else entry.bolus
    if limits is None:
        code = 9042 if kind is ProgramKind.LOADING else 9039
        raise OrderRejected(code, f"{entry.id} is not configured for a {kind.value} dose")
    typed = step.parameter(refid)
    dose, unit_cwe = step.give_amount, None
    unit = step.give_unit
    if typed is not None and typed.value is not None:
        dose, unit_cwe = typed.value, typed.unit
    if unit_cwe:
        try:
            unit = codes.dose_unit_from_cwe(unit_cwe)
        except UnitError as error:
            raise OrderRejected(9040, error.message) from None
    if dose is None or unit is None:
        raise OrderRejected(9003, f"the {kind.value} order has no dose with a unit")
    if unit != limits.unit and (
        unit.basis is not limits.unit.basis or unit.amount.dimension is not limits.unit.amount.dimension
    ):
        raise OrderRejected(9040, f"{kind.value} dose in {unit} does not match the library's {limits.unit}")
    rate = step.parameter("MDC_FLOW_FLUID_PUMP")
    if program.duration_min is None:
        if rate is None:
            raise OrderRejected(
                9003, f"a {kind.value} needs a duration (TQ1) or a rate (OBX MDC_FLOW_FLUID_PUMP)"
            )
        program = replace(program, duration_min=_duration_from_rate(program, dose, unit, rate))
    # a bolus's volume is the volume that holds its dose, never the parent bag's VTBI
    return replace(program, dose=dose, dose_unit=unit, vtbi_ml=None)


def _duration_from_rate(
    program: InfusionProgram, dose: Decimal, unit: DoseUnit, rate: OrderParameter
) -> Decimal:
    """Minutes a total dose takes at the OBX rate (mL/h): volume of the dose / rate."""
    if rate.value is None or rate.value <= 0:
        raise OrderRejected(9004, "the bolus rate (OBX MDC_FLOW_FLUID_PUMP) is not a positive number")
    try:
        volume_per_h = dose_to_rate_ml_per_h(
            dose,
            unit,
            program.concentration,
            weight_kg=program.patient.weight_kg,
            bsa_m2=program.patient.bsa_m2,
            duration_min=Decimal(60),
        )
    except UnitError as error:
        raise OrderRejected(9003, error.message) from None
    return volume_per_h * Decimal(60) / rate.value


def _pca(step: OrderStep) -> PCAProgram:
    demand = step.parameter("MDC_DOSE_PCA_PATIENT")
    lockout = step.parameter("MDC_TIME_PCA_LOCKOUT")
    if demand is None or demand.value is None:
        raise OrderRejected(9003, "the PCA order has no patient (demand) dose")
    if lockout is None or lockout.value is None:
        raise OrderRejected(9025, "the PCA order has no lockout interval")
    limit = step.parameter("MDC_DOSE_PCA_LIMIT")
    if limit is None or limit.value is None:
        raise OrderRejected(9026, "the PCA order has no dose limit (OBX MDC_DOSE_PCA_LIMIT)")
    try:
        lockout_min = lockout.value * codes.time_factor_to_min(lockout.unit)
        period = step.parameter("MDC_TIME_PD_PCA_DOSE_LIMIT")
        window_h: int | None = None
        if period is not None and period.value is not None:
            window_h = int(period.value * codes.time_factor_to_min(period.unit) / Decimal(60))
    except UnitError as error:
        raise OrderRejected(9008, error.message) from None
    loading = step.parameter("MDC_DOSE_LOADING")
    basal = step.give_amount if step.give_unit is not None and step.give_unit.is_rate else None
    return PCAProgram(
        demand_dose=demand.value,
        lockout_min=lockout_min,
        basal=basal,
        loading_dose=loading.value if loading is not None else None,
        max_dose=limit.value,
        max_dose_window_h=window_h,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDecision:
    """The outcome of evaluating an order: accepted with its programs and verdicts, or rejected.

    Soft alerts travel with an accepted offer (the nurse overrides at the pump or reprograms).
    """

    order: InfusionOrder
    programs: tuple[InfusionProgram, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    rejection: OrderRejected | None = None

    @property
    def accepted(self) -> bool:
        """True when the order may be offered to the pump."""
        return self.rejection is None


_PROGRAM_ERROR_CODES: Final = {
    "program.weight_required": 9019,
    "program.bsa_required": 9027,
    "program.route_mismatch": 9018,
    "program.concentration_not_in_entry": 9037,
    "program.concentration_required": 9037,
    "program.unit_mismatch": 9009,
    "program.bolus_not_allowed": 9039,
    "program.loading_not_allowed": 9042,
    "program.basal_not_allowed": 9018,
    "program.mode_mismatch": 9018,
    "program.dose_required": 9003,
    "program.duration_required": 9003,
    "program.rate_required": 9003,
    "program.care_area_mismatch": 9021,
}


def evaluate_order(
    order: InfusionOrder,
    library: DrugLibrary,
    care_area_id: str,
    *,
    now: datetime,
    mapping: Sequence[EhrMapping] = (),
    max_age: timedelta = DEFAULT_MAX_ORDER_AGE,
) -> OrderDecision:
    """Map and DERS-check every step of an order exactly like a manual program.

    A hard verdict rejects with 9024; a program DERS cannot evaluate is rejected with the matching
    PIV code; an ORC-9 older than ``max_age`` (or in the future by more than it) with 9022.
    """
    try:
        if not order.patient_id:
            raise OrderRejected(9031, "PID-3 (patient ID) is missing")
        if not order.pump_id:
            raise OrderRejected(9003, "the order names no pump (OBX MDC_DEV_PUMP_INFUS_VMD, OBX-18)")
        if order.order_time is not None and abs(now - order.order_time) > max_age:
            raise OrderRejected(9022, f"order time {order.order_time.isoformat()} is older than {max_age}")
        programs = tuple(
            order_to_program(order, library, care_area_id, mapping, step=s.number) for s in order.steps
        )
        area = library.care_area(care_area_id)
        verdicts = tuple(_check(library, area, p) for p in programs)
    except OrderRejected as rejection:
        return OrderDecision(order=order, rejection=rejection)
    return OrderDecision(order=order, programs=programs, verdicts=verdicts)


def _check(library: DrugLibrary, area: CareArea, program: InfusionProgram) -> Verdict:
    try:
        verdict = check(library, area, program)
    except ProgramError as error:
        raise OrderRejected(
            _PROGRAM_ERROR_CODES.get(error.code, 9004), f"{error.code}: {error.message}"
        ) from None
    if verdict.level is VerdictLevel.HARD:
        hard = [a for a in verdict.alerts if a.level is VerdictLevel.HARD]
        detail = "; ".join(f"{a.rule} {a.value} {a.unit} (limit {a.limit})" for a in hard)
        raise OrderRejected(9024, detail)
    return verdict


def respond(message: Message, decision: OrderDecision, *, control_id: str, timestamp: datetime) -> Message:
    """The answer to an RGV^O15: ACK^O15 CA (or AA in original mode) when accepted and the sender
    asked for application acks only on error; RRG^O16 AA/AE/AR otherwise. Soft alerts ride along
    as ERR warnings."""
    rejection = decision.rejection
    if rejection is None:
        warnings = tuple(
            ErrorDetail(
                hl7_code="0",
                severity=Severity.WARNING,
                text=f"{a.rule}: {a.value} {a.unit} (limit {a.limit})",
            )
            for v in decision.verdicts
            for a in v.alerts
        )
        if message.application_ack_type == "AL":
            return build_rrg_o16(
                message, AckCode.AA, control_id=control_id, timestamp=timestamp, errors=warnings
            )
        code = AckCode.CA if message.accept_ack_type else AckCode.AA
        return build_ack(message, code, control_id=control_id, timestamp=timestamp, errors=warnings)
    return reject(message, rejection, control_id=control_id, timestamp=timestamp)


def reject(message: Message, rejection: OrderRejected, *, control_id: str, timestamp: datetime) -> Message:
    """The RRG^O16 refusing an order: AE for content errors (9003/9004/9008), AR otherwise."""
    content_error = rejection.error_code in (9003, 9004, 9008)
    detail = ErrorDetail(
        hl7_code=_PIV_HL7_CONDITION.get(rejection.error_code, "207"),
        severity=Severity.ERROR if content_error else Severity.FATAL,
        application_code=rejection.error_code,
        text=rejection.reason,
    )
    code = AckCode.AE if content_error else AckCode.AR
    return build_rrg_o16(message, code, control_id=control_id, timestamp=timestamp, errors=(detail,))


def answer_order(
    message: Message,
    library: DrugLibrary,
    care_area_id: str,
    *,
    now: datetime,
    control_id: str,
    mapping: Sequence[EhrMapping] = (),
    max_age: timedelta = DEFAULT_MAX_ORDER_AGE,
) -> tuple[Message, OrderDecision | None]:
    """Read, evaluate and answer one RGV^O15; the decision is None when the order could not be read.

    Raises:
        Hl7ParseError: the message is not a readable RGV^O15 (the listener answers AE/AR).
    """
    try:
        order = parse_order(message)
    except OrderRejected as rejection:
        return reject(message, rejection, control_id=control_id, timestamp=now), None
    decision = evaluate_order(order, library, care_area_id, now=now, mapping=mapping, max_age=max_age)
    return respond(message, decision, control_id=control_id, timestamp=now), decision
