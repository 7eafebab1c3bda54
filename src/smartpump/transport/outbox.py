"""The pump's durable outbox: events wait in a SQLite file until the server acknowledges their seq.

Rows are deleted only by a cumulative ack. Past ``capacity`` the outbox sheds low-value telemetry
(oldest first), never alarms, overrides, library, command or security events, and puts an
``events.shed`` record describing what was shed in place of the last shed seq (REL-OFF-04).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Final

from smartpump.errors import SmartpumpError
from smartpump.pump.events import EventType, PumpEvent
from smartpump.transport.messages import SCHEMA_VERSION, EventRecord, pump_id

SHED_EVENT_TYPE: Final = EventType.EVENTS_SHED.value
PROTECTED_PREFIXES: Final = (
    "alarm.",
    "library.",
    "configuration.",
    "command.",
    "security.",
    "events.",
    "pump.",
    "occlusion.",
)
PROTECTED_TYPES: Final = frozenset(
    {
        "alert.overridden",
        "program.refused",
        "start.refused",
        "verification.failed",
        "duplicate_therapy.detected",
        "infiltration.suspected",
        "battery.low",
        "battery.depleted",
        "power.ac_lost",
    }
)
LOW_VALUE_TYPES: Final = frozenset({"vitals.recorded", "infusion.near_end_reached", "set.change_due"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    shed_rank INTEGER,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_shed ON outbox (shed_rank, seq) WHERE shed_rank IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class OutboxError(SmartpumpError):
    """An outbox operation refused: another pump's file or event, seq out of order, ack ahead of data."""

    code = "outbox.invalid"


def shed_rank(event_type: str) -> int | None:
    """Shedding order of a type: None = never shed, 0 = low-value telemetry (first), 1 = the rest."""
    if event_type in PROTECTED_TYPES or event_type.startswith(PROTECTED_PREFIXES):
        return None
    return 0 if event_type in LOW_VALUE_TYPES else 1


class Outbox:
    """One pump's outbox in a SQLite file (path injected); safe to share between threads."""

    def __init__(
        self, path: Path | str, *, pump: str, capacity: int = 200_000, shed_batch: int | None = None
    ):
        if capacity < 2:
            raise OutboxError(f"capacity must be >= 2, got {capacity}", code="outbox.capacity")
        self.pump = pump_id(pump)
        self.capacity = capacity
        self.shed_batch = shed_batch if shed_batch is not None else max(2, capacity // 10)
        if self.shed_batch < 2:
            raise OutboxError(f"shed_batch must be >= 2, got {self.shed_batch}", code="outbox.capacity")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        stored = self._meta("pump")
        if stored is None:
            self._set_meta("pump", self.pump)
        elif stored != self.pump:
            self._db.close()
            raise OutboxError(
                f"outbox file {path} belongs to pump {stored!r}, not {self.pump!r}",
                code="outbox.pump_mismatch",
            )
        self._rows: int = int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database file (everything appended is already on disk)."""
        with self._lock:
            self._db.close()

    @property
    def acked_seq(self) -> int:
        """The highest seq the server has acknowledged (0 before the first ack)."""
        with self._lock:
            return int(self._meta("acked_seq") or 0)

    @property
    def last_seq(self) -> int:
        """The highest seq ever appended (0 for a new outbox); survives acks and restarts."""
        with self._lock:
            return int(self._meta("last_seq") or 0)

    @property
    def shed_count(self) -> int:
        """How many events were shed over the outbox's life."""
        with self._lock:
            return int(self._meta("shed_count") or 0)

    def __len__(self) -> int:
        with self._lock:
            return self._rows

    def append(self, event: PumpEvent | EventRecord) -> None:
        """Keep one event until acked; seq must exceed every seq appended before (one local write)."""
        record = EventRecord.from_event(event) if isinstance(event, PumpEvent) else event
        if record.pump != self.pump:
            raise OutboxError(
                f"event of pump {record.pump!r} offered to the outbox of {self.pump!r}",
                code="outbox.pump_mismatch",
            )
        with self._lock:
            last = int(self._meta("last_seq") or 0)
            if record.seq <= last:
                raise OutboxError(
                    f"seq {record.seq} is not after the last appended seq {last}", code="outbox.seq_order"
                )
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO outbox (seq, type, shed_rank, record) VALUES (?, ?, ?, ?)",
                    (record.seq, record.type, shed_rank(record.type), _dump(record)),
                )
                self._set_meta("last_seq", str(record.seq))
                rows = self._rows + 1
                if rows > self.capacity:
                    rows -= self._shed()
            self._rows = rows

    def pending(self, after_seq: int, limit: int) -> list[EventRecord]:
        """Up to ``limit`` kept events with seq > ``after_seq``, in seq order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT record FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
        return [EventRecord.from_dict(json.loads(row[0])) for row in rows]

    def acknowledge(self, upto_seq: int) -> int:
        """Cumulative ack: delete every kept event with seq <= ``upto_seq``; returns how many went."""
        with self._lock:
            last = int(self._meta("last_seq") or 0)
            if upto_seq > last:
                raise OutboxError(
                    f"ack of seq {upto_seq} is ahead of the last appended seq {last}", code="outbox.ack_ahead"
                )
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                deleted = int(self._db.execute("DELETE FROM outbox WHERE seq <= ?", (upto_seq,)).rowcount)
                if upto_seq > int(self._meta("acked_seq") or 0):
                    self._set_meta("acked_seq", str(upto_seq))
            self._rows -= deleted
            return deleted

    def load_counter(self, name: str) -> int:
        """A persisted non-negative counter kept beside the events (0 when never saved)."""
        with self._lock:
            return int(self._meta(f"counter:{name}") or 0)

    def save_counter(self, name: str, value: int) -> None:
        """Persist a counter (the command ledger's last counter survives restarts this way)."""
        with self._lock, self._db:
            self._set_meta(f"counter:{name}", str(value))

    def _shed(self) -> int:
        """Replace the oldest lowest-value rows by one ``events.shed`` record; returns rows removed."""
        rows = self._db.execute(
            "SELECT seq, type, record FROM outbox WHERE shed_rank IS NOT NULL "
            "ORDER BY shed_rank, seq LIMIT ?",
            (self.shed_batch,),
        ).fetchall()
        if len(rows) < 2:
            return 0
        seqs = sorted(int(r[0]) for r in rows)
        types = Counter(str(r[1]) for r in rows)
        last_record = EventRecord.from_dict(json.loads(max(rows, key=lambda r: int(r[0]))[2]))
        gap = EventRecord(
            v=SCHEMA_VERSION,
            pump=self.pump,
            seq=seqs[-1],
            ts=last_record.ts,
            channel=None,
            type=SHED_EVENT_TYPE,
            data={
                "count": len(seqs),
                "first_seq": seqs[0],
                "last_seq": seqs[-1],
                "seqs": _ranges(seqs),
                "types": dict(sorted(types.items())),
            },
        )
        self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
        self._db.execute(
            "INSERT INTO outbox (seq, type, shed_rank, record) VALUES (?, ?, NULL, ?)",
            (gap.seq, gap.type, _dump(gap)),
        )
        self._set_meta("shed_count", str(int(self._meta("shed_count") or 0) + len(seqs)))
        return len(seqs) - 1

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _dump(record: EventRecord) -> str:
    return json.dumps(record.to_dict(), separators=(",", ":"), ensure_ascii=False)


def _ranges(seqs: list[int]) -> list[list[int]]:
    """Sorted seqs as inclusive [first, last] runs: [1, 2, 3, 7] -> [[1, 3], [7, 7]]."""
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and runs[-1][1] == seq - 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return runs
