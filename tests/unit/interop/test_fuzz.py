"""Malformed input never raises anything but our error, and always gets an AE/AR answer."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from smartpump.clock import ManualClock
from smartpump.interop.hl7v2.ack import AckCode, ack_code_of
from smartpump.interop.hl7v2.listener import Hl7Listener, accept_all
from smartpump.interop.hl7v2.message import Hl7ParseError, Message, decode, parse
from smartpump.interop.hl7v2.pcd03 import OrderRejected, evaluate_order, parse_order
from tests.unit.interop.helpers import ORDER_NOW, demo_library, example

CLOCK = ManualClock()
DOPAMINE = example("pcd03_rgv_o15_ex1_dopamine_dose_rate.hl7")


async def _accept(message: Message) -> Message:
    return await accept_all(message, CLOCK)


def _answer(payload: bytes) -> AckCode | None:
    listener = Hl7Listener(_accept, CLOCK)
    return ack_code_of(parse(asyncio.run(listener.answer(payload))))


LIBRARY = demo_library()


def _survives(text: str) -> None:
    try:
        order = parse_order(parse(text))
    except (Hl7ParseError, OrderRejected):
        return
    evaluate_order(order, LIBRARY, "icu", now=ORDER_NOW)


@settings(max_examples=150)
@given(st.binary(max_size=400))
def test_random_bytes_get_an_ack(payload: bytes) -> None:
    try:
        parse(decode(payload))
    except Hl7ParseError:
        assert _answer(payload) in (AckCode.AE, AckCode.AR)


@settings(max_examples=150)
@given(st.integers(min_value=0, max_value=len(DOPAMINE)))
def test_truncated_orders_never_crash(cut: int) -> None:
    _survives(DOPAMINE[:cut])


@settings(max_examples=150)
@given(st.integers(min_value=0, max_value=len(DOPAMINE) - 1), st.characters(codec="utf-8"))
def test_mutated_orders_never_crash(position: int, char: str) -> None:
    _survives(DOPAMINE[:position] + char + DOPAMINE[position + 1 :])


@settings(max_examples=60)
@given(st.text(alphabet="|^~\\&#ab1 ", min_size=0, max_size=6))
def test_bad_msh2_gets_ar(chars: str) -> None:
    payload = f"MSH{chars}|A|B|||20240101||ADT^A01|1|P|2.5\r".encode()
    try:
        parse(payload.decode())
    except Hl7ParseError:
        assert _answer(payload) is AckCode.AR


def test_missing_msh10_gets_ae() -> None:
    assert _answer(DOPAMINE.replace("RGV^O15^RGV_O15|1|", "RGV^O15^RGV_O15||").encode()) is AckCode.AE


def test_one_megabyte_field_gets_ae() -> None:
    payload = DOPAMINE.replace("Doe^John", "Doe^" + "J" * 1_000_000).encode()
    assert _answer(payload) is AckCode.AE


def test_bad_encoding_gets_ar() -> None:
    assert _answer(DOPAMINE.encode() + b"\xff\xfe") is AckCode.AR


def test_an_order_padded_with_segments_or_fields_gets_ar_before_anything_reads_it() -> None:
    many_segments = DOPAMINE.rstrip("\r") + "\rNTE|1|L|padding" * 1000 + "\r"
    many_fields = DOPAMINE.rstrip("\r") + "\rNTE" + "|x" * 300 + "\r"
    for payload in (many_segments, many_fields):
        assert len(payload) < 1024 * 1024
        assert _answer(payload.encode()) is AckCode.AR


def test_a_superscript_digit_in_a_unit_identifier_reads_as_text_not_a_number() -> None:
    """'¹' passes str.isdigit() but int() refuses it: found by the fuzzer above as a crash."""
    from smartpump.interop.hl7v2.codes import unit_candidates

    assert unit_candidates(("¹63762", "mg", "UCUM")) == ("¹63762", "mg")
