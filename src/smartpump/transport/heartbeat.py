"""The status heartbeat: a pump's compact status (``kind: heartbeat``), sent every ``interval_s`` and on
change, never stored in the outbox (the next one replaces a lost one).

Body (schema version 1 of the envelope): ``seq`` (the last event the status accounts for), ``clock`` (the
pump's UTC time), ``interval_s``, ``battery_percent``, ``on_ac``, ``library_version``, ``library_sha256``,
``configuration_version``, ``care_area``, ``alarms`` (at most ``MAX_ALARMS`` of ``{alarm, channel,
priority}``) and ``channels`` (at most ``MAX_CHANNELS``, keyed by channel id, each ``{state, drug,
entry_id, dose, dose_unit, rate_ml_per_h, infused_ml, vtbi_ml, remaining_ml, remaining_min}``). Decimals
travel as plain strings with at most 8 integer and 4 fraction digits (a dose: 12 and 12): volumes to 0.001 mL,
time left to 0.1 min and a dose to 12 decimals, rounded down (a pump never reports more left than it
has). Anything else is refused with a ``MessageError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Final

from smartpump.pump.alarms import Priority
from smartpump.pump.channel import ChannelState
from smartpump.pump.status import PumpStatus
from smartpump.transport.messages import MAX_SEQ, Envelope, Kind, MessageError, pump_id

MAX_ALARMS: Final = 64
MAX_CHANNELS: Final = 4
MAX_INTERVAL_S: Final = 86_400
MAX_TEXT: Final = 128
VOLUME_STEP: Final = Decimal("0.001")
MINUTES_STEP: Final = Decimal("0.1")
RATE_STEP: Final = Decimal("0.0001")
DOSE_STEP: Final = Decimal("1e-12")
_FIELDS: Final = (
    "seq",
    "clock",
    "interval_s",
    "battery_percent",
    "on_ac",
    "library_version",
    "library_sha256",
    "configuration_version",
    "care_area",
    "alarms",
    "channels",
)
_ALARM_FIELDS: Final = ("alarm", "channel", "priority")
_CHANNEL_FIELDS: Final = (
    "state",
    "drug",
    "entry_id",
    "dose",
    "dose_unit",
    "rate_ml_per_h",
    "infused_ml",
    "vtbi_ml",
    "remaining_ml",
    "remaining_min",
)
_STATES: Final = frozenset(s.value for s in ChannelState)
_PRIORITIES: Final = frozenset(p.value for p in Priority)
_DECIMAL = re.compile(r"\d{1,8}(\.\d{1,4})?")
_DOSE = re.compile(r"\d{1,12}(\.\d{1,12})?")
MAX_UNIT: Final = 32
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ALARM_ID = re.compile(r"(?=.{3,64}$)[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_CHANNEL_ID = re.compile(r"[A-Za-z0-9_.\-]{1,8}")


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatAlarm:
    """One alarm the pump shows now: id, channel (None: the whole pump), priority."""

    alarm: str
    channel: str | None
    priority: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatChannel:
    """One channel now: state, drug and entry, dose and unit, rate (mL/h), infused, VTBI (None: none set)
    and left (mL), time left (min)."""

    channel: str
    state: str
    drug: str | None
    entry_id: str | None
    dose: Decimal | None
    dose_unit: str | None
    rate_ml_per_h: Decimal
    infused_ml: Decimal
    vtbi_ml: Decimal | None
    remaining_ml: Decimal | None
    remaining_min: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """A pump's compact status at its clock ``clock``, accounting for its events up to ``seq``."""

    pump: str
    seq: int
    clock: datetime
    interval_s: int
    battery_percent: int
    on_ac: bool
    library_version: int | None
    library_sha256: str | None
    configuration_version: int
    care_area: str | None
    alarms: tuple[HeartbeatAlarm, ...]
    channels: tuple[HeartbeatChannel, ...]

    def body(self) -> dict[str, Any]:
        """The message body (decimals as strings)."""
        return {
            "seq": self.seq,
            "clock": self.clock.isoformat(),
            "interval_s": self.interval_s,
            "battery_percent": self.battery_percent,
            "on_ac": self.on_ac,
            "library_version": self.library_version,
            "library_sha256": self.library_sha256,
            "configuration_version": self.configuration_version,
            "care_area": self.care_area,
            "alarms": [{"alarm": a.alarm, "channel": a.channel, "priority": a.priority} for a in self.alarms],
            "channels": {
                c.channel: {
                    "state": c.state,
                    "drug": c.drug,
                    "entry_id": c.entry_id,
                    "dose": None if c.dose is None else _text(c.dose),
                    "dose_unit": c.dose_unit,
                    "rate_ml_per_h": _text(c.rate_ml_per_h),
                    "infused_ml": _text(c.infused_ml),
                    "vtbi_ml": None if c.vtbi_ml is None else _text(c.vtbi_ml),
                    "remaining_ml": None if c.remaining_ml is None else _text(c.remaining_ml),
                    "remaining_min": None if c.remaining_min is None else _text(c.remaining_min),
                }
                for c in self.channels
            },
        }


