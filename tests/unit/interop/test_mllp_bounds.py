"""The MLLP listener answers known senders only and stays bounded, over real localhost sockets:
an allow-list of sending applications (and facilities), TLS whose client certificate must name the
sender, a connection limit, an idle timeout and rate-limited refusal logs (issue 15, item 3)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smartpump.clock import ManualClock
from smartpump.interop.hl7v2.ack import AckCode, ack_code_of
from smartpump.interop.hl7v2.listener import Exchange, Hl7Listener, Sender, accept_all
from smartpump.interop.hl7v2.message import Message, parse
from smartpump.interop.hl7v2.mllp import MllpStream, open_stream
from tests.unit.interop.helpers import example

DOPAMINE = example("pcd03_rgv_o15_ex1_dopamine_dose_rate.hl7").encode()  # MSH-3 IOPVENDOR, MSH-4 IOPVENDOR
WAIT_S = 10.0


class Recorder:
    """A handler that records the control ids it is given and answers CA."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.seen: list[str] = []

    async def __call__(self, message: Message) -> Message:
        self.seen.append(message.control_id)
        return await accept_all(message, self.clock)


def _code(reply: bytes) -> tuple[AckCode | None, str]:
    message = parse(reply.decode())
    err = message.first("ERR")
    return ack_code_of(message), (err.value(8) if err is not None else "")


async def _ask(stream: MllpStream, payload: bytes) -> bytes:
    await stream.send(payload)
    reply = await stream.receive()
    assert reply is not None
    return reply.payload


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closes the connection (EOF), waiting at most WAIT_S."""
    data = await asyncio.wait_for(reader.read(100), timeout=WAIT_S)
    return data == b""


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        (frozenset({Sender("IOPVENDOR")}), AckCode.CA),
        (frozenset({Sender("iopvendor", "IOPVENDOR")}), AckCode.CA),
        (frozenset({Sender("IOPVENDOR", "OTHER-HOSPITAL")}), AckCode.AR),
        (frozenset({Sender("EPIC")}), AckCode.AR),
    ],
)
def test_only_senders_on_the_allow_list_reach_the_handler(
    allowed: frozenset[Sender], expected: AckCode
) -> None:
    handler = Recorder()
    log: list[Exchange] = []

    async def run() -> bytes:
        listener = Hl7Listener(
            handler, handler.clock, port=0, allowed_senders=allowed, on_exchange=log.append
        )
        host, port = await listener.start()
        try:
            stream = await open_stream(host, port)
            reply = await _ask(stream, DOPAMINE)
            await stream.close()
            return reply
        finally:
            await listener.close()

    code, text = _code(asyncio.run(run()))
    assert code is expected
    if expected is AckCode.AR:
        assert handler.seen == []
        assert "hl7.sender_not_allowed" in text
        assert log and log[0].error.startswith("hl7.sender_not_allowed")
    else:
        assert handler.seen == ["1"]


def test_sender_entries_parse_application_and_facility() -> None:
    assert Sender.parse(" EPIC / HOSP ") == Sender("EPIC", "HOSP")
    assert Sender.parse("EPIC") == Sender("EPIC", None)
    with pytest.raises(ValueError):
        Sender.parse("/HOSP")


def test_connections_beyond_the_limit_are_closed_at_once_and_the_others_still_served() -> None:
    handler = Recorder()
    log: list[Exchange] = []

    async def run() -> tuple[bool, AckCode | None, Hl7Listener]:
        listener = Hl7Listener(handler, handler.clock, port=0, max_connections=2, on_exchange=log.append)
        host, port = await listener.start()
        try:
            first = await open_stream(host, port)
            second = await open_stream(host, port)
            await _ask(first, DOPAMINE)  # both accepted and being served before the third arrives
            reader, writer = await asyncio.open_connection(host, port)
            refused = await _closed_by_server(reader)
            writer.close()
            code, _ = _code(await _ask(second, DOPAMINE.replace(b"RGV_O15|1|", b"RGV_O15|2|")))
            await first.close()
            await second.close()
            return refused, code, listener
        finally:
            await listener.close()

    refused, code, listener = asyncio.run(run())
    assert refused and code is AckCode.CA
    assert listener.refused_connections == 1
    assert any(e.error.startswith("mllp.too_many_connections") for e in log)


def test_an_idle_connection_is_closed_after_the_timeout() -> None:
    handler = Recorder()

    async def run() -> tuple[bool, Hl7Listener]:
        listener = Hl7Listener(handler, handler.clock, port=0, idle_timeout_s=0.2)
        host, port = await listener.start()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            closed = await _closed_by_server(reader)
            writer.close()
            return closed, listener
        finally:
            await listener.close()

    closed, listener = asyncio.run(run())
    assert closed and listener.idle_closed == 1


def test_refusals_are_logged_at_most_the_limit_per_minute_and_counted() -> None:
    handler = Recorder()
    log: list[Exchange] = []

    async def run() -> Hl7Listener:
        listener = Hl7Listener(
            handler, handler.clock, port=0, refusal_logs_per_minute=3, on_exchange=log.append
        )
        for _ in range(10):
            await listener.answer(b"garbage", peer="10.0.0.9:4000")
        return listener

    listener = asyncio.run(run())
    assert len(log) == 3 and listener.unlogged_refusals == 7
    handler.clock.advance(60)
    asyncio.run(listener.answer(b"garbage", peer="10.0.0.9:4001"))
    assert len(log) == 4


# --- TLS: the client certificate names the sender ----------------------------------------------------


def _certificate(
    name: str,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    issuer: x509.Name | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    ca: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    own = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(own.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key or own, hashes.SHA256()), own


def _write(path: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_over_tls_the_client_certificate_must_name_the_sending_application(tmp_path: Path) -> None:
    ca, ca_key = _certificate("hospital interface CA", ca=True)
    server_cert, server_key = _write(tmp_path / "server", *_certificate("localhost", ca_key, ca.subject))
    ca_path = tmp_path / "ca.crt"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(server_cert, server_key)
    server.load_verify_locations(ca_path)
    server.verify_mode = ssl.CERT_REQUIRED

    def client_for(name: str) -> ssl.SSLContext:
        cert, key = _write(tmp_path / name, *_certificate(name, ca_key, ca.subject))
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_path))
        context.load_cert_chain(cert, key)
        return context

    handler = Recorder()

    async def run() -> tuple[bytes, bytes, bool]:
        listener = Hl7Listener(handler, handler.clock, port=0, ssl_context=server)
        _, port = await listener.start()
        try:
            replies = []
            for name in ("IOPVENDOR", "SOMEONE-ELSE"):
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=client_for(name), server_hostname="localhost"
                )
                stream = MllpStream(reader, writer, 1 << 20)
                replies.append(await _ask(stream, DOPAMINE))
                await stream.close()
            plain_reader, plain_writer = await asyncio.open_connection("127.0.0.1", port)
            plain_writer.write(b"\x0b" + DOPAMINE + b"\x1c\r")
            refused = await _closed_by_server(plain_reader)
            plain_writer.close()
            return replies[0], replies[1], refused
        finally:
            await listener.close()

    authenticated, impostor, plain_refused = asyncio.run(run())
    assert _code(authenticated)[0] is AckCode.CA
    code, text = _code(impostor)
    assert code is AckCode.AR and "hl7.sender_not_allowed" in text and "SOMEONE-ELSE" in text
    assert handler.seen == ["1"]
    assert plain_refused
