"""The wire schema: lossless round trips and a specific code for every malformed message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.clock import ManualClock
from smartpump.pump.events import EventLog, EventType
from smartpump.transport.messages import (
    MAX_BATCH_EVENTS,
    MAX_MESSAGE_BYTES,
    MAX_NESTING,
    MAX_SEQ,
    Envelope,
    EventRecord,
    Kind,
    MessageError,
    PumpState,
    Topics,
    _decode_plain_events,
    ack_message,
    ack_of,
    command_result_message,
    decode,
    decode_strictly,
    events_message,
    events_of,
    hello_message,
    status_message,
)
from tests.unit.transport.helpers import vitals_every_minute

PUMP = "pump-007"


def _event(seq: int = 1, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "v": 1,
        "pump": PUMP,
        "seq": seq,
        "ts": "2026-01-01T00:00:00+00:00",
        "channel": "A",
        "type": "vitals.recorded",
        "data": {"spo2_percent": "97.5"},
    }
    event.update(overrides)
    return event


def _message(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"v": 1, "kind": "events", "pump": PUMP, "body": {"events": [_event()]}}
    message.update(overrides)
    return message


def _raw(doc: Any) -> bytes:
    return json.dumps(doc).encode("utf-8")


def test_event_batch_round_trips_losslessly_through_bytes() -> None:
    clock = ManualClock()
    log = EventLog(PUMP)
    vitals_every_minute(log, clock, 5, alarm_every=2)
    records = [EventRecord.from_event(e) for e in log]

    decoded = events_of(decode(events_message(PUMP, records).encode()))

    assert [r.to_dict() for r in decoded] == [e.to_dict() for e in log]
    assert decoded[0].data["spo2_percent"] == "97.5"


def test_record_turns_back_into_the_same_pump_event_wire_form() -> None:
    log = EventLog(PUMP)
    event = log.append(
        EventType.RATE_CHANGED,
        datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
        "B",
        {
            "old_rate_ml_per_h": Decimal("12.50"),
            "new_rate_ml_per_h": Decimal("25"),
            "dose": None,
            "dose_unit": None,
            "cause": "titration",
        },
    )

    back = EventRecord.from_event(event).to_pump_event()

    assert back.to_dict() == event.to_dict()
    assert back.type is EventType.RATE_CHANGED


@given(
    data=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(),
            st.decimals(allow_nan=False, allow_infinity=False, places=3),
        ),
        max_size=6,
    ),
    seq=st.integers(min_value=1, max_value=2**53),
    offset_min=st.integers(min_value=-720, max_value=840),
)
def test_any_event_data_round_trips(data: dict[str, Any], seq: int, offset_min: int) -> None:
    log = EventLog(PUMP, next_seq=seq)
    ts = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC).astimezone(timezone(timedelta(minutes=offset_min)))
    event = log.append(EventType.VITALS_RECORDED, ts, None, data)

    decoded = events_of(decode(events_message(PUMP, [EventRecord.from_event(event)]).encode()))

    assert [r.to_dict() for r in decoded] == [event.to_dict()]


@given(
    events=st.lists(
        st.fixed_dictionaries(
            {
                "channel": st.none() | st.sampled_from(["A", "B", "ch-1"]),
                "type": st.sampled_from(["vitals.recorded", "alarm.raised", "x.y_z.w2"]),
                "data": st.dictionaries(
                    st.text(max_size=5),
                    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.lists(st.integers()),
                    max_size=4,
                ),
                "offset_min": st.integers(min_value=-720, max_value=840),
            }
        ),
        min_size=1,
        max_size=20,
    ),
    first_seq=st.integers(min_value=1, max_value=2**40),
)
def test_decoded_records_equal_the_strict_reading_of_the_body(
    events: list[dict[str, Any]], first_seq: int
) -> None:
    start = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)
    body = [
        {
            "v": 1,
            "pump": PUMP,
            "seq": first_seq + i,
            "ts": start.astimezone(timezone(timedelta(minutes=e["offset_min"]))).isoformat(),
            "channel": e["channel"],
            "type": e["type"],
            "data": e["data"],
        }
        for i, e in enumerate(events)
    ]

    envelope = decode(_raw(_message(body={"events": body})))

    strict = tuple(EventRecord.from_dict(e) for e in body)
    assert envelope.records == strict
    assert [r.to_dict() for r in envelope.records] == body


def test_a_pumps_batch_is_read_in_the_native_pass() -> None:
    log = EventLog(PUMP)
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    vitals_every_minute(log, clock, 50, alarm_every=7)
    raw = events_message(PUMP, [EventRecord.from_event(e) for e in log.since(0)]).encode()

    fast = _decode_plain_events(raw)

    assert fast is not None
    assert fast.records == decode_strictly(raw).records


def test_a_fraction_anywhere_sends_the_batch_through_the_strict_reader_with_its_path() -> None:
    raw = _raw(_message(body={"events": [_event(1), _event(2, data={"a": [1, {"b": 0.5}]})]}))

    with pytest.raises(MessageError, match=r"body\.events\[1\]\.data\.a\[1\]\.b"):
        decode(raw)


@pytest.mark.parametrize(
    "envelope",
    [
        ack_message(PUMP, 42),
        status_message(PUMP, PumpState.OFFLINE),
        hello_message(PUMP, next_seq=10, acked_seq=9),
        command_result_message(
            PUMP,
            nonce="n-1",
            command="library.install",
            ok=False,
            code="command.expired",
            reason="expired at 10:00",
        ),
        command_result_message(PUMP, nonce="n-2", command="library.install", ok=True, code=None, reason=None),
    ],
    ids=lambda e: e.kind.value,
)
def test_every_kind_round_trips(envelope: Envelope) -> None:
    assert decode(envelope.encode()) == envelope


def test_ack_carries_its_cumulative_seq() -> None:
    assert ack_of(decode(ack_message(PUMP, 1234).encode())) == 1234


def test_unicode_text_travels_as_utf8() -> None:
    log = EventLog(PUMP)
    event = log.append(
        EventType.PROGRAM_REFUSED,
        datetime(2026, 1, 1, tzinfo=UTC),
        "A",
        {"code": "x.y", "reason": "Héparine — dose µg", "entry_id": None, "care_area": "ÜCI"},
    )

    raw = events_message(PUMP, [EventRecord.from_event(event)]).encode()

    assert "Héparine — dose µg".encode() in raw
    assert events_of(decode(raw))[0].data["reason"] == "Héparine — dose µg"


MALFORMED: list[tuple[str, bytes, str]] = [
    ("not utf-8", b'{"v":1,"kind":"ack","pump":"p\xff","body":{"upto_seq":1}}', "message.encoding"),
    ("not json", b"{v:1}", "message.json"),
    (
        "lone surrogate",
        b'{"v":1,"kind":"events","pump":"pump-007","body":{"events":[{"v":1,"pump":"pump-007","seq":1,'
        b'"ts":"2026-01-01T00:00:00+00:00","channel":"A","type":"a.b","data":{"note":"x\\ud800"}}]}}',
        "message.encoding",
    ),
    ("NaN", b'{"v":1,"kind":"ack","pump":"p","body":{"upto_seq":NaN}}', "message.json"),
    ("duplicate key", b'{"v":1,"v":1,"kind":"ack","pump":"p","body":{"upto_seq":1}}', "message.json"),
    ("array", _raw([1, 2]), "message.wrong_type"),
    ("missing body", _raw({"v": 1, "kind": "ack", "pump": PUMP}), "message.missing_field"),
    ("unknown field", _raw(_message(extra=1)), "message.unknown_field"),
    ("version 2", _raw(_message(v=2)), "message.version"),
    ("version text", _raw(_message(v="1")), "message.wrong_type"),
    ("unknown kind", _raw(_message(kind="telemetry")), "message.kind"),
    ("pump with slash", _raw(_message(pump="a/b")), "message.pump_id"),
    ("pump wildcard", _raw(_message(pump="+")), "message.pump_id"),
    ("pump number", _raw(_message(pump=7)), "message.wrong_type"),
    ("body list", _raw(_message(body=[])), "message.wrong_type"),
    ("events not list", _raw(_message(body={"events": {}})), "message.wrong_type"),
    ("empty batch", _raw(_message(body={"events": []})), "message.empty_batch"),
    (
        "event missing seq",
        _raw(_message(body={"events": [{k: v for k, v in _event().items() if k != "seq"}]})),
        "message.missing_field",
    ),
    ("seq zero", _raw(_message(body={"events": [_event(seq=0)]})), "message.wrong_type"),
    ("seq bool", _raw(_message(body={"events": [_event(seq=True)]})), "message.wrong_type"),
    ("seq repeated", _raw(_message(body={"events": [_event(3), _event(3)]})), "message.seq_order"),
    ("seq descending", _raw(_message(body={"events": [_event(4), _event(3)]})), "message.seq_order"),
    (
        "event of other pump",
        _raw(_message(body={"events": [_event(pump="pump-008")]})),
        "message.pump_mismatch",
    ),
    ("float in data", _raw(_message(body={"events": [_event(data={"rate": 2.5})]})), "message.wrong_type"),
    ("naive ts", _raw(_message(body={"events": [_event(ts="2026-01-01T00:00:00")]})), "message.wrong_type"),
    ("ts not a time", _raw(_message(body={"events": [_event(ts="yesterday")]})), "message.wrong_type"),
    ("type not dotted", _raw(_message(body={"events": [_event(type="Vitals")]})), "message.wrong_type"),
    ("event version 9", _raw(_message(body={"events": [_event(v=9)]})), "message.version"),
    ("data not object", _raw(_message(body={"events": [_event(data=[1])]})), "message.wrong_type"),
    (
        "float deep in data",
        _raw(_message(body={"events": [_event(data={"a": {"b": [1, 1.5]}})]})),
        "message.wrong_type",
    ),
    ("channel empty", _raw(_message(body={"events": [_event(channel="")]})), "message.wrong_type"),
    ("channel number", _raw(_message(body={"events": [_event(channel=1)]})), "message.wrong_type"),
    (
        "channel too long",
        _raw(_message(body={"events": [_event(channel="ABCDEFGHI")]})),
        "message.wrong_type",
    ),
    ("channel with tab", _raw(_message(body={"events": [_event(channel="A\tB")]})), "message.wrong_type"),
    ("type too long", _raw(_message(body={"events": [_event(type="a." + "b" * 63)]})), "message.wrong_type"),
    ("type list", _raw(_message(body={"events": [_event(type=["a.b"])]})), "message.wrong_type"),
    ("ts number", _raw(_message(body={"events": [_event(ts=1700000000)]})), "message.wrong_type"),
    ("event pump number", _raw(_message(body={"events": [_event(pump=7)]})), "message.wrong_type"),
    ("event extra field", _raw(_message(body={"events": [_event(extra=1)]})), "message.unknown_field"),
    ("event not object", _raw(_message(body={"events": [[1]]})), "message.wrong_type"),
    (
        "duplicate key in data",
        b'{"v":1,"kind":"events","pump":"pump-007","body":{"events":[{"v":1,"pump":"pump-007","seq":1,'
        b'"ts":"2026-01-01T00:00:00+00:00","channel":"A","type":"a.b","data":{"x":"1","x":"2"}}]}}',
        "message.json",
    ),
    (
        "ack negative",
        _raw({"v": 1, "kind": "ack", "pump": PUMP, "body": {"upto_seq": -1}}),
        "message.wrong_type",
    ),
    (
        "ack extra",
        _raw({"v": 1, "kind": "ack", "pump": PUMP, "body": {"upto_seq": 1, "x": 1}}),
        "message.unknown_field",
    ),
    (
        "status unknown",
        _raw({"v": 1, "kind": "status", "pump": PUMP, "body": {"state": "asleep"}}),
        "message.wrong_type",
    ),
    (
        "hello missing",
        _raw({"v": 1, "kind": "hello", "pump": PUMP, "body": {"next_seq": 1}}),
        "message.missing_field",
    ),
    (
        "result ok with code",
        _raw(
            {
                "v": 1,
                "kind": "command_result",
                "pump": PUMP,
                "body": {"nonce": "n", "command": "c", "ok": True, "code": "command.expired", "reason": None},
            }
        ),
        "message.wrong_type",
    ),
    (
        "command not object",
        _raw({"v": 1, "kind": "command", "pump": PUMP, "body": {"signed": "x"}}),
        "message.wrong_type",
    ),
]


@pytest.mark.parametrize(
    ("raw", "code"), [(raw, code) for _, raw, code in MALFORMED], ids=[name for name, _, _ in MALFORMED]
)
def test_malformed_message_is_refused_with_its_code(raw: bytes, code: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode(raw)
    assert caught.value.code == code


def test_oversize_message_is_refused_before_parsing() -> None:
    raw = b"{" + b" " * MAX_MESSAGE_BYTES + b"}"
    with pytest.raises(MessageError) as caught:
        decode(raw)
    assert caught.value.code == "message.too_large"


def test_oversize_message_is_refused_when_encoding() -> None:
    envelope = Envelope(kind=Kind.COMMAND, pump=PUMP, body={"signed": {"blob": "x" * MAX_MESSAGE_BYTES}})
    with pytest.raises(MessageError) as caught:
        envelope.encode()
    assert caught.value.code == "message.too_large"


def _nested(levels: int) -> bytes:
    """``levels`` arrays around a 0, written as text (``json.dumps`` itself recurses per level)."""
    return b"[" * levels + b"0" + b"]" * levels


def _deep_events(levels: int) -> bytes:
    """An events message whose one event's data holds ``levels`` nested arrays (data itself is level 5)."""
    return _raw(_message(body={"events": [_event(data={"deep": "HERE"})]})).replace(
        b'"HERE"', _nested(levels)
    )


