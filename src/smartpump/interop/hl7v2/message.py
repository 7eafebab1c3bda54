"""A small typed, lenient ER7 (pipe-and-hat) model: parse and build HL7 v2.x messages.

Encoding characters come from MSH-1/MSH-2 (4 of them, or 5 with the v2.7 truncation character);
CR, LF and CRLF separate segments. ``str(parse(x)) == x`` for well-formed input. Every refusal is
an ``Hl7ParseError`` with a stable code (``hl7.no_msh``, ``hl7.bad_delimiters``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Final

from smartpump.errors import SmartpumpError

MAX_FIELD_CHARS: Final = 65_536
MAX_MESSAGE_CHARS: Final = 4 * 1024 * 1024
MAX_SEGMENTS: Final = 1000
"""Segments a message may hold (an order is about 20, a device report a few hundred at most)."""
MAX_FIELDS: Final = 256
"""Fields a segment may hold (the standard defines fewer than 60 for any segment)."""
_SEGMENT_ID: Final = re.compile(r"[A-Z][A-Z0-9]{2}")
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_TS: Final = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?")
_CHARSETS: Final = {
    "": "utf-8",
    "ASCII": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "8859/1": "latin-1",
    "8859/15": "iso8859-15",
}


class Hl7ParseError(SmartpumpError, ValueError):
    """A message that cannot be read as HL7 v2 ER7; ``code`` says why (``hl7.bad_delimiters``...)."""

    code = "hl7.parse"


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters of one message: field, component, repetition, escape, subcomponent, truncation."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def msh2(self) -> str:
        """The MSH-2 text (``^~\\&`` or, with a truncation character, ``^~\\&#``)."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation

    def _table(self) -> tuple[tuple[str, str], ...]:
        pairs = [
            (self.field, "F"),
            (self.component, "S"),
            (self.repetition, "R"),
            (self.subcomponent, "T"),
        ]
        if self.truncation:
            pairs.append((self.truncation, "P"))
        return tuple(pairs)

    def escape_text(self, text: str) -> str:
        """Text with every delimiter written as an escape sequence (``|`` -> ``\\F\\``)."""
        out = text.replace(self.escape, f"{self.escape}E{self.escape}")
        for char, code in self._table():
            out = out.replace(char, f"{self.escape}{code}{self.escape}")
        return out

    def unescape(self, text: str) -> str:
        """Decode escape sequences; unknown or formatting ones (``\\.br\\``, ``\\H\\``) are kept."""
        esc = self.escape
        if esc not in text:
            return text
        codes = {code: char for char, code in self._table()}
        codes["E"] = esc
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            end = text.find(esc, i + 1) if char == esc else -1
            if end < 0:
                out.append(char)
                i += 1
                continue
            body = text[i + 1 : end]
            if body in codes:
                out.append(codes[body])
            elif len(body) > 1 and body[0] == "X" and _is_hex(body[1:]):
                out.append(bytes.fromhex(body[1:]).decode("latin-1"))
            else:
                out.append(text[i : end + 1])
            i = end + 1
        return "".join(out)


def _is_hex(text: str) -> bool:
    return len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text)


DEFAULT_ENCODING: Final = Encoding()

