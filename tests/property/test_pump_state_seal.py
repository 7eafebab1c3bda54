"""SAF-STO-01 property: no single-bit flip and no truncation of a sealed pump state is ever accepted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smartpump.clock import ManualClock
from smartpump.pump import EventType, Pump, PumpModel
from tests.unit.pump.library import dopamine, make_pump, pump_library, start

KEY = b"k" * 32


def _stored() -> bytes:
    pump, clock = make_pump()
    start(pump, "A", dopamine("5"))
    clock.advance(600)
    return pump.to_sealed_state(KEY)


STORED = _stored()


def _refused(blob: bytes) -> bool:
    pump = Pump.power_on(
        blob, KEY, pump_id="pump-1", model=PumpModel.LVP, clock=ManualClock(), library=pump_library()
    )
    no_therapy = all(c.therapy is None for c in pump.channels.values())
    return no_therapy and len(pump.events.of_type(EventType.PUMP_STATE_REJECTED)) == 1


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(STORED) - 1), bit=st.integers(0, 7))
def test_every_single_bit_flip_is_refused(position: int, bit: int) -> None:
    damaged = bytearray(STORED)
    damaged[position] ^= 1 << bit
    assert _refused(bytes(damaged))


@settings(max_examples=100, deadline=None)
@given(length=st.integers(min_value=0, max_value=len(STORED) - 1))
def test_every_truncation_is_refused(length: int) -> None:
    assert _refused(STORED[:length])