def test_two_kilobytes_nesting_a_thousand_arrays_are_refused_by_both_readers() -> None:
    raw = _deep_events(1000)
    assert len(raw) < 2500
    for reader in (decode, decode_strictly):
        with pytest.raises(MessageError) as caught:
            reader(raw)
        assert caught.value.code == "message.too_deep"


@pytest.mark.parametrize("reader", [decode, decode_strictly], ids=["decode", "strict"])
def test_nesting_limit_counts_the_envelope_levels(reader: Any) -> None:
    levels = MAX_NESTING - 5
    assert json.dumps(events_of(reader(_deep_events(levels)))[0].data).count("[") == levels
    with pytest.raises(MessageError) as caught:
        reader(_deep_events(levels + 1))
    assert caught.value.code == "message.too_deep"


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000,
        b'{"v":1,"kind":"events","pump":"pump-007","body":' + b'{"a":' * 3000,
        b'{"v":1,"kind":"command","pump":"pump-007","body":{"signed":{"a":' + _nested(2000) + b"}}}",
        b'{"v":1,"kind":"hello","pump":"pump-007","body":{"next_seq":' + _nested(40) + b',"acked_seq":0}}',
    ],
    ids=["unclosed", "unclosed objects", "command", "hello"],
)
def test_deep_text_of_any_kind_is_refused_with_a_code_not_a_recursion_error(raw: bytes) -> None:
    with pytest.raises(MessageError) as caught:
        decode(raw)
    assert caught.value.code == "message.too_deep"


