"""The pump front panel: a nurse programs a simulated pump step by step (also a training tool).

Each action runs on the real ``Pump`` of the server's simulated fleet through ``SimulatedFleet.act`` (under
its lock, so the pump's events go to the server like any other). The panel offers only what is legal on the
channel (``panel_view``) and refuses a forged request for anything else before it reaches the pump; the
pump's own refusals are shown with their message, code and the limits its check crossed, and the form
keeps what the nurse typed. An accepted press redirects to the panel's GET with its signed answer
(``panel_flash``), so a reload never repeats it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from smartpump.ders.program import (
    InfusionProgram,
    PatientParameters,
    PCAProgram,
    ProgramKind,
    Verdict,
    VerdictLevel,
)
from smartpump.errors import SmartpumpError
from smartpump.library.model import DeliveryMode, Entry, Route
from smartpump.pump import AlarmId, DeclineReason, OverrideReason, Pump, PumpStatus
from smartpump.pump.channel import Therapy
from smartpump.pump.delivery import Step
from smartpump.server.api.deps import StateDep, require_roles
from smartpump.server.auth import Access
from smartpump.server.errors import InvalidInputError, NotFoundError
from smartpump.server.simulated import SimulatedFleet
from smartpump.server.state import ServerState
from smartpump.server.web.display import at_resolution
from smartpump.server.web.panel_flash import Flash, flash_query, read_flash
from smartpump.server.web.panel_patient import identity_from_form, line_of
from smartpump.server.web.panel_view import (
    FORM_FIELDS,
    STEP_ROWS,
    Refusal,
    checked_alerts,
    decline_reasons,
    dose_offers,
    entry_options,
    focus_after,
    form_values,
    held_offer_view,
    override_reasons,
    refusal,
    route_options,
    secondary_entries,
    titration_view,
    verdict_view,
)
from smartpump.server.web.render import PANEL_ROLES, render
from smartpump.server.web.session import CsrfChecked
from smartpump.units import Concentration

router = APIRouter(include_in_schema=False)
PanelUser = Annotated[Access, require_roles(*PANEL_ROLES)]
Serial = Annotated[str, Path(max_length=64)]
Field = Annotated[str, Form(max_length=32)]
Said = Annotated[str, Query(max_length=400)]
ACTIONS: Final = frozenset(
    {
        "care_area",
        "patient",
        "program",
        "titrate",
        "override",
        "confirm",
        "start",
        "pause",
        "resume",
        "stop",
        "cancel",
        "decline",
        "accept_offer",
        "decline_offer",
        "bolus",
        "loading",
        "secondary",
        "pca_demand",
        "silence",
        "clear_alarm",
    }
)

SIMPLE_MESSAGES: Final = {
    "pause": "Paused",
    "resume": "Resumed",
    "stop": "Stopped",
    "cancel": "Program cancelled",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What the panel's display says after an action, and its tone (ok, soft or hard)."""

    text: str
    tone: str = "ok"


def _fleet(state: ServerState) -> SimulatedFleet | None:
    return state.sim_fleet


def _pump(state: ServerState, serial: str) -> tuple[SimulatedFleet, Pump]:
    fleet = _fleet(state)
    if fleet is None or serial not in fleet.serials():
        raise NotFoundError(f"no simulated pump {serial!r}", code="panel.no_pump")
    return fleet, fleet.pump(serial)


@router.get("/ui/panel")
def panel_index(request: Request, access: PanelUser, state: StateDep) -> Response:
    """The simulated pumps a front panel can drive."""
    fleet = _fleet(state)
    pumps: list[PumpStatus] = []
    if fleet is not None:
        with fleet.lock:
            pumps = [fleet.pump(serial).status() for serial in fleet.serials()]
    return render(request, "panel_index.html", principal=access.principal, active="panel", pumps=pumps)


def _decimal(value: str, what: str, *, required: bool = False) -> Decimal | None:
    text = value.strip()
    if not text:
        if required:
            raise InvalidInputError(f"enter the {what}", code="panel.value_required")
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidInputError(f"{what} {text!r} is not a number", code="panel.value_invalid") from None
    if not number.is_finite() or number <= 0:
        raise InvalidInputError(f"{what} must be a positive number", code="panel.value_invalid")
    return number


def _required(value: str, what: str) -> Decimal:
    number = _decimal(value, what, required=True)
    assert number is not None
    return number


