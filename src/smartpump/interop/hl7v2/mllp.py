"""MLLP framing (HL7 v2 TF Appendix C / IHE PCD TF Vol. 2 Appendix I): VT <message> FS CR.

Framing only, no parsing: an incremental decoder that drops garbage between frames and refuses
oversized frames, an asyncio stream pair, and a small blocking client.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Final

from smartpump.errors import SmartpumpError

START_BLOCK: Final = b"\x0b"
END_BLOCK: Final = b"\x1c\r"
DEFAULT_PORT: Final = 2575
MAX_MESSAGE_BYTES: Final = 1024 * 1024


class MllpError(SmartpumpError):
    """A transport failure: ``mllp.timeout``, ``mllp.connection``, ``mllp.too_large``, ``mllp.closed``."""

    code = "mllp.error"


def frame(payload: bytes) -> bytes:
    """One MLLP block around a payload."""
    return START_BLOCK + payload + END_BLOCK


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded block: the payload, or ``oversize`` when it exceeded the limit and was dropped."""

    payload: bytes
    oversize: bool = False


class MllpDecoder:
    """Incremental MLLP decoder: feed bytes, get complete frames; bytes outside a block are dropped."""

    def __init__(self, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._max = max_message_bytes
        self._buffer = bytearray()
        self._in_block = False
        self._skipping = False
        self.discarded_bytes = 0

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return every frame they complete, in order."""
        frames: list[Frame] = []
        self._buffer.extend(data)
        while self._buffer:
            if not self._in_block:
                start = self._buffer.find(START_BLOCK)
                if start < 0:
                    self.discarded_bytes += len(self._buffer)
                    self._buffer.clear()
                    break
                self.discarded_bytes += start
                del self._buffer[: start + 1]
                self._in_block = True
                self._skipping = False
            end = self._buffer.find(END_BLOCK)
            if end < 0:
                if len(self._buffer) > self._max:
                    self._skipping = True
                    keep = self._buffer[-1:] if self._buffer.endswith(b"\x1c") else b""
                    self.discarded_bytes += len(self._buffer) - len(keep)
                    self._buffer = bytearray(keep)
                break
            payload = bytes(self._buffer[:end])
            del self._buffer[: end + len(END_BLOCK)]
            self._in_block = False
            if self._skipping or len(payload) > self._max:
                frames.append(Frame(b"", oversize=True))
            else:
                frames.append(Frame(payload))
        return frames


class MllpStream:
    """An asyncio MLLP connection: receive whole frames, send framed payloads."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = MllpDecoder(max_message_bytes)
        self._pending: list[Frame] = []

    async def receive(self) -> Frame | None:
        """The next frame, or None when the peer closed the connection."""
        while not self._pending:
            data = await self._reader.read(65536)
            if not data:
                return None
            self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)

    async def send(self, payload: bytes) -> None:
        """Write one framed payload and wait until it is flushed."""
        self._writer.write(frame(payload))
        await self._writer.drain()

    async def close(self) -> None:
        """Close the connection (errors while closing are the peer's business)."""
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            return


async def open_stream(host: str, port: int, *, timeout_s: float = 10.0) -> MllpStream:
    """Connect to an MLLP endpoint.

    Raises:
        MllpError: ``mllp.connection`` or ``mllp.timeout``.
    """
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except TimeoutError:
        raise MllpError(f"connecting to {host}:{port} timed out", code="mllp.timeout") from None
    except OSError as error:
        raise MllpError(f"cannot connect to {host}:{port}: {error}", code="mllp.connection") from None
    return MllpStream(reader, writer)


class MllpClient:
    """A blocking MLLP client: one request, one reply frame, over a kept-open connection."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        timeout_s: float = 10.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._max = max_message_bytes
        self._socket: socket.socket | None = None
        self._decoder = MllpDecoder(max_message_bytes)

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _connect(self) -> socket.socket:
        if self._socket is None:
            try:
                self._socket = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            except TimeoutError:
                raise MllpError(
                    f"connecting to {self.host}:{self.port} timed out", code="mllp.timeout"
                ) from None
            except OSError as error:
                raise MllpError(
                    f"cannot connect to {self.host}:{self.port}: {error}", code="mllp.connection"
                ) from None
            self._decoder = MllpDecoder(self._max)
        return self._socket

    def send(self, payload: bytes) -> bytes:
        """Send one message and return the payload of the reply frame; a kept-open connection the peer has
        closed meanwhile (many listeners close after each reply) is replaced once by a fresh one.

        Raises:
            MllpError: connection refused or lost, timeout, oversized reply.
        """
        reused = self._socket is not None
        try:
            return self._exchange(payload)
        except MllpError as error:
            if not reused or error.code not in ("mllp.closed", "mllp.connection"):
                raise
            return self._exchange(payload)

    def _exchange(self, payload: bytes) -> bytes:
        sock = self._connect()
        try:
            sock.sendall(frame(payload))
            while True:
                data = sock.recv(65536)
                if not data:
                    raise MllpError("the peer closed the connection before replying", code="mllp.closed")
                frames = self._decoder.feed(data)
                if frames:
                    if frames[0].oversize:
                        raise MllpError("the reply exceeds the size limit", code="mllp.too_large")
                    return frames[0].payload
        except TimeoutError:
            self.close()
            raise MllpError(
                f"no reply from {self.host}:{self.port} in {self.timeout_s} s", code="mllp.timeout"
            ) from None
        except MllpError:
            self.close()
            raise
        except OSError as error:
            self.close()
            raise MllpError(
                f"connection to {self.host}:{self.port} failed: {error}", code="mllp.connection"
            ) from None

    def close(self) -> None:
        """Close the connection; the next send reconnects."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
