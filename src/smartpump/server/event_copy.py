"""The PostgreSQL fast path of storing event batches: COPY into ``events``, with ``store_events``' semantics
(each (pump, seq) stored once, the pumps' last-seen time), naming the events it held already."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Final

import msgspec
from psycopg.errors import UniqueViolation
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.server.services.events import StoreResult, index_key
from smartpump.transport.messages import EventRecord

_COLUMNS: Final = "pump_id, seq, ts, received_at, schema_version, channel, type, patient_id, order_id, data"
_NULL: Final = "\\N"
_SORTED_JSON: Final = msgspec.json.Encoder(order="sorted")


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def copy_store(
    session: Session, clock: Clock, batches: Sequence[tuple[int, Sequence[EventRecord]]]
) -> StoreResult:
    """PostgreSQL fast path with ``store_events``' semantics: the group's rows (each (pump, seq) once) are
    streamed by COPY straight into ``events`` under a savepoint, batch by batch, so the database stores
    one batch while the next is formatted; if any row was stored already (a redelivery), the savepoint is
    rolled back and the rows go through a staging table and ``INSERT ... ON CONFLICT DO NOTHING``. Then
    the pumps' last-seen time and one commit."""
    received = _naive_utc(clock.now())
    seen: set[tuple[int, int]] = set()
    chunks = _copy_chunks(batches, received.isoformat(), seen)
    sent: list[str] = []
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("SAVEPOINT ingest_copy")
    try:
        with cursor.copy(f"COPY events ({_COLUMNS}) FROM STDIN") as copy:
            for chunk in chunks:
                sent.append(chunk)
                copy.write(chunk)
        cursor.execute("RELEASE SAVEPOINT ingest_copy")
        stored = len(seen)
        redelivered: frozenset[tuple[int, int]] = frozenset()
    except UniqueViolation:
        sent.extend(chunks)
        cursor.execute("ROLLBACK TO SAVEPOINT ingest_copy")
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS ingest_stage AS SELECT {_COLUMNS} FROM events WITH NO DATA"
        )
        cursor.execute("TRUNCATE ingest_stage")
        with cursor.copy(f"COPY ingest_stage ({_COLUMNS}) FROM STDIN") as copy:
            for chunk in sent:
                copy.write(chunk)
        cursor.execute(
            f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM ingest_stage "
            "ON CONFLICT (pump_id, seq) DO NOTHING RETURNING pump_id, seq"
        )
        redelivered = frozenset(seen.difference(cursor.fetchall()))
        stored = len(seen) - len(redelivered)
    ids = sorted({pump_id for pump_id, _ in batches})
    cursor.execute(
        "UPDATE pumps SET last_seen = %s WHERE id = ANY(%s) AND (last_seen IS NULL OR last_seen < %s)",
        (received, ids, received),
    )
    session.commit()
    rows = sum(len(records) for _, records in batches)
    return StoreResult(stored=stored, duplicates=rows - stored, redelivered=redelivered)


def _copy_chunks(
    batches: Sequence[tuple[int, Sequence[EventRecord]]], received_text: str, seen: set[tuple[int, int]]
) -> Iterator[str]:
    """The COPY text of every batch, one chunk per batch, each (pump, seq) once (added to ``seen``)."""
    for pump_id, records in batches:
        lines = []
        for record in records:
            key = (pump_id, record.seq)
            if key not in seen:
                seen.add(key)
                lines.append(copy_row(pump_id, record, received_text))
        if lines:
            yield "".join(lines)


def copy_row(pump_id: int, record: EventRecord, received_text: str) -> str:
    """One event as a row of ``COPY events`` text. ``channel`` and ``type`` are safe as they are (the wire
    schema restricts them); JSON escapes every control character, so only the data's backslashes need
    doubling; the time is UTC (the column holds UTC without a zone, and PostgreSQL ignores the ``Z``)."""
    ts = record.ts
    if ts.utcoffset():
        ts = ts.astimezone(UTC)
    data = record.data
    channel = _NULL if record.channel is None else record.channel
    patient = _copy_field(index_key(data.get("patient_id")))
    order = _copy_field(index_key(data.get("order_id")))
    payload = _SORTED_JSON.encode(data).decode().replace("\\", "\\\\")
    stamp = _SORTED_JSON.encode(ts)[1:-1].decode()
    return (
        f"{pump_id}\t{record.seq}\t{stamp}\t{received_text}\t{record.v}\t"
        f"{channel}\t{record.type}\t{patient}\t{order}\t{payload}\n"
    )


def _copy_field(value: str | None) -> str:
    return _NULL if value is None else value.replace("\\", "\\\\")