def _concentration(text: str) -> Concentration | None:
    try:
        return Concentration.parse(text) if text.strip() else None
    except (SmartpumpError, ValueError, ArithmeticError):
        raise InvalidInputError(f"concentration {text!r} is not valid", code="panel.value_invalid") from None


def _pca(fields: dict[str, str], window_h: int | None) -> PCAProgram:
    return PCAProgram(
        demand_dose=_required(fields["dose"], "demand dose"),
        lockout_min=_required(fields["lockout_min"], "lockout"),
        basal=_decimal(fields["basal"], "basal"),
        max_dose=_decimal(fields["max_dose"], "max dose"),
        max_dose_window_h=window_h,
    )


BASIC_INFUSION: Final = "basic"
"""The drug-list value of a basic infusion (no library entry, rate only), chosen explicitly."""


def _route(text: str, entry: Entry | None) -> Route:
    """The route the nurse chose (the entry's own when none was chosen)."""
    if not text:
        return Route.IV if entry is None else entry.route
    try:
        return Route(text)
    except ValueError:
        raise InvalidInputError(f"unknown route {text!r}", code="panel.route") from None


def _patient(fields: dict[str, str]) -> PatientParameters:
    return PatientParameters(
        weight_kg=_decimal(fields["weight_kg"], "weight"),
        height_cm=_decimal(fields["height_cm"], "height"),
        bsa_m2=_decimal(fields["bsa_m2"], "BSA"),
    )


def _program(pump: Pump, fields: dict[str, str]) -> InfusionProgram:
    entry_id = fields["entry_id"]
    if not entry_id:
        raise InvalidInputError("choose a drug, or a basic infusion", code="panel.drug_required")
    vtbi = _decimal(fields["vtbi_ml"], "VTBI")
    if entry_id == BASIC_INFUSION:
        return InfusionProgram(
            entry_id=None,
            kind=ProgramKind.BASIC,
            route=_route(fields["route"], None),
            rate_ml_per_h=_required(fields["rate_ml_per_h"], "rate"),
            vtbi_ml=vtbi,
        )
    concentration = _concentration(fields["concentration"])
    patient = _patient(fields)
    library = pump.library
    entry = None if library is None else next((e for e in library.entries if e.id == entry_id), None)
    route = _route(fields["route"], entry)
    if entry is not None and entry.mode is DeliveryMode.PCA:
        window_h = None if entry.pca is None else entry.pca.max_dose_window_h
        return InfusionProgram(
            entry_id=entry_id,
            kind=ProgramKind.PCA,
            route=route,
            concentration=concentration,
            patient=patient,
            vtbi_ml=vtbi,
            pca=_pca(fields, window_h),
        )
    intermittent = entry is not None and entry.mode is DeliveryMode.INTERMITTENT
    by_steps = bool(_steps(fields)) and not intermittent
    return InfusionProgram(
        entry_id=entry_id,
        kind=ProgramKind.INTERMITTENT if intermittent else ProgramKind.CONTINUOUS,
        route=route,
        dose=None if by_steps else _required(fields["dose"], "dose"),
        concentration=concentration,
        patient=patient,
        vtbi_ml=vtbi,
        duration_min=_required(fields["duration_min"], "duration") if intermittent else None,
    )


def _steps(fields: dict[str, str]) -> tuple[Step, ...]:
    """The multistep rows the nurse filled (rate and volume each), in order; a half-filled row is refused."""
    steps: list[Step] = []
    for number in range(1, STEP_ROWS + 1):
        rate, volume = fields[f"step_rate_{number}"], fields[f"step_volume_{number}"]
        if not rate.strip() and not volume.strip():
            continue
        steps.append(
            Step(
                rate_ml_per_h=_required(rate, f"step {number} rate"),
                volume_ml=_required(volume, f"step {number} volume"),
            )
        )
    return tuple(steps)


def _running(pump: Pump, channel: str) -> Therapy:
    therapy = pump.channel(channel).therapy
    if therapy is None:
        raise InvalidInputError(f"channel {channel} has no running infusion", code="panel.not_running")
    return therapy


def _titration(therapy: Therapy, fields: dict[str, str]) -> InfusionProgram:
    """The running program with only its dose (or rate) and VTBI changed: same entry, concentration,
    kind and patient, whatever else the request carries."""
    program = therapy.program
    vtbi = _decimal(fields["vtbi_ml"], "VTBI")
    if program.pca is not None:
        return replace(program, vtbi_ml=vtbi, pca=_pca(fields, program.pca.max_dose_window_h))
    if program.dose is None:
        return replace(program, rate_ml_per_h=_required(fields["rate_ml_per_h"], "rate"), vtbi_ml=vtbi)
    return replace(program, dose=_required(fields["dose"], "dose"), vtbi_ml=vtbi)


