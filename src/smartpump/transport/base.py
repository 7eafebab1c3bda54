"""The one small interface every pump <-> server transport implements (in-process, MQTT 5).

A transport moves ``Envelope``s; it neither stores nor retries. Durability and resending belong to
the pump's outbox/uplink and to the server's ingest, which both speak only this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from smartpump.transport.messages import Envelope

MessageHandler = Callable[[Envelope], None]
ConnectionHandler = Callable[[bool], None]


class Transport(Protocol):
    """One endpoint of the link: a pump (sends events, hellos, results; receives acks, commands) or a
    server (sends acks and commands to ``envelope.pump``; receives every pump's uplink messages).

    Contract:
        * ``start`` registers the two callbacks, then connects in the background and keeps
          reconnecting; ``on_connection(True/False)`` reports every change of link state.
        * ``send`` never blocks on the network: it returns True when the message was handed to the
          link (QoS 1, at least once from there on) and False when the link is down (the caller keeps
          the message and tries again later). It raises ``MessageError`` for a message of a kind this
          endpoint may not send.
        * ``on_message`` receives only messages that decoded and validated; the transport drops (and
          counts in ``rejected``) anything malformed. It may be called from a transport thread.
        * Delivery is at least once: duplicates and reordering are possible; receivers de-duplicate.
    """

    @property
    def connected(self) -> bool:
        """Whether the link is up right now."""
        ...

    @property
    def rejected(self) -> int:
        """How many received messages were dropped as malformed."""
        ...

    def start(self, on_message: MessageHandler, on_connection: ConnectionHandler) -> None:
        """Register the callbacks and begin connecting (returns at once)."""
        ...

    def send(self, envelope: Envelope) -> bool:
        """Hand one message to the link; False (nothing sent) when the link is down."""
        ...

    def close(self) -> None:
        """Disconnect cleanly and stop reconnecting."""
        ...
