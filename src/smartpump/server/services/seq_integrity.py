"""Sequence integrity: an event redelivered for a (pump, seq) the store holds is a duplicate only when its
content is the same. Different content means someone else used the pump's seq: the new event is kept in
``seq_conflicts`` (never dropped as a duplicate) and logged with the code ``ingest.seq_conflict``."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.server.db.models import Event
from smartpump.server.db.models_identity import SeqConflict
from smartpump.transport.messages import EventRecord

logger = logging.getLogger("smartpump.server.ingest")

CONFLICT: Final = "ingest.seq_conflict"
CHUNK: Final = 500


def record_conflicts(session: Session, clock: Clock, by_pump: Mapping[int, Sequence[EventRecord]]) -> int:
    """Compare every received record with the stored event of its (pump, seq); keep and log each one whose
    content differs (the caller commits); returns how many conflicts were new. The stored events are read
    ``CHUNK`` (pump, seq) pairs a query, whatever the pumps: a group of resent batches costs a few queries,
    not one per pump."""
    rows: list[dict[str, Any]] = []
    now = clock.now()
    wanted = {(pump_id, r.seq): r for pump_id, records in by_pump.items() for r in records}
    keys = sorted(wanted)
    for start in range(0, len(keys), CHUNK):
        stored = session.execute(
            select(Event.pump_id, Event.seq, Event.ts, Event.channel, Event.type, Event.data).where(
                tuple_(Event.pump_id, Event.seq).in_(keys[start : start + CHUNK])
            )
        ).all()
        for pump_id, seq, ts, channel, type_, data in stored:
            record = wanted[(pump_id, seq)]
            if _same(record, ts, channel, type_, data):
                continue
            text = json.dumps(record.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
            rows.append(
                {
                    "pump_id": pump_id,
                    "seq": seq,
                    "digest": hashlib.sha256(text.encode()).hexdigest(),
                    "type": record.type[:64],
                    "record": text,
                    "detected_at": now,
                }
            )
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(SeqConflict).on_conflict_do_nothing(index_elements=["pump_id", "seq", "digest"])
    new = len(session.scalars(statement.returning(SeqConflict.id), rows).all())
    if new:
        logger.warning(
            "%d events arrived for seqs stored with other content (%s): kept, not duplicates",
            new,
            CONFLICT,
        )
    return new


def _same(record: EventRecord, ts: Any, channel: str | None, type_: str, data: str) -> bool:
    if record.type != type_ or record.channel != channel or record.ts != ts:
        return False
    incoming = json.loads(json.dumps(dict(record.data), sort_keys=True, default=str))
    return bool(incoming == json.loads(data))