def heartbeat_of_status(status: PumpStatus, *, interval_s: int) -> Heartbeat:
    """The heartbeat of a pump's status snapshot (volumes to 0.001 mL, time left to 0.1 min, floored)."""
    if status.clock is None:
        raise MessageError("a heartbeat needs the pump's clock", code="message.missing_field")
    return Heartbeat(
        pump=pump_id(status.pump),
        seq=status.last_seq,
        clock=status.clock,
        interval_s=interval_s,
        battery_percent=status.battery_percent,
        on_ac=status.on_ac,
        library_version=status.library_version,
        library_sha256=status.library_sha256,
        configuration_version=status.configuration_version,
        care_area=status.care_area,
        alarms=tuple(
            HeartbeatAlarm(alarm=a.alarm, channel=a.channel, priority=a.priority) for a in status.alarms
        ),
        channels=tuple(
            HeartbeatChannel(
                channel=cid,
                state=c.state,
                drug=c.drug,
                entry_id=c.entry_id,
                dose=None if c.dose is None else floor(c.dose, DOSE_STEP),
                dose_unit=c.dose_unit if c.dose is not None else None,
                rate_ml_per_h=floor(c.rate_ml_per_h, RATE_STEP),
                infused_ml=floor(c.infused_ml, VOLUME_STEP),
                vtbi_ml=None if c.vtbi_ml is None else floor(c.vtbi_ml, VOLUME_STEP),
                remaining_ml=None if c.remaining_ml is None else floor(c.remaining_ml, VOLUME_STEP),
                remaining_min=None if c.remaining_min is None else floor(c.remaining_min, MINUTES_STEP),
            )
            for cid, c in status.channels.items()
        ),
    )