@pytest.mark.parametrize("reader", [decode, decode_strictly], ids=["decode", "strict"])
def test_a_seq_beyond_what_the_store_holds_is_refused(reader: Any) -> None:
    # One such batch used to fail the commit of every batch grouped with it.
    assert events_of(reader(_raw(_message(body={"events": [_event(MAX_SEQ)]}))))[0].seq == MAX_SEQ
    with pytest.raises(MessageError) as caught:
        reader(_raw(_message(body={"events": [_event(MAX_SEQ + 1)]})))
    assert caught.value.code == "message.out_of_range"


@pytest.mark.parametrize(
    "body", [{"next_seq": MAX_SEQ + 1, "acked_seq": 0}, {"next_seq": 1, "acked_seq": 2**70}]
)
def test_a_hello_beyond_what_the_store_holds_is_refused(body: dict[str, int]) -> None:
    with pytest.raises(MessageError) as caught:
        decode(_raw({"v": 1, "kind": "hello", "pump": PUMP, "body": body}))
    assert caught.value.code == "message.out_of_range"


def test_batch_larger_than_the_limit_is_refused() -> None:
    events = [_event(seq) for seq in range(1, MAX_BATCH_EVENTS + 2)]
    with pytest.raises(MessageError) as caught:
        decode(_raw(_message(body={"events": events})))
    assert caught.value.code == "message.too_large"


