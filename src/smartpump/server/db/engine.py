"""Engine and session factory for SQLite (embedded default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


BACKGROUND_CONNECTIONS: Final = 8
"""Connections beyond the request slots, for the EHR and audit-anchor workers and nested sessions."""
INGEST_CONNECTIONS: Final = 2
"""The ingest engine's pool: one connection for the ingest thread, one spare (a pre-ping replacement)."""
POOL_TIMEOUT_S: Final = 10


def make_engine(url: str, *, request_slots: int = 5) -> Engine:
    """An engine for the URL with a pool of ``request_slots`` connections (the server's concurrent
    requests) plus ``BACKGROUND_CONNECTIONS`` for its workers; SQLite gets foreign keys on, its directory
    created, and a busy timeout."""
    return _engine(url, pool_size=request_slots, max_overflow=BACKGROUND_CONNECTIONS)


def make_ingest_engine(url: str) -> Engine:
    """The ingest worker's own engine (``INGEST_CONNECTIONS``, no overflow): no burst of requests or live
    streams on the request engine can take the connections ingest commits with."""
    return _engine(url, pool_size=INGEST_CONNECTIONS, max_overflow=0)


def _engine(url: str, *, pool_size: int, max_overflow: int) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=POOL_TIMEOUT_S,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=POOL_TIMEOUT_S,
    )


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (responses are built after it)."""
    return sessionmaker(engine, expire_on_commit=False)
