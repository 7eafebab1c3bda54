"""MLLP framing and the listener over real localhost sockets: frames, garbage, duplicates, acks."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from smartpump.clock import ManualClock
from smartpump.interop.hl7v2.ack import AckCode, ack_code_of
from smartpump.interop.hl7v2.listener import Exchange, Hl7Listener, accept_all
from smartpump.interop.hl7v2.message import Message, parse
from smartpump.interop.hl7v2.mllp import Frame, MllpClient, MllpDecoder, MllpError, frame, open_stream
from smartpump.interop.hl7v2.validation import structure_problems
from tests.unit.interop.helpers import example

DOPAMINE = example("pcd03_rgv_o15_ex1_dopamine_dose_rate.hl7").encode()


def test_frame_bytes() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\r"


def test_decoder_joins_partial_frames_and_drops_garbage() -> None:
    decoder = MllpDecoder()
    wire = b"noise" + frame(b"one") + b"\r\n" + frame(b"two")
    frames = [f for i in range(len(wire)) for f in decoder.feed(wire[i : i + 1])]
    assert [f.payload for f in frames] == [b"one", b"two"]
    assert decoder.discarded_bytes == len(b"noise") + 2


def test_decoder_refuses_an_oversize_frame_and_recovers() -> None:
    decoder = MllpDecoder(max_message_bytes=10)
    frames = decoder.feed(frame(b"x" * 50)) + decoder.feed(frame(b"ok"))
    assert [(f.oversize, f.payload) for f in frames] == [(True, b""), (False, b"ok")]


def test_decoder_refuses_oversize_arriving_in_pieces() -> None:
    decoder = MllpDecoder(max_message_bytes=10)
    frames = (
        decoder.feed(b"\x0b" + b"x" * 30)
        + decoder.feed(b"y" * 30 + b"\x1c")
        + decoder.feed(b"\r" + frame(b"ok"))
    )
    assert [(f.oversize, f.payload) for f in frames] == [(True, b""), (False, b"ok")]


class Recorder:
    """A handler that counts calls and answers AA/CA."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.seen: list[str] = []

    async def __call__(self, message: Message) -> Message:
        self.seen.append(message.control_id)
        return await accept_all(message, self.clock)


async def _with_listener(handler: Recorder, body):  # type: ignore[no-untyped-def]
    log: list[Exchange] = []
    listener = Hl7Listener(handler, handler.clock, port=0, on_exchange=log.append)
    host, port = await listener.start()
    try:
        return await body(host, port), log
    finally:
        await listener.close()


def test_duplicate_control_id_is_answered_once_with_the_original_ack() -> None:
    handler = Recorder(ManualClock())

    async def body(host: str, port: int) -> tuple[bytes | None, bytes | None]:
        stream = await open_stream(host, port)
        await stream.send(DOPAMINE)
        first = await stream.receive()
        await stream.send(DOPAMINE)
        second = await stream.receive()
        await stream.close()
        return (first.payload if first else None), (second.payload if second else None)

    (first, second), log = asyncio.run(_with_listener(handler, body))
    assert first is not None and first == second
    assert handler.seen == ["1"]
    assert ack_code_of(parse(first.decode())) is AckCode.CA
    assert [e.is_duplicate for e in log] == [False, True]


