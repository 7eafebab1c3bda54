"""The wire schema between pumps and the server: a versioned JSON envelope, its bodies and topic names.

Every message is ``{"v": 1, "kind": ..., "pump": ..., "body": {...}}`` encoded as UTF-8 JSON; decoding
is strict and refuses anything else with a ``MessageError`` whose ``code`` says what was wrong.

Every decoder is bounded before it parses: at most ``MAX_MESSAGE_BYTES`` (``message.too_large``), at
most ``MAX_NESTING`` levels of ``[]``/``{}`` counting the envelope's own (``message.too_deep``) and at
most ``MAX_BATCH_EVENTS`` events per batch (``message.too_large``); every seq is at most ``MAX_SEQ``
(``message.out_of_range``). No message can make a reader recurse without bound, hold more than the byte
limit allows, or carry a number the store cannot hold (which would fail the commit of its whole group).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final

import msgspec

from smartpump.errors import SmartpumpError
from smartpump.json_bounds import JsonLimits
from smartpump.pump.events import PumpEvent

SCHEMA_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 256 * 1024
MAX_BATCH_EVENTS: Final = 500
MAX_NESTING: Final = 32
MAX_SEQ: Final = 2**63 - 1
"""The largest seq (and version) a message may carry: what every database's 64-bit integer column holds."""
"""Nesting levels a message may hold, the envelope's four (message, body, events, event) included."""
DEFAULT_PREFIX: Final = "smartpump/v1"

