"""The pump's event vocabulary (one table) and the append-only event log with a persisted ``seq``.

Every state change of a pump is one ``PumpEvent``; ``seq`` is strictly increasing per pump and
survives restarts through ``EventLog.next_seq``. Data values are str, int, bool, None, Decimal or
lists/dicts of those; ``to_dict`` writes Decimals as exact strings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from smartpump.errors import PumpError

SCHEMA_VERSION: Final = 1


class EventType(StrEnum):
    """Every event type a pump emits (dotted, past tense, stable)."""

    PUMP_STARTED = "pump.started"
    PUMP_SELF_TEST_FAILED = "pump.self_test_failed"
    PUMP_STATE_RESTORED = "pump.state_restored"
    PUMP_STATE_REJECTED = "pump.state_rejected"
    CLOCK_CHANGED = "clock.changed"
    MOTOR_RATE_MISMATCH = "motor.rate_mismatch"
    CARE_AREA_SELECTED = "care_area.selected"
    PATIENT_PARAMETERS_CHANGED = "patient.parameters_changed"
    PATIENT_ASSOCIATED = "patient.associated"
    PROGRAM_CHECKED = "program.checked"
    PROGRAM_REFUSED = "program.refused"
    ALERT_OVERRIDDEN = "alert.overridden"
    PROGRAM_REPROGRAMMED = "program.reprogrammed"
    PROGRAM_CANCELLED = "program.cancelled"
    PROGRAM_CONFIRMED = "program.confirmed"
    START_REFUSED = "start.refused"
    INFUSION_SCHEDULED = "infusion.scheduled"
    INFUSION_STARTED = "infusion.started"
    INFUSION_PAUSED = "infusion.paused"
    INFUSION_RESUMED = "infusion.resumed"
    INFUSION_STOPPED = "infusion.stopped"
    INFUSION_COMPLETED = "infusion.completed"
    INFUSION_STANDBY = "infusion.standby"
    NEAR_END_REACHED = "infusion.near_end_reached"
    KVO_STARTED = "kvo.started"
    RATE_CHANGED = "rate.changed"
    STEP_STARTED = "step.started"
    BOLUS_STARTED = "bolus.started"
    BOLUS_COMPLETED = "bolus.completed"
    BOLUS_CANCELLED = "bolus.cancelled"
    SECONDARY_STARTED = "secondary.started"
    SECONDARY_COMPLETED = "secondary.completed"
    PCA_DEMAND_GRANTED = "pca.demand_granted"
    PCA_DEMAND_DENIED = "pca.demand_denied"
    PCA_PAUSED = "pca.paused"
    PCA_DOSE_GRANTED = "pca.dose_granted"
    PCA_MAX_DOSE_REACHED = "pca.max_dose_reached"
    PCA_BASAL_RESUMED = "pca.basal_resumed"
    VITALS_RECORDED = "vitals.recorded"
    OCCLUSION_DETECTED = "occlusion.detected"
    OCCLUSION_RELEASED = "occlusion.released"
    OCCLUSION_AUTO_RESTARTED = "occlusion.auto_restarted"
    INFILTRATION_SUSPECTED = "infiltration.suspected"
    ALARM_RAISED = "alarm.raised"
    ALARM_CLEARED = "alarm.cleared"
    ALARM_SILENCED = "alarm.silenced"
    ALARM_AUDIO_RESUMED = "alarm.audio_resumed"
    ALARM_ESCALATED = "alarm.escalated"
    POWER_AC_LOST = "power.ac_lost"
    POWER_AC_RESTORED = "power.ac_restored"
    BATTERY_LOW = "battery.low"
    BATTERY_DEPLETED = "battery.depleted"
    SET_INSTALLED = "set.installed"
    SET_CHANGE_DUE = "set.change_due"
    VERIFICATION_PASSED = "verification.passed"
    VERIFICATION_FAILED = "verification.failed"
    DUPLICATE_THERAPY_DETECTED = "duplicate_therapy.detected"
    LIBRARY_INSTALLED = "library.installed"
    LIBRARY_REJECTED = "library.rejected"
    LIBRARY_ACTIVATED = "library.activated"
    CONFIGURATION_INSTALLED = "configuration.installed"
    CONFIGURATION_REJECTED = "configuration.rejected"
    CONFIGURATION_ACTIVATED = "configuration.activated"
    SOFTWARE_INSTALLED = "software.installed"
    SOFTWARE_REJECTED = "software.rejected"
    SOFTWARE_ACTIVATED = "software.activated"
    COMMAND_REFUSED = "command.refused"
    TRUST_INSTALLED = "trust.installed"
    TRUST_REJECTED = "trust.rejected"
    EVENTS_SHED = "events.shed"


EVENT_FIELDS: Final[dict[EventType, tuple[str, ...]]] = {
    EventType.PUMP_STARTED: ("model", "channels", "library_version", "resumed_from_seq", "library_sha256"),
    EventType.PUMP_SELF_TEST_FAILED: ("test", "detail"),
    EventType.PUMP_STATE_RESTORED: ("library_version", "care_area", "downtime_s", "channels", "interrupted"),
    EventType.PUMP_STATE_REJECTED: ("code", "reason"),
    EventType.CLOCK_CHANGED: ("jump_s", "expected_utc", "clock_utc"),
    EventType.MOTOR_RATE_MISMATCH: (
        "displayed_ml_per_h",
        "setpoint_ml_per_h",
        "actuator_ml_per_h",
        "tolerance_ml_per_h",
        "trigger",
    ),
    EventType.CARE_AREA_SELECTED: ("care_area", "library_version"),
    EventType.PATIENT_ASSOCIATED: (
        "patient_id",
        "authority",
        "id_type",
        "family_name",
        "given_name",
        "source",
        "previous_patient_id",
    ),
    EventType.PATIENT_PARAMETERS_CHANGED: (
        "weight_kg",
        "height_cm",
        "bsa_m2",
        "previous_weight_kg",
        "previous_height_cm",
        "previous_bsa_m2",
        "rechecked",
        "override_reason",
    ),
    EventType.PROGRAM_CHECKED: (
        "entry_id",
        "drug",
        "care_area",
        "kind",
        "dose",
        "dose_unit",
        "dose_programmed",
        "rate_ml_per_h",
        "rate_ml_per_h_exact",
        "rate_resolution_ml_per_h",
        "vtbi_ml",
        "duration_min",
        "concentration",
        "route",
        "weight_kg",
        "height_cm",
        "bsa_m2",
        "verdict",
        "alerts",
        "deliverable",
        "library_version",
        "is_basic",
        "auto_programmed",
        "is_titration",
    ),
    EventType.PROGRAM_REFUSED: ("code", "reason", "entry_id", "care_area"),
    EventType.ALERT_OVERRIDDEN: ("reason", "entry_id", "drug", "alerts", "library_version"),
    EventType.PROGRAM_REPROGRAMMED: ("previous_verdict", "previous_alerts", "entry_id"),
    EventType.PROGRAM_CANCELLED: ("verdict", "entry_id", "alerts", "auto_programmed", "reason"),
    EventType.PROGRAM_CONFIRMED: ("entry_id", "rate_ml_per_h", "vtbi_ml", "verdict", "overridden"),
    EventType.START_REFUSED: ("code", "reason"),
    EventType.INFUSION_SCHEDULED: ("start_in_s",),
    EventType.INFUSION_STARTED: (
        "entry_id",
        "drug",
        "care_area",
        "rate_ml_per_h",
        "vtbi_ml",
        "dose",
        "dose_programmed",
        "dose_unit",
        "library_version",
        "is_basic",
        "auto_programmed",
    ),
    EventType.INFUSION_PAUSED: ("infused_ml", "reason"),
    EventType.INFUSION_RESUMED: ("rate_ml_per_h",),
    EventType.INFUSION_STOPPED: ("infused_ml", "reason"),
    EventType.INFUSION_COMPLETED: ("infused_ml", "vtbi_ml"),
    EventType.INFUSION_STANDBY: ("until_s",),
    EventType.NEAR_END_REACHED: ("remaining_ml", "remaining_min"),
    EventType.KVO_STARTED: ("rate_ml_per_h",),
    EventType.RATE_CHANGED: ("old_rate_ml_per_h", "new_rate_ml_per_h", "dose", "dose_unit", "cause"),
    EventType.STEP_STARTED: ("step", "rate_ml_per_h", "volume_ml"),
    EventType.BOLUS_STARTED: ("kind", "dose", "dose_unit", "volume_ml", "rate_ml_per_h"),
    EventType.BOLUS_COMPLETED: ("kind", "volume_ml"),
    EventType.BOLUS_CANCELLED: ("kind", "delivered_ml", "reason"),
    EventType.SECONDARY_STARTED: ("entry_id", "rate_ml_per_h", "vtbi_ml", "callback"),
    EventType.SECONDARY_COMPLETED: ("volume_ml", "primary_rate_ml_per_h", "callback"),
    EventType.PCA_DEMAND_GRANTED: (
        "dose",
        "unit",
        "delivered_amount",
        "delivered_unit",
        "volume_ml",
        "window_total",
        "max_dose",
        "window_h",
        "ceiling",
    ),
    EventType.PCA_DEMAND_DENIED: (
        "reason",
        "next_allowed_in_s",
        "window_total",
        "max_dose",
        "window_h",
        "ceiling",
    ),
    EventType.PCA_PAUSED: ("reading", "value", "threshold"),
    EventType.PCA_DOSE_GRANTED: (
        "kind",
        "dose",
        "unit",
        "delivered_amount",
        "delivered_unit",
        "volume_ml",
        "window_total",
        "max_dose",
        "window_h",
        "ceiling",
    ),
    EventType.PCA_MAX_DOSE_REACHED: ("ceiling", "max_dose", "window_h", "window_total", "unit"),
    EventType.PCA_BASAL_RESUMED: ("rate_ml_per_h", "ceiling", "max_dose", "window_h", "window_total", "unit"),
    EventType.VITALS_RECORDED: ("spo2_percent", "etco2_mmhg", "resp_rate_bpm"),
    EventType.OCCLUSION_DETECTED: ("pressure_mmhg", "threshold_mmhg", "auto_restart", "recheck_s"),
    EventType.OCCLUSION_RELEASED: ("stored_ml", "backoff_ml", "bolus_ml"),
    EventType.OCCLUSION_AUTO_RESTARTED: ("attempt", "max_attempts", "window_s", "rate_ml_per_h"),
    EventType.INFILTRATION_SUSPECTED: ("baseline", "latest", "ratio"),
    EventType.ALARM_RAISED: ("alarm", "priority", "latching", "stops_delivery", "value", "limit", "message"),
    EventType.ALARM_CLEARED: ("alarm", "by", "duration_s", "priority", "superseded_by"),
    EventType.ALARM_SILENCED: ("alarms", "pause_s"),
    EventType.ALARM_AUDIO_RESUMED: ("reason",),
    EventType.ALARM_ESCALATED: ("alarm", "from_priority", "to_priority"),
    EventType.POWER_AC_LOST: ("battery_remaining_min",),
    EventType.POWER_AC_RESTORED: ("battery_remaining_min",),
    EventType.BATTERY_LOW: ("remaining_min",),
    EventType.BATTERY_DEPLETED: ("remaining_min",),
    EventType.SET_INSTALLED: ("set_type", "lot", "change_due_h", "line_label"),
    EventType.SET_CHANGE_DUE: ("set_type", "lot", "installed_h_ago"),
    EventType.VERIFICATION_PASSED: ("patient_id", "drug", "concentration", "route", "line_label"),
    EventType.VERIFICATION_FAILED: ("reasons",),
    EventType.DUPLICATE_THERAPY_DETECTED: ("drug", "channels"),
    EventType.LIBRARY_INSTALLED: ("version", "name", "pending", "sha256", "key_id"),
    EventType.LIBRARY_REJECTED: ("code", "reason"),
    EventType.LIBRARY_ACTIVATED: ("version", "previous_version", "sha256"),
    EventType.CONFIGURATION_INSTALLED: ("version", "pending"),
    EventType.CONFIGURATION_REJECTED: ("code", "reason"),
    EventType.CONFIGURATION_ACTIVATED: ("version", "previous_version", "sha256"),
    EventType.SOFTWARE_INSTALLED: ("version", "pending"),
    EventType.SOFTWARE_REJECTED: ("code", "reason"),
    EventType.SOFTWARE_ACTIVATED: ("version", "previous_version"),
    EventType.COMMAND_REFUSED: ("command", "nonce", "code", "reason"),
    EventType.TRUST_INSTALLED: ("version", "previous_version", "key_id", "key_ids", "revoked"),
    EventType.TRUST_REJECTED: ("code", "reason", "key_id"),
    EventType.EVENTS_SHED: ("count", "first_seq", "last_seq", "seqs", "types"),
}

EventValue = str | int | bool | Decimal | None | list[Any] | dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class PumpEvent:
    """One immutable state change: schema version, pump id, seq, UTC time, channel, type, data."""

    v: int = SCHEMA_VERSION
    pump: str
    seq: int
    ts: datetime
    channel: str | None
    type: EventType
    data: Mapping[str, EventValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ISO-8601 time, Decimals as exact strings."""
        return {
            "v": self.v,
            "pump": self.pump,
            "seq": self.seq,
            "ts": self.ts.isoformat(),
            "channel": self.channel,
            "type": self.type.value,
            "data": _plain(dict(self.data)),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PumpEvent:
        """Rebuild an event written by ``to_dict`` (Decimals stay strings in ``data``)."""
        try:
            return cls(
                v=int(raw["v"]),
                pump=str(raw["pump"]),
                seq=int(raw["seq"]),
                ts=datetime.fromisoformat(str(raw["ts"])),
                channel=None if raw.get("channel") is None else str(raw["channel"]),
                type=EventType(raw["type"]),
                data=dict(raw.get("data") or {}),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise PumpError(f"not a pump event: {error}", code="pump.event_invalid") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class EventLog:
    """Append-only event list of one pump; ``next_seq`` is what must be persisted across restarts."""

    def __init__(self, pump_id: str, *, next_seq: int = 1) -> None:
        if next_seq < 1:
            raise PumpError(f"next_seq must be >= 1, got {next_seq}", code="pump.seq_invalid")
        self.pump_id = pump_id
        self.next_seq = next_seq
        self._events: list[PumpEvent] = []

    def append(
        self, type_: EventType, ts: datetime, channel: str | None, data: Mapping[str, EventValue]
    ) -> PumpEvent:
        """Record one event with the next seq and return it."""
        event = PumpEvent(pump=self.pump_id, seq=self.next_seq, ts=ts, channel=channel, type=type_, data=data)
        self.next_seq += 1
        self._events.append(event)
        return event

    def __iter__(self) -> Iterator[PumpEvent]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def since(self, seq: int) -> list[PumpEvent]:
        """Events still held with seq greater than ``seq`` (for upload after an outage)."""
        first = self.next_seq - len(self._events)
        return self._events[max(0, seq + 1 - first) :]

    def acknowledge(self, through_seq: int) -> None:
        """Drop the held events up to ``through_seq`` once the receiver has them; seq keeps counting."""
        first = self.next_seq - len(self._events)
        del self._events[: max(0, through_seq + 1 - first)]

    def of_type(self, type_: EventType) -> list[PumpEvent]:
        """Events of one type, in order."""
        return [e for e in self._events if e.type is type_]