def floor(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded down to a multiple of ``step`` (what the heartbeat carries)."""
    return value.quantize(step, rounding=ROUND_FLOOR)


def heartbeat_message(heartbeat: Heartbeat) -> Envelope:
    """The ``heartbeat`` envelope, checked like a received one."""
    body = check_heartbeat_body(heartbeat.body(), heartbeat.pump)
    return Envelope(kind=Kind.HEARTBEAT, pump=heartbeat.pump, body=body)


def heartbeat_of(envelope: Envelope) -> Heartbeat:
    """The typed heartbeat of a checked ``heartbeat`` envelope."""
    if envelope.kind is not Kind.HEARTBEAT:
        raise MessageError(f"expected a heartbeat message, got {envelope.kind.value}", code="message.kind")
    body = envelope.body
    return Heartbeat(
        pump=envelope.pump,
        seq=int(body["seq"]),
        clock=datetime.fromisoformat(str(body["clock"])),
        interval_s=int(body["interval_s"]),
        battery_percent=int(body["battery_percent"]),
        on_ac=bool(body["on_ac"]),
        library_version=body["library_version"],
        library_sha256=body["library_sha256"],
        configuration_version=int(body["configuration_version"]),
        care_area=body["care_area"],
        alarms=tuple(HeartbeatAlarm(**a) for a in body["alarms"]),
        channels=tuple(
            HeartbeatChannel(
                channel=cid,
                state=c["state"],
                drug=c["drug"],
                entry_id=c["entry_id"],
                dose=None if c["dose"] is None else Decimal(c["dose"]),
                dose_unit=c["dose_unit"],
                rate_ml_per_h=Decimal(c["rate_ml_per_h"]),
                infused_ml=Decimal(c["infused_ml"]),
                vtbi_ml=None if c["vtbi_ml"] is None else Decimal(c["vtbi_ml"]),
                remaining_ml=None if c["remaining_ml"] is None else Decimal(c["remaining_ml"]),
                remaining_min=None if c["remaining_min"] is None else Decimal(c["remaining_min"]),
            )
            for cid, c in body["channels"].items()
        ),
    )


def check_heartbeat_body(body: Any, pump: str) -> dict[str, Any]:
    """The body of a ``heartbeat`` message if it follows the schema; raises ``MessageError``."""
    obj = _fields(body, "body", _FIELDS)
    _int(obj["seq"], "body.seq", 0, MAX_SEQ)
    clock = _text_of(obj["clock"], "body.clock", 64)
    try:
        moment = datetime.fromisoformat(clock)
    except ValueError:
        raise MessageError(
            f"body.clock: not an ISO-8601 time: {clock!r}", code="message.wrong_type"
        ) from None
    if moment.tzinfo is None:
        raise MessageError("body.clock: time must carry its UTC offset", code="message.wrong_type")
    _int(obj["interval_s"], "body.interval_s", 1, MAX_INTERVAL_S)
    _int(obj["battery_percent"], "body.battery_percent", 0, 100)
    if not isinstance(obj["on_ac"], bool):
        raise MessageError("body.on_ac: expected a boolean", code="message.wrong_type")
    if obj["library_version"] is not None:
        _int(obj["library_version"], "body.library_version", 0, MAX_SEQ)
    if obj["library_sha256"] is not None:
        _match(obj["library_sha256"], "body.library_sha256", _SHA256, "64 lowercase hex digits")
    _int(obj["configuration_version"], "body.configuration_version", 0, MAX_SEQ)
    _optional_text(obj["care_area"], "body.care_area")
    alarms = obj["alarms"]
    if not isinstance(alarms, list):
        raise MessageError("body.alarms: expected a list", code="message.wrong_type")
    if len(alarms) > MAX_ALARMS:
        raise MessageError(f"body.alarms: {len(alarms)} alarms, limit {MAX_ALARMS}", code="message.too_large")
    seen: set[tuple[str, str | None]] = set()
    for i, raw in enumerate(alarms):
        where = f"body.alarms[{i}]"
        alarm = _fields(raw, where, _ALARM_FIELDS)
        name = _match(alarm["alarm"], f"{where}.alarm", _ALARM_ID, "a dotted alarm id")
        channel = alarm["channel"]
        if channel is not None:
            _match(channel, f"{where}.channel", _CHANNEL_ID, "a channel id")
        _choice(alarm["priority"], f"{where}.priority", _PRIORITIES)
        if (name, channel) in seen:
            raise MessageError(f"{where}: alarm {name} listed twice", code="message.duplicate")
        seen.add((name, channel))
    channels = obj["channels"]
    if not isinstance(channels, dict):
        raise MessageError("body.channels: expected an object", code="message.wrong_type")
    if len(channels) > MAX_CHANNELS:
        raise MessageError(
            f"body.channels: {len(channels)} channels, limit {MAX_CHANNELS}", code="message.too_large"
        )
    for cid, raw in channels.items():
        where = f"body.channels.{cid}"
        _match(cid, where, _CHANNEL_ID, "a channel id")
        channel_body = _fields(raw, where, _CHANNEL_FIELDS)
        _choice(channel_body["state"], f"{where}.state", _STATES)
        _optional_text(channel_body["drug"], f"{where}.drug")
        _optional_text(channel_body["entry_id"], f"{where}.entry_id")
        if (channel_body["dose"] is None) != (channel_body["dose_unit"] is None):
            raise MessageError(f"{where}: dose and dose_unit come together", code="message.wrong_type")
        if channel_body["dose"] is not None:
            _match(channel_body["dose"], f"{where}.dose", _DOSE, "a decimal string")
            _text_of(channel_body["dose_unit"], f"{where}.dose_unit", MAX_UNIT)
        for name in ("rate_ml_per_h", "infused_ml"):
            _match(channel_body[name], f"{where}.{name}", _DECIMAL, "a decimal string")
        for name in ("vtbi_ml", "remaining_ml", "remaining_min"):
            if channel_body[name] is not None:
                _match(channel_body[name], f"{where}.{name}", _DECIMAL, "a decimal string")
    return obj


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}" if value else "0"


def _fields(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MessageError(
            f"{where}: expected an object, got {type(value).__name__}", code="message.wrong_type"
        )
    missing = [k for k in keys if k not in value]
    if missing:
        raise MessageError(f"{where}: missing field(s) {', '.join(missing)}", code="message.missing_field")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise MessageError(f"{where}: unknown field(s) {', '.join(unknown)}", code="message.unknown_field")
    return value


def _int(value: Any, where: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageError(
            f"{where}: expected an integer, got {type(value).__name__}", code="message.wrong_type"
        )
    if not minimum <= value <= maximum:
        raise MessageError(
            f"{where}: must be within {minimum}-{maximum}, got {value}", code="message.out_of_range"
        )
    return value


def _text_of(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str) or not value:
        raise MessageError(f"{where}: expected a non-empty string", code="message.wrong_type")
    if len(value) > limit:
        raise MessageError(f"{where}: longer than {limit} characters", code="message.too_large")
    return value


def _optional_text(value: Any, where: str) -> None:
    if value is not None:
        _text_of(value, where, MAX_TEXT)


def _match(value: Any, where: str, pattern: re.Pattern[str], what: str) -> str:
    text = _text_of(value, where, MAX_TEXT)
    if not pattern.fullmatch(text):
        raise MessageError(f"{where}: not {what}: {text[:80]!r}", code="message.wrong_type")
    return text


def _choice(value: Any, where: str, allowed: frozenset[str]) -> None:
    text = _text_of(value, where, MAX_TEXT)
    if text not in allowed:
        raise MessageError(f"{where}: unknown value {text!r}", code="message.wrong_type")