_EVENT_FIELDS: Final = ("v", "pump", "seq", "ts", "channel", "type", "data")
_EVENT_KEYS: Final = frozenset(_EVENT_FIELDS)
_CHECK_CACHE_SIZE: Final = 4096
_SCALARS: Final = frozenset({str, int, bool, type(None)})
_PUMP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_EVENT_TYPE = re.compile(r"(?=.{3,64}$)[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_CHANNEL = re.compile(r"[A-Za-z0-9_.\-]{1,8}")
_PREFIX = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")
_SHARE_GROUP = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_LIMITS: Final = JsonLimits(max_depth=MAX_NESTING)
_DATA_LEVEL: Final = 5
"""The level of an event's ``data`` object: message, body, events, event, data."""


class MessageError(SmartpumpError, ValueError):
    """A message that does not follow the wire schema; ``code`` is ``message.<what>``."""

    code = "message.invalid"


class Kind(StrEnum):
    """What a message carries; the direction is fixed per kind."""

    EVENTS = "events"
    ACK = "ack"
    COMMAND = "command"
    COMMAND_RESULT = "command_result"
    STATUS = "status"
    HELLO = "hello"
    HEARTBEAT = "heartbeat"


UPLINK_KINDS: Final = frozenset({Kind.EVENTS, Kind.HELLO, Kind.COMMAND_RESULT, Kind.STATUS, Kind.HEARTBEAT})
DOWNLINK_KINDS: Final = frozenset({Kind.ACK, Kind.COMMAND})


class PumpState(StrEnum):
    """A pump's link state as published (retained) on its status topic."""

    ONLINE = "online"
    OFFLINE = "offline"


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One pump event as it travels: ``PumpEvent.to_dict`` fields; ``type`` is any dotted name.
    (An immutable ``msgspec.Struct``: ingest builds tens of thousands a second.)"""

    v: int
    pump: str
    seq: int
    ts: datetime
    channel: str | None
    type: str
    data: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @classmethod
    def from_event(cls, event: PumpEvent) -> EventRecord:
        """The wire form of a pump event (Decimals become exact strings)."""
        return cls.from_dict(event.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict, identical to ``PumpEvent.to_dict`` of the same event."""
        return {
            "v": self.v,
            "pump": self.pump,
            "seq": self.seq,
            "ts": self.ts.isoformat(),
            "channel": self.channel,
            "type": self.type,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, raw: Any, *, where: str = "event") -> EventRecord:
        """Validate and read one event dict; raises ``MessageError``."""
        obj = _object(raw, where, required=_EVENT_FIELDS)
        v = _int(obj["v"], f"{where}.v", minimum=1)
        if v != SCHEMA_VERSION:
            raise MessageError(f"{where}.v: unsupported event version {v}", code="message.version")
        seq = _int(obj["seq"], f"{where}.seq", minimum=1)
        ts_text = _str(obj["ts"], f"{where}.ts")
        try:
            ts = datetime.fromisoformat(ts_text)
        except ValueError:
            raise MessageError(
                f"{where}.ts: not an ISO-8601 time: {ts_text!r}", code="message.wrong_type"
            ) from None
        if ts.tzinfo is None:
            raise MessageError(f"{where}.ts: time must carry its UTC offset", code="message.wrong_type")
        channel = obj["channel"]
        if channel is not None:
            channel = _str(channel, f"{where}.channel")
            if not _CHANNEL.fullmatch(channel):
                raise MessageError(
                    f"{where}.channel: 1-8 of letters, digits, '_', '.', '-': {channel!r}",
                    code="message.wrong_type",
                )
        type_ = _str(obj["type"], f"{where}.type")
        if not _EVENT_TYPE.fullmatch(type_):
            raise MessageError(
                f"{where}.type: not a dotted event type of at most 64 characters: {type_!r}",
                code="message.wrong_type",
            )
        data = _object(obj["data"], f"{where}.data")
        _json_values(data, f"{where}.data")
        return cls(
            v=v,
            pump=pump_id(obj["pump"], f"{where}.pump"),
            seq=seq,
            ts=ts,
            channel=channel,
            type=type_,
            data=data,
        )

    def to_pump_event(self) -> PumpEvent:
        """The pump event (Decimals stay strings in ``data``); raises ``MessageError`` for unknown types."""
        try:
            return PumpEvent.from_dict(self.to_dict())
        except SmartpumpError as error:
            raise MessageError(f"event {self.seq}: {error}", code="message.unknown_event_type") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One message: schema version, kind, the pump it is from or for, and a kind-specific body."""

    kind: Kind
    pump: str
    body: Mapping[str, Any]
    v: int = SCHEMA_VERSION
    records: tuple[EventRecord, ...] = field(default=(), compare=False, repr=False)

    def encode(self) -> bytes:
        """UTF-8 JSON bytes; refuses a message larger than ``MAX_MESSAGE_BYTES``."""
        raw = json.dumps(
            {"v": self.v, "kind": self.kind.value, "pump": self.pump, "body": dict(self.body)},
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")
        if len(raw) > MAX_MESSAGE_BYTES:
            raise MessageError(
                f"message is {len(raw)} bytes, limit {MAX_MESSAGE_BYTES}", code="message.too_large"
            )
        return raw


def pump_id(value: Any, where: str = "pump") -> str:
    """A pump id usable in a topic level: 1-64 of letters, digits, ``_ . -``; raises ``MessageError``."""
    text = _str(value, where)
    if not _PUMP_ID.fullmatch(text):
        raise MessageError(f"{where}: not a valid pump id: {text!r}", code="message.pump_id")
    return text


def decode(raw: bytes) -> Envelope:
    """The envelope in ``raw``, validated against the schema of its kind; raises ``MessageError``."""
    _check_size(raw)
    return _decode_plain_events(raw) or _decode_bounded(raw)


def decode_strictly(raw: bytes) -> Envelope:
    """``decode`` by the field-by-field reader alone (what ``decode`` falls back to, to say what is wrong;
    ``decode`` gives the same result faster for a well-formed ``events`` message)."""
    _check_size(raw)
    return _decode_bounded(raw)


def _check_size(raw: bytes) -> None:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageError(
            f"message is {len(raw)} bytes, limit {MAX_MESSAGE_BYTES}", code="message.too_large"
        )


def _decode_bounded(raw: bytes) -> Envelope:
    """The strict reader on a message within the size limit: its nesting is measured before parsing."""
    excess = _LIMITS.first_excess(raw)
    if excess is not None:
        raise MessageError(f"message {excess[1]}", code="message.too_deep")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MessageError(f"message is not UTF-8: {error.reason}", code="message.encoding") from None
    try:
        doc = json.loads(
            text, parse_float=Decimal, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates
        )
    except ValueError as error:
        raise MessageError(f"message is not JSON: {error}", code="message.json") from None
    if _holds_lone_surrogate(doc):
        raise MessageError(
            "message holds a lone UTF-16 surrogate escape (\\ud800-\\udfff): not text",
            code="message.encoding",
        )
    obj = _object(doc, "message", required=("v", "kind", "pump", "body"))
    v = _int(obj["v"], "v", minimum=0)
    if v != SCHEMA_VERSION:
        raise MessageError(
            f"unsupported message version {v} (this side reads {SCHEMA_VERSION})", code="message.version"
        )
    kind_text = _str(obj["kind"], "kind")
    try:
        kind = Kind(kind_text)
    except ValueError:
        raise MessageError(f"unknown message kind {kind_text!r}", code="message.kind") from None
    pump = pump_id(obj["pump"])
    if kind is Kind.EVENTS:
        body, records = _events_body(obj["body"], pump)
        return Envelope(kind=kind, pump=pump, body=body, v=v, records=records)
    body = _BODY_CHECKS[kind](obj["body"], pump)
    return Envelope(kind=kind, pump=pump, body=body, v=v)


def events_message(pump: str, records: Sequence[EventRecord]) -> Envelope:
    """An ``events`` envelope for a batch of one pump's events, in strictly increasing seq."""
    body, checked = _events_body({"events": [r.to_dict() for r in records]}, pump_id(pump))
    return Envelope(kind=Kind.EVENTS, pump=pump, body=body, records=checked)


def events_of(envelope: Envelope) -> tuple[EventRecord, ...]:
    """The batch carried by an ``events`` envelope (lossless inverse of ``events_message``); the records
    validated when the envelope was decoded or built, else read strictly from its body."""
    _expect(envelope, Kind.EVENTS)
    if envelope.records:
        return envelope.records
    return tuple(
        EventRecord.from_dict(e, where=f"events[{i}]") for i, e in enumerate(envelope.body["events"])
    )


def ack_message(pump: str, upto_seq: int) -> Envelope:
    """A cumulative ack: every event of ``pump`` with seq <= ``upto_seq`` is durably stored."""
    return Envelope(kind=Kind.ACK, pump=pump_id(pump), body=_check_ack({"upto_seq": upto_seq}, pump))


def ack_of(envelope: Envelope) -> int:
    """The ``upto_seq`` of an ack envelope."""
    _expect(envelope, Kind.ACK)
    return int(envelope.body["upto_seq"])


def status_message(pump: str, state: PumpState) -> Envelope:
    """A link-status message (the retained ``online`` or the last-will ``offline``)."""
    return Envelope(kind=Kind.STATUS, pump=pump_id(pump), body={"state": state.value})


def hello_message(pump: str, *, next_seq: int, acked_seq: int) -> Envelope:
    """What a pump says on (re)connect: the seq its next event gets and the last seq it saw acked."""
    body = _check_hello({"next_seq": next_seq, "acked_seq": acked_seq}, pump)
    return Envelope(kind=Kind.HELLO, pump=pump_id(pump), body=body)


def command_message(pump: str, signed_command: Mapping[str, Any]) -> Envelope:
    """A command envelope carrying a signed command document (see ``transport.commands``)."""
    return Envelope(
        kind=Kind.COMMAND, pump=pump_id(pump), body=_check_command({"signed": signed_command}, pump)
    )


def command_result_message(
    pump: str, *, nonce: str, command: str, ok: bool, code: str | None, reason: str | None
) -> Envelope:
    """What the pump did with a command: accepted (``ok``) or refused with a code and reason."""
    body = {"nonce": nonce, "command": command, "ok": ok, "code": code, "reason": reason}
    return Envelope(kind=Kind.COMMAND_RESULT, pump=pump_id(pump), body=_check_command_result(body, pump))


@dataclass(frozen=True, slots=True)
class Topics:
    """MQTT topic names under a prefix (default ``smartpump/v1``; tests use a unique one per run)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise MessageError(f"not a usable topic prefix: {self.prefix!r}", code="message.topic")

    def events(self, pump: str) -> str:
        """Pump -> server: event batches and hellos."""
        return f"{self.prefix}/pumps/{pump_id(pump)}/events"

    def ack(self, pump: str) -> str:
        """Server -> pump: cumulative acks."""
        return f"{self.prefix}/pumps/{pump_id(pump)}/ack"

    def commands(self, pump: str) -> str:
        """Server -> pump: signed commands."""
        return f"{self.prefix}/pumps/{pump_id(pump)}/commands"

    def results(self, pump: str) -> str:
        """Pump -> server: command results."""
        return f"{self.prefix}/pumps/{pump_id(pump)}/results"

    def heartbeat(self, pump: str) -> str:
        """Pump -> server: the status heartbeat (``transport.heartbeat``)."""
        return f"{self.prefix}/pumps/{pump_id(pump)}/heartbeat"

    def status(self, pump: str) -> str:
        """Pump -> everyone: retained ``online``; the broker publishes the last-will ``offline``."""
        return f"{self.prefix}/pumps/{pump_id(pump)}/status"

    def for_message(self, envelope: Envelope) -> str:
        """The topic a message of this kind travels on."""
        by_kind = {
            Kind.EVENTS: self.events,
            Kind.HELLO: self.events,
            Kind.ACK: self.ack,
            Kind.COMMAND: self.commands,
            Kind.COMMAND_RESULT: self.results,
            Kind.STATUS: self.status,
            Kind.HEARTBEAT: self.heartbeat,
        }
        return by_kind[envelope.kind](envelope.pump)

    def all_pumps(self, leaf: str) -> str:
        """A wildcard filter over every pump's ``leaf`` topic."""
        return f"{self.prefix}/pumps/+/{leaf}"

    def shared(self, group: str, leaf: str) -> str:
        """A shared subscription: replicas in ``group`` split the messages of every pump's ``leaf``."""
        if not _SHARE_GROUP.fullmatch(group):
            raise MessageError(f"not a usable share group: {group!r}", code="message.topic")
        return f"$share/{group}/{self.all_pumps(leaf)}"

    def pump_of(self, topic: str) -> str:
        """The pump id in a topic under this prefix; raises ``MessageError`` for a foreign topic."""
        head = f"{self.prefix}/pumps/"
        parts = topic[len(head) :].split("/") if topic.startswith(head) else []
        if len(parts) != 2:
            raise MessageError(
                f"topic {topic!r} is not a pump topic under {self.prefix!r}", code="message.topic"
            )
        return pump_id(parts[0], "topic")


def _expect(envelope: Envelope, kind: Kind) -> None:
    if envelope.kind is not kind:
        raise MessageError(f"expected a {kind.value} message, got {envelope.kind.value}", code="message.kind")


def _refuse_constant(name: str) -> Any:
    raise MessageError(f"{name} is not allowed in a message", code="message.json")


def _holds_lone_surrogate(doc: Any) -> bool:
    """Whether a decoded document holds a string no UTF-8 text can hold (JSON lets ``\\ud800`` through)."""
    try:
        json.dumps(doc, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MessageError(f"duplicate key {key!r}", code="message.json")
            seen.add(key)
    return out


def _object(
    value: Any, where: str, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MessageError(
            f"{where}: expected an object, got {type(value).__name__}", code="message.wrong_type"
        )
    if required or optional:
        missing = [k for k in required if k not in value]
        if missing:
            raise MessageError(
                f"{where}: missing field(s) {', '.join(missing)}", code="message.missing_field"
            )
        unknown = sorted(set(value) - set(required) - set(optional))
        if unknown:
            raise MessageError(
                f"{where}: unknown field(s) {', '.join(unknown)}", code="message.unknown_field"
            )
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise MessageError(f"{where}: expected a non-empty string", code="message.wrong_type")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _int(value: Any, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageError(
            f"{where}: expected an integer, got {type(value).__name__}", code="message.wrong_type"
        )
    if value < minimum:
        raise MessageError(f"{where}: must be >= {minimum}, got {value}", code="message.wrong_type")
    if value > MAX_SEQ:
        raise MessageError(f"{where}: must be <= {MAX_SEQ}, got {value}", code="message.out_of_range")
    return value


def _json_values(value: Any, where: str) -> None:
    """Only strings, integers, booleans, null, lists and objects: Decimals travel as strings."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _json_values(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _json_values(item, f"{where}.{key}")
        return
    raise MessageError(
        f"{where}: {type(value).__name__} is not allowed (decimals travel as strings)",
        code="message.wrong_type",
    )


def _events_body(body: Any, pump: str) -> tuple[dict[str, Any], tuple[EventRecord, ...]]:
    """The checked body of an ``events`` message and its records, each read by ``EventRecord.from_dict``."""
    obj = _object(body, "body", required=("events",))
    events = obj["events"]
    if not isinstance(events, list):
        raise MessageError("body.events: expected a list", code="message.wrong_type")
    if not events:
        raise MessageError("body.events: a batch holds at least one event", code="message.empty_batch")
    if len(events) > MAX_BATCH_EVENTS:
        raise MessageError(
            f"body.events: {len(events)} events, limit {MAX_BATCH_EVENTS}", code="message.too_large"
        )
    records: list[EventRecord] = []
    last = 0
    for i, raw in enumerate(events):
        record = EventRecord.from_dict(raw, where=f"body.events[{i}]")
        if record.pump != pump:
            raise MessageError(
                f"body.events[{i}]: event of pump {record.pump!r} in a message of {pump!r}",
                code="message.pump_mismatch",
            )
        if record.seq <= last:
            raise MessageError(
                f"body.events[{i}]: seq {record.seq} does not follow {last}", code="message.seq_order"
            )
        last = record.seq
        records.append(record)
    return obj, tuple(records)


_PLAIN_DECODER: Final = msgspec.json.Decoder()
_ENVELOPE_KEYS: Final = frozenset({"v", "kind", "pump", "body"})


def _decode_plain_events(raw: bytes) -> Envelope | None:
    """An ``events`` message read in one native pass, or None when it is anything else or anything is off
    (the strict reader then reads it and says what). It accepts only what the strict reader accepts:
    the same field rules (``_plain_record``); no number with a fraction; and no duplicate key, because
    every key is counted: with no blank before any colon, each key of the text ends in ``":``, so the
    text holds a duplicate only if it has more ``":`` than the decoded objects have keys. Nesting beyond
    ``MAX_NESTING`` goes to the strict reader, which measures the text and refuses it: whether the native
    decoder met it (it raises ``RecursionError``, cleanly, in C, long past the limit) or ``_plain_size``."""
    if b" :" in raw or b"\t:" in raw or b"\n:" in raw or b"\r:" in raw:
        return None
    try:
        doc = _PLAIN_DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if type(doc) is not dict or doc.keys() != _ENVELOPE_KEYS:
        return None
    v, kind, pump, body = doc["v"], doc["kind"], doc["pump"], doc["body"]
    if type(v) is not int or v != SCHEMA_VERSION or kind != "events" or type(pump) is not str:
        return None
    if not _is_pump_id(pump) or type(body) is not dict or body.keys() != {"events"}:
        return None
    events = body["events"]
    if type(events) is not list or not 1 <= len(events) <= MAX_BATCH_EVENTS:
        return None
    keys = len(_ENVELOPE_KEYS) + 1 + len(_EVENT_FIELDS) * len(events)
    records: list[EventRecord] = []
    last = 0
    for raw_event in events:
        record = _plain_record(raw_event, pump)
        if record is None or record.seq <= last:
            return None
        size = _plain_size(raw_event["data"], _DATA_LEVEL)
        if size < 0:
            return None
        keys += size
        last = record.seq
        records.append(record)
    if raw.count(b'":') != keys:
        return None
    return Envelope(kind=Kind.EVENTS, pump=pump, body=body, v=v, records=tuple(records))


def _plain_size(value: Any, level: int) -> int:
    """How many object keys ``value`` (at nesting ``level``) holds at any depth, or -1 when it holds a
    value ``_json_values`` refuses (a number with a fraction) or nests deeper than ``MAX_NESTING``."""
    kind = type(value)
    if kind in _SCALARS:
        return 0
    if level > MAX_NESTING:
        return -1
    if kind is dict:
        if _SCALARS.issuperset(map(type, value.values())):
            return len(value)
        total = len(value)
        for item in value.values():
            if type(item) in _SCALARS:
                continue
            size = _plain_size(item, level + 1)
            if size < 0:
                return -1
            total += size
        return total
    if kind is list:
        total = 0
        for item in value:
            size = _plain_size(item, level + 1)
            if size < 0:
                return -1
            total += size
        return total
    return -1


def _plain_record(raw: Any, pump: str) -> EventRecord | None:
    """The record of a well-formed event of ``pump`` whose data holds only JSON-plain values, or None when
    anything is off (``EventRecord.from_dict`` then says what): the same rules, without building the
    field paths every check of the strict reader needs for its messages."""
    if type(raw) is not dict or raw.keys() != _EVENT_KEYS:
        return None
    v, seq, ts_text, channel, type_ = raw["v"], raw["seq"], raw["ts"], raw["channel"], raw["type"]
    if (
        type(v) is not int
        or v != SCHEMA_VERSION
        or type(seq) is not int
        or not 1 <= seq <= MAX_SEQ
        or raw["pump"] != pump
        or type(ts_text) is not str
        or type(raw["data"]) is not dict
        or not (channel is None or (type(channel) is str and _is_channel(channel)))
        or type(type_) is not str
        or not _is_event_type(type_)
    ):
        return None
    try:
        ts = datetime.fromisoformat(ts_text)
    except ValueError:
        return None
    if ts.tzinfo is None:
        return None
    return EventRecord(v=v, pump=pump, seq=seq, ts=ts, channel=channel, type=type_, data=raw["data"])


@lru_cache(maxsize=_CHECK_CACHE_SIZE)
def _is_event_type(text: str) -> bool:
    return _EVENT_TYPE.fullmatch(text) is not None


@lru_cache(maxsize=_CHECK_CACHE_SIZE)
def _is_channel(text: str) -> bool:
    return _CHANNEL.fullmatch(text) is not None


@lru_cache(maxsize=_CHECK_CACHE_SIZE)
def _is_pump_id(text: str) -> bool:
    return _PUMP_ID.fullmatch(text) is not None


def _check_ack(body: Any, pump: str) -> dict[str, Any]:
    obj = _object(body, "body", required=("upto_seq",))
    _int(obj["upto_seq"], "body.upto_seq", minimum=0)
    return obj


def _check_status(body: Any, pump: str) -> dict[str, Any]:
    obj = _object(body, "body", required=("state",))
    state = _str(obj["state"], "body.state")
    if state not in {s.value for s in PumpState}:
        raise MessageError(f"body.state: unknown state {state!r}", code="message.wrong_type")
    return obj


def _check_hello(body: Any, pump: str) -> dict[str, Any]:
    obj = _object(body, "body", required=("next_seq", "acked_seq"))
    _int(obj["next_seq"], "body.next_seq", minimum=1)
    _int(obj["acked_seq"], "body.acked_seq", minimum=0)
    return obj


def _check_command(body: Any, pump: str) -> dict[str, Any]:
    obj = _object(body, "body", required=("signed",))
    _json_values(_object(obj["signed"], "body.signed"), "body.signed")
    return obj


def _check_command_result(body: Any, pump: str) -> dict[str, Any]:
    obj = _object(body, "body", required=("nonce", "command", "ok", "code", "reason"))
    _str(obj["nonce"], "body.nonce")
    _str(obj["command"], "body.command")
    if not isinstance(obj["ok"], bool):
        raise MessageError("body.ok: expected a boolean", code="message.wrong_type")
    code = _opt_str(obj["code"], "body.code")
    _opt_str(obj["reason"], "body.reason")
    if obj["ok"] == (code is not None):
        raise MessageError("body.code: present exactly when ok is false", code="message.wrong_type")
    return obj


def _check_heartbeat(body: Any, pump: str) -> dict[str, Any]:
    from smartpump.transport.heartbeat import check_heartbeat_body  # the heartbeat schema imports this module

    return check_heartbeat_body(body, pump)


_BODY_CHECKS: Final = {
    Kind.HEARTBEAT: _check_heartbeat,
    Kind.ACK: _check_ack,
    Kind.COMMAND: _check_command,
    Kind.COMMAND_RESULT: _check_command_result,
    Kind.STATUS: _check_status,
    Kind.HELLO: _check_hello,
}