def test_unknown_event_type_travels_but_is_not_a_pump_event() -> None:
    record = EventRecord.from_dict(_event(type="telemetry.from_a_newer_pump"))
    with pytest.raises(MessageError) as caught:
        record.to_pump_event()
    assert caught.value.code == "message.unknown_event_type"


def test_events_of_refuses_another_kind() -> None:
    with pytest.raises(MessageError) as caught:
        events_of(ack_message(PUMP, 1))
    assert caught.value.code == "message.kind"


def test_topic_names_follow_the_documented_scheme() -> None:
    topics = Topics()
    assert topics.events(PUMP) == "smartpump/v1/pumps/pump-007/events"
    assert topics.ack(PUMP) == "smartpump/v1/pumps/pump-007/ack"
    assert topics.commands(PUMP) == "smartpump/v1/pumps/pump-007/commands"
    assert topics.status(PUMP) == "smartpump/v1/pumps/pump-007/status"
    assert topics.shared("ingest", "events") == "$share/ingest/smartpump/v1/pumps/+/events"
    assert topics.for_message(hello_message(PUMP, next_seq=1, acked_seq=0)) == topics.events(PUMP)


def test_topic_gives_back_its_pump() -> None:
    topics = Topics("test/abc/v1")
    assert topics.pump_of(topics.status(PUMP)) == PUMP


@pytest.mark.parametrize(
    "topic", ["smartpump/v1/pumps/p", "other/v1/pumps/p/events", "smartpump/v1/pumps/a/b/c"]
)
def test_foreign_topic_is_refused(topic: str) -> None:
    with pytest.raises(MessageError) as caught:
        Topics().pump_of(topic)
    assert caught.value.code == "message.topic"