def test_garbage_between_frames_is_ignored() -> None:
    handler = Recorder(ManualClock())

    async def body(host: str, port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection(host, port)
        second = DOPAMINE.replace(b"RGV_O15|1|", b"RGV_O15|2|")
        writer.write(b"junk\r\n" + frame(DOPAMINE) + b"\x00\x00" + frame(second))
        await writer.drain()
        data = b""
        while data.count(b"\x1c\r") < 2:
            data += await reader.read(4096)
        writer.close()
        await writer.wait_closed()
        return [p for p in data.split(b"\x1c\r") if p]

    replies, _ = asyncio.run(_with_listener(handler, body))
    assert len(replies) == 2 and handler.seen == ["1", "2"]


def test_malformed_message_gets_ar_over_the_socket() -> None:
    handler = Recorder(ManualClock())

    async def body(host: str, port: int) -> bytes | None:
        stream = await open_stream(host, port)
        await stream.send(b"MSH|^~|broken")
        reply = await stream.receive()
        await stream.close()
        return reply.payload if reply else None

    reply, log = asyncio.run(_with_listener(handler, body))
    assert reply is not None and ack_code_of(parse(reply.decode())) is AckCode.AR
    assert handler.seen == [] and log[0].error.startswith("hl7.bad_delimiters")


def test_handler_failure_gets_ae_and_server_stays_up() -> None:
    clock = ManualClock()

    class Failing(Recorder):
        async def __call__(self, message: Message) -> Message:
            if message.control_id == "1":
                raise RuntimeError("database down")
            return await super().__call__(message)

    handler = Failing(clock)

    async def body(host: str, port: int) -> list[AckCode | None]:
        stream = await open_stream(host, port)
        codes = []
        for payload in (DOPAMINE, DOPAMINE.replace(b"RGV_O15|1|", b"RGV_O15|7|")):
            await stream.send(payload)
            reply = await stream.receive()
            codes.append(ack_code_of(parse(reply.payload.decode())) if reply else None)
        await stream.close()
        return codes

    codes, _ = asyncio.run(_with_listener(handler, body))
    assert codes == [AckCode.AE, AckCode.CA]


def test_blocking_client_times_out_and_reports_refused_connections() -> None:
    async def silent(host: str, port: int) -> str:
        def client() -> str:
            with MllpClient(host, port, timeout_s=0.3) as mllp:
                try:
                    mllp.send(b"MSH|^~\\&|x")
                except MllpError as error:
                    return error.code
            return "no error"

        return await asyncio.to_thread(client)

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            continue
        writer.close()
        await writer.wait_closed()

    async def run() -> str:
        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await silent("127.0.0.1", port)
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(run()) == "mllp.timeout"
    with pytest.raises(MllpError) as caught:
        MllpClient("127.0.0.1", 1, timeout_s=0.5).send(b"x")
    assert caught.value.code == "mllp.connection"


def test_client_replaces_a_connection_the_peer_closed_after_its_reply() -> None:
    """A listener that closes after every reply (as hl7apy's does) still gets every message, each once."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            with conn:
                decoder = MllpDecoder()
                frames: list[Frame] = []
                while not frames:
                    frames = decoder.feed(conn.recv(65536))
                received.append(frames[0].payload)
                conn.sendall(frame(b"ACK " + frames[0].payload))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with MllpClient("127.0.0.1", server.getsockname()[1], timeout_s=10) as client:
        assert client.send(b"one") == b"ACK one"
        assert client.send(b"two") == b"ACK two"
    thread.join(timeout=10)
    server.close()
    assert received == [b"one", b"two"]


def _raw_exchange(host: str, port: int, payload: bytes) -> bytes:
    """Send one raw MLLP frame over a plain blocking socket and read the framed reply."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"\x0b" + payload + b"\x1c\r")
        data = b""
        while not data.endswith(b"\x1c\r"):
            chunk = sock.recv(4096)
            assert chunk, "the listener closed the connection without replying"
            data += chunk
    assert data.startswith(b"\x0b")
    return data[1:-2]


@pytest.mark.parametrize(
    ("payload", "msh9", "msa", "receiver", "version"),
    [
        (b"garbage", "ACK^O15^ACK", "MSA|AR", "", "2.6"),
        (b"\xff\xfeMSH|^~\\&|EHR", "ACK^O15^ACK", "MSA|AR", "", "2.6"),
        (
            b"MSH|^~\\&|ADTSYS^X|WARD|SP|H|20260101||ADT^A01^ADT_A01|C9|P|2.5\rPID|1\r!!|x",
            "ACK^A01^ACK",
            "MSA|AR|C9",
            "ADTSYS|WARD",
            "2.5",
        ),
        (
            b"MSH|^~\\&|EHR|H|SP|H|20260101||RGV^O1^RGV_O15|D7|P|9.9\rZZZZ|1",
            "ACK^O15^ACK",
            "MSA|AR|D7",
            "EHR|H",
            "2.6",
        ),
    ],
    ids=["garbage", "undecodable", "adt-with-bad-segment", "garbled-trigger-and-version"],
)
def test_ack_to_unparsable_input_over_a_raw_socket(
    payload: bytes, msh9: str, msa: str, receiver: str, version: str
) -> None:
    handler = Recorder(ManualClock())

    async def body(host: str, port: int) -> bytes:
        return await asyncio.to_thread(_raw_exchange, host, port, payload)

    reply, _ = asyncio.run(_with_listener(handler, body))
    segments = reply.decode().split("\r")
    msh = segments[0].split("|")
    assert handler.seen == []
    assert msh[8] == msh9 and msh[11] == version
    assert "|".join(msh[4:6]) == (receiver or "|")
    assert segments[1] == msa
    problems = structure_problems(parse(reply.decode()))
    # MSA-2 is required by HL7; when MSH-10 cannot be read it is left empty rather than invented
    assert problems == (("ValidationError: Missing required child MSA.MSA_2",) if msa == "MSA|AR" else ())