def _dose_over_time(pump: Pump, channel: str, action: str, fields: dict[str, str]) -> InfusionProgram:
    """A bolus or loading dose on the running program's entry, concentration and patient; refused unless
    the panel offers it (running, nothing on top, the entry has limits for it)."""
    if not any(offer.action == action for offer in dose_offers(pump, channel)):
        raise InvalidInputError(
            f"no {'bolus' if action == 'bolus' else 'loading dose'} is offered on channel {channel}: the "
            "infusion must be running with nothing on top, and its drug-library entry must allow it",
            code=f"panel.{action}_not_offered",
        )
    therapy = _running(pump, channel)
    return replace(
        therapy.program,
        kind=ProgramKind.BOLUS if action == "bolus" else ProgramKind.LOADING,
        dose=_required(fields[f"{action}_dose"], f"{action} dose"),
        dose_unit=None,
        rate_ml_per_h=None,
        vtbi_ml=None,
        duration_min=_required(fields[f"{action}_min"], f"{action} duration"),
        pca=None,
    )


def _secondary(pump: Pump, channel: str, fields: dict[str, str]) -> InfusionProgram:
    """A piggyback on an entry that allows secondaries, for the running program's patient."""
    entry_id = fields["secondary_entry_id"]
    if not entry_id:
        raise InvalidInputError("choose the piggyback drug", code="panel.drug_required")
    entry: Entry | None = next((e for e in secondary_entries(pump, channel) if e.id == entry_id), None)
    if entry is None:
        raise InvalidInputError(
            f"{entry_id} is not offered as a piggyback on channel {channel}: the primary must be running "
            "with nothing on top, the care area must allow secondaries and the entry must allow one",
            code="panel.secondary_not_offered",
        )
    therapy = _running(pump, channel)
    return InfusionProgram(
        entry_id=entry.id,
        kind=ProgramKind.INTERMITTENT if entry.mode is DeliveryMode.INTERMITTENT else ProgramKind.CONTINUOUS,
        dose=_required(fields["secondary_dose"], "piggyback dose"),
        concentration=_concentration(fields["secondary_concentration"]),
        patient=therapy.program.patient,
        vtbi_ml=_required(fields["secondary_vtbi_ml"], "piggyback VTBI"),
        duration_min=_decimal(fields["secondary_min"], "piggyback duration"),
    )


def _checked(verdict: Verdict) -> Outcome:
    level = verdict.level
    if level is VerdictLevel.HARD:
        return Outcome(text="Checked: HARD limit crossed, this program cannot start", tone="hard")
    if level is VerdictLevel.SOFT:
        return Outcome(text="Checked: SOFT limit crossed, override with a reason or reprogram", tone="soft")
    return Outcome(text="Checked: OK")


def _hold(pump: Pump, channel: str, program: InfusionProgram, steps: tuple[Step, ...] = ()) -> Outcome:
    pending = pump.channel(channel).pending
    if pending is not None:
        return _checked(pump.reprogram(channel, program, steps=steps))
    return _checked(pump.program(channel, program, steps=steps))


def _running_at(label: str, verdict: Verdict, pump: Pump, *, callback: bool = False) -> Outcome:
    """What the display says of a bolus, loading dose or piggyback started: its rate at the step of the
    model's rate band it falls in (as the station shows it)."""
    rate = at_resolution(verdict.rate_ml_per_h, pump.caps.resolution_at(verdict.rate_ml_per_h))
    called = "; the pump calls you back when it ends" if callback else ""
    return Outcome(text=f"{label} running at {rate} mL/h{called}")


def _callback(value: str) -> bool:
    """The piggyback's "call me back" box: ticked ("yes") or not (""); anything else is refused."""
    if value not in ("", "yes"):
        raise InvalidInputError(f"callback {value!r} is neither ticked nor clear", code="panel.callback")
    return value == "yes"


def _alarm(value: str) -> AlarmId:
    try:
        return AlarmId(value)
    except ValueError:
        raise InvalidInputError(f"unknown alarm {value!r}", code="panel.alarm") from None


