"""What the composition root builds once and every request shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from smartpump.clock import Clock
from smartpump.server.keys import Keyring
from smartpump.server.live import LiveHub
from smartpump.server.login_throttle import LoginThrottle
from smartpump.server.metrics import Metrics
from smartpump.server.settings import Settings

if TYPE_CHECKING:
    from smartpump.server.simulated import SimulatedFleet
    from smartpump.server.workers import BackgroundService


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerState:
    """Settings, database (the request engine, and the ingest worker's own engine), clock, hasher, keys,
    metrics, login throttle, live hub, demo fleet and background services."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    ingest_engine: Engine
    ingest_sessions: sessionmaker[Session]
    clock: Clock
    hasher: PasswordHasher
    keys: Keyring
    metrics: Metrics
    login_throttle: LoginThrottle
    live: LiveHub = field(default_factory=LiveHub)
    sim_fleet: SimulatedFleet | None = None
    background: list[BackgroundService] = field(default_factory=list)

    def wake(self) -> None:
        """Wake every background service that can be poked (queued commands go out now)."""
        for service in self.background:
            poke = getattr(service, "poke", None)
            if callable(poke):
                poke()
