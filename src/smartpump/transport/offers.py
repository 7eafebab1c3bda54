"""The program offer (``program.offer``): what an EHR order asks a pump to hold for the nurse, as one typed,
versioned format that the server writes and every pump (real or simulated) reads.

``offer_args`` writes a ``ProgramOffer`` as the command's args (format ``smartpump.program-offer/1``):
numbers travel as decimal strings, never floats. ``read_offer`` / ``program_offer_of`` read them back and
trust no type: an unknown or missing field, a number that is not a plain non-negative decimal string, an
unknown kind, route, unit or concentration, or an offer that breaks the rules below is refused with
``OfferError`` (code ``command.malformed``, ``field`` naming what is wrong).

The rules of an offer: order, patient, channel and entry are named; a PCA offer carries its PCA settings;
any other carries exactly one of a dose (with its unit) and a rate; a multistep offer (and only it) carries
its steps; every number is finite and not negative.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, TypeVar

from smartpump.ders.program import InfusionProgram, PatientParameters, PCAProgram, ProgramKind
from smartpump.errors import SmartpumpError
from smartpump.library.model import Route
from smartpump.pump.delivery import Step
from smartpump.transport.commands import OFFER_PROGRAM, Command
from smartpump.transport.messages import MessageError
from smartpump.units import AmountUnit, Concentration, DoseUnit

OFFER_FORMAT: Final = "smartpump.program-offer/1"
MAX_TEXT: Final = 128
MAX_PRESCRIBER: Final = 200
"""Longest order id, patient id, channel or entry id an offer carries."""
_E = TypeVar("_E", bound=StrEnum)
_DECIMAL: Final = re.compile(r"[0-9]{1,32}(?:\.[0-9]{1,32})?(?:E[+-]?[0-9]{1,4})?")


class OfferError(MessageError):
    """A program offer that does not follow its format; ``field`` names the offending arg."""

    code = "command.malformed"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"program offer {field}: {reason}")
        self.field = field


class OfferKind(StrEnum):
    """What the order asks of the channel (the EHR order's intent)."""

    NEW = "new"
    TITRATION = "titration"
    BOLUS = "bolus"
    LOADING = "loading"
    PCA = "pca"
    SECONDARY = "secondary"
    MULTISTEP = "multistep"

    @property
    def overlay(self) -> bool:
        """True for a bolus, loading dose or piggyback: delivered on top of the running infusion."""
        return self in (OfferKind.BOLUS, OfferKind.LOADING, OfferKind.SECONDARY)

    @property
    def needs_running(self) -> bool:
        """True when the channel must already run an infusion (a titration or an overlay)."""
        return self is OfferKind.TITRATION or self.overlay


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgramOffer:
    """One order offered to one channel: the program the pump DERS-checks, its steps (multistep) and the
    order it came from; construction refuses an offer that breaks the module's rules (``OfferError``)."""

    order_id: str
    patient_id: str
    channel: str
    kind: OfferKind
    program: InfusionProgram
    steps: tuple[Step, ...] = ()
    parent_order_id: str = ""
    prescriber: str = ""
    """The ordering provider as the order named it, shown to the nurse (empty when it named none)."""

    def __post_init__(self) -> None:
        for name, text in (
            ("order_id", self.order_id),
            ("patient_id", self.patient_id),
            ("channel", self.channel),
            ("entry_id", self.program.entry_id),
        ):
            if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
                raise OfferError(name, f"must be text of 1-{MAX_TEXT} characters")
        if len(self.parent_order_id) > MAX_TEXT:
            raise OfferError("parent_order_id", f"must be at most {MAX_TEXT} characters")
        if not isinstance(self.prescriber, str) or len(self.prescriber) > MAX_PRESCRIBER:
            raise OfferError("prescriber", f"must be text of at most {MAX_PRESCRIBER} characters")
        for name, number in _numbers(self):
            if number is not None and _DECIMAL.fullmatch(str(number)) is None:
                raise OfferError(
                    name, "must be a finite number, not negative, of at most 32 digits each side"
                )
        program = self.program
        if (program.dose is None) != (program.dose_unit is None):
            raise OfferError("dose_unit", "a dose and its unit travel together")
        if program.dose is not None and program.rate_ml_per_h is not None:
            raise OfferError("dose", "give only one of dose and rate_ml_per_h")
        pca = self.kind is OfferKind.PCA or program.kind is ProgramKind.PCA
        if pca and program.pca is None:
            raise OfferError("pca_demand_dose", "a PCA offer carries its demand dose and lockout")
        if not pca and program.dose is None and program.rate_ml_per_h is None:
            raise OfferError("dose", "give exactly one of dose and rate_ml_per_h")
        if (self.kind is OfferKind.MULTISTEP) != bool(self.steps):
            raise OfferError("steps", "a multistep offer, and only it, carries its steps")


def offer_args(offer: ProgramOffer) -> dict[str, object]:
    """The args of a ``program.offer`` command: plain JSON, numbers as decimal strings (``read_offer`` reads
    them back to an equal offer)."""
    program = offer.program
    args: dict[str, object] = {
        "format": OFFER_FORMAT,
        "order_id": offer.order_id,
        "patient_id": offer.patient_id,
        "channel": offer.channel,
        "entry_id": program.entry_id,
        "kind": offer.kind.value,
        "program_kind": program.kind.value,
        "route": program.route.value,
    }
    if offer.parent_order_id:
        args["parent_order_id"] = offer.parent_order_id
    if offer.prescriber:
        args["prescriber"] = offer.prescriber
    if program.dose_unit is not None:
        args["dose_unit"] = str(program.dose_unit)
    concentration = program.concentration
    if concentration is not None:
        args["concentration_unit"] = concentration.unit.value
    for name, number in _numbers(offer):
        if number is not None and not name.startswith("steps"):
            args[name] = str(number)
    if offer.steps:
        args["steps"] = [
            {"rate_ml_per_h": str(step.rate_ml_per_h), "volume_ml": str(step.volume_ml)}
            for step in offer.steps
        ]
    return args


def program_offer_of(command: Command) -> ProgramOffer:
    """The offer a ``program.offer`` command carries.

    Raises:
        OfferError: ``command.malformed`` for another command or args that are not a program offer.
    """
    if command.command != OFFER_PROGRAM:
        raise OfferError("command", f"{command.command!r} does not carry a program offer")
    return read_offer(command.args)


def read_offer(args: Mapping[str, object]) -> ProgramOffer:
    """Read offer args written by ``offer_args``, trusting no type.

    Raises:
        OfferError: ``command.malformed`` naming the first field that is unknown, missing or wrong.
    """
    unknown = sorted(set(args) - _FIELDS)
    if unknown:
        raise OfferError(unknown[0], "is not a field of a program offer")
    if args.get("format") != OFFER_FORMAT:
        raise OfferError("format", f"must be {OFFER_FORMAT!r}")
    reader = _Reader(args)
    pca: PCAProgram | None = None
    demand = reader.decimal("pca_demand_dose")
    if demand is not None:
        window = reader.integer("pca_max_dose_window_h")
        pca = PCAProgram(
            demand_dose=demand,
            lockout_min=reader.required_decimal("pca_lockout_min"),
            basal=reader.decimal("pca_basal"),
            loading_dose=reader.decimal("pca_loading_dose"),
            max_dose=reader.decimal("pca_max_dose"),
            max_dose_window_h=window,
        )
    else:
        for name in (
            "pca_lockout_min",
            "pca_basal",
            "pca_loading_dose",
            "pca_max_dose",
            "pca_max_dose_window_h",
        ):
            if name in args:
                raise OfferError(name, "travels only with pca_demand_dose")
    program = InfusionProgram(
        entry_id=reader.text("entry_id"),
        kind=reader.choice("program_kind", ProgramKind),
        route=reader.choice("route", Route),
        dose=reader.decimal("dose"),
        dose_unit=reader.dose_unit("dose_unit"),
        rate_ml_per_h=reader.decimal("rate_ml_per_h"),
        concentration=reader.concentration(),
        vtbi_ml=reader.decimal("vtbi_ml"),
        duration_min=reader.decimal("duration_min"),
        patient=PatientParameters(
            weight_kg=reader.decimal("weight_kg"),
            height_cm=reader.decimal("height_cm"),
            bsa_m2=reader.decimal("bsa_m2"),
        ),
        pca=pca,
    )
    parent = args.get("parent_order_id", "")
    if not isinstance(parent, str) or ("parent_order_id" in args and not parent):
        raise OfferError("parent_order_id", "must be non-empty text when given")
    prescriber = args.get("prescriber", "")
    if not isinstance(prescriber, str) or ("prescriber" in args and not prescriber):
        raise OfferError("prescriber", "must be non-empty text when given")
    return ProgramOffer(
        order_id=reader.text("order_id"),
        patient_id=reader.text("patient_id"),
        channel=reader.text("channel"),
        kind=reader.choice("kind", OfferKind),
        program=program,
        steps=reader.steps(),
        parent_order_id=parent,
        prescriber=prescriber,
    )


_FIELDS: Final = frozenset(
    {
        "format",
        "order_id",
        "patient_id",
        "channel",
        "entry_id",
        "kind",
        "program_kind",
        "route",
        "parent_order_id",
        "prescriber",
        "dose",
        "dose_unit",
        "rate_ml_per_h",
        "concentration_amount",
        "concentration_unit",
        "concentration_volume_ml",
        "vtbi_ml",
        "duration_min",
        "weight_kg",
        "height_cm",
        "bsa_m2",
        "pca_demand_dose",
        "pca_lockout_min",
        "pca_basal",
        "pca_loading_dose",
        "pca_max_dose",
        "pca_max_dose_window_h",
        "steps",
    }
)


def _numbers(offer: ProgramOffer) -> list[tuple[str, Decimal | None]]:
    """Every number of an offer under its field name (steps as ``steps[i].<name>``)."""
    program, patient, pca = offer.program, offer.program.patient, offer.program.pca
    concentration = program.concentration
    numbers: list[tuple[str, Decimal | None]] = [
        ("dose", program.dose),
        ("rate_ml_per_h", program.rate_ml_per_h),
        ("concentration_amount", None if concentration is None else concentration.amount),
        ("concentration_volume_ml", None if concentration is None else concentration.volume_ml),
        ("vtbi_ml", program.vtbi_ml),
        ("duration_min", program.duration_min),
        ("weight_kg", patient.weight_kg),
        ("height_cm", patient.height_cm),
        ("bsa_m2", patient.bsa_m2),
    ]
    if pca is not None:
        numbers += [
            ("pca_demand_dose", pca.demand_dose),
            ("pca_lockout_min", pca.lockout_min),
            ("pca_basal", pca.basal),
            ("pca_loading_dose", pca.loading_dose),
            ("pca_max_dose", pca.max_dose),
            (
                "pca_max_dose_window_h",
                None if pca.max_dose_window_h is None else Decimal(pca.max_dose_window_h),
            ),
        ]
    for index, step in enumerate(offer.steps):
        numbers += [
            (f"steps[{index}].rate_ml_per_h", step.rate_ml_per_h),
            (f"steps[{index}].volume_ml", step.volume_ml),
        ]
    return numbers


class _Reader:
    """Typed reads of offer args, each refusing with the field's name."""

    def __init__(self, args: Mapping[str, object]) -> None:
        self._args = args

    def text(self, name: str) -> str:
        value = self._args.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            raise OfferError(name, f"must be text of 1-{MAX_TEXT} characters")
        return value

    def choice(self, name: str, enum: type[_E]) -> _E:
        value = self._args.get(name)
        for member in enum:
            if member.value == value:
                return member
        raise OfferError(name, f"must be one of {', '.join(e.value for e in enum)}")

    def decimal(self, name: str) -> Decimal | None:
        value = self._args.get(name)
        return None if value is None else _decimal(name, value)

    def required_decimal(self, name: str) -> Decimal:
        value = self._args.get(name)
        if value is None:
            raise OfferError(name, "is required")
        return _decimal(name, value)

    def integer(self, name: str) -> int | None:
        number = self.decimal(name)
        if number is None:
            return None
        if number != number.to_integral_value():
            raise OfferError(name, "must be a whole number")
        return int(number)

    def dose_unit(self, name: str) -> DoseUnit | None:
        value = self._args.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise OfferError(name, "must be a dosing unit")
        try:
            return DoseUnit.parse(value)
        except SmartpumpError as error:
            raise OfferError(name, error.message) from None

    def concentration(self) -> Concentration | None:
        names = ("concentration_amount", "concentration_unit", "concentration_volume_ml")
        present = [name for name in names if self._args.get(name) is not None]
        if not present:
            return None
        if len(present) != len(names):
            missing = next(name for name in names if name not in present)
            raise OfferError(missing, "a concentration travels as amount, unit and volume together")
        amount = self.required_decimal("concentration_amount")
        volume = self.required_decimal("concentration_volume_ml")
        unit = self.choice("concentration_unit", AmountUnit)
        if unit is AmountUnit.ML:
            raise OfferError("concentration_unit", "a concentration's amount is not in mL")
        for name, number in (("concentration_amount", amount), ("concentration_volume_ml", volume)):
            if not number:
                raise OfferError(name, "must be above zero")
        return Concentration(amount, unit, volume)

    def steps(self) -> tuple[Step, ...]:
        value = self._args.get("steps")
        if value is None:
            return ()
        if not isinstance(value, list) or not value:
            raise OfferError("steps", "must be a non-empty list of {rate_ml_per_h, volume_ml}")
        steps = []
        for index, step in enumerate(value):
            where = f"steps[{index}]"
            if not isinstance(step, dict) or set(step) != {"rate_ml_per_h", "volume_ml"}:
                raise OfferError(where, "must hold exactly rate_ml_per_h and volume_ml")
            steps.append(
                Step(
                    rate_ml_per_h=_decimal(f"{where}.rate_ml_per_h", step["rate_ml_per_h"]),
                    volume_ml=_decimal(f"{where}.volume_ml", step["volume_ml"]),
                )
            )
        return tuple(steps)


def _decimal(name: str, value: object) -> Decimal:
    if not isinstance(value, str) or _DECIMAL.fullmatch(value) is None:
        raise OfferError(name, "must be a non-negative decimal string")
    return Decimal(value)
