"""What the front panel shows for one channel: only the actions that are legal now (a titration keeps the
running drug, a bolus or loading dose uses the running entry, a piggyback only a secondary-capable entry),
verdicts and refusals in words a nurse can act on, and the values the forms hold.

Pure presentation over the pump's state; the panel's routes (``panel.py``) hold the lock while building it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from smartpump.ders.program import Alert, InfusionProgram, VerdictLevel
from smartpump.errors import SmartpumpError
from smartpump.library.limits import LIMIT_ORDER, LimitKind, LimitSet
from smartpump.library.model import DeliveryMode, DrugLibrary, Entry, Route
from smartpump.pump import DeclineReason, OverrideReason, Pump
from smartpump.pump.channel import Channel, ChannelState, Pending, Therapy
from smartpump.pump.delivery import Step
from smartpump.pump.events import EventType, PumpEvent
from smartpump.server.web.display import LIMIT_DIGITS, at_resolution, distinct, exact, significant
from smartpump.units import DoseUnit

STEP_ROWS: Final = 4
"""How many multistep (ramp/taper) rows the program form offers."""
STEP_FIELDS: Final = tuple(f"step_{what}_{n}" for n in range(1, STEP_ROWS + 1) for what in ("rate", "volume"))
FORM_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "care_area": ("care_area",),
    "patient": ("scan", "patient_id", "authority", "id_type", "family_name", "given_name"),
    "program": (
        "entry_id",
        "route",
        "concentration",
        "weight_kg",
        "height_cm",
        "bsa_m2",
        "dose",
        "rate_ml_per_h",
        "vtbi_ml",
        "duration_min",
        *STEP_FIELDS,
        "lockout_min",
        "basal",
        "max_dose",
    ),
    "titrate": ("dose", "rate_ml_per_h", "vtbi_ml", "lockout_min", "basal", "max_dose"),
    "override": ("reason",),
    "bolus": ("bolus_dose", "bolus_min", "reason"),
    "loading": ("loading_dose", "loading_min", "reason"),
    "secondary": (
        "secondary_entry_id",
        "secondary_concentration",
        "secondary_dose",
        "secondary_min",
        "secondary_vtbi_ml",
        "reason",
    ),
}
"""The fields each panel form submits (kept as typed when the pump or the panel refuses the action)."""
ALL_FIELDS: Final = tuple(dict.fromkeys(f for fields in FORM_FIELDS.values() for f in fields))


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertLine:
    """One crossed limit in words: '<what> <value> <unit> is above the <bound> <limit> <unit> (× factor)',
    with the rule that fired; numbers rounded for reading, the exact ones in ``exact``."""

    level: str
    rule: str
    what: str
    bound: str
    direction: str
    value: str
    limit: str
    unit: str
    factor: str | None
    exact: str


def alert_line(
    *,
    level: str,
    rule: str,
    parameter: str,
    limit_kind: LimitKind,
    limit: Decimal,
    value: Decimal,
    unit: str,
    factor: Decimal | None,
) -> AlertLine:
    """An alert's numbers as the panel shows them (value and limit to 4 significant digits, factor to 3)."""
    return AlertLine(
        level=level,
        rule=rule,
        what=parameter.replace(".", " ").replace("_", " "),
        bound=limit_kind.value.replace("_", " "),
        direction="above" if limit_kind.is_max else "below",
        value=distinct(value, limit, LIMIT_DIGITS),
        limit=significant(limit, LIMIT_DIGITS),
        unit=unit,
        factor=None if factor is None else distinct(factor, Decimal(1)),
        exact=f"{exact(value)} {unit} against {exact(limit)} {unit}",
    )


def alert_lines(alerts: Iterable[Alert]) -> tuple[AlertLine, ...]:
    """A verdict's alerts, in the verdict's order."""
    return tuple(
        alert_line(
            level=a.level.value,
            rule=a.rule,
            parameter=a.parameter,
            limit_kind=a.limit_kind,
            limit=a.limit,
            value=a.value,
            unit=a.unit,
            factor=a.factor,
        )
        for a in alerts
    )


