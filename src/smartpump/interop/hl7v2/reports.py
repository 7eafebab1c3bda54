"""Plain typed inputs of the outbound PCD builders: what a pump reports, independent of HL7.

``InfusionEventReport`` feeds PCD-10 (IPEC), ``PumpStatusReport`` PCD-01 (DEC) and ``AlarmReport``
PCD-04 (ACM). The server fills them from the event stream; the builders never read state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from smartpump.units import Concentration, DoseUnit


class SourceKind(StrEnum):
    """An infusate source channel (IPEC 'infusate source')."""

    PRIMARY = "primary"
    SECONDARY = "secondary"


class DeliveryStatus(StrEnum):
    """MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS values (text after ``pump-delivery-status-``)."""

    DELIVERING = "delivering"
    NOT_DELIVERING = "not-delivering"
    TRANSITIONING = "transitioning"


class ProgramDeliveryMode(StrEnum):
    """MDC_DEV_PUMP_PROGRAM_DELIVERY_MODE values (text after ``pump-program-delivery-mode-``)."""

    CONTINUOUS = "continuous"
    BOLUS = "bolus"
    LOADING_DOSE = "loading-dose"
    PCA = "pca"
    MULTISTEP = "multistep"


class InfusionEventKind(StrEnum):
    """The IPEC events we send (a rate change is a STOP followed by a START, TF Vol. 3)."""

    START = "MDC_EVT_PUMP_DELIV_START"
    STOP = "MDC_EVT_PUMP_DELIV_STOP"
    COMPLETE = "MDC_EVT_PUMP_DELIV_COMP"


class AlarmPhase(StrEnum):
    """MDC_ATTR_EVENT_PHASE."""

    START = "start"
    CONTINUE = "continue"
    END = "end"


class AlarmState(StrEnum):
    """MDC_ATTR_ALARM_STATE."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    LATCHED = "latched"


class InactivationState(StrEnum):
    """MDC_ATTR_ALARM_INACTIVATION_STATE (acknowledged = the nurse acknowledged at the pump)."""

    ENABLED = "enabled"
    AUDIO_PAUSED = "audio-paused"
    AUDIO_OFF = "audio-off"
    ALARM_PAUSED = "alarm-paused"
    ALARM_OFF = "alarm-off"
    ACKNOWLEDGED = "acknowledged"


class AlarmPriority(StrEnum):
    """MDC_ATTR_ALARM_PRIORITY: high, medium, low, none."""

    HIGH = "PH"
    MEDIUM = "PM"
    LOW = "PL"
    NONE = "PN"


class AlertKind(StrEnum):
    """MDC_ATTR_ALERT_TYPE: technical, physiological, advisory."""

    TECHNICAL = "ST"
    PHYSIOLOGICAL = "SP"
    ADVISORY = "SA"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceIdentity:
    """Who reports: device ID, EUI-64, MDS/VMD REFIDs, the sending application and the receiver."""

    device_id: str
    eui64: str
    mds_refid: str = "MDC_DEV_PUMP_INFUS_LVP_MDS"
    vmd_refid: str = "MDC_DEV_PUMP_INFUS_LVP_VMD"
    sending_application: str = "SMARTPUMP"
    sending_facility: str = "SMARTPUMP"
    receiving_application: str = "EHR"
    receiving_facility: str = "EHR"
    clinician_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientContext:
    """The patient the pump is associated with, and where: PID-3 (ID, assigning authority, identifier type
    from HL7 table 0203), PID-5 (legal name), PV1-3 (location)."""

    patient_id: str
    authority: str = ""
    id_type: str = "PI"
    family_name: str = ""
    given_name: str = ""
    point_of_care: str = ""
    room: str = ""
    bed: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceChannel:
    """One infusate source as it stands: program, volumes, drug and the context it runs in."""

    kind: SourceKind = SourceKind.PRIMARY
    label: str = "Primary"
    delivery_status: DeliveryStatus = DeliveryStatus.DELIVERING
    delivery_mode: ProgramDeliveryMode = ProgramDeliveryMode.CONTINUOUS
    rate_ml_per_h: Decimal | None = None
    dose_rate: Decimal | None = None
    dose_unit: DoseUnit | None = None
    vtbi_ml: Decimal | None = None
    volume_delivered_ml: Decimal | None = None
    vtbi_remaining_ml: Decimal | None = None
    time_remaining_min: Decimal | None = None
    drug_name: str = ""
    concentration: Concentration | None = None
    care_area: str = ""
    weight_kg: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InfusionEventReport:
    """One IPEC event on one source, with the order it carries out (PCD-10)."""

    control_id: str
    sent_at: datetime
    event_time: datetime
    event: InfusionEventKind
    device: DeviceIdentity
    patient: PatientContext | None
    source: SourceChannel
    order_id: str
    parent_order_id: str = ""
    filler_id: str = ""
    drug_code: str = ""
    is_infusing: bool = True
    current_flow_ml_per_h: Decimal | None = None
    library_version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PumpStatusReport:
    """Periodic pump status (PCD-01): every source channel at one instant."""

    control_id: str
    sent_at: datetime
    observed_at: datetime
    device: DeviceIdentity
    patient: PatientContext | None
    sources: tuple[SourceChannel, ...]
    order_id: str = ""
    is_infusing: bool = False
    current_flow_ml_per_h: Decimal | None = None
    library_version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmReport:
    """One alarm phase (PCD-04); ``alert_id`` stays the same from start to end of one alarm."""

    control_id: str
    sent_at: datetime
    observed_at: datetime
    device: DeviceIdentity
    patient: PatientContext | None
    alert_id: str
    alarm_refid: str
    alarm_code: int
    alarm_text: str
    phase: AlarmPhase
    state: AlarmState
    inactivation: InactivationState = InactivationState.ENABLED
    priority: AlarmPriority = AlarmPriority.HIGH
    kind: AlertKind = AlertKind.TECHNICAL
    source_refid: str = "MDC_DEV_PUMP_INFUS_MDS"
    source_channel: SourceKind | None = None
