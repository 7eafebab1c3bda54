"""The pump's alarm actions: raise (a stopping alarm stops delivery), condition ended, operator clear,
audio pause and its expiry, and the paused-channel reminder and its escalation.

Every way an alarm leaves the board goes through ``_ended``, which emits ``alarm.cleared`` with the reason
(``EndedBy``), the priority it had and, when another alarm took its place, ``superseded_by``; every change
of priority emits ``alarm.escalated``. A server folding these events holds the pump's board exactly."""

from __future__ import annotations

from decimal import Decimal

from smartpump.errors import PumpError
from smartpump.pump.alarms import ALARMS, AUDIO_PAUSE_S, ActiveAlarm, AlarmId, AlarmRecord, EndedBy, Priority
from smartpump.pump.channel import Channel, ChannelState
from smartpump.pump.core import Action, PumpCore
from smartpump.pump.delivery import OverlayKind
from smartpump.pump.events import EventType

_STOPPABLE = (ChannelState.RUNNING, ChannelState.KVO, ChannelState.PAUSED, ChannelState.OCCLUSION_HOLD)


class AlarmControl:
    """Raises, ends and clears alarms on a pump's board, each an event."""

    def __init__(self, core: PumpCore) -> None:
        self.core = core

    def raise_(
        self, alarm: AlarmId, cid: str | None, *, value: Decimal | None, limit: Decimal | None
    ) -> None:
        """Raise an alarm (once while active); a new alarm breaks an audio pause, a stopping one stops
        delivery on its channel (or every channel)."""
        core = self.core
        if not core.alarms.raise_(alarm, cid, core.t, value, limit):
            return
        spec = ALARMS[alarm]
        core.emit(
            EventType.ALARM_RAISED,
            cid,
            alarm=alarm.value,
            priority=spec.priority.value,
            latching=spec.latching,
            stops_delivery=spec.stops_delivery,
            value=value,
            limit=limit,
            message=spec.message_key,
        )
        if core.alarms.audio_paused_until_s is not None and core.t < core.alarms.audio_paused_until_s:
            core.alarms.audio_paused_until_s = None
            core.emit(EventType.ALARM_AUDIO_RESUMED, cid, reason="new_alarm")
        if spec.stops_delivery:
            targets = core.channels.values() if cid is None else [core.channels[cid]]
            for channel in targets:
                self._stop_for_alarm(channel)

    def _stop_for_alarm(self, channel: Channel) -> None:
        if channel.state not in _STOPPABLE:
            return
        channel.hold_until_s = None
        therapy = channel.therapy
        if (
            therapy is not None
            and therapy.overlay is not None
            and therapy.overlay.kind is not OverlayKind.SECONDARY
        ):
            self.core.emit(
                EventType.BOLUS_CANCELLED,
                channel.id,
                kind=therapy.overlay.kind.value,
                delivered_ml=therapy.overlay.delivered_ml,
                reason="alarm",
            )
            therapy.overlay = None
        self.clear_paused(channel, EndedBy.SUPERSEDED, superseded_by=self._stopping_alarm(channel))
        channel.move_to(ChannelState.ALARM)

    def _stopping_alarm(self, channel: Channel) -> AlarmId | None:
        """The newest shown alarm that stops delivery on this channel (what supersedes its reminder)."""
        stopping = [
            a
            for a in self.core.alarms.active.values()
            if a.channel in (channel.id, None) and ALARMS[a.id].stops_delivery
        ]
        return max(stopping, key=lambda a: a.raised_at_s).id if stopping else None

    def clear_paused(
        self, channel: Channel, by: EndedBy = EndedBy.RESUMED, *, superseded_by: AlarmId | None = None
    ) -> None:
        """Forget the channel's pause clock and drop its paused reminder (``by``: why it ended)."""
        channel.paused_since_s = None
        channel.paused_reminded = False
        channel.paused_escalated = False
        self.end(AlarmId.CHANNEL_PAUSED, channel.id, by, superseded_by=superseded_by)

    def end(
        self, alarm: AlarmId, cid: str | None, by: EndedBy, *, superseded_by: AlarmId | None = None
    ) -> bool:
        """Remove a shown alarm whatever its latching (its cause was resolved by an action) and emit why;
        False when it was not shown."""
        current = self.core.alarms.active.get((alarm, cid))
        if current is None or not self.core.alarms.drop(alarm, cid, self.core.t):
            return False
        self._ended(current, by, superseded_by)
        return True

    def condition_ended(
        self,
        alarm: AlarmId,
        cid: str | None,
        by: EndedBy = EndedBy.CONDITION_ENDED,
        *,
        superseded_by: AlarmId | None = None,
    ) -> None:
        """The alarm's condition is gone: a non-latching alarm clears (event), a latching one waits."""
        current = self.core.alarms.active.get((alarm, cid))
        if current is not None and self.core.alarms.condition_ended(alarm, cid, self.core.t):
            self._ended(current, by, superseded_by)

    def _ended(self, alarm: ActiveAlarm, by: EndedBy, superseded_by: AlarmId | None) -> None:
        self.core.emit(
            EventType.ALARM_CLEARED,
            alarm.channel,
            alarm=alarm.id.value,
            by=by.value,
            duration_s=self.core.t - alarm.raised_at_s,
            priority=alarm.priority.value,
            superseded_by=None if superseded_by is None else superseded_by.value,
        )

    def silence(self) -> None:
        """Audio pause (2 min) of the alarms now sounding; a new alarm breaks through."""
        core = self.core
        core.sync()
        if not core.alarms.active and not core.alarms.audible(core.t):
            raise PumpError("no alarm is sounding", code="pump.no_alarm")
        core.alarms.pause_audio(core.t + AUDIO_PAUSE_S)
        core.emit(
            EventType.ALARM_SILENCED,
            None,
            alarms=sorted(a.id.value for a in core.alarms.active.values()),
            pause_s=AUDIO_PAUSE_S,
        )

    def clear_alarm(self, alarm: AlarmId | str, cid: str | None) -> None:
        """The operator resets an alarm whose condition has ended (latching alarms need this)."""
        core = self.core
        core.sync()
        alarm_id = AlarmId(alarm)
        removed = core.alarms.clear(alarm_id, cid, core.t)
        self._ended(removed, EndedBy.OPERATOR, None)
        core.after_change()

    def alarm_log(self) -> list[AlarmRecord]:
        """Every alarm raised, with times, priority, the triggering value and the limit in force."""
        return list(self.core.alarms.log)

    def first_due(self, until: Decimal | None) -> tuple[Decimal, Action] | None:
        """The end of an audio pause."""
        t = self.core.alarms.audio_paused_until_s
        if t is not None and (until is None or t <= until):
            return t, self._audio_resumed
        return None

    def _audio_resumed(self) -> None:
        self.core.alarms.audio_paused_until_s = None
        self.core.emit(EventType.ALARM_AUDIO_RESUMED, None, reason="pause_expired")

    def paused_reminder(self, channel: Channel) -> None:
        """A channel left paused: the reminder alarm."""
        channel.paused_reminded = True
        self.raise_(AlarmId.CHANNEL_PAUSED, channel.id, value=None, limit=None)

    def paused_escalation(self, channel: Channel) -> None:
        """Still paused after the reminder: escalate it to MEDIUM."""
        channel.paused_escalated = True
        previous = self.core.alarms.escalate(AlarmId.CHANNEL_PAUSED, channel.id, Priority.MEDIUM)
        self.core.emit(
            EventType.ALARM_ESCALATED,
            channel.id,
            alarm=AlarmId.CHANNEL_PAUSED.value,
            from_priority=previous.value,
            to_priority=Priority.MEDIUM.value,
        )
