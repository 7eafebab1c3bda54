"""The pump's shared kernel: identity, time, event log, channels, alarm board, library, configuration
and software state, the patient's parameters, and the two hooks every part uses (play what is due;
keep derived state).

Time comes only from the injected Clock. Before each action the pump plays, in order, everything
that was due since the last call (VTBI reached, occlusion alarm, battery low...) at its exact
computed time, so results do not depend on how often it is called. Volumes integrate on the
monotonic reading only; the wall clock stamps events, and a jump of it is logged (SAF-CLK-01).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, NoReturn, Protocol

from smartpump.clock import Clock
from smartpump.ders.program import NO_PATIENT, PatientParameters
from smartpump.errors import PumpError
from smartpump.library.keys import TrustStore
from smartpump.library.model import CareArea, DrugLibrary
from smartpump.library.trust_list import TrustState
from smartpump.pump.alarms import AlarmBoard
from smartpump.pump.capabilities import Capabilities
from smartpump.pump.channel import Channel, Pending
from smartpump.pump.configuration import ConfigurationSettings, PumpConfiguration, factory_settings
from smartpump.pump.delivery import seconds
from smartpump.pump.events import EventLog, EventType, EventValue, PumpEvent
from smartpump.pump.hardware import HardwarePort
from smartpump.pump.patient import PatientIdentity
from smartpump.pump.sensors import AirMonitor, Battery, LineModel
from smartpump.pump.software import SoftwareSlot

CHANNEL_IDS: Final = ("A", "B", "C", "D")
CLOCK_JUMP_THRESHOLD: Final = timedelta(seconds=1)

Action = Callable[[], None]


class DueSource(Protocol):
    """A part that has computed occurrences (a channel's VTBI end, the battery running low...)."""

    def first_due(self, until: Decimal | None) -> tuple[Decimal, Action] | None:
        """Its earliest occurrence at or before ``until`` (any when None) with the action playing it;
        on a tie, the first in its own order."""


def _exact_s(delta: timedelta) -> Decimal:
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000


class PumpCore:
    """State shared by the parts of one pump; ``sync`` plays what is due, ``after_change`` runs the
    parts' consistency hooks in registration order."""

    def __init__(
        self,
        pump_id: str,
        caps: Capabilities,
        clock: Clock,
        *,
        channels: int,
        next_seq: int,
        library: DrugLibrary | None,
        battery_charge_min: Decimal | None,
        require_verification: bool,
        hardware: HardwarePort | None,
        configuration: PumpConfiguration | None,
        trust: TrustStore,
    ) -> None:
        self.id = pump_id
        self.caps = caps
        self.clock = clock
        self.t = seconds(clock.monotonic_s())
        self.wall_offset = clock.now() - timedelta(seconds=clock.monotonic_s())
        self.hardware = hardware
        self.events = EventLog(pump_id, next_seq=next_seq)
        self.alarms = AlarmBoard()
        self.library: DrugLibrary | None = library
        self.pending_library: DrugLibrary | None = None
        self.care_area: CareArea | None = None
        self.patient_id: str | None = None
        self.patient: PatientIdentity | None = None
        self.patient_parameters: PatientParameters = NO_PATIENT
        self.configuration: PumpConfiguration | None = configuration
        self.pending_configuration: PumpConfiguration | None = None
        self.software = SoftwareSlot()
        self.trust = TrustState.provisioned(trust)
        self.settings: ConfigurationSettings = (
            configuration.settings if configuration is not None else factory_settings(caps.model)
        )
        self.require_verification = require_verification or self.settings.require_verification
        self.faulted = False
        self.battery = Battery(
            capacity_min=caps.battery_capacity_min,
            extra_load_per_channel=caps.battery_extra_load_per_channel,
            charge_per_min=caps.battery_charge_per_min,
            charge_min=battery_charge_min if battery_charge_min is not None else caps.battery_capacity_min,
            settled_at_s=self.t,
        )
        self.channels: dict[str, Channel] = {cid: self._new_channel(cid) for cid in CHANNEL_IDS[:channels]}
        self._due_sources: list[DueSource] = []
        self._change_hooks: list[Action] = []

    def _new_channel(self, cid: str) -> Channel:
        return Channel(
            id=cid,
            line=LineModel(
                threshold_mmhg=self.caps.default_occlusion_mmhg,
                compliance_ul_per_mmhg=self.caps.line_compliance_ul_per_mmhg,
                backoff_ml=self.caps.occlusion_backoff_ml,
            ),
            air=AirMonitor(
                single_ul=self.caps.air_single_bubble_ul,
                cumulative_ul=self.caps.air_cumulative_ul,
                window_s=self.caps.air_cumulative_window_min * 60,
            ),
            near_end_s=Decimal(self.settings.near_end_alert_min) * 60,
            settled_at_s=self.t,
        )

    # ----------------------------------------------------------------- hooks

    def add_due_source(self, source: DueSource) -> None:
        """Register where computed occurrences come from; ties play in registration order."""
        self._due_sources.append(source)

    def add_change_hook(self, hook: Action) -> None:
        """Register a hook ``after_change`` runs (in registration order)."""
        self._change_hooks.append(hook)

    def after_change(self) -> None:
        """Keep derived state consistent after an action or a due occurrence."""
        for hook in self._change_hooks:
            hook()

    # ----------------------------------------------------------------- time and events

    @property
    def configuration_version(self) -> int:
        """Version of the active configuration; 0 is the factory default."""
        return self.configuration.version if self.configuration is not None else 0

    def ts(self, t: Decimal) -> datetime:
        """The wall time of monotonic instant ``t``."""
        lag = seconds(self.clock.monotonic_s()) - t
        return self.clock.now() - timedelta(seconds=float(lag))

    def emit(self, type_: EventType, channel: str | None, **data: EventValue) -> PumpEvent:
        """Append an event stamped now."""
        return self.events.append(type_, self.ts(self.t), channel, data)

    def _first_due(self, until: Decimal | None) -> tuple[Decimal, Action] | None:
        first: tuple[Decimal, Action] | None = None
        for source in self._due_sources:
            due = source.first_due(until)
            if due is not None and (first is None or due[0] < first[0]):
                first = due
        return first

    def next_due_s(self) -> Decimal | None:
        """When the next computed occurrence falls (absolute monotonic s), or None."""
        first = self._first_due(None)
        return None if first is None else first[0]

    def sync(self) -> None:
        """Play everything due up to the clock's present, each at its own time."""
        target = seconds(self.clock.monotonic_s())
        if target < self.t:
            raise PumpError("the pump clock went backwards", code="pump.clock_backwards")
        self._watch_wall_clock()
        while (due := self._first_due(target)) is not None:
            t, action = due
            self.advance(max(t, self.t))
            action()
            self.after_change()
        self.advance(target)

    def _watch_wall_clock(self) -> None:
        """Log a jump of the wall clock against the monotonic clock (set by hand, NTP step, RTC reset),
        stamped with the new wall time at which it was seen; later events carry the new time basis."""
        now = self.clock.now()
        offset = now - timedelta(seconds=self.clock.monotonic_s())
        jump = offset - self.wall_offset
        self.wall_offset = offset
        if abs(jump) > CLOCK_JUMP_THRESHOLD:
            data: dict[str, EventValue] = {
                "jump_s": _exact_s(jump),
                "expected_utc": (now - jump).isoformat(),
                "clock_utc": now.isoformat(),
            }
            self.events.append(EventType.CLOCK_CHANGED, now, None, data)

    def advance(self, t: Decimal) -> None:
        """Settle every channel's volumes up to ``t`` and move the pump's time there."""
        for channel in self.channels.values():
            channel.settle(t)
        self.t = t

    # ----------------------------------------------------------------- lookups and guards

    def channel(self, cid: str) -> Channel:
        """The channel with this id (A-D)."""
        try:
            return self.channels[cid]
        except KeyError:
            raise PumpError(
                f"no channel {cid!r} (channels: {', '.join(self.channels)})", code="pump.no_channel"
            ) from None

    def active_library(self) -> DrugLibrary:
        """The installed library; refused when there is none."""
        if self.library is None:
            raise PumpError("no drug library is installed", code="pump.no_library")
        return self.library

    def area(self) -> CareArea:
        """The selected care area; refused when none is selected."""
        if self.care_area is None:
            raise PumpError("select a care area first", code="pump.no_care_area")
        return self.care_area

    def pending(self, channel: Channel) -> Pending:
        """The channel's pending program; refused when there is none."""
        if channel.pending is None:
            raise PumpError("no program is pending on this channel", code="pump.no_pending_program")
        return channel.pending

    def all_idle(self) -> bool:
        """True when no channel holds a therapy or a pending program."""
        return all(c.therapy is None and c.pending is None for c in self.channels.values())

    def refuse_start(self, cid: str, code: str, reason: str) -> NoReturn:
        """Log ``start.refused`` and raise the refusal."""
        self.emit(EventType.START_REFUSED, cid, code=code, reason=reason)
        raise PumpError(reason, code=code)
