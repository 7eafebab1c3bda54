"""The ER7 model: delimiters, escapes, separators, round trips, and the refusals with their codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpump.interop.hl7v2.message import (
    DEFAULT_ENCODING,
    Encoding,
    Hl7ParseError,
    build_segment,
    decode,
    parse,
    parse_timestamp,
)

MINIMAL = "MSH|^~\\&|A|B|C|D|20240101120000||ADT^A01|42|P|2.5\rPID|||1^^^X^PI\r"


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_any_segment_separator_is_accepted(separator: str) -> None:
    message = parse(MINIMAL.replace("\r", separator))
    assert message.segment_ids == ("MSH", "PID")
    assert message.first("PID").value(3, 4) == "X"  # type: ignore[union-attr]


def test_round_trip_keeps_text() -> None:
    assert str(parse(MINIMAL)) == MINIMAL


def test_escapes_decode_and_encode() -> None:
    message = parse("MSH|^~\\&|A|B|||x||ADT^A01|1|P|2.5\rNTE|||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X41\\\\.br\\")
    assert message.first("NTE").value(3) == "a|b^c&d~e\\fA\\.br\\"  # type: ignore[union-attr]


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=40))
def test_escape_round_trip(text: str) -> None:
    assert DEFAULT_ENCODING.unescape(DEFAULT_ENCODING.escape_text(text)) == text


def test_built_segment_escapes_values() -> None:
    segment = build_segment("OBX", "1", "ST", ("a^b", ("x&y", "z")), None)
    assert str(segment) == "OBX|1|ST|a\\S\\b^x\\T\\y&z"
    assert segment.value(3, 1) == "a^b" and segment.value(3, 2, subcomponent=1) == "x&y"


def test_v27_truncation_character() -> None:
    message = parse("MSH|^~\\&#|||||20191127||ACK^R40|||2.7\rMSA|CA|x\\P\\y")
    assert message.encoding == Encoding(truncation="#")
    assert message.first("MSA").value(2) == "x#y"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text,code",
    [
        ("", "hl7.empty"),
        ("PID|||1", "hl7.no_msh"),
        ("MSH|^~|A", "hl7.bad_delimiters"),
        ("MSH|^^\\&|A|B|||x||ADT^A01|1|P|2.5", "hl7.bad_delimiters"),
        ("MSHa^~\\&|A|B|||x||ADT^A01|1|P|2.5", "hl7.bad_delimiters"),
        ("MSH|^~\\&|A\rpid|1", "hl7.segment_id"),
        ("MSH|^~\\&|A\rMSH|^~\\&|B", "hl7.multiple_messages"),
        ("MSH|^~\\&|A|B|||x||ADT^A01|1|P|2.5\rNTE|||" + "x" * 70_000, "hl7.field_too_long"),
        ("MSH|^~\\&|A|B|||x||ADT^A01|1|P|2.5" + "\rNTE|1" * 1000, "hl7.too_many_segments"),
        ("MSH|^~\\&|A|B|||x||ADT^A01|1|P|2.5\rNTE" + "|" * 257, "hl7.too_many_fields"),
        ("MSH|^~\\&|A|B|||x||ADT^A01|1|P|2.5" + "|" * 250, "hl7.too_many_fields"),
    ],
)
def test_refusals_have_codes(text: str, code: str) -> None:
    with pytest.raises(Hl7ParseError) as caught:
        parse(text)
    assert caught.value.code == code


def test_segment_and_field_counts_up_to_the_limits_parse() -> None:
    text = "MSH|^~\\&|A|B|||x||ADT^A01|1|P|2.5" + "\rNTE|1" * 998 + "\rNTE" + "|" * 256
    message = parse(text)
    assert len(message.segments) == 1000
    assert len(message.segments[-1].fields) == 257  # the segment ID and 256 fields


def test_undecodable_bytes_are_refused() -> None:
    with pytest.raises(Hl7ParseError) as caught:
        decode(b"MSH|^~\\&|A|B|||x||ADT^A01|1|P|2.5\r\xff\xfe")
    assert caught.value.code == "hl7.encoding"


def test_declared_latin1_decodes() -> None:
    raw = "MSH|^~\\&|A|B|||x||ADT^A01|1|P|2.5||||||8859/1\rNTE|||é".encode("latin-1")
    assert decode(raw).endswith("é")


def test_timestamp_with_stray_space_and_offset() -> None:
    moment = parse_timestamp("20080101123456- 0600")
    assert moment is not None and moment.utcoffset() is not None
    assert moment.isoformat() == "2008-01-01T12:34:56-06:00"


def test_bad_timestamp_is_refused() -> None:
    with pytest.raises(Hl7ParseError) as caught:
        parse_timestamp("2008-01-01")
    assert caught.value.code == "hl7.bad_timestamp"