@pytest.mark.parametrize("prefix", ["", "a//b", "a/+/b", "a/#", "/a"])
def test_unusable_topic_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(MessageError):
        Topics(prefix)


def test_events_message_refuses_an_unordered_batch() -> None:
    first, second = EventRecord.from_dict(_event(2)), EventRecord.from_dict(_event(1))
    with pytest.raises(MessageError) as caught:
        events_message(PUMP, [first, second])
    assert caught.value.code == "message.seq_order"


_KEY = st.text(alphabet=st.characters(codec="utf-8", exclude_characters='"\\'), max_size=4)
_PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEY, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def _wire_batches(draw: st.DrawFn) -> bytes:
    """Events messages as a pump writes them, some bent the ways a sender could bend them: a key written
    twice (anywhere), blanks around a colon, a number with a fraction, a string holding '\":'."""
    events = [
        {
            "v": 1,
            "pump": PUMP,
            "seq": seq,
            "ts": "2026-01-01T00:00:00+00:00",
            "channel": draw(st.sampled_from([None, "A", "B"])),
            "type": "vitals.recorded",
            "data": draw(st.dictionaries(_KEY, _PLAIN, max_size=4)),
        }
        for seq in range(1, draw(st.integers(min_value=1, max_value=4)) + 1)
    ]
    text = json.dumps(_message(body={"events": events}), separators=(",", ":"), ensure_ascii=False)
    bend = draw(st.sampled_from(["none", "duplicate", "blank", "fraction", "quote_colon", "deep"]))
    if bend == "duplicate":
        keys = [i for i in range(len(text)) if text.startswith('":', i)]
        at = draw(st.sampled_from(keys))
        start = text.rindex('"', 0, at) + 1
        while text[start - 2] == "\\":
            start = text.rindex('"', 0, start - 1) + 1
        opener = text.rindex("{", 0, start)
        name = text[start - 1 : at + 1]
        text = text[: opener + 1] + name + ':"dup",' + text[opener + 1 :]
    elif bend == "blank":
        text = text.replace('":', draw(st.sampled_from(['" :', '"\n:', '"\t :'])), 1)
    elif bend == "fraction":
        text = text.replace('"seq":1', '"seq":1,"x":0.5', 1)
    elif bend == "quote_colon":
        text = text.replace('"type":"vitals.recorded"', '"type":"vitals.recorded","data2":"a\\":b"', 1)
    elif bend == "deep":
        levels = draw(st.sampled_from([MAX_NESTING - 6, MAX_NESTING - 5, MAX_NESTING - 4, 2000]))
        text = text.replace('"data":{', '"data":{"deep":' + _nested(levels).decode() + ",", 1)
    return text.encode("utf-8")


@given(_wire_batches())
def test_the_fast_reader_agrees_with_the_strict_reader(raw: bytes) -> None:
    try:
        strict: Envelope | MessageError = decode_strictly(raw)
    except MessageError as error:
        strict = error
    try:
        fast: Envelope | MessageError = decode(raw)
    except MessageError as error:
        fast = error
    if isinstance(strict, MessageError):
        assert isinstance(fast, MessageError) and (fast.code, fast.message) == (strict.code, strict.message)
    else:
        assert isinstance(fast, Envelope)
        assert (fast.kind, fast.pump, fast.body, fast.records) == (
            strict.kind,
            strict.pump,
            strict.body,
            strict.records,
        )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"v":1,"kind":"events","pump":"pump-007","pump":"pump-007","body":{"events":['
        + _raw(_event())[:-1]
        + b"}]}}",
        b'{"v":1,"kind":"events","pump":"pump-007","body":{"events":['
        + _raw(_event(data={"a": "1", "b": "2"})).replace(b'"b": "2"', b'"a": "2"')
        + b"]}}",
        b'{"v":1,"kind":"events","pump":"pump-007","body":{"events":['
        + _raw(_event()).replace(b'"seq": 1', b'"seq": 1, "seq": 2')
        + b"]}}",
        b'{"v":1,"kind":"events","pump":"pump-007","body":{"events":[{"v":1,"pump":"pump-007","seq":1,'
        b'"seq" :2,"ts":"2026-01-01T00:00:00+00:00","channel":"A","type":"a.b","data":{}}]}}',
    ],
    ids=["envelope key", "data key", "event key", "second written with a blank before its colon"],
)
def test_a_key_written_twice_is_refused_wherever_it_is(raw: bytes) -> None:
    with pytest.raises(MessageError) as caught:
        decode(raw)
    assert caught.value.code == "message.json"
