"""Store-and-forward for outbound HL7: a persistent (SQLite) ordered queue per destination.

A message keeps its MSH-10 across retries; it leaves the queue only on a positive ack (AA/CA).
A negative ack (AE/AR/CE/CR) parks it as ``rejected`` (kept for an operator, never deleted) and the
queue moves on; a transport failure schedules a retry with exponential backoff computed from the
injected clock, and nothing behind it is sent first (per-destination order is kept).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Final

from smartpump.clock import Clock
from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.interop.hl7v2.message import Hl7ParseError, parse
from smartpump.interop.hl7v2.mllp import MllpError

_COLUMNS: Final = (
    "id, destination, control_id, payload, state, attempts, next_attempt_at, last_error, ack_code"
)
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    control_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    enqueued_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    ack_code TEXT NOT NULL DEFAULT '',
    done_at TEXT NOT NULL DEFAULT '',
    UNIQUE (destination, control_id)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (destination, state, id);
"""


class OutboxState(StrEnum):
    """pending: waiting to be delivered; delivered: positively acked; rejected: negatively acked."""

    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Retry delay after the n-th failure: initial x factor^(n-1), capped at ``max_s`` (no jitter)."""

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 300.0

    def delay_s(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (>= 1)."""
        return min(self.max_s, self.initial_s * self.factor ** max(0, failures - 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxItem:
    """One queued message."""

    id: int
    destination: str
    control_id: str
    payload: str
    state: OutboxState
    attempts: int
    next_attempt_at: datetime
    last_error: str
    ack_code: str


Sender = Callable[[str], str]
"""Sends one ER7 message and returns the reply text; raises MllpError on transport failure."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainResult:
    """What one drain pass did."""

    delivered: int
    rejected: int
    failed: int
    pending: int


class Outbox:
    """The persistent queue; one instance per process, the SQLite file is the source of truth."""

    def __init__(self, path: Path, clock: Clock, *, backoff: Backoff = Backoff()) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._clock = clock
        self._backoff = backoff

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def enqueue(self, message_text: str, destination: str) -> int:
        """Queue a message (its MSH-10 is its identity); enqueuing the same ID twice is a no-op.

        Raises:
            Hl7ParseError: the text is not a message with an MSH-10.
        """
        message = parse(message_text)
        if not message.control_id:
            raise Hl7ParseError("a queued message needs an MSH-10", code="hl7.no_control_id")
        now = self._clock.now().isoformat()
        self._db.execute(
            "INSERT OR IGNORE INTO outbox"
            " (destination, control_id, payload, state, enqueued_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (destination, message.control_id, message.to_er7(), OutboxState.PENDING.value, now, now),
        )
        row = self._db.execute(
            "SELECT id FROM outbox WHERE destination = ? AND control_id = ?",
            (destination, message.control_id),
        ).fetchone()
        return int(row[0])

    def head(self, destination: str) -> OutboxItem | None:
        """The oldest pending message of a destination (due or not)."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE destination = ? AND state = ? ORDER BY id LIMIT 1",
            (destination, OutboxState.PENDING.value),
        ).fetchone()
        return None if row is None else _item(row)

    def items(self, destination: str, state: OutboxState | None = None) -> tuple[OutboxItem, ...]:
        """Every message of a destination in queue order, optionally of one state."""
        query = f"SELECT {_COLUMNS} FROM outbox WHERE destination = ?"
        params: tuple[str, ...] = (destination,)
        if state is not None:
            query += " AND state = ?"
            params = (destination, state.value)
        return tuple(_item(r) for r in self._db.execute(query + " ORDER BY id", params).fetchall())

    def drain(self, destination: str, send: Sender) -> DrainResult:
        """Send due messages in order until the queue is empty, a head is not due, or a send fails."""
        delivered = rejected = failed = 0
        while (item := self.head(destination)) is not None and item.next_attempt_at <= self._clock.now():
            try:
                reply = send(item.payload)
                code = ack_code_of(parse(reply))
            except (MllpError, Hl7ParseError) as error:
                self._fail(item, f"{error.code}: {error.message}")
                failed += 1
                break
            if code is None:
                self._fail(item, "reply has no MSA-1 acknowledgement code")
                failed += 1
                break
            state = OutboxState.DELIVERED if code.is_positive else OutboxState.REJECTED
            self._db.execute(
                "UPDATE outbox SET state = ?, ack_code = ?, attempts = attempts + 1, done_at = ?"
                " WHERE id = ?",
                (state.value, code.value, self._clock.now().isoformat(), item.id),
            )
            if code.is_positive:
                delivered += 1
            else:
                rejected += 1
        pending = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE destination = ? AND state = ?",
            (destination, OutboxState.PENDING.value),
        ).fetchone()
        return DrainResult(delivered=delivered, rejected=rejected, failed=failed, pending=int(pending[0]))

    def _fail(self, item: OutboxItem, error: str) -> None:
        attempts = item.attempts + 1
        retry_at = self._clock.now() + timedelta(seconds=self._backoff.delay_s(attempts))
        self._db.execute(
            "UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (attempts, error, retry_at.isoformat(), item.id),
        )

    def purge_delivered(self, older_than: datetime) -> int:
        """Delete delivered messages acked before ``older_than``; returns how many."""
        cursor = self._db.execute(
            "DELETE FROM outbox WHERE state = ? AND done_at < ?",
            (OutboxState.DELIVERED.value, older_than.isoformat()),
        )
        return cursor.rowcount


def _item(row: tuple[object, ...]) -> OutboxItem:
    return OutboxItem(
        id=int(str(row[0])),
        destination=str(row[1]),
        control_id=str(row[2]),
        payload=str(row[3]),
        state=OutboxState(str(row[4])),
        attempts=int(str(row[5])),
        next_attempt_at=datetime.fromisoformat(str(row[6])),
        last_error=str(row[7]),
        ack_code=str(row[8]),
    )
