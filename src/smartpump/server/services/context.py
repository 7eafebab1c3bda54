"""What each service needs from the composition root, as narrow protocols: a service names exactly the
parts it uses (clock, signing keys, a way to wake the workers, the live hub, sessions, settings) and never
imports ``server.state``; ``ServerState`` satisfies every one of them."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from smartpump.clock import Clock
from smartpump.server.keys import Keyring
from smartpump.server.live import LiveHub
from smartpump.server.settings import Settings


class ClockContext(Protocol):
    """The server's clock."""

    @property
    def clock(self) -> Clock:
        """The one clock the server reads."""
        ...


class SigningContext(ClockContext, Protocol):
    """The clock and the server's signing keys."""

    @property
    def keys(self) -> Keyring:
        """The keyring whose signers sign commands, releases and packages."""
        ...


class CommandContext(SigningContext, Protocol):
    """What issuing a signed command needs: clock, keys and a way to send queued commands at once."""

    def wake(self) -> None:
        """Wake the background workers so queued commands go out now, not at their next poll."""
        ...


class DeploymentContext(CommandContext, Protocol):
    """What deployment progress needs: commands plus the live hub that shows it."""

    @property
    def live(self) -> LiveHub:
        """The hub that pushes changes to open pages."""
        ...


class SessionContext(ClockContext, Protocol):
    """The clock and the database sessions of a service that opens its own transactions."""

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory."""
        ...


class OrderContext(CommandContext, SessionContext, Protocol):
    """What EHR order intake needs: commands, sessions and settings (presence, HL7 zone)."""

    @property
    def settings(self) -> Settings:
        """The server settings."""
        ...


class IngestContext(DeploymentContext, SessionContext, Protocol):
    """What the uplink ingest needs: deployments, sessions (its own engine's for its writes) and settings."""

    @property
    def settings(self) -> Settings:
        """The server settings."""
        ...

    @property
    def ingest_sessions(self) -> sessionmaker[Session]:
        """The session factory of ingest's own engine (never the request pool)."""
        ...
