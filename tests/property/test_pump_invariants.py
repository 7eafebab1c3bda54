"""Hypothesis state machine over random bedside and fault actions: the pump's safety invariants hold.

Invariants: volume infused never exceeds VTBI; nothing is delivered while paused or in a stopping
alarm; no start after a hard stop without reprogramming; no PCA dose inside the lockout or beyond the
window maximum; every event has a strictly increasing seq.
"""

from __future__ import annotations

import contextlib
import itertools
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from smartpump.errors import SmartpumpError
from smartpump.pump import ChannelState, EventType, Pump, PumpModel
from smartpump.pump.pca import DoseKind
from tests.unit.pump.library import basic, dopamine, make_pump, morphine_pca

D = Decimal
CHANNELS = st.sampled_from(["A", "B"])


class LvpMachine(RuleBasedStateMachine):
    """Random programs, starts, pauses, titrations and faults on a two-channel pump."""

    def __init__(self) -> None:
        super().__init__()
        self.pump, self.clock = make_pump(PumpModel.LVP, channels=2)
        self.seen_events = 0
        self.volumes: dict[str, Decimal] = {}

    def _try(self, action: object) -> None:
        with contextlib.suppress(SmartpumpError):
            action()  # type: ignore[operator]

    @rule(
        cid=CHANNELS,
        dose=st.sampled_from(["0.5", "5", "19", "25", "50"]),
        vtbi=st.sampled_from(["1", "20", None]),
    )
    def program(self, cid: str, dose: str, vtbi: str | None) -> None:
        self._try(lambda: self.pump.program(cid, dopamine(dose, vtbi=vtbi)))

    @rule(cid=CHANNELS, rate=st.sampled_from(["0.5", "10", "120"]))
    def program_basic(self, cid: str, rate: str) -> None:
        self._try(lambda: self.pump.program(cid, basic(rate, vtbi="5")))

    @rule(cid=CHANNELS, dose=st.sampled_from(["5", "50"]))
    def reprogram(self, cid: str, dose: str) -> None:
        self._try(lambda: self.pump.reprogram(cid, dopamine(dose, vtbi="10")))

    @rule(cid=CHANNELS)
    def override(self, cid: str) -> None:
        self._try(lambda: self.pump.override(cid, "other"))

    @rule(cid=CHANNELS)
    def confirm(self, cid: str) -> None:
        self._try(lambda: self.pump.confirm(cid))

    @rule(cid=CHANNELS)
    def start(self, cid: str) -> None:
        pending = self.pump.channel(cid).pending
        was_hard = pending is not None and pending.is_hard
        before = len(self.pump.events.of_type(EventType.INFUSION_STARTED))
        self._try(lambda: self.pump.start(cid))
        if was_hard:
            assert len(self.pump.events.of_type(EventType.INFUSION_STARTED)) == before

    @rule(cid=CHANNELS)
    def cancel(self, cid: str) -> None:
        self._try(lambda: self.pump.cancel(cid))

    @rule(cid=CHANNELS)
    def pause(self, cid: str) -> None:
        self._try(lambda: self.pump.pause(cid))

    @rule(cid=CHANNELS)
    def resume(self, cid: str) -> None:
        self._try(lambda: self.pump.resume(cid))

    @rule(cid=CHANNELS)
    def stop(self, cid: str) -> None:
        self._try(lambda: self.pump.stop(cid))

    @rule(cid=CHANNELS)
    def occlude(self, cid: str) -> None:
        self._try(lambda: self.pump.occlude_downstream(cid))

    @rule(cid=CHANNELS)
    def release(self, cid: str) -> None:
        self._try(lambda: self.pump.release_downstream(cid))

    @rule(cid=CHANNELS)
    def door(self, cid: str) -> None:
        self._try(lambda: self.pump.open_door(cid))
        self._try(lambda: self.pump.close_door(cid))

    @rule(cid=CHANNELS, bubble=st.sampled_from([50, 250]))
    def air(self, cid: str, bubble: int) -> None:
        self._try(lambda: self.pump.air_bubble(cid, D(bubble)))

    @rule()
    def clear_alarms(self) -> None:
        for alarm in list(self.pump.alarms.active.values()):
            self._try(lambda a=alarm: self.pump.clear_alarm(a.id, a.channel))

    @rule(seconds=st.sampled_from([1, 30, 300, 3600]))
    def advance(self, seconds: int) -> None:
        paused = {
            c.id: c.therapy.infused_ml + c.therapy.kvo_ml
            for c in self.pump.channels.values()
            if c.therapy is not None and c.state in (ChannelState.PAUSED, ChannelState.ALARM)
        }
        self.clock.advance(seconds)
        self.pump.sync()
        for cid, before in paused.items():
            channel = self.pump.channel(cid)
            if channel.therapy is not None and channel.state in (ChannelState.PAUSED, ChannelState.ALARM):
                assert channel.therapy.infused_ml + channel.therapy.kvo_ml == before

    @invariant()
    def volume_never_exceeds_vtbi(self) -> None:
        for channel in self.pump.channels.values():
            therapy = channel.therapy
            if therapy is not None and therapy.vtbi_ml is not None:
                assert therapy.infused_ml <= therapy.vtbi_ml

    @invariant()
    def no_flow_in_a_stopping_alarm_or_pause(self) -> None:
        for channel in self.pump.channels.values():
            if channel.state in (ChannelState.PAUSED, ChannelState.ALARM) or self.pump.alarms.stops_delivery(
                channel.id
            ):
                assert channel.flow_ml_per_h == 0

    @invariant()
    def seq_strictly_increasing(self) -> None:
        seqs = [e.seq for e in self.pump.events]
        assert all(a < b for a, b in itertools.pairwise(seqs))
        assert seqs[-1] == self.pump.next_seq - 1


class PcaMachine(RuleBasedStateMachine):
    """Random demands, clinician boluses and time on a PCA pump."""

    def __init__(self) -> None:
        super().__init__()
        self.pump, self.clock = make_pump(PumpModel.PCA)
        self.pump.program("A", morphine_pca(demand="1", lockout="6", basal="0.5", max_dose="4"))
        self.pump.confirm("A")
        self.pump.start("A")

    @rule()
    def demand(self) -> None:
        pump: Pump = self.pump
        therapy = pump.channel("A").therapy
        assert therapy is not None and therapy.pca is not None
        ledger = therapy.pca
        pump.sync()
        locked = ledger.lockout_remaining_s(pump.now_s) > 0
        over = (
            ledger.max_dose is not None
            and ledger.window_total(pump.now_s) + ledger.demand_dose > ledger.max_dose
        )
        granted = pump.pca_demand("A")
        if locked or over:
            assert not granted

    @rule(amount=st.sampled_from(["0.5", "2"]))
    def clinician(self, amount: str) -> None:
        with contextlib.suppress(SmartpumpError):
            self.pump.clinician_bolus("A", D(amount))

    @rule(seconds=st.sampled_from([10, 60, 360, 1800]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.pump.sync()

    @invariant()
    def window_total_of_doses_within_max(self) -> None:
        therapy = self.pump.channel("A").therapy
        assert therapy is not None and therapy.pca is not None
        ledger = therapy.pca
        window_s = ledger.window_s
        assert window_s is not None
        for t, _, kind in ledger.doses:
            if kind is DoseKind.DEMAND:
                granted_before = sum((a for at, a, _ in ledger.doses if t - window_s < at < t), D(0))
                assert granted_before + ledger.demand_dose <= D(4)


TestLvp = LvpMachine.TestCase
TestLvp.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestPca = PcaMachine.TestCase
TestPca.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