def _number(raw: object) -> Decimal:
    return raw if isinstance(raw, Decimal) else Decimal(str(raw))


def checked_alerts(events: Sequence[PumpEvent], channel: str) -> tuple[AlertLine, ...]:
    """The alerts of the last DERS check the pump logged on ``channel`` among ``events`` (what a refused
    bolus, loading dose or piggyback crossed; the pump keeps no verdict for them)."""
    checked = [e for e in events if e.type is EventType.PROGRAM_CHECKED and e.channel == channel]
    if not checked:
        return ()
    raw = checked[-1].data.get("alerts")
    found: list[AlertLine] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        factor = item.get("factor")
        found.append(
            alert_line(
                level=str(item["level"]),
                rule=str(item["rule"]),
                parameter=str(item["parameter"]),
                limit_kind=LimitKind(str(item["limit_kind"])),
                limit=_number(item["limit"]),
                value=_number(item["value"]),
                unit=str(item["unit"]),
                factor=None if factor is None else _number(factor),
            )
        )
    return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """An action the pump (or the panel) refused: its message and code, and the limits its check crossed."""

    message: str
    code: str
    alerts: tuple[AlertLine, ...] = ()

    @property
    def first_crossed(self) -> AlertLine | None:
        """The limit the refusal is about: the first hard one, else the first soft one."""
        return next((a for a in self.alerts if a.level == "hard"), next(iter(self.alerts), None))

    @property
    def level(self) -> str:
        """hard when a hard limit was crossed, soft when only soft ones, none when no limit was involved."""
        levels = {a.level for a in self.alerts}
        return "hard" if "hard" in levels else "soft" if levels else "none"


def refusal(error: SmartpumpError, alerts: tuple[AlertLine, ...] = ()) -> Refusal:
    """A refusal from the error the pump or the panel raised."""
    return Refusal(message=error.message, code=error.code, alerts=alerts)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerdictView:
    """A held program's verdict as shown next to its Start button."""

    level: str
    drug: str | None
    rate: str
    dose: str | None
    dose_unit: str
    vtbi: str | None
    duration_min: str | None
    steps: tuple[str, ...]
    alerts: tuple[AlertLine, ...]
    deliverable: tuple[str, ...]
    is_titration: bool
    overridden: bool
    auto_programmed: bool

    @property
    def may_confirm(self) -> bool:
        """ok, or soft once overridden with a reason; never hard."""
        if self.level == VerdictLevel.SOFT.value:
            return self.overridden
        return self.level == VerdictLevel.OK.value


def deliverable_lines(options: Iterable[Any], dose_unit: str, resolution: Decimal) -> tuple[str, ...]:
    """The verdict's deliverable alternatives (objects with ``rate_ml_per_h``, ``dose`` and, for total
    doses, ``vtbi_ml``) as '13.0 mL/h = 4.95 mcg/kg/min' or '50.1 mL at 100.0 mL/h = 1000 mg'."""
    by_volume = not DoseUnit.parse(dose_unit).is_rate
    lines: list[str] = []
    for option in options:
        rate = f"{at_resolution(option.rate_ml_per_h, resolution)} mL/h"
        volume = getattr(option, "vtbi_ml", None)
        if by_volume and volume is not None:
            rate = f"{significant(volume, LIMIT_DIGITS)} mL at {rate}"
        lines.append(f"{rate} = {significant(option.dose, LIMIT_DIGITS)} {dose_unit}")
    return tuple(lines)


def step_line(step: Step, resolution: Decimal) -> str:
    """One multistep step as '10.0 mL/h for 20 mL' (rate at the pump's resolution)."""
    rate = at_resolution(step.rate_ml_per_h, resolution)
    return f"{rate} mL/h for {significant(step.volume_ml, LIMIT_DIGITS)} mL"


