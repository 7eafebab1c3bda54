"""SAF-STO-01: the stored pump state carries an HMAC-SHA256 tag under the pump's own key; a torn write,
a flipped bit or an edited field is refused at power-on with a safe default, an alarm and a log entry."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal

import pytest

from smartpump.clock import ManualClock
from smartpump.errors import PumpError
from smartpump.pump import AlarmId, ChannelState, EventType, Priority, Pump, PumpModel
from smartpump.pump.persistence import open_state
from tests.unit.pump.library import dopamine, make_pump, pump_library, start

D = Decimal
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _saved() -> tuple[bytes, Pump, ManualClock]:
    pump, clock = make_pump(channels=2)
    start(pump, "A", dopamine("5"))
    clock.advance(1800)
    return pump.to_sealed_state(KEY), pump, clock


def _power_on(stored: bytes | None, key: bytes = KEY, **kwargs: object) -> Pump:
    clock = ManualClock(start=ManualClock().now() + timedelta(hours=1))
    options: dict[str, object] = {"pump_id": "pump-1", "model": PumpModel.LVP, "channels": 2}
    options.update(kwargs)
    return Pump.power_on(stored, key, clock=clock, library=pump_library(), **options)  # type: ignore[arg-type]


def _assert_refused_safely(pump: Pump, code: str) -> None:
    assert all(c.therapy is None and c.pending is None for c in pump.channels.values())
    assert all(c.state is ChannelState.IDLE for c in pump.channels.values())
    rejected = pump.events.of_type(EventType.PUMP_STATE_REJECTED)
    assert [e.data["code"] for e in rejected] == [code]
    raised = pump.events.of_type(EventType.ALARM_RAISED)
    assert [(e.data["alarm"], e.data["priority"]) for e in raised] == [
        (AlarmId.STATE_INTEGRITY.value, Priority.HIGH.value)
    ]
    assert pump.alarm_log()[0].id is AlarmId.STATE_INTEGRITY


def test_a_sealed_state_restores_the_therapy_and_its_totals() -> None:
    stored, pump, _ = _saved()
    restored = _power_on(stored)
    therapy = restored.channel("A").therapy
    assert therapy is not None and therapy.infused_ml == pump.channel("A").therapy.infused_ml  # type: ignore[union-attr]
    assert restored.events.of_type(EventType.PUMP_STATE_REJECTED) == []
    assert restored.alarms.active == {}


def test_the_tag_is_hmac_sha256_over_the_canonical_state_json() -> None:
    stored, pump, _ = _saved()
    sealed = json.loads(stored)
    body = json.dumps(sealed["state"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert sealed["alg"] == "HMAC-SHA256"
    assert sealed["mac"] == hmac.new(KEY, body, hashlib.sha256).hexdigest()
    assert sealed["state"]["next_seq"] == pump.next_seq


@pytest.mark.parametrize("position", [0, 17, 100, -40, -2])
def test_a_flipped_bit_is_refused_with_a_safe_default_alarm_and_log(position: int) -> None:
    stored, _, _ = _saved()
    damaged = bytearray(stored)
    damaged[position] ^= 0x04
    _assert_refused_safely(_power_on(bytes(damaged)), "pump.state_integrity")


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.99])
def test_a_torn_write_is_refused(keep: float) -> None:
    stored, _, _ = _saved()
    _assert_refused_safely(_power_on(stored[: int(len(stored) * keep)]), "pump.state_integrity")


def test_an_edited_volume_total_is_refused() -> None:
    stored, pump, _ = _saved()
    infused = pump.channel("A").therapy.infused_ml  # type: ignore[union-attr]
    text = stored.decode()
    edited = text.replace(f'"infused_ml":"{infused}"', '"infused_ml":"0"')
    assert edited != text
    _assert_refused_safely(_power_on(edited.encode()), "pump.state_integrity")


def test_a_state_sealed_with_another_pumps_key_is_refused() -> None:
    stored, _, _ = _saved()
    _assert_refused_safely(_power_on(stored, OTHER_KEY), "pump.state_integrity")


def test_a_verified_state_of_another_pump_is_refused() -> None:
    stored, _, _ = _saved()
    _assert_refused_safely(_power_on(stored, pump_id="pump-2"), "pump.state_foreign")


def test_a_stale_state_older_than_the_event_log_is_refused_and_seq_continues_from_the_log() -> None:
    stored, pump, _ = _saved()
    refused = _power_on(stored, min_next_seq=pump.next_seq + 50)
    _assert_refused_safely(refused, "pump.state_stale")
    assert next(iter(refused.events)).seq == pump.next_seq + 50


def test_after_a_refused_state_starts_wait_for_the_operator_reset() -> None:
    stored, _, _ = _saved()
    pump = _power_on(stored[:-10])
    pump.select_care_area("icu")
    pump.program("A", dopamine("5"))
    pump.confirm("A")
    with pytest.raises(PumpError) as refused:
        pump.start("A")
    assert refused.value.code == "pump.alarm_active"
    pump.clear_alarm(AlarmId.STATE_INTEGRITY)
    pump.start("A")
    assert pump.channel("A").state is ChannelState.RUNNING


def test_first_power_on_without_stored_state_is_a_plain_start() -> None:
    pump = _power_on(None)
    assert pump.alarms.active == {} and pump.events.of_type(EventType.PUMP_STATE_REJECTED) == []


@pytest.mark.parametrize("key", [b"", b"short-key", "a-string-key-of-more-than-32-chars!!"])
def test_a_missing_or_short_key_is_a_provisioning_error(key: object) -> None:
    with pytest.raises(PumpError) as refused:
        open_state(b"{}", key)  # type: ignore[arg-type]
    assert refused.value.code == "pump.state_key_invalid"
    with pytest.raises(PumpError):
        _power_on(None, key)  # type: ignore[arg-type]


def test_an_edit_that_is_not_encodable_text_is_refused_not_raised() -> None:
    stored, _, _ = _saved()
    edited = stored.decode().replace('"patient_id":null', '"patient_id":"\\ud800"')
    assert edited != stored.decode()
    _assert_refused_safely(_power_on(edited.encode()), "pump.state_integrity")
