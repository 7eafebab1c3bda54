"""The Pump: a thin facade composing one pump's parts around a shared kernel (``PumpCore``); every
public action delegates to the part that owns it, and every action and computed occurrence is an
event.

Parts: ``bedside`` (care area, patient, set, verification), ``programming`` (DERS-checked programs,
titration, bolus, secondary), ``infusion`` (start to stop, completion), ``pca`` (PCA doses and
pause), ``sensors`` (occlusion, air, door, container), ``health`` (power, faults, motor check),
``alarming`` (alarm lifecycle), ``installation`` (library, configuration, software), ``restart``
(persisted state). Time comes only from the injected Clock (see ``smartpump.pump.core``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import Any

from smartpump.clock import Clock
from smartpump.ders.program import InfusionProgram, PatientParameters, Verdict
from smartpump.errors import PumpError, SignatureError, SmartpumpError
from smartpump.library.keys import TrustStore
from smartpump.library.model import CareArea, DrugLibrary
from smartpump.library.signing import SignedLibrary
from smartpump.library.trust_list import SignedTrustList, TrustState
from smartpump.pump.administration_set import AdministrationSet
from smartpump.pump.alarm_control import AlarmControl
from smartpump.pump.alarms import AlarmBoard, AlarmId, AlarmRecord
from smartpump.pump.bedside import Bedside
from smartpump.pump.capabilities import Capabilities, PumpModel, capabilities
from smartpump.pump.channel import Channel, Due
from smartpump.pump.configuration import ConfigurationSettings, PumpConfiguration, SignedConfiguration
from smartpump.pump.core import Action, PumpCore
from smartpump.pump.delivery import Step, time_to_deliver
from smartpump.pump.device_health import DeviceHealth
from smartpump.pump.events import EventLog, EventType
from smartpump.pump.hardware import HardwarePort
from smartpump.pump.infusion import Infusion
from smartpump.pump.installation import Installation, library_sha256
from smartpump.pump.patient import AssociationSource, PatientIdentity
from smartpump.pump.pca_control import PcaControl
from smartpump.pump.persistence import check_key, open_state, required, seal_state
from smartpump.pump.programming import DeclineReason, OverrideReason, Programming
from smartpump.pump.restart import Restart, check_document, check_owner, configuration_from, software_from
from smartpump.pump.sensor_control import OCCLUSION_RECHECK_S, SensorControl
from smartpump.pump.sensors import Battery, LineModel
from smartpump.pump.software import SoftwareSlot
from smartpump.pump.status import PumpStatus, status_of
from smartpump.pump.verification import BedsideScan

__all__ = ["OCCLUSION_RECHECK_S", "DeclineReason", "OverrideReason", "Pump", "time_to_alarm_s"]


class _ChannelDues:
    """The channels' computed occurrences, each played by the part that owns it."""

    def __init__(self, core: PumpCore, on_due: dict[Due, Callable[[Channel], None]]) -> None:
        self._core = core
        self._on_due = on_due

    def first_due(self, until: Decimal | None) -> tuple[Decimal, Action] | None:
        """The first (channel order, then each channel's own order) at or before ``until``."""
        first: tuple[Decimal, Channel, Due] | None = None
        for channel in self._core.channels.values():
            for t, due in channel.dues(self._core.t):
                if (until is None or t <= until) and (first is None or t < first[0]):
                    first = (t, channel, due)
        if first is None:
            return None
        t, channel, due = first
        return t, partial(self._on_due[due], channel)


