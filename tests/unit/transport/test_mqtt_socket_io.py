"""``BurstReadingClient``'s socket I/O against a stand-in OS socket: large reads served packet by packet,
one send for everything queued, nothing carried over to a new connection."""

from __future__ import annotations

import threading
from collections import deque

import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from smartpump.transport.mqtt import RECV_BYTES, BurstReadingClient

PUBLISH = 0x30


class StandInSocket:
    """What the OS would hand over: ``chunks`` to ``recv``, then ``BlockingIOError``; ``send`` takes at most
    ``send_room`` bytes a call (all when None)."""

    def __init__(self, chunks: list[bytes], send_room: int | None = None) -> None:
        self.chunks = deque(chunks)
        self.recv_sizes: list[int] = []
        self.sent: list[bytes] = []
        self.send_room = send_room
        self.closed = False

    def recv(self, size: int) -> bytes:
        self.recv_sizes.append(size)
        if not self.chunks:
            raise BlockingIOError
        return self.chunks.popleft()

    def send(self, data: bytes | bytearray) -> int:
        if self.send_room == 0:
            raise BlockingIOError
        taken = bytes(data[: self.send_room]) if self.send_room is not None else bytes(data)
        self.sent.append(taken)
        return len(taken)

    def close(self) -> None:
        self.closed = True


def _client() -> BurstReadingClient:
    return BurstReadingClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="io-test",
        protocol=MQTTProtocolVersion.MQTTv5,
    )


def _attach(client: BurstReadingClient, sock: StandInSocket) -> None:
    client._sock = sock  # type: ignore[assignment]  # the stand-in speaks the part of the socket API used


def _threaded(client: BurstReadingClient) -> None:
    """Make ``publish`` queue packets as under ``loop_start`` (the test writes them with ``loop_write``)."""
    client._thread = threading.Thread(target=lambda: None)


def _writer(send_room: int | None = None) -> tuple[BurstReadingClient, StandInSocket]:
    """A client whose ``publish`` queues packets on a stand-in socket taking ``send_room`` bytes a send."""
    client = _client()
    sock = StandInSocket([], send_room=send_room)
    _attach(client, sock)
    _threaded(client)
    return client, sock


def test_one_recv_serves_the_reads_of_several_packets() -> None:
    client = _client()
    sock = StandInSocket([b"\x30\x03abc\x30\x02de"])
    _attach(client, sock)
    pieces = [client._sock_recv(n) for n in (1, 1, 3, 1, 1, 2)]
    assert pieces == [b"\x30", b"\x03", b"abc", b"\x30", b"\x02", b"de"]
    assert sock.recv_sizes == [RECV_BYTES]


def test_a_read_longer_than_the_buffer_returns_what_is_buffered() -> None:
    client = _client()
    sock = StandInSocket([b"abc", b"defgh"])
    _attach(client, sock)
    assert client._sock_recv(5) == b"abc"
    assert client._sock_recv(5) == b"defgh"
    with pytest.raises(BlockingIOError):
        client._sock_recv(1)


def test_a_closed_connection_reads_as_empty() -> None:
    client = _client()
    _attach(client, StandInSocket([b""]))
    assert client._sock_recv(1) == b""


def test_a_new_connection_starts_with_an_empty_buffer() -> None:
    client = _client()
    _attach(client, StandInSocket([b"old-bytes"]))
    assert client._sock_recv(3) == b"old"
    fresh = StandInSocket([b"new"])
    _attach(client, fresh)
    assert client._sock_recv(9) == b"new"


def test_past_the_burst_only_buffered_bytes_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """After ``READ_BURST`` packets a wake-up handles what is in memory and leaves the socket to ``select``,
    so an endless stream cannot keep the thread from writing, and nothing stays in memory unread."""
    monkeypatch.setattr("smartpump.transport.mqtt.READ_BURST", 2)
    client = _client()
    received: list[bytes] = []
    client.on_message = lambda c, u, m: received.append(bytes(m.payload))
    packets = [_publish(b"t", b"%d" % n) for n in range(4)]
    sock = StandInSocket([b"".join(packets[:3]), packets[3]])
    _attach(client, sock)
    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert received == [b"0", b"1", b"2"]
    assert len(sock.chunks) == 1, "the socket is not read past the burst"
    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert received == [b"0", b"1", b"2", b"3"]


def test_everything_queued_goes_out_in_one_send() -> None:
    client, sock = _writer()
    for n in range(5):
        client.publish("t", b"%d" % n, qos=0)
    assert client.want_write()
    assert client.loop_write() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert sock.sent == [b"".join(_publish(b"t", b"%d" % n) for n in range(5))]
    assert not client.want_write()


def test_what_the_socket_did_not_take_is_sent_next_time() -> None:
    client, sock = _writer(4)
    client.publish("t", b"payload", qos=0)
    wire = _publish(b"t", b"payload")
    client.loop_write()
    assert b"".join(sock.sent) == wire, "sent in pieces until the socket took it all"
    sock.sent.clear()
    sock.send_room = 0
    client.publish("t", b"more", qos=0)
    client.loop_write()
    assert client.want_write(), "bytes the socket refused wait for the next write"
    sock.send_room = None
    client.loop_write()
    assert b"".join(sock.sent) == _publish(b"t", b"more")
    assert not client.want_write()


def test_closing_sends_what_is_buffered_first() -> None:
    client, sock = _writer(0)
    client.publish("t", b"last words", qos=0)
    client.loop_write()
    sock.send_room = None
    client._sock_close()
    assert b"".join(sock.sent) == _publish(b"t", b"last words")
    assert sock.closed


def test_only_another_thread_queueing_the_first_packet_wakes_the_network_thread() -> None:
    client = _client()
    _attach(client, StandInSocket([]))
    wakes = StandInSocket([])
    client._sockpairW = wakes  # type: ignore[assignment]
    _threaded(client)
    client.publish("t", b"1", qos=0)
    client.publish("t", b"2", qos=0)
    assert len(wakes.sent) == 1, "the second packet found the first waiting: the thread is awake"
    client._out_packet.clear()
    client._thread = threading.current_thread()
    client.publish("t", b"3", qos=0)
    assert len(wakes.sent) == 1, "the network thread looks at its queue before it sleeps"


def _publish(topic: bytes, payload: bytes) -> bytes:
    """An MQTT 5 QoS 0 PUBLISH packet (no properties) of ``payload`` on ``topic``."""
    body = len(topic).to_bytes(2, "big") + topic + b"\x00" + payload
    assert len(body) < 128
    return bytes([PUBLISH, len(body)]) + body