def _act(pump: Pump, action: str, channel: str, fields: dict[str, str]) -> Outcome:
    """Run one front-panel action on the pump; returns what the display says."""
    reason = OverrideReason(fields["reason"]) if fields["reason"] else None
    if action == "care_area":
        area = pump.select_care_area(fields["care_area"])
        return Outcome(text=f"Care area {area.name} selected")
    if action == "patient":
        identity, source = identity_from_form(fields)
        pump.associate_patient(identity, source)
        return Outcome(text=f"Patient {identity.patient_id} associated ({source.value})")
    if action == "program":
        therapy = pump.channel(channel).therapy
        if therapy is not None:
            raise InvalidInputError(
                f"channel {channel} is running {therapy.drug or 'a basic infusion'}: titrate it, or stop it "
                "to program another drug",
                code="panel.channel_running",
            )
        program = _program(pump, fields)
        steps = () if program.kind is not ProgramKind.CONTINUOUS else _steps(fields)
        return _hold(pump, channel, program, steps)
    if action == "titrate":
        return _hold(pump, channel, _titration(_running(pump, channel), fields))
    if action == "override":
        if reason is None:
            raise InvalidInputError("an override needs a reason", code="panel.reason_required")
        pump.override(channel, reason)
        return Outcome(text="Soft alert overridden")
    if action == "decline":
        pending = pump.channel(channel).pending
        if pending is None or not pending.auto_programmed:
            raise InvalidInputError(f"channel {channel} holds no EHR order", code="panel.no_order")
        pump.cancel(channel, reason=fields["decline_reason"] or DeclineReason.OTHER)
        return Outcome(text="EHR order declined")
    if action == "confirm":
        pump.confirm(channel)
        return Outcome(text="Confirmed")
    if action == "start":
        pending = pump.channel(channel).pending
        if pending is not None and not pending.confirmed:
            pump.confirm(channel)
        pump.start(channel)
        return Outcome(text="Infusing")
    if action in ("bolus", "loading"):
        program = _dose_over_time(pump, channel, action, fields)
        verdict = pump.bolus(channel, program, override=reason)
        return _running_at("Bolus" if action == "bolus" else "Loading dose", verdict, pump)
    if action == "secondary":
        program = _secondary(pump, channel, fields)
        callback = _callback(fields["secondary_callback"])
        verdict = pump.secondary(channel, program, override=reason, callback=callback)
        return _running_at("Piggyback", verdict, pump, callback=callback)
    if action == "pca_demand":
        if pump.pca_demand(channel):
            return Outcome(text="Demand dose granted")
        return Outcome(text="Demand dose denied (lockout or limit)", tone="soft")
    if action == "silence":
        pump.silence()
        return Outcome(text="Alarms silenced for 2 minutes")
    if action == "clear_alarm":
        alarm = _alarm(fields["alarm"])
        pump.clear_alarm(alarm, fields["alarm_channel"] or None)
        return Outcome(text=f"Alarm {alarm.value} reset")
    simple = {"pause": pump.pause, "resume": pump.resume, "stop": pump.stop, "cancel": pump.cancel}
    simple[action](channel)
    return Outcome(text=SIMPLE_MESSAGES[action])


def _attempt(pump: Pump, action: str, channel: str, fields: dict[str, str]) -> Outcome | Refusal:
    """Run an action; a refusal comes back with the limits the pump's check crossed on this channel (read
    from the events it logged meanwhile, before the fleet hands them on)."""
    first = pump.events.next_seq
    try:
        return _act(pump, action, channel, fields)
    except SmartpumpError as error:
        return refusal(error, checked_alerts(pump.events.since(first - 1), channel))


HELD_OFFER_ACTIONS: Final = frozenset({"accept_offer", "decline_offer"})
"""The nurse's answers to a bolus, loading-dose or piggyback offer the fleet holds on a running channel."""


def _answer_held_offer(
    fleet: SimulatedFleet, pump: Pump, action: str, channel: str, fields: dict[str, str]
) -> Outcome | Refusal:
    """Accept (the pump checks and starts it, an override reason given up front) or decline (with a coded
    reason, which tells the EHR) the offer held on the channel; a refusal keeps the crossed limits."""
    first = pump.events.next_seq
    try:
        if action == "decline_offer":
            fleet.decline_offer(pump.id, channel, reason=fields["decline_reason"])
            return Outcome(text="EHR offer declined")
        reason = OverrideReason(fields["reason"]) if fields["reason"] else None
        fleet.confirm_offer(pump.id, channel, override=reason)
        return Outcome(text="EHR offer accepted and running")
    except SmartpumpError as error:
        return refusal(error, checked_alerts(pump.events.since(first - 1), channel))


