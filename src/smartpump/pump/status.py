"""The typed status snapshot a display (and the heartbeat) shows: library, configuration and software
versions, care area, power, the alarms in presentation order and each channel's state and volumes, the
pump's clock and the seq of its last event (what the snapshot already accounts for)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from types import MappingProxyType

from smartpump.pump.channel import Channel, ChannelState
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
    """One channel: state, drug and library entry, the dose it delivers (in the entry's unit), motor rate
    (mL/h), the therapy's volumes (mL), the
    primary volume left (never negative; None without a VTBI) and the time left at the running rate
    (minutes; None unless the channel runs toward a VTBI)."""

    state: str
    drug: str | None
    rate_ml_per_h: Decimal
    infused_ml: Decimal
    vtbi_ml: Decimal | None
    kvo_ml: Decimal
    entry_id: str | None = None
    remaining_ml: Decimal | None = None
    remaining_min: Decimal | None = None
    dose: Decimal | None = None
    dose_unit: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The channel as a mapping with the field names as keys (Decimals kept exact)."""
        return {
            "state": self.state,
            "drug": self.drug,
            "rate_ml_per_h": self.rate_ml_per_h,
            "infused_ml": self.infused_ml,
            "vtbi_ml": self.vtbi_ml,
            "kvo_ml": self.kvo_ml,
            "entry_id": self.entry_id,
            "remaining_ml": self.remaining_ml,
            "remaining_min": self.remaining_min,
            "dose": self.dose,
            "dose_unit": self.dose_unit,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PumpStatus:
    """What a display shows: library, configuration and software versions (each with the one pending),
    care area, channels, alarms, battery; ``library_sha256`` is the active library's content hash, its
    identity (a version number alone is not); ``clock`` is the pump's UTC time of the snapshot and
    ``last_seq`` the seq of the last event it accounts for (0 before the first)."""

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
    battery_percent: int = 100
    clock: datetime | None = None
    last_seq: int = 0

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
            "battery_percent": self.battery_percent,
            "clock": self.clock,
            "last_seq": self.last_seq,
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
        channels=MappingProxyType({c.id: _channel_status(c) for c in core.channels.values()}),
        battery_percent=int(
            (core.battery.charge_at(core.t) * 100 / core.battery.capacity_min).to_integral_value(ROUND_FLOOR)
        ),
        clock=core.ts(core.t),
        last_seq=core.events.next_seq - 1,
    )


def _channel_status(channel: Channel) -> ChannelStatus:
    therapy = channel.therapy
    if therapy is None:
        return ChannelStatus(
            state=channel.state.value,
            drug=None,
            rate_ml_per_h=channel.flow_ml_per_h,
            infused_ml=ZERO,
            vtbi_ml=None,
            kvo_ml=ZERO,
        )
    remaining = None if therapy.remaining_ml is None else max(ZERO, therapy.remaining_ml)
    running = channel.state is ChannelState.RUNNING and therapy.rate_ml_per_h > 0
    return ChannelStatus(
        state=channel.state.value,
        drug=therapy.drug,
        rate_ml_per_h=channel.flow_ml_per_h,
        infused_ml=therapy.infused_ml,
        vtbi_ml=therapy.vtbi_ml,
        kvo_ml=therapy.kvo_ml,
        entry_id=therapy.program.entry_id,
        remaining_ml=remaining,
        remaining_min=remaining * 60 / therapy.rate_ml_per_h if remaining is not None and running else None,
        dose=therapy.verdict.dose,
        dose_unit=therapy.verdict.dose_unit if therapy.verdict.dose is not None else None,
    )