def verdict_view(pending: Pending) -> VerdictView:
    """What the panel shows of a held program: level, rate at the pump's resolution, dose, alerts,
    deliverable alternatives (``Verdict.deliverable`` once DERS reports them)."""
    verdict, program = pending.verdict, pending.program
    resolution = program.rate_resolution_ml_per_h
    vtbi = getattr(verdict, "vtbi_ml", None)
    vtbi = program.vtbi_ml if vtbi is None else vtbi
    duration = program.duration_min
    return VerdictView(
        level=verdict.level.value,
        drug=pending.drug,
        rate=at_resolution(verdict.rate_ml_per_h, resolution),
        dose=None if verdict.dose is None else significant(verdict.dose),
        dose_unit=verdict.dose_unit,
        vtbi=None if vtbi is None else significant(vtbi, LIMIT_DIGITS),
        duration_min=None if duration is None else significant(duration, LIMIT_DIGITS),
        steps=tuple(step_line(step, resolution) for step in pending.steps),
        alerts=alert_lines(verdict.alerts),
        deliverable=deliverable_lines(getattr(verdict, "deliverable", ()), verdict.dose_unit, resolution),
        is_titration=pending.is_titration,
        overridden=pending.overridden,
        auto_programmed=pending.auto_programmed,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TitrationView:
    """The running therapy a titration keeps: drug, concentration and patient are fixed; only the dose
    (or the rate, when it was programmed by rate) and the VTBI change."""

    drug: str
    concentration: str
    weight_kg: str
    by_rate: bool
    dose_unit: str
    is_pca: bool


def _entry_of(pump: Pump, entry_id: str | None) -> Entry | None:
    library = pump.library
    if library is None or entry_id is None:
        return None
    return next((e for e in library.entries if e.id == entry_id), None)


def titration_view(pump: Pump, therapy: Therapy) -> TitrationView:
    """The fixed part of a titration form for the therapy running on a channel."""
    program = therapy.program
    entry = _entry_of(pump, therapy.verdict.entry_id)
    concentration = program.concentration
    if concentration is None and entry is not None and len(entry.concentrations) == 1:
        concentration = entry.concentrations[0]
    if program.pca is not None and entry is not None and entry.pca is not None:
        unit = str(entry.pca.demand_dose.unit)
    else:
        unit = str(program.dose_unit) if program.dose_unit is not None else therapy.verdict.dose_unit
    weight = program.patient.weight_kg
    return TitrationView(
        drug=therapy.drug or "basic infusion",
        concentration="—" if concentration is None else str(concentration),
        weight_kg="not entered" if weight is None else f"{exact(weight)} kg",
        by_rate=program.pca is None and program.dose is None,
        dose_unit=unit,
        is_pca=program.pca is not None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DoseOffer:
    """A bolus or loading dose the running entry allows, with the library's limits for it."""

    action: str
    label: str
    dose_label: str
    """The dose field's name, "dose" said once ("Loading dose", never "Loading dose dose")."""
    unit: str
    limits: tuple[tuple[str, str], ...]
    duration_limits: tuple[tuple[str, str], ...]


def limit_texts(limits: LimitSet) -> tuple[tuple[str, str], ...]:
    """The configured bounds of a LimitSet, lowest first: (("soft max", "80"), ("hard max", "100"))."""
    found: list[tuple[str, str]] = []
    for kind in LIMIT_ORDER:
        bound: Decimal | None = getattr(limits, kind.value)
        if bound is not None:
            found.append((kind.value.replace("_", " "), significant(bound, LIMIT_DIGITS)))
    return tuple(found)


def _overlay_free(channel: Channel) -> Therapy | None:
    """The therapy a bolus or piggyback may go on top of: running, with nothing else on top."""
    therapy = channel.therapy
    if therapy is None or channel.state is not ChannelState.RUNNING or therapy.overlay is not None:
        return None
    return therapy


def dose_offers(pump: Pump, cid: str) -> tuple[DoseOffer, ...]:
    """Bolus (when the running entry has bolus limits) and loading dose (when it has loading limits)."""
    therapy = _overlay_free(pump.channel(cid))
    entry = None if therapy is None else _entry_of(pump, therapy.verdict.entry_id)
    if entry is None or entry.mode is DeliveryMode.PCA:
        return ()
    offers: list[DoseOffer] = []
    if entry.bolus is not None:
        offers.append(
            DoseOffer(
                action="bolus",
                label="Bolus",
                dose_label="Bolus dose",
                unit=str(entry.bolus.unit),
                limits=limit_texts(entry.bolus.limits),
                duration_limits=(),
            )
        )
    if entry.loading is not None:
        offers.append(
            DoseOffer(
                action="loading",
                label="Loading dose",
                dose_label="Loading dose",
                unit=str(entry.loading.unit),
                limits=limit_texts(entry.loading.limits),
                duration_limits=limit_texts(entry.loading_duration_min.limits),
            )
        )
    return tuple(offers)


def secondary_entries(pump: Pump, cid: str) -> tuple[Entry, ...]:
    """The entries a piggyback may use on this channel now: none unless the primary runs with nothing on
    top and the care area allows secondaries; then only the entries that allow a secondary."""
    library, area = pump.library, pump.care_area
    if library is None or area is None or not area.device.secondary_allowed:
        return ()
    if _overlay_free(pump.channel(cid)) is None:
        return ()
    return tuple(e for e in library.entries_in(area.id) if e.allows_secondary)


def entry_options(library: DrugLibrary, entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """Entries as drug-list options, sorted by shown name."""
    options = [
        {
            "id": entry.id,
            "name": library.drug(entry.drug_id).shown_name,
            "therapy": entry.therapy,
            "unit": str(entry.dosing_unit),
            "concentrations": [str(c) for c in entry.concentrations],
            "is_pca": entry.mode is DeliveryMode.PCA,
            "is_intermittent": entry.mode is DeliveryMode.INTERMITTENT,
            "per_m2": entry.needs_bsa,
            "route": entry.route.value,
            "advisory": entry.advisory or "",
        }
        for entry in entries
    ]
    return sorted(options, key=lambda e: str(e["name"]).lower())


def _program_values(program: InfusionProgram) -> dict[str, str]:
    values = {
        "entry_id": program.entry_id or "",
        "concentration": "" if program.concentration is None else str(program.concentration),
        "weight_kg": "" if program.patient.weight_kg is None else exact(program.patient.weight_kg),
        "dose": "" if program.dose is None else exact(program.dose),
        "rate_ml_per_h": "" if program.rate_ml_per_h is None else exact(program.rate_ml_per_h),
        "vtbi_ml": "" if program.vtbi_ml is None else exact(program.vtbi_ml),
        "duration_min": "" if program.duration_min is None else exact(program.duration_min),
        "route": program.route.value,
        "height_cm": "" if program.patient.height_cm is None else exact(program.patient.height_cm),
        "bsa_m2": "" if program.patient.bsa_m2 is None else exact(program.patient.bsa_m2),
    }
    if program.entry_id is None:
        values["entry_id"] = "basic"
    pca = program.pca
    if pca is not None:
        values["dose"] = exact(pca.demand_dose)
        values["lockout_min"] = exact(pca.lockout_min)
        values["basal"] = "" if pca.basal is None else exact(pca.basal)
        values["max_dose"] = "" if pca.max_dose is None else exact(pca.max_dose)
    return values


def form_values(channel: Channel) -> dict[str, str]:
    """What the forms show: the held program's values (its steps too), else the running therapy's, else
    nothing."""
    values = dict.fromkeys(ALL_FIELDS, "")
    held = channel.pending.program if channel.pending is not None else None
    program = held if held is not None else channel.therapy.program if channel.therapy is not None else None
    if program is not None:
        values.update(_program_values(program))
    if channel.pending is not None:
        for number, step in enumerate(channel.pending.steps[:STEP_ROWS], start=1):
            values[f"step_rate_{number}"] = exact(step.rate_ml_per_h)
            values[f"step_volume_{number}"] = exact(step.volume_ml)
    return values


def override_reasons() -> list[tuple[str, str]]:
    """The coded override reasons as (code, words)."""
    return [(r.value, r.value.replace("_", " ")) for r in OverrideReason]


def decline_reasons() -> list[tuple[str, str]]:
    """The coded reasons for declining an EHR order as (code, words)."""
    return [(r.value, r.value.replace("_", " ")) for r in DeclineReason]


def route_options() -> list[tuple[str, str]]:
    """The routes of administration as (code, words)."""
    return [(r.value, r.value.replace("_", " ")) for r in Route]


VERDICT_FOCUS: Final = (
    "#verdict [data-action=start]",
    "#verdict select[name=reason]",
    "#verdict [data-action=cancel]",
    "#decline select",
)
RUNNING_FOCUS: Final = ("#running [data-action=pause]", "#running [data-action=resume]", "#running button")
PROGRAM_FOCUS: Final = ("#program-form select[name=entry_id]", "#program-form input[name=dose]")
FOCUS_AFTER: Final[Mapping[str, tuple[str, ...]]] = {
    "patient": ("select[name=care_area]",),
    "care_area": PROGRAM_FOCUS,
    "program": VERDICT_FOCUS,
    "titrate": VERDICT_FOCUS,
    "override": VERDICT_FOCUS,
    "confirm": RUNNING_FOCUS,
    "start": RUNNING_FOCUS,
    "pause": RUNNING_FOCUS,
    "resume": RUNNING_FOCUS,
    "bolus": RUNNING_FOCUS,
    "loading": RUNNING_FOCUS,
    "secondary": RUNNING_FOCUS,
    "pca_demand": ("#running [data-action=pca_demand]",),
    "stop": PROGRAM_FOCUS,
    "cancel": PROGRAM_FOCUS,
    "decline": PROGRAM_FOCUS,
    "silence": (".channels-nav a.active",),
    "clear_alarm": (".channels-nav a.active",),
}
"""Where the keyboard focus goes after each action: the control the nurse is most likely to press next
(the first of these the page shows)."""


def focus_after(action: str, *, refused: bool) -> tuple[str, ...]:
    """The selectors to focus after ``action``: a refused action's own button (the nurse corrects and
    presses it again), a done one's next step; nothing for a plain page load."""
    if not action:
        return ()
    if refused:
        return (f"[data-action={action}]", *FOCUS_AFTER.get(action, ()))
    return FOCUS_AFTER.get(action, ())


HELD_KINDS: Final = {"bolus": "Bolus", "loading": "Loading dose", "secondary": "Piggyback"}
"""The offers the fleet holds on a running channel until the nurse accepts or declines, by their kind."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldOfferView:
    """A held EHR offer as the panel shows it: what, from which order and prescriber, and how much."""

    label: str
    order_id: str
    prescriber: str
    drug: str
    dose: str


def held_offer_view(
    pump: Pump, *, kind: str, order_id: str, prescriber: str, program: InfusionProgram
) -> HeldOfferView:
    """The panel's line for a held bolus, loading-dose or piggyback offer (the program exactly as ordered)."""
    entry = _entry_of(pump, program.entry_id)
    library = pump.library
    drug = program.entry_id or "basic infusion"
    if entry is not None and library is not None:
        drug = library.drug(entry.drug_id).shown_name
    parts = []
    if program.dose is not None:
        parts.append(f"{exact(program.dose)} {program.dose_unit or ''}".strip())
    elif program.rate_ml_per_h is not None:
        parts.append(f"{exact(program.rate_ml_per_h)} mL/h")
    if program.vtbi_ml is not None:
        parts.append(f"VTBI {exact(program.vtbi_ml)} mL")
    if program.duration_min is not None:
        parts.append(f"over {significant(program.duration_min)} min")
    return HeldOfferView(
        label=HELD_KINDS.get(kind, kind),
        order_id=order_id,
        prescriber=prescriber,
        drug=drug,
        dose=" · ".join(parts),
    )
