"""What the composition root builds once and every request shares."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from smartpump.clock import Clock
from smartpump.server.keys import SigningKeys
from smartpump.server.metrics import Metrics
from smartpump.server.settings import Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerState:
    """Settings, database, clock, password hasher, signing keys and metrics of one app instance."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    hasher: PasswordHasher
    keys: SigningKeys
    metrics: Metrics
