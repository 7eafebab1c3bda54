"""The pump runtime: pure state machines driven by actions and an injected Clock, emitting events."""

from smartpump.pump.alarms import ALARMS, AlarmId, Priority
from smartpump.pump.capabilities import CAPABILITIES, Capabilities, PumpModel, capabilities
from smartpump.pump.channel import ChannelState
from smartpump.pump.delivery import Step
from smartpump.pump.device import DeclineReason, OverrideReason, Pump
from smartpump.pump.events import EVENT_FIELDS, SCHEMA_VERSION, EventType, PumpEvent
from smartpump.pump.status import AlarmStatus, ChannelStatus, PumpStatus
from smartpump.pump.verification import BedsideScan

__all__ = [
    "ALARMS",
    "CAPABILITIES",
    "EVENT_FIELDS",
    "SCHEMA_VERSION",
    "AlarmId",
    "AlarmStatus",
    "BedsideScan",
    "Capabilities",
    "ChannelState",
    "ChannelStatus",
    "DeclineReason",
    "EventType",
    "OverrideReason",
    "Priority",
    "Pump",
    "PumpEvent",
    "PumpModel",
    "PumpStatus",
    "Step",
    "capabilities",
]