def _view(fleet: SimulatedFleet, pump: Pump, channel: str) -> dict[str, Any]:
    """Everything the panel displays for one pump and its selected channel (legal actions only)."""
    library, area = pump.library, pump.care_area
    current = pump.channel(channel)
    pending = current.pending
    ordered = None
    if pending is not None and pending.auto_programmed:
        ordered = fleet.order_behind(pump.id, channel, pending.program)
    held = fleet.held_offer(pump.id, channel)
    therapy = current.therapy
    entries = [] if library is None or area is None else entry_options(library, library.entries_in(area.id))
    secondaries = secondary_entries(pump, channel)
    return {
        "status": pump.status(),
        "patient": line_of(pump.patient),
        "areas": [] if library is None else [(a.id, a.name) for a in library.care_areas],
        "area": area,
        "entries": entries,
        "routes": route_options(),
        "channel": channel,
        "state": current.state.value,
        "verdict": None if pending is None else verdict_view(pending),
        "order_id": None if ordered is None else ordered.order_id,
        "prescriber": "" if ordered is None else ordered.prescriber,
        "held_offer": None
        if held is None
        else held_offer_view(
            pump, kind=held.kind, order_id=held.order_id, prescriber=held.prescriber, program=held.program
        ),
        "therapy": therapy,
        "titration": None if therapy is None else titration_view(pump, therapy),
        "dose_offers": dose_offers(pump, channel),
        "secondary_entries": [] if library is None else entry_options(library, secondaries),
        "reasons": override_reasons(),
        "decline_reasons": decline_reasons(),
        "volume_resolution_ml": pump.caps.vtbi_resolution_ml,
    }


def _render(
    request: Request,
    access: Access,
    fleet: SimulatedFleet,
    pump: Pump,
    channel: str,
    *,
    outcome: Flash | Refusal | None,
    submitted: tuple[str, dict[str, str]] | None = None,
) -> Response:
    form = form_values(pump.channel(channel))
    action = ""
    if submitted is not None and isinstance(outcome, Refusal):
        action, fields = submitted
        form.update({name: fields[name] for name in FORM_FIELDS.get(action, ())})
    pressed = action or (outcome.action if isinstance(outcome, Flash) else "")
    return render(
        request,
        "panel.html",
        principal=access.principal,
        active="panel",
        serial=pump.id,
        view=_view(fleet, pump, channel),
        message=outcome if isinstance(outcome, Flash) else None,
        refusal=outcome if isinstance(outcome, Refusal) else None,
        form=form,
        form_action=action,
        focus=focus_after(pressed, refused=isinstance(outcome, Refusal)),
        status_code=409 if isinstance(outcome, Refusal) else 200,
    )


