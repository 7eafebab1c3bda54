"""The pump front panel: a nurse programs a simulated pump step by step (also a training tool).

Each action runs on the real ``Pump`` of the server's simulated fleet through ``SimFleet.act`` (under its
lock, so the pump's events go to the server like any other).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from smartpump.ders.program import InfusionProgram, PatientParameters, PCAProgram, ProgramKind
from smartpump.errors import SmartpumpError
from smartpump.library.model import DeliveryMode
from smartpump.pump import OverrideReason, Pump, PumpStatus
from smartpump.server.api.deps import StateDep, require_roles
from smartpump.server.auth import Access
from smartpump.server.errors import InvalidInputError, NotFoundError
from smartpump.server.sim_fleet import SimFleet
from smartpump.server.state import ServerState
from smartpump.server.web.render import PANEL_ROLES, render
from smartpump.server.web.session import CsrfChecked
from smartpump.units import Concentration

router = APIRouter(include_in_schema=False)
PanelUser = Annotated[Access, require_roles(*PANEL_ROLES)]
Serial = Annotated[str, Path(max_length=64)]
ACTIONS: Final = frozenset(
    {
        "care_area",
        "program",
        "override",
        "confirm",
        "start",
        "pause",
        "resume",
        "stop",
        "cancel",
        "bolus",
        "pca_demand",
        "silence",
    }
)


def _fleet(state: ServerState) -> SimFleet | None:
    return state.sim_fleet


def _pump(state: ServerState, serial: str) -> tuple[SimFleet, Pump]:
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


def _program(pump: Pump, fields: dict[str, str]) -> InfusionProgram:
    entry_id, concentration = fields["entry_id"], fields["concentration"]
    if not entry_id:
        raise InvalidInputError("choose a drug", code="panel.drug_required")
    try:
        parsed = Concentration.parse(concentration) if concentration.strip() else None
    except (SmartpumpError, ValueError, ArithmeticError):
        raise InvalidInputError(
            f"concentration {concentration!r} is not valid", code="panel.value_invalid"
        ) from None
    patient = PatientParameters(weight_kg=_decimal(fields["weight_kg"], "weight"))
    vtbi = _decimal(fields["vtbi_ml"], "VTBI")
    library = pump.library
    entry = None if library is None else next((e for e in library.entries if e.id == entry_id), None)
    if entry is not None and entry.mode is DeliveryMode.PCA:
        demand = _decimal(fields["dose"], "demand dose", required=True)
        lockout = _decimal(fields["lockout_min"], "lockout", required=True)
        assert demand is not None and lockout is not None
        return InfusionProgram(
            entry_id=entry_id,
            kind=ProgramKind.PCA,
            concentration=parsed,
            patient=patient,
            vtbi_ml=vtbi,
            pca=PCAProgram(
                demand_dose=demand,
                lockout_min=lockout,
                basal=_decimal(fields["basal"], "basal"),
                max_dose=_decimal(fields["max_dose"], "max dose"),
                max_dose_window_h=None if entry.pca is None else entry.pca.max_dose_window_h,
            ),
        )
    return InfusionProgram(
        entry_id=entry_id,
        dose=_decimal(fields["dose"], "dose", required=True),
        concentration=parsed,
        patient=patient,
        vtbi_ml=vtbi,
    )


def _act(pump: Pump, action: str, channel: str, fields: dict[str, str]) -> str:
    """Run one front-panel action on the pump; returns what the display says."""
    if action == "care_area":
        area = pump.select_care_area(fields["care_area"])
        return f"Care area {area.name} selected"
    if action == "program":
        program = _program(pump, fields)
        pending = pump.channel(channel).pending
        verdict = pump.reprogram(channel, program) if pending is not None else pump.program(channel, program)
        return f"Checked: {verdict.level.value}"
    if action == "override":
        if not fields["reason"]:
            raise InvalidInputError("an override needs a reason", code="panel.reason_required")
        pump.override(channel, OverrideReason(fields["reason"]))
        return "Soft alert overridden"
    if action == "confirm":
        pump.confirm(channel)
        return "Confirmed"
    if action == "start":
        pending = pump.channel(channel).pending
        if pending is not None and not pending.confirmed:
            pump.confirm(channel)
        pump.start(channel)
        return "Infusing"
    if action == "bolus":
        therapy = pump.channel(channel).therapy
        if therapy is None:
            raise InvalidInputError("a bolus needs a running infusion", code="panel.not_running")
        bolus = replace(
            therapy.program,
            kind=ProgramKind.BOLUS,
            dose=_decimal(fields["bolus_dose"], "bolus dose", required=True),
            dose_unit=None,
            rate_ml_per_h=None,
            vtbi_ml=None,
            duration_min=_decimal(fields["bolus_min"], "bolus duration", required=True),
        )
        reason = OverrideReason(fields["reason"]) if fields["reason"] else None
        verdict = pump.bolus(channel, bolus, override=reason)
        return f"Bolus running at {verdict.rate_ml_per_h} mL/h"
    if action == "pca_demand":
        return "Demand dose granted" if pump.pca_demand(channel) else "Demand dose denied (lockout or limit)"
    if action == "silence":
        pump.silence()
        return "Alarms silenced for 2 minutes"
    simple = {"pause": pump.pause, "resume": pump.resume, "stop": pump.stop, "cancel": pump.cancel}
    simple[action](channel)
    return {"pause": "Paused", "resume": "Resumed", "stop": "Stopped", "cancel": "Program cancelled"}[action]


def _view(pump: Pump, channel: str) -> dict[str, Any]:
    """Everything the panel displays for one pump and its selected channel."""
    status = pump.status()
    library = pump.library
    area = pump.care_area
    entries: list[dict[str, Any]] = []
    if library is not None and area is not None:
        for entry in library.entries_in(area.id):
            entries.append(
                {
                    "id": entry.id,
                    "name": library.drug(entry.drug_id).shown_name,
                    "therapy": entry.therapy,
                    "unit": str(entry.dosing_unit),
                    "concentrations": [str(c) for c in entry.concentrations],
                    "needs_weight": entry.needs_weight,
                    "is_pca": entry.mode is DeliveryMode.PCA,
                }
            )
    current = pump.channel(channel)
    return {
        "status": status,
        "areas": [] if library is None else [(a.id, a.name) for a in library.care_areas],
        "area": area,
        "entries": sorted(entries, key=lambda e: str(e["name"]).lower()),
        "channel": channel,
        "state": current.state.value,
        "pending": current.pending,
        "therapy": current.therapy,
        "reasons": [r.value for r in OverrideReason],
    }


def _render(
    request: Request,
    access: Access,
    pump: Pump,
    channel: str,
    *,
    message: str | None,
    error: str | None,
    status: int,
) -> Response:
    return render(
        request,
        "panel.html",
        principal=access.principal,
        active="panel",
        serial=pump.id,
        view=_view(pump, channel),
        message=message,
        error=error,
        status_code=status,
    )


@router.get("/ui/panel/{serial}")
def panel(
    request: Request,
    serial: Serial,
    access: PanelUser,
    state: StateDep,
    channel: Annotated[str, Query(max_length=1, pattern="^[A-D]$")] = "A",
) -> Response:
    """The front panel of one simulated pump."""
    fleet, pump = _pump(state, serial)
    with fleet.lock:
        if channel not in pump.channels:
            raise NotFoundError(f"no channel {channel}", code="panel.no_channel")
        return _render(request, access, pump, channel, message=None, error=None, status=200)


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
    concentration: Annotated[str, Form(max_length=64)] = "",
    weight_kg: Annotated[str, Form(max_length=32)] = "",
    dose: Annotated[str, Form(max_length=32)] = "",
    vtbi_ml: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=64)] = "",
    bolus_dose: Annotated[str, Form(max_length=32)] = "",
    bolus_min: Annotated[str, Form(max_length=32)] = "",
    lockout_min: Annotated[str, Form(max_length=32)] = "",
    basal: Annotated[str, Form(max_length=32)] = "",
    max_dose: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Press a front-panel button; the pump's answer (or refusal) is shown on the panel."""
    if action not in ACTIONS:
        raise InvalidInputError(f"unknown action {action!r}", code="panel.action")
    if reason and reason not in {r.value for r in OverrideReason}:
        raise InvalidInputError(f"unknown override reason {reason!r}", code="panel.reason")
    fleet, pump = _pump(state, serial)
    fields = {
        "care_area": care_area,
        "entry_id": entry_id,
        "concentration": concentration,
        "weight_kg": weight_kg,
        "dose": dose,
        "vtbi_ml": vtbi_ml,
        "reason": reason,
        "bolus_dose": bolus_dose,
        "bolus_min": bolus_min,
        "lockout_min": lockout_min,
        "basal": basal,
        "max_dose": max_dose,
    }
    with fleet.lock:
        if channel not in pump.channels:
            raise NotFoundError(f"no channel {channel}", code="panel.no_channel")
        try:
            message = str(fleet.act(serial, lambda acting: _act(acting, action, channel, fields)))
        except SmartpumpError as error:
            return _render(
                request,
                access,
                pump,
                channel,
                message=None,
                error=f"{error.message} ({error.code})",
                status=409,
            )
        return _render(request, access, pump, channel, message=message, error=None, status=200)