class Pump:
    """A smart infusion pump of one model; pure state machine driven by actions and a Clock.

    ``configuration`` is the active service configuration (None: the factory default, version 0);
    ``require_verification=True`` demands bedside verification until a configuration activates, which
    then sets it.
    """

    def __init__(
        self,
        pump_id: str,
        model: PumpModel | str,
        clock: Clock,
        *,
        channels: int | None = None,
        next_seq: int = 1,
        library: DrugLibrary | None = None,
        battery_charge_min: Decimal | None = None,
        require_verification: bool = False,
        hardware: HardwarePort | None = None,
        configuration: PumpConfiguration | None = None,
        trust: TrustStore | None = None,
    ) -> None:
        caps = capabilities(model)
        if configuration is not None and configuration.model is not caps.model:
            raise PumpError(
                f"configuration is for the {configuration.model} model, not {caps.model}",
                code="pump.configuration_model",
            )
        count = channels if channels is not None else caps.max_channels
        if not 1 <= count <= caps.max_channels:
            raise PumpError(
                f"{caps.model} has 1-{caps.max_channels} channels, not {count}", code="pump.channels"
            )
        core = PumpCore(
            pump_id,
            caps,
            clock,
            channels=count,
            next_seq=next_seq,
            library=library,
            battery_charge_min=battery_charge_min,
            require_verification=require_verification,
            hardware=hardware,
            configuration=configuration,
            trust=trust if trust is not None else TrustStore([]),
        )
        self._core = core
        self._alarming = AlarmControl(core)
        self._health = DeviceHealth(core, self._alarming)
        self._pca = PcaControl(core, self._alarming)
        self._infusion = Infusion(core, self._alarming, self._pca)
        self._programming = Programming(core)
        self._sensors = SensorControl(core, self._alarming)
        self._bedside = Bedside(core, self._alarming, self._programming)
        self._installation = Installation(core)
        self._restart = Restart(core, self._bedside, self._programming, self._pca)
        on_due: dict[Due, Callable[[Channel], None]] = {
            Due.DELAYED_START: self._infusion.delayed_start,
            Due.PAUSED_REMINDER: self._alarming.paused_reminder,
            Due.PAUSED_ESCALATION: self._alarming.paused_escalation,
            Due.SET_CHANGE: self._bedside.set_change_due,
            Due.OCCLUSION: self._sensors.occlusion_detected,
            Due.OCCLUSION_RECHECK: self._sensors.occlusion_alarm,
            Due.CONTAINER_NEAR_EMPTY: self._sensors.container_near_empty,
            Due.CONTAINER_EMPTY: self._sensors.container_empty,
            Due.NEAR_END: self._infusion.near_end,
            Due.STEP_DONE: self._infusion.step_done,
            Due.OVERLAY_DONE: self._infusion.overlay_done,
            Due.VTBI_DONE: self._infusion.complete,
            Due.PCA_CEILING: self._pca.ceiling_due,
        }
        core.add_due_source(_ChannelDues(core, on_due))
        core.add_due_source(self._alarming)
        core.add_due_source(self._health)
        core.add_change_hook(self._health.after_change)
        core.add_change_hook(self._pca.after_change)
        core.add_change_hook(self._installation.after_change)
        core.emit(
            EventType.PUMP_STARTED,
            None,
            model=caps.model.value,
            channels=count,
            library_version=library.version if library else None,
            resumed_from_seq=next_seq - 1,
            library_sha256=library_sha256(library) if library else None,
        )
        self._health.check_rates("power_on")

    # ----------------------------------------------------------------- state (read-only views)

    @property
    def id(self) -> str:
        """The pump's identifier (its serial)."""
        return self._core.id

    @property
    def caps(self) -> Capabilities:
        """The model's capabilities."""
        return self._core.caps

    @property
    def events(self) -> EventLog:
        """The pump's event log."""
        return self._core.events

    @property
    def alarms(self) -> AlarmBoard:
        """The alarm board (active alarms, audio pause, log)."""
        return self._core.alarms

    @property
    def channels(self) -> dict[str, Channel]:
        """The channels by id (A-D)."""
        return self._core.channels

    @property
    def battery(self) -> Battery:
        """The battery model."""
        return self._core.battery

    @property
    def library(self) -> DrugLibrary | None:
        """The active drug library."""
        return self._core.library

    @property
    def pending_library(self) -> DrugLibrary | None:
        """An installed library waiting for every channel to be idle."""
        return self._core.pending_library

    @property
    def software(self) -> SoftwareSlot:
        """A copy of the software slot: the version the pump runs and the verified one waiting for every
        channel to be idle (a copy, so activation stays behind the idle gate of ``install_software``)."""
        return replace(self._core.software)

    @property
    def care_area(self) -> CareArea | None:
        """The selected care area."""
        return self._core.care_area

    @property
    def patient_id(self) -> str | None:
        """The associated patient."""
        return self._core.patient_id

    @property
    def patient(self) -> PatientIdentity | None:
        """The associated patient with authority and name, when known."""
        return self._core.patient

    @property
    def patient_parameters(self) -> PatientParameters:
        """The patient's weight, height and BSA as set on the pump (NO_PATIENT until set)."""
        return self._core.patient_parameters

    @property
    def configuration(self) -> PumpConfiguration | None:
        """The active configuration (None: the factory default)."""
        return self._core.configuration

    @property
    def pending_configuration(self) -> PumpConfiguration | None:
        """An installed configuration waiting for every channel to be idle."""
        return self._core.pending_configuration

    @property
    def settings(self) -> ConfigurationSettings:
        """The settings in force (the active configuration's or the factory's)."""
        return self._core.settings

    @property
    def require_verification(self) -> bool:
        """True when a start needs a passed bedside verification."""
        return self._core.require_verification

    @property
    def faulted(self) -> bool:
        """True after a failed self-test or watchdog."""
        return self._core.faulted

    @property
    def now_s(self) -> Decimal:
        """The pump's current monotonic time in Decimal seconds."""
        return self._core.t

    @property
    def configuration_version(self) -> int:
        """Version of the active configuration; 0 is the factory default."""
        return self._core.configuration_version

    @property
    def next_seq(self) -> int:
        """The seq the next event will get: persist it so seq survives a restart."""
        return self._core.events.next_seq

    # ----------------------------------------------------------------- time

    def channel(self, cid: str) -> Channel:
        """The channel with this id (A-D)."""
        return self._core.channel(cid)

    def next_due_s(self) -> Decimal | None:
        """When the next computed occurrence falls (absolute monotonic s), or None."""
        return self._core.next_due_s()

    def sync(self) -> None:
        """Play everything due up to the clock's present, each at its own time."""
        self._core.sync()

    # ----------------------------------------------------------------- alarms

    def silence(self) -> None:
        """Audio pause (2 min) of the alarms now sounding; a new alarm breaks through."""
        self._alarming.silence()

    def clear_alarm(self, alarm: AlarmId | str, cid: str | None = None) -> None:
        """The operator resets an alarm whose condition has ended (latching alarms need this); clearing
        the PCA maximum alarm resumes the basal, refused while a ceiling is still reached."""
        if AlarmId(alarm) is AlarmId.PCA_MAX_DOSE:
            self._pca.clear_max_dose(cid)
        else:
            self._alarming.clear_alarm(alarm, cid)

    def alarm_log(self) -> list[AlarmRecord]:
        """Every alarm raised, with times, priority, the triggering value and the limit in force."""
        return self._alarming.alarm_log()

    # ----------------------------------------------------------------- bedside

    def select_care_area(self, care_area: str) -> CareArea:
        """Choose the care area (profile) whose limits apply; refused while any channel infuses."""
        return self._bedside.select_care_area(care_area)

    def set_patient(self, patient_id: str) -> None:
        """Take back a saved patient identifier (restore, scenarios); emits nothing."""
        self._bedside.set_patient(patient_id)

    def associate_patient(
        self, patient: PatientIdentity, source: AssociationSource = AssociationSource.ENTRY
    ) -> PatientIdentity:
        """Associate the pump with a patient at the bedside; emits patient.associated."""
        return self._bedside.associate_patient(patient, source)

    def set_patient_parameters(
        self,
        weight_kg: Decimal | None = None,
        height_cm: Decimal | None = None,
        bsa_m2: Decimal | None = None,
        *,
        override: OverrideReason | str | None = None,
    ) -> PatientParameters:
        """Set the patient's weight, height and BSA (programs without a patient take them); every
        therapy is re-checked with its dose first: hard refuses the change, soft needs ``override``."""
        return self._bedside.set_patient_parameters(weight_kg, height_cm, bsa_m2, override=override)

    def install_set(
        self, cid: str, *, set_type: str, lot: str, line_label: str | None = None
    ) -> AdministrationSet:
        """Record the administration set loaded on a channel; the change interval follows the care area."""
        return self._bedside.install_set(cid, set_type=set_type, lot=lot, line_label=line_label)

    def verify_bedside(self, cid: str, scan: BedsideScan) -> tuple[str, ...]:
        """Compare the bedside scan with the pending program; a mismatch blocks the start."""
        return self._bedside.verify_bedside(cid, scan)

    # ----------------------------------------------------------------- programming

    def program(
        self,
        cid: str,
        program: InfusionProgram,
        *,
        steps: tuple[Step, ...] = (),
        auto_programmed: bool = False,
    ) -> Verdict:
        """Check a new program (or, on a running channel, a titration) with DERS; emits program.checked."""
        return self._programming.program(cid, program, steps=steps, auto_programmed=auto_programmed)

    def reprogram(
        self,
        cid: str,
        program: InfusionProgram,
        *,
        steps: tuple[Step, ...] = (),
        auto_programmed: bool = False,
    ) -> Verdict:
        """Replace a pending program (answer to a hard stop or soft alert); emits program.reprogrammed."""
        return self._programming.reprogram(cid, program, steps=steps, auto_programmed=auto_programmed)

    def cancel(self, cid: str, *, reason: DeclineReason | str | None = None) -> None:
        """Abandon a pending program (an auto-programmed one is declined, with the nurse's coded reason); a
        running infusion continues unchanged."""
        self._programming.cancel(cid, reason=reason)

    def decline_offer(self, cid: str, *, entry_id: str, reason: DeclineReason | str) -> None:
        """Log a held bolus, loading-dose or piggyback offer declined by the nurse (program.cancelled)."""
        self._programming.decline_offer(cid, entry_id=entry_id, reason=reason)

    def override(self, cid: str, reason: OverrideReason | str) -> None:
        """Accept the soft alerts of the pending program with a coded reason; emits alert.overridden."""
        self._programming.override(cid, reason)

    def confirm(self, cid: str) -> None:
        """Confirm the pending program (applies a titration at once); refused after a hard stop."""
        self._programming.confirm(cid)

    def bolus(
        self, cid: str, program: InfusionProgram, *, override: OverrideReason | str | None = None
    ) -> Verdict:
        """A bolus or loading dose from the running therapy's container, entry and patient, DERS-checked;
        it runs the volume that holds the dose."""
        return self._programming.bolus(cid, program, override=override)

    def secondary(
        self,
        cid: str,
        program: InfusionProgram,
        *,
        override: OverrideReason | str | None = None,
        callback: bool = False,
    ) -> Verdict:
        """A secondary (piggyback) infusion for an entry and care area that allow it; the primary
        resumes when its volume is delivered, and with ``callback`` the pump also raises
        ``secondary.callback`` (medium, latching) so the nurse is called back to the bedside."""
        return self._programming.secondary(cid, program, override=override, callback=callback)

    # ----------------------------------------------------------------- infusion

    def start(self, cid: str, *, delay_s: Decimal | None = None) -> None:
        """Start (or schedule) the confirmed program; refused with the reason when not allowed."""
        self._infusion.start(cid, delay_s=delay_s)

    def standby(self, cid: str) -> None:
        """Hold a confirmed program without delivering until ``start`` is called."""
        self._infusion.standby(cid)

    def pause(self, cid: str, *, reason: str = "user") -> None:
        """Pause a running channel (delivery stops at once)."""
        self._infusion.pause(cid, reason=reason)

    def resume(self, cid: str) -> None:
        """Resume a paused channel, or one stopped by an alarm once that alarm is cleared."""
        self._infusion.resume(cid)

    def stop(self, cid: str, *, reason: str = "user") -> None:
        """End the therapy on a channel; the channel returns to idle."""
        self._infusion.stop(cid, reason=reason)

    # ----------------------------------------------------------------- PCA

    def pca_demand(self, cid: str) -> bool:
        """The patient presses the button: grant (True) or deny (False, logged with the reason)."""
        return self._pca.demand(cid)

    def clinician_bolus(self, cid: str, amount: Decimal) -> None:
        """A clinician bolus on a PCA channel, within the entry's limits and the window maximum."""
        self._pca.clinician_bolus(cid, amount)

    def record_vitals(
        self,
        *,
        spo2_percent: Decimal | None = None,
        etco2_mmhg: Decimal | None = None,
        resp_rate_bpm: Decimal | None = None,
    ) -> None:
        """A monitor reading; crossing a care-area threshold pauses every PCA channel (physiologic pause)."""
        self._pca.record_vitals(spo2_percent=spo2_percent, etco2_mmhg=etco2_mmhg, resp_rate_bpm=resp_rate_bpm)

    # ----------------------------------------------------------------- sensors

    def occlude_downstream(self, cid: str) -> None:
        """The line below the pump closes: pressure builds with compliance until the alarm."""
        self._sensors.occlude_downstream(cid)

    def release_downstream(self, cid: str) -> Decimal:
        """The occlusion is relieved; returns the unintended bolus after back-off (mL)."""
        return self._sensors.release_downstream(cid)

    def set_occlusion_threshold(self, cid: str, threshold_mmhg: Decimal) -> None:
        """Select the downstream occlusion threshold (within the model range and the care-area maximum)."""
        self._sensors.set_occlusion_threshold(cid, threshold_mmhg)

    def occlude_upstream(self, cid: str) -> None:
        """No flow above the pump (closed clamp, empty bag): immediate alarm."""
        self._sensors.occlude_upstream(cid)

    def release_upstream(self, cid: str) -> None:
        """The upstream line is open again."""
        self._sensors.release_upstream(cid)

    def air_bubble(self, cid: str, volume_ul: Decimal) -> None:
        """The air sensor sees a bubble; single and cumulative thresholds stop delivery."""
        self._sensors.air_bubble(cid, volume_ul)

    def air_cleared(self, cid: str) -> None:
        """The line was re-primed: air conditions end (the alarms stay until cleared)."""
        self._sensors.air_cleared(cid)

    def open_door(self, cid: str) -> None:
        """The channel door opens: the set clamp closes, delivery stops, alarm."""
        self._sensors.open_door(cid)

    def close_door(self, cid: str) -> None:
        """The door closes again."""
        self._sensors.close_door(cid)

    def load_container(self, cid: str, volume_ml: Decimal) -> None:
        """Load a syringe (or a bag of known volume) on an idle channel; syringe sizes are checked."""
        self._sensors.load_container(cid, volume_ml)

    def resistance_reading(self, cid: str, value: Decimal) -> None:
        """A downstream resistance reading; a sustained rise raises an infiltration advisory."""
        self._sensors.resistance_reading(cid, value)

    # ----------------------------------------------------------------- power and faults

    def ac_power(self, connected: bool) -> None:
        """Mains connected or lost; on battery the pump keeps infusing and counts down."""
        self._health.ac_power(connected)

    def fault(self, test: str, detail: str = "") -> None:
        """A self-test or watchdog failure: safe stop of every channel and a latching HIGH alarm."""
        self._health.fault(test, detail)

    # ----------------------------------------------------------------- installation

    def record_command_refused(self, *, command: str, nonce: str, code: str, reason: str) -> None:
        """Log a server command that failed verification (forged, replayed, expired, foreign)."""
        self._installation.record_command_refused(command=command, nonce=nonce, code=code, reason=reason)

    def install_library(
        self, signed: SignedLibrary, trust: TrustStore, *, hospital_id: str | None = None
    ) -> None:
        """Install a signed library after verifying it with a key ``trust`` holds for libraries; it becomes
        active when every channel is idle."""
        self._installation.install_library(signed, trust, hospital_id=hospital_id)

    def install_configuration(
        self, signed: SignedConfiguration, trust: TrustStore, *, hospital_id: str | None = None
    ) -> None:
        """Install a signed configuration after verifying it (a key trusted for configurations, signature,
        hospital, model, a version above the one held); it becomes active when every channel is idle."""
        self._installation.install_configuration(signed, trust, hospital_id=hospital_id)

    @property
    def trust(self) -> TrustStore:
        """The keys this pump trusts now, each for its one purpose (as provisioned, then as the last installed
        trust list says)."""
        return self._core.trust.store

    @property
    def trust_version(self) -> int:
        """The version of the installed trust list (0: the keys as provisioned)."""
        return self._core.trust.version

    def install_trust_list(self, signed: SignedTrustList) -> None:
        """Install a signed trust list at once (it changes no infusion) after verifying it with a trust-root
        key this pump holds; ``trust.rejected`` and the SignatureError when refused, nothing changed."""
        self._installation.install_trust_list(signed)

    def install_software(self, document: Mapping[str, object], trust: TrustStore) -> None:
        """Install a signed software package after verifying it for this model with a key trusted for software
        (``software.rejected`` and the SignatureError when refused); it runs once every channel is idle."""
        self._installation.install_software(document, trust)

    # ----------------------------------------------------------------- status

    def status(self) -> PumpStatus:
        """What a display shows: library, configuration and software versions, care area, channels, alarms,
        battery."""
        self._core.sync()
        return status_of(self._core)

    # ----------------------------------------------------------------- restart (SAF-PWR-02)

    def to_state(self) -> dict[str, Any]:
        """What the pump persists to survive a power cycle: running programs, volume totals, PCA
        history, alarm settings, the active and pending configuration and software versions and
        ``next_seq`` (JSON-ready; times as ages before ``saved_at``)."""
        return self._restart.to_state()

    def to_sealed_state(self, key: bytes) -> bytes:
        """``to_state()`` sealed for storage: canonical JSON under HMAC-SHA256 with the pump's own
        key (provisioned per device, handed in by the caller)."""
        return seal_state(self.to_state(), key)

    @classmethod
    def power_on(
        cls,
        stored: bytes | None,
        key: bytes,
        *,
        pump_id: str,
        model: PumpModel | str,
        clock: Clock,
        library: DrugLibrary | None,
        channels: int | None = None,
        min_next_seq: int = 1,
        hardware: HardwarePort | None = None,
        trust: TrustStore | None = None,
    ) -> Pump:
        """Power on from sealed storage (SAF-STO-01). The saved state comes back when its tag verifies
        and it is this pump's, not older than ``min_next_seq`` (kept apart, e.g. by the event outbox);
        otherwise the pump starts with no programs on its factory default configuration, logs
        ``pump.state_rejected`` and raises the HIGH ``state.integrity_failed`` alarm, which blocks starts
        until the operator resets it."""
        check_key(key)
        refused: SmartpumpError | None = None
        if stored is not None:
            try:
                state = open_state(stored, key)
                check_owner(state, pump_id, model, channels, min_next_seq)
                return cls.from_state(state, clock, library, hardware=hardware, trust=trust)
            except SmartpumpError as error:
                refused = error
        pump = cls(
            pump_id,
            model,
            clock,
            channels=channels,
            next_seq=min_next_seq,
            library=library,
            hardware=hardware,
            trust=trust,
        )
        if refused is not None:
            core = pump._core
            core.emit(EventType.PUMP_STATE_REJECTED, None, code=refused.code, reason=refused.message)
            pump._alarming.raise_(AlarmId.STATE_INTEGRITY, None, value=None, limit=None)
            pump._alarming.condition_ended(AlarmId.STATE_INTEGRITY, None)
        return pump

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        clock: Clock,
        library: DrugLibrary | None,
        *,
        hardware: HardwarePort | None = None,
        trust: TrustStore | None = None,
    ) -> Pump:
        """Power on from a persisted state: totals, history and the configuration come back, delivery
        does not (every channel with a therapy is paused and needs ``resume``, the clinician's
        confirmation). A state without configuration or software keys was written before they existed:
        the pump keeps its factory default configuration and software version; one without a trust list keeps
        the provisioned ``trust``."""
        try:
            check_document(state, library)
            pump = cls(
                str(state["pump"]),
                str(state["model"]),
                clock,
                channels=int(state["channels"]),
                next_seq=int(state["next_seq"]),
                library=library,
                battery_charge_min=required(state["battery_charge_min"]),
                require_verification=bool(state["require_verification"]),
                hardware=hardware,
                configuration=configuration_from(state.get("configuration")),
                trust=trust,
            )
            if state.get("trust") is not None:
                pump._core.trust = TrustState.from_dict(state["trust"])
            pump._core.pending_configuration = configuration_from(state.get("pending_configuration"))
            pump._core.software = software_from(state)
            pump._restart.restore(state)
        except (KeyError, TypeError, ValueError, AttributeError, SignatureError) as error:
            raise PumpError(
                f"persisted pump state is not valid: {error!r}", code="pump.state_invalid"
            ) from None
        return pump


def time_to_alarm_s(caps: Capabilities, rate_ml_per_h: Decimal, threshold_mmhg: Decimal) -> Decimal:
    """Declared time from downstream occlusion to alarm for a model, rate and threshold."""
    line = LineModel(
        threshold_mmhg=threshold_mmhg,
        compliance_ul_per_mmhg=caps.line_compliance_ul_per_mmhg,
        backoff_ml=caps.occlusion_backoff_ml,
    )
    return time_to_deliver(line.stored_at_alarm_ml, rate_ml_per_h)