@router.get("/ui/panel/{serial}")
def panel(
    request: Request,
    serial: Serial,
    access: PanelUser,
    state: StateDep,
    channel: Annotated[str, Query(max_length=1, pattern="^[A-D]$")] = "A",
    done: Annotated[str, Query(max_length=32)] = "",
    tone: Annotated[str, Query(max_length=8)] = "",
    said: Said = "",
    sig: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The front panel of one simulated pump (with the signed answer of the action that led here)."""
    fleet, pump = _pump(state, serial)
    flash = read_flash(state.settings, serial, channel, done=done, tone=tone, said=said, sig=sig)
    with fleet.lock:
        if channel not in pump.channels:
            raise NotFoundError(f"no channel {channel}", code="panel.no_channel")
        return _render(request, access, fleet, pump, channel, outcome=flash)


@router.post("/ui/panel/{serial}")
def panel_action(
    request: Request,
    serial: Serial,
    access: PanelUser,
    _csrf: CsrfChecked,
    state: StateDep,
    action: Annotated[str, Form(max_length=32)],
    channel: Annotated[str, Form(max_length=1, pattern="^[A-D]$")] = "A",
    care_area: Annotated[str, Form(max_length=64)] = "",
    entry_id: Annotated[str, Form(max_length=128)] = "",
    route: Annotated[str, Form(max_length=32)] = "",
    concentration: Annotated[str, Form(max_length=64)] = "",
    weight_kg: Field = "",
    height_cm: Field = "",
    bsa_m2: Field = "",
    dose: Field = "",
    rate_ml_per_h: Field = "",
    vtbi_ml: Field = "",
    duration_min: Field = "",
    step_rate_1: Field = "",
    step_volume_1: Field = "",
    step_rate_2: Field = "",
    step_volume_2: Field = "",
    step_rate_3: Field = "",
    step_volume_3: Field = "",
    step_rate_4: Field = "",
    step_volume_4: Field = "",
    reason: Annotated[str, Form(max_length=64)] = "",
    decline_reason: Annotated[str, Form(max_length=32)] = "",
    bolus_dose: Field = "",
    bolus_min: Field = "",
    loading_dose: Field = "",
    loading_min: Field = "",
    secondary_entry_id: Annotated[str, Form(max_length=128)] = "",
    secondary_concentration: Annotated[str, Form(max_length=64)] = "",
    secondary_dose: Field = "",
    secondary_min: Field = "",
    secondary_vtbi_ml: Field = "",
    secondary_callback: Annotated[str, Form(max_length=8)] = "",
    alarm: Annotated[str, Form(max_length=64)] = "",
    alarm_channel: Annotated[str, Form(max_length=8)] = "",
    lockout_min: Field = "",
    basal: Field = "",
    max_dose: Field = "",
    scan: Annotated[str, Form(max_length=200)] = "",
    patient_id: Annotated[str, Form(max_length=64)] = "",
    authority: Annotated[str, Form(max_length=64)] = "",
    id_type: Annotated[str, Form(max_length=8)] = "",
    family_name: Annotated[str, Form(max_length=64)] = "",
    given_name: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Press a front-panel button. Done: 303 to the panel's GET with the pump's answer signed in the query
    (a reload repeats nothing); refused: 409 with the refusal and the values kept as typed."""
    if action not in ACTIONS:
        raise InvalidInputError(f"unknown action {action!r}", code="panel.action")
    if reason and reason not in {r.value for r in OverrideReason}:
        raise InvalidInputError(f"unknown override reason {reason!r}", code="panel.reason")
    fleet, pump = _pump(state, serial)
    fields = {
        "care_area": care_area,
        "entry_id": entry_id,
        "route": route,
        "concentration": concentration,
        "weight_kg": weight_kg,
        "height_cm": height_cm,
        "bsa_m2": bsa_m2,
        "dose": dose,
        "rate_ml_per_h": rate_ml_per_h,
        "vtbi_ml": vtbi_ml,
        "duration_min": duration_min,
        "step_rate_1": step_rate_1,
        "step_volume_1": step_volume_1,
        "step_rate_2": step_rate_2,
        "step_volume_2": step_volume_2,
        "step_rate_3": step_rate_3,
        "step_volume_3": step_volume_3,
        "step_rate_4": step_rate_4,
        "step_volume_4": step_volume_4,
        "reason": reason,
        "decline_reason": decline_reason,
        "bolus_dose": bolus_dose,
        "bolus_min": bolus_min,
        "loading_dose": loading_dose,
        "loading_min": loading_min,
        "secondary_entry_id": secondary_entry_id,
        "secondary_concentration": secondary_concentration,
        "secondary_dose": secondary_dose,
        "secondary_min": secondary_min,
        "secondary_vtbi_ml": secondary_vtbi_ml,
        "secondary_callback": secondary_callback,
        "alarm": alarm,
        "alarm_channel": alarm_channel,
        "lockout_min": lockout_min,
        "basal": basal,
        "max_dose": max_dose,
        "scan": scan,
        "patient_id": patient_id,
        "authority": authority,
        "id_type": id_type,
        "family_name": family_name,
        "given_name": given_name,
    }
    with fleet.lock:
        if channel not in pump.channels:
            raise NotFoundError(f"no channel {channel}", code="panel.no_channel")
        result: object
        if action in HELD_OFFER_ACTIONS:
            result = _answer_held_offer(fleet, pump, action, channel, fields)
        else:
            result = fleet.act(serial, lambda acting: _attempt(acting, action, channel, fields))
        assert isinstance(result, Outcome | Refusal)
        if isinstance(result, Refusal):
            return _render(request, access, fleet, pump, channel, outcome=result, submitted=(action, fields))
    flash = Flash(text=result.text, tone=result.tone, action=action)
    query = flash_query(state.settings, serial, channel, flash)
    return RedirectResponse(f"/ui/panel/{serial}?{query}", status_code=303)