ComponentValue = str | tuple[str, ...]
"""A component: plain text, or its subcomponents."""
FieldValue = str | tuple[ComponentValue, ...] | list[str | tuple[ComponentValue, ...]]
"""A field to build: text, a tuple of components, or a list of repetitions."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: ``fields[0]`` is the segment ID and ``fields[n]`` the raw ER7 text of field n.

    For MSH, ``fields[1]`` is the field separator and ``fields[2]`` the encoding characters, so
    ``field(n)`` is MSH-n for every n, as the standard numbers them.
    """

    fields: tuple[str, ...]
    encoding: Encoding = DEFAULT_ENCODING

    @property
    def id(self) -> str:
        """The three-character segment ID."""
        return self.fields[0]

    def __str__(self) -> str:
        if self.id == "MSH":
            return "MSH" + self.encoding.field + self.encoding.field.join(self.fields[2:])
        return self.encoding.field.join(self.fields)

    def field(self, number: int) -> str:
        """The raw (escaped) text of field ``number``; empty when absent."""
        return self.fields[number] if 0 < number < len(self.fields) else ""

    def repetitions(self, number: int) -> tuple[str, ...]:
        """The raw repetitions of a field (MSH-2 is never split)."""
        raw = self.field(number)
        if self.id == "MSH" and number in (1, 2):
            return (raw,)
        return tuple(raw.split(self.encoding.repetition)) if raw else ()

    def components(self, number: int, repetition: int = 1) -> tuple[str, ...]:
        """The unescaped components of one repetition of a field (subcomponents left joined)."""
        reps = self.repetitions(number)
        if not 0 < repetition <= len(reps):
            return ()
        enc = self.encoding
        return tuple(enc.unescape(c) for c in reps[repetition - 1].split(enc.component))

    def value(self, number: int, component: int = 1, repetition: int = 1, subcomponent: int = 1) -> str:
        """One unescaped value: field, component, repetition and subcomponent are 1-based."""
        if self.id == "MSH" and number in (1, 2):
            return self.field(number)
        reps = self.repetitions(number)
        if not 0 < repetition <= len(reps):
            return ""
        parts = reps[repetition - 1].split(self.encoding.component)
        if not 0 < component <= len(parts):
            return ""
        subs = parts[component - 1].split(self.encoding.subcomponent)
        if not 0 < subcomponent <= len(subs):
            return ""
        return self.encoding.unescape(subs[subcomponent - 1])

    def text(self, number: int) -> str:
        """The whole field unescaped, delimiters kept as they are (for logs and free text)."""
        return self.encoding.unescape(self.field(number))


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed or built message: segments in order, its encoding and segment separator."""

    segments: tuple[Segment, ...]
    encoding: Encoding = DEFAULT_ENCODING
    separator: str = "\r"
    has_trailing_separator: bool = False
    _index: dict[str, tuple[Segment, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[Segment]] = {}
        for seg in self.segments:
            index.setdefault(seg.id, []).append(seg)
        object.__setattr__(self, "_index", {k: tuple(v) for k, v in index.items()})

    def __str__(self) -> str:
        body = self.separator.join(str(s) for s in self.segments)
        return body + self.separator if self.has_trailing_separator else body

    def to_er7(self) -> str:
        """The message with CR segment separators and a trailing CR, as sent over MLLP."""
        return "\r".join(str(s) for s in self.segments) + "\r"

    @property
    def msh(self) -> Segment:
        """The MSH segment (always the first)."""
        return self.segments[0]

    def first(self, segment_id: str) -> Segment | None:
        """The first segment with this ID, or None."""
        found = self._index.get(segment_id, ())
        return found[0] if found else None

    def all(self, segment_id: str) -> tuple[Segment, ...]:
        """Every segment with this ID, in order."""
        return self._index.get(segment_id, ())

    @property
    def segment_ids(self) -> tuple[str, ...]:
        """The segment IDs in order (for structure checks)."""
        return tuple(s.id for s in self.segments)

    @property
    def control_id(self) -> str:
        """MSH-10, stripped of stray spaces; empty when absent."""
        return self.msh.value(10).strip()

    @property
    def message_type(self) -> tuple[str, str, str]:
        """MSH-9 as (message code, trigger event, structure), e.g. ('RGV', 'O15', 'RGV_O15')."""
        msh = self.msh
        return (msh.value(9, 1).strip(), msh.value(9, 2).strip(), msh.value(9, 3).strip())

    @property
    def type_text(self) -> str:
        """MSH-9 written as ``RGV^O15`` (code and trigger)."""
        code, trigger, _ = self.message_type
        return f"{code}^{trigger}" if trigger else code

    @property
    def version(self) -> str:
        """MSH-12 version ID (``2.5``, ``2.6``...)."""
        return self.msh.value(12).strip()

    @property
    def accept_ack_type(self) -> str:
        """MSH-15 (AL, NE, ER, SU or empty for original mode)."""
        return self.msh.value(15).strip()

    @property
    def application_ack_type(self) -> str:
        """MSH-16 (AL, NE, ER, SU or empty for original mode)."""
        return self.msh.value(16).strip()

    @property
    def profile_ids(self) -> tuple[str, ...]:
        """Every identifier in MSH-21 (EI-1 names and EI-3 OIDs), stripped of stray spaces."""
        ids: list[str] = []
        for rep in range(1, len(self.msh.repetitions(21)) + 1):
            comps = self.msh.components(21, rep)
            ids.extend(c.strip() for i, c in enumerate(comps) if i in (0, 2) and c.strip())
        return tuple(ids)


def parse(
    text: str,
    *,
    max_field_chars: int = MAX_FIELD_CHARS,
    max_segments: int = MAX_SEGMENTS,
    max_fields: int = MAX_FIELDS,
) -> Message:
    """Parse ER7 text into a Message; lenient about separators, strict about what it cannot read, and
    bounded: characters per message and per field, segments per message, fields per segment.

    Raises:
        Hl7ParseError: ``hl7.empty``, ``hl7.too_large``, ``hl7.no_msh``, ``hl7.bad_delimiters``,
            ``hl7.segment_id``, ``hl7.field_too_long``, ``hl7.too_many_segments``,
            ``hl7.too_many_fields`` or ``hl7.multiple_messages``.
    """
    if len(text) > MAX_MESSAGE_CHARS:
        raise Hl7ParseError(f"message of {len(text)} characters is too large", code="hl7.too_large")
    body = text.lstrip("\r\n")
    if not body.strip():
        raise Hl7ParseError("empty message", code="hl7.empty")
    if not body.startswith("MSH"):
        raise Hl7ParseError("message does not start with an MSH segment", code="hl7.no_msh")
    breaks = _LINE_BREAK.search(body)
    separator = breaks.group(0) if breaks else "\r"
    lines = _LINE_BREAK.split(body)
    trailing = lines[-1] == ""
    lines = [line for line in lines if line]
    if len(lines) > max_segments:
        raise Hl7ParseError(
            f"message has {len(lines)} segments (limit {max_segments})", code="hl7.too_many_segments"
        )
    encoding = _encoding_of(lines[0])
    segments: list[Segment] = []
    for number, line in enumerate(lines, start=1):
        if line.count(encoding.field) > max_fields:
            raise Hl7ParseError(
                f"segment {number} ({line[:3]!r}) has more than {max_fields} fields",
                code="hl7.too_many_fields",
            )
        seg = _segment(line, encoding, number)
        if number > 1 and seg.id == "MSH":
            raise Hl7ParseError("more than one MSH: batches are not accepted", code="hl7.multiple_messages")
        for position, raw in enumerate(seg.fields[1:], start=1):
            if len(raw) > max_field_chars:
                raise Hl7ParseError(
                    f"{seg.id}-{position} has {len(raw)} characters (limit {max_field_chars})",
                    code="hl7.field_too_long",
                )
        segments.append(seg)
    return Message(tuple(segments), encoding, separator, trailing)


def _encoding_of(msh: str) -> Encoding:
    if len(msh) < 8:
        raise Hl7ParseError("MSH is too short to hold its delimiters", code="hl7.bad_delimiters")
    fsep = msh[3]
    chars = msh[4:].split(fsep, 1)[0]
    if len(chars) not in (4, 5):
        raise Hl7ParseError(
            f"MSH-2 must hold 4 or 5 encoding characters, got {chars!r}", code="hl7.bad_delimiters"
        )
    delimiters = fsep + chars
    if len(set(delimiters)) != len(delimiters) or any(c.isalnum() or c.isspace() for c in delimiters):
        raise Hl7ParseError(
            f"delimiters {delimiters!r} must be distinct, non-alphanumeric and non-blank",
            code="hl7.bad_delimiters",
        )
    truncation = chars[4] if len(chars) == 5 else ""
    return Encoding(fsep, chars[0], chars[1], chars[2], chars[3], truncation)


def _segment(line: str, encoding: Encoding, number: int) -> Segment:
    seg_id = line[:3]
    if not _SEGMENT_ID.fullmatch(seg_id) or (len(line) > 3 and line[3] != encoding.field):
        raise Hl7ParseError(f"segment {number} has no valid segment ID: {line[:8]!r}", code="hl7.segment_id")
    if seg_id == "MSH":
        parts = line[4:].split(encoding.field)
        return Segment(("MSH", encoding.field, *parts), encoding)
    return Segment(tuple(line.split(encoding.field)), encoding)


def decode(data: bytes) -> str:
    """Bytes to text using the character set MSH-18 declares (UTF-8 when absent or ASCII).

    Raises:
        Hl7ParseError: ``hl7.encoding`` for an unknown character set or bytes that do not decode.
    """
    head = data[:2048].decode("latin-1")
    charset = ""
    if head.startswith("MSH") and len(head) > 4:
        first = _LINE_BREAK.split(head, maxsplit=1)[0]
        parts = first.split(head[3])
        if len(parts) > 17:
            charset = parts[17].split("^")[0].split("~")[0].strip().upper()
    codec = _CHARSETS.get(charset)
    if codec is None:
        raise Hl7ParseError(f"character set {charset!r} (MSH-18) is not supported", code="hl7.encoding")
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        raise Hl7ParseError(
            f"bytes do not decode as {codec} at position {error.start}", code="hl7.encoding"
        ) from None


def build_segment(
    segment_id: str, *values: FieldValue | None, encoding: Encoding = DEFAULT_ENCODING
) -> Segment:
    """A segment from typed values (text is escaped); trailing empty fields are dropped."""
    raw = [_field_text(v, encoding) for v in values]
    while raw and not raw[-1]:
        raw.pop()
    return Segment((segment_id, *raw), encoding)


def build_msh(
    *,
    sending_application: FieldValue,
    sending_facility: FieldValue,
    receiving_application: FieldValue,
    receiving_facility: FieldValue,
    timestamp: datetime,
    message_type: tuple[str, str, str],
    control_id: str,
    version: str = "2.6",
    processing_id: str = "P",
    accept_ack_type: str = "",
    application_ack_type: str = "",
    charset: str = "UNICODE UTF-8",
    profile: Sequence[tuple[str, str, str, str]] = (),
    encoding: Encoding = DEFAULT_ENCODING,
) -> Segment:
    """An MSH segment; ``profile`` repetitions are EI (name, namespace, OID, ISO) for MSH-21."""
    values: list[FieldValue | None] = [
        sending_application,
        sending_facility,
        receiving_application,
        receiving_facility,
        format_timestamp(timestamp),
        None,
        message_type,
        control_id,
        processing_id,
        version,
        None,
        None,
        accept_ack_type,
        application_ack_type,
        None,
        charset,
        None,
        None,
        [tuple(p) for p in profile] if profile else None,
    ]
    raw = [_field_text(v, encoding) for v in values]
    while raw and not raw[-1]:
        raw.pop()
    return Segment(("MSH", encoding.field, encoding.msh2, *raw), encoding)


def _field_text(value: FieldValue | None, enc: Encoding) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return enc.escape_text(value)
    if isinstance(value, list):
        return enc.repetition.join(_field_text(v, enc) for v in value)
    parts = [
        enc.escape_text(c) if isinstance(c, str) else enc.subcomponent.join(enc.escape_text(s) for s in c)
        for c in value
    ]
    while parts and not parts[-1]:
        parts.pop()
    return enc.component.join(parts)


def format_timestamp(moment: datetime) -> str:
    """DTM with seconds and UTC offset (``20151015132107-0500``); naive datetimes are refused."""
    if moment.tzinfo is None:
        raise ValueError("HL7 timestamps are built from timezone-aware datetimes")
    return moment.strftime("%Y%m%d%H%M%S%z")


def parse_timestamp(text: str, *, local_zone: tzinfo = UTC) -> datetime | None:
    """A DTM/TS value as an aware datetime (None when empty); a value without a UTC offset is wall-clock
    time in ``local_zone`` (the facility's time zone; UTC by default).

    Stray spaces inside the value are ignored (the IHE RRG^O16 example has ``- 0600``). A local time that
    a daylight-saving change skips (spring forward) or repeats (fall back) is refused: without an offset
    it names no instant, or two.

    Raises:
        Hl7ParseError: ``hl7.bad_timestamp`` when the text is not a timestamp, or is a skipped or repeated
            local time.
    """
    cleaned = text.split("^")[0].replace(" ", "")
    if not cleaned:
        return None
    match = _TS.fullmatch(cleaned)
    if match is None:
        raise Hl7ParseError(f"not an HL7 timestamp: {text!r}", code="hl7.bad_timestamp")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    zone: tzinfo = local_zone
    if offset is not None:
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        zone = timezone(timedelta(minutes=-minutes if offset[0] == "-" else minutes))
    try:
        moment = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")[:6]),
            tzinfo=zone,
        )
    except ValueError:
        raise Hl7ParseError(f"not a valid date/time: {text!r}", code="hl7.bad_timestamp") from None
    if offset is None and not names_one_instant(moment):
        raise Hl7ParseError(
            f"{text!r} has no UTC offset and is a local time that a daylight-saving change in "
            f"{getattr(local_zone, 'key', local_zone)} skips or repeats: send it with an offset",
            code="hl7.bad_timestamp",
        )
    return moment


def names_one_instant(moment: datetime) -> bool:
    """Whether a wall-clock time exists exactly once in its zone (fold 0 and 1 agree and round-trip)."""
    other = moment.replace(fold=1 - moment.fold)
    if moment.utcoffset() != other.utcoffset():
        return False
    wall = moment.replace(tzinfo=None)
    return moment.astimezone(UTC).astimezone(moment.tzinfo).replace(tzinfo=None) == wall


def parse_number(text: str, *, where: str) -> Decimal | None:
    """An NM value as an exact Decimal (None when empty).

    Raises:
        Hl7ParseError: ``hl7.bad_number`` for text that is not a finite decimal number.
    """
    cleaned = text.strip()
    if not cleaned:
        return None
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        raise Hl7ParseError(f"{where} is not a number: {text!r}", code="hl7.bad_number") from None
    if not number.is_finite():
        raise Hl7ParseError(f"{where} is not a finite number: {text!r}", code="hl7.bad_number")
    return number
