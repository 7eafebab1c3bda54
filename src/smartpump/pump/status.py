"""The typed status snapshot a display (and the heartbeat) shows: library, configuration and software
versions, care area, power, the alarms in presentation order and each channel's state and volumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from smartpump.pump.core import PumpCore
from smartpump.pump.delivery import ZERO
from smartpump.pump.installation import library_sha256


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmStatus:
    """One shown alarm: its id, channel (None: the pump) and priority."""

    alarm: str
    channel: str | None
    priority: str

    def to_dict(self) -> dict[str, object]:
        """The alarm as a JSON-ready mapping with the field names as keys."""
        return {"alarm": self.alarm, "channel": self.channel, "priority": self.priority}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelStatus:
    """One channel: state, drug, motor rate (mL/h) and the therapy's volumes (mL)."""

    state: str
    drug: str | None
    rate_ml_per_h: Decimal
    infused_ml: Decimal
    vtbi_ml: Decimal | None
    kvo_ml: Decimal

    def to_dict(self) -> dict[str, object]:
        """The channel as a mapping with the field names as keys (Decimals kept exact)."""
        return {
            "state": self.state,
            "drug": self.drug,
            "rate_ml_per_h": self.rate_ml_per_h,
            "infused_ml": self.infused_ml,
            "vtbi_ml": self.vtbi_ml,
            "kvo_ml": self.kvo_ml,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PumpStatus:
    """What a display shows: library, configuration and software versions (each with the one pending),
    care area, channels, alarms, battery; ``library_sha256`` is the active library's content hash, its
    identity (a version number alone is not)."""

    pump: str
    model: str
    library_version: int | None
    library_pending: int | None
    library_sha256: str | None
    configuration_version: int
    configuration_pending: int | None
    software_version: str
    software_pending: str | None
    care_area: str | None
    on_ac: bool
    battery_remaining_min: Decimal
    audible: bool
    alarms: tuple[AlarmStatus, ...]
    channels: Mapping[str, ChannelStatus]

    def to_dict(self) -> dict[str, object]:
        """The snapshot as a mapping with the field names as keys (Decimals kept exact)."""
        return {
            "pump": self.pump,
            "model": self.model,
            "library_version": self.library_version,
            "library_pending": self.library_pending,
            "library_sha256": self.library_sha256,
            "configuration_version": self.configuration_version,
            "configuration_pending": self.configuration_pending,
            "software_version": self.software_version,
            "software_pending": self.software_pending,
            "care_area": self.care_area,
            "on_ac": self.on_ac,
            "battery_remaining_min": self.battery_remaining_min,
            "audible": self.audible,
            "alarms": [a.to_dict() for a in self.alarms],
            "channels": {cid: c.to_dict() for cid, c in self.channels.items()},
        }


def status_of(core: PumpCore) -> PumpStatus:
    """The pump's status at its current time (the caller syncs first)."""
    return PumpStatus(
        pump=core.id,
        model=core.caps.model.value,
        library_version=core.library.version if core.library else None,
        library_pending=core.pending_library.version if core.pending_library else None,
        library_sha256=library_sha256(core.library) if core.library else None,
        configuration_version=core.configuration_version,
        configuration_pending=core.pending_configuration.version if core.pending_configuration else None,
        software_version=core.software.installed_version,
        software_pending=core.software.pending_version,
        care_area=core.care_area.id if core.care_area else None,
        on_ac=core.battery.on_ac,
        battery_remaining_min=core.battery.remaining_min(core.t),
        audible=core.alarms.audible(core.t),
        alarms=tuple(
            AlarmStatus(alarm=a.id.value, channel=a.channel, priority=a.priority.value)
            for a in core.alarms.presented()
        ),
        channels=MappingProxyType(
            {
                c.id: ChannelStatus(
                    state=c.state.value,
                    drug=c.therapy.drug if c.therapy else None,
                    rate_ml_per_h=c.flow_ml_per_h,
                    infused_ml=c.therapy.infused_ml if c.therapy else ZERO,
                    vtbi_ml=c.therapy.vtbi_ml if c.therapy else None,
                    kvo_ml=c.therapy.kvo_ml if c.therapy else ZERO,
                )
                for c in core.channels.values()
            }
        ),
    )
