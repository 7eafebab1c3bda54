"""Surviving a power cycle (SAF-PWR-02): the state a pump persists (programs, volume totals, PCA
history, configuration, software versions, ``next_seq``; times as ages before ``saved_at``) and how it
comes back (every therapy paused, waiting for the clinician's ``resume``).

A PCA therapy keeps its dose history, basal segments and whether its basal is suspended at a
ceiling; its ceilings are not stored but rebuilt from the library and the program (the library
version must match), and a suspended basal comes back suspended with its alarm shown again. A
state written before ``basal_suspended`` existed restores with the basal not suspended (it is
stopped again at once if a ceiling is reached)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from smartpump.ders.program import PatientParameters, ProgramKind, VerdictLevel
from smartpump.errors import PumpError
from smartpump.library.model import DrugLibrary
from smartpump.pump.administration_set import AdministrationSet
from smartpump.pump.bedside import Bedside
from smartpump.pump.capabilities import PumpModel, capabilities
from smartpump.pump.channel import Channel, ChannelState, Therapy
from smartpump.pump.configuration import PumpConfiguration
from smartpump.pump.core import PumpCore
from smartpump.pump.delivery import ZERO, seconds
from smartpump.pump.events import EventType
from smartpump.pump.patient import PatientIdentity
from smartpump.pump.pca import DoseKind
from smartpump.pump.pca_control import PcaControl
from smartpump.pump.persistence import (
    STATE_FORMAT,
    number,
    program_from_dict,
    program_to_dict,
    required,
    steps_from_list,
    steps_to_list,
    text,
)
from smartpump.pump.programming import Programming
from smartpump.pump.software import FACTORY_VERSION, SoftwareSlot


def configuration_from(raw: object) -> PumpConfiguration | None:
    """A persisted configuration document (None stays None); raises ConfigurationError when invalid."""
    return None if raw is None else PumpConfiguration.from_dict(raw)


def software_from(state: dict[str, Any]) -> SoftwareSlot:
    """The persisted installed and pending software versions; a state without them (saved before pumps
    held software) keeps the factory version. Raises PumpError ``pump.state_invalid`` when they are not
    versions or the pending one is not above the installed one."""
    installed = state.get("software_version", FACTORY_VERSION)
    pending = state.get("software_pending")
    if not isinstance(installed, str) or not (pending is None or isinstance(pending, str)):
        raise PumpError("persisted software versions are not text", code="pump.state_invalid")
    try:
        return SoftwareSlot(installed_version=installed, pending_version=pending)
    except PumpError as error:
        raise PumpError(
            f"persisted software is not valid: {error.message}", code="pump.state_invalid"
        ) from None


def check_document(state: dict[str, Any], library: DrugLibrary | None) -> None:
    """Refuse a document of another format or saved with another library version."""
    if state.get("format") != STATE_FORMAT:
        raise PumpError(f"not a {STATE_FORMAT} document", code="pump.state_invalid")
    version = library.version if library else None
    if state["library_version"] != version:
        raise PumpError(
            f"the state was saved with library version {state['library_version']}, the pump has {version}",
            code="pump.state_library_mismatch",
        )


def check_owner(
    state: dict[str, Any], pump_id: str, model: PumpModel | str, channels: int | None, min_next_seq: int
) -> None:
    """Refuse a state of another pump, model or channel count, or older than ``min_next_seq``."""
    if state.get("pump") != pump_id or state.get("model") != capabilities(model).model.value:
        raise PumpError(
            f"the stored state belongs to {state.get('pump')!r} ({state.get('model')!r})",
            code="pump.state_foreign",
        )
    if channels is not None and state.get("channels") != channels:
        raise PumpError("the stored state has another channel count", code="pump.state_foreign")
    next_seq = state.get("next_seq")
    if not isinstance(next_seq, int) or next_seq < min_next_seq:
        raise PumpError(
            f"the stored state (next seq {next_seq}) is older than the event log ({min_next_seq})",
            code="pump.state_stale",
        )


class Restart:
    """Writes and restores the persisted state of one pump."""

    def __init__(self, core: PumpCore, bedside: Bedside, programming: Programming, pca: PcaControl) -> None:
        self.core = core
        self.bedside = bedside
        self.programming = programming
        self.pca = pca

    # ----------------------------------------------------------------- save

    def to_state(self) -> dict[str, Any]:
        """What the pump persists to survive a power cycle (JSON-ready; times as ages before
        ``saved_at``)."""
        core = self.core
        core.sync()
        now = core.t
        return {
            "format": STATE_FORMAT,
            "pump": core.id,
            "model": core.caps.model.value,
            "channels": len(core.channels),
            "next_seq": core.events.next_seq,
            "saved_at": core.ts(now).isoformat(),
            "library_version": core.library.version if core.library else None,
            "care_area": core.care_area.id if core.care_area else None,
            "patient_id": core.patient_id,
            "patient": None
            if core.patient is None
            else {
                "authority": core.patient.authority,
                "id_type": core.patient.id_type,
                "family_name": core.patient.family_name,
                "given_name": core.patient.given_name,
            },
            "patient_parameters": {
                "weight_kg": text(core.patient_parameters.weight_kg),
                "height_cm": text(core.patient_parameters.height_cm),
                "bsa_m2": text(core.patient_parameters.bsa_m2),
            },
            "require_verification": core.require_verification,
            "configuration": None if core.configuration is None else core.configuration.to_dict(),
            "pending_configuration": None
            if core.pending_configuration is None
            else core.pending_configuration.to_dict(),
            "software_version": core.software.installed_version,
            "software_pending": core.software.pending_version,
            "trust": core.trust.to_dict(),
            "on_ac": core.battery.on_ac,
            "battery_charge_min": str(core.battery.charge_at(now)),
            "channel_state": {c.id: _channel_state(c, now) for c in core.channels.values()},
        }

    # ----------------------------------------------------------------- restore

    def restore(self, state: dict[str, Any]) -> None:
        """Bring back care area, patient, channels and therapies (paused); emits pump.state_restored."""
        core = self.core
        saved_at = datetime.fromisoformat(str(state["saved_at"]))
        downtime = max(ZERO, seconds((core.clock.now() - saved_at).total_seconds()))
        off_at = core.t - downtime
        core.battery.on_ac = bool(state["on_ac"])
        if state["care_area"] is not None:
            self.bedside.select_care_area(str(state["care_area"]))
        if state["patient_id"] is not None:
            self.bedside.set_patient(str(state["patient_id"]))
            saved = state.get("patient")
            if isinstance(saved, dict):
                core.patient = PatientIdentity(
                    patient_id=str(state["patient_id"]),
                    authority=str(saved.get("authority") or ""),
                    id_type=str(saved.get("id_type") or "MR"),
                    family_name=str(saved.get("family_name") or ""),
                    given_name=str(saved.get("given_name") or ""),
                )
        parameters = state.get("patient_parameters")
        if parameters is not None:
            core.patient_parameters = PatientParameters(
                weight_kg=number(parameters["weight_kg"]),
                height_cm=number(parameters["height_cm"]),
                bsa_m2=number(parameters["bsa_m2"]),
            )
        channel_state = state["channel_state"]
        if set(channel_state) != set(core.channels):
            raise PumpError("persisted channels do not match the pump", code="pump.state_invalid")
        restored: list[str] = []
        interrupted: list[str] = []
        for cid, raw in channel_state.items():
            self._restore_channel(core.channels[cid], raw, off_at)
            if raw["pending_dropped"]:
                interrupted.append(f"{cid}:pending_program")
            if raw["therapy"] is not None:
                restored.append(cid)
                if raw["therapy"]["interrupted"] is not None:
                    interrupted.append(f"{cid}:{raw['therapy']['interrupted']}")
        core.after_change()
        core.emit(
            EventType.PUMP_STATE_RESTORED,
            None,
            library_version=core.library.version if core.library else None,
            care_area=core.care_area.id if core.care_area else None,
            downtime_s=downtime,
            channels=restored,
            interrupted=interrupted,
        )

    def _restore_channel(self, channel: Channel, raw: dict[str, Any], off_at: Decimal) -> None:
        core = self.core
        channel.line = replace(channel.line, threshold_mmhg=required(raw["occlusion_threshold_mmhg"]))
        core.caps.check_occlusion(channel.line.threshold_mmhg)
        admin = raw["admin_set"]
        if admin is not None:
            channel.admin_set = AdministrationSet(
                set_type=str(admin["set_type"]),
                lot=str(admin["lot"]),
                installed_at_s=off_at - required(admin["installed_age_s"]),
                change_due_h=int(admin["change_due_h"]),
                line_label=admin["line_label"],
            )
        channel.container_ml = number(raw["container_ml"])
        channel.drawn_ml = required(raw["drawn_ml"])
        channel.auto_restarts_s = [off_at - required(a) for a in raw["auto_restart_ages_s"]]
        if raw["therapy"] is not None:
            channel.therapy = self._restore_therapy(raw["therapy"], off_at)
            channel.move_to(ChannelState.PAUSED)
            channel.paused_since_s = core.t
            channel.settled_at_s = core.t
            if channel.therapy.pca is not None:
                suspended = raw["therapy"]["pca"].get("basal_suspended", False)
                if not isinstance(suspended, bool):
                    raise PumpError("basal_suspended must be true or false", code="pump.state_invalid")
                self.pca.restored(channel, basal_suspended=suspended)

    def _restore_therapy(self, raw: dict[str, Any], off_at: Decimal) -> Therapy:
        program = program_from_dict(raw["program"])
        verdict = self.programming.check(program)
        if verdict.level is VerdictLevel.HARD:
            raise PumpError("a persisted program no longer passes DERS", code="pump.state_invalid")
        library = self.core.active_library()
        drug = library.drug(library.entry(verdict.entry_id).drug_id) if verdict.entry_id else None
        therapy = Therapy(
            program=program,
            verdict=verdict,
            drug=drug.shown_name if drug else None,
            drug_id=drug.id if drug else None,
            rate_ml_per_h=required(raw["rate_ml_per_h"]),
            vtbi_ml=number(raw["vtbi_ml"]),
            kvo_rate_ml_per_h=required(raw["kvo_rate_ml_per_h"]),
            steps=steps_from_list(raw["steps"]),
            step_index=int(raw["step_index"]),
            step_delivered_ml=required(raw["step_delivered_ml"]),
            infused_ml=required(raw["infused_ml"]),
            kvo_ml=required(raw["kvo_ml"]),
            secondary_ml=required(raw["secondary_ml"]),
        )
        pca = raw["pca"]
        if program.kind is ProgramKind.PCA:
            self.pca.setup(therapy)
            ledger = therapy.pca
            assert ledger is not None
            ledger.doses = [
                (off_at - required(age), required(amount), DoseKind(kind))
                for age, amount, kind in pca["doses"]
            ]
            ledger.basal_segments = [
                (off_at - required(start), off_at - required(end)) for start, end in pca["basal_segments"]
            ]
            last = number(pca["last_demand_age_s"])
            ledger.last_demand_s = None if last is None else off_at - last
        return therapy


def _channel_state(channel: Channel, now: Decimal) -> dict[str, Any]:
    admin = channel.admin_set
    therapy = channel.therapy
    return {
        "occlusion_threshold_mmhg": str(channel.line.threshold_mmhg),
        "admin_set": None
        if admin is None
        else {
            "set_type": admin.set_type,
            "lot": admin.lot,
            "installed_age_s": str(now - admin.installed_at_s),
            "change_due_h": admin.change_due_h,
            "line_label": admin.line_label,
        },
        "container_ml": text(channel.container_ml),
        "drawn_ml": str(channel.drawn_ml),
        "auto_restart_ages_s": [str(now - t) for t in channel.auto_restarts_s],
        "pending_dropped": channel.pending is not None,
        "therapy": None if therapy is None else _therapy_state(therapy, now),
    }


def _therapy_state(therapy: Therapy, now: Decimal) -> dict[str, Any]:
    ledger = therapy.pca
    return {
        "program": program_to_dict(therapy.program),
        "rate_ml_per_h": str(therapy.rate_ml_per_h),
        "vtbi_ml": text(therapy.vtbi_ml),
        "kvo_rate_ml_per_h": str(therapy.kvo_rate_ml_per_h),
        "steps": steps_to_list(therapy.steps),
        "step_index": therapy.step_index,
        "step_delivered_ml": str(therapy.step_delivered_ml),
        "infused_ml": str(therapy.infused_ml),
        "kvo_ml": str(therapy.kvo_ml),
        "secondary_ml": str(therapy.secondary_ml),
        "interrupted": None if therapy.overlay is None else therapy.overlay.kind.value,
        "pca": None
        if ledger is None
        else {
            "doses": [[str(now - t), str(amount), kind.value] for t, amount, kind in ledger.doses],
            "basal_segments": [
                [str(now - start), "0" if end is None else str(now - end)]
                for start, end in ledger.basal_segments
            ],
            "last_demand_age_s": None if ledger.last_demand_s is None else str(now - ledger.last_demand_s),
            "basal_suspended": ledger.basal_suspended,
        },
    }
