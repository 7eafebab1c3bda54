"""The append-only, hash-chained audit log: each record hashes its content with its predecessor's hash.

``append`` serialises writers on the single ``audit_head`` row (an UPDATE lock on both databases), so
concurrent replicas never fork the chain; ``verify`` recomputes the chain and reports the first bad row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.server.db.models import AuditHead, AuditRecord

GENESIS_HASH: Final = "0" * 64
_HEAD_ID: Final = 1


def _timestamp(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(
    *,
    prev_hash: str,
    seq: int,
    ts: datetime,
    actor: str | None,
    action: str,
    object_type: str,
    object_id: str | None,
    facility_id: int | None,
    outcome: str,
    details: str,
) -> str:
    """SHA-256 over the predecessor's hash and this record's canonical JSON content."""
    content = json.dumps(
        {
            "seq": seq,
            "ts": _timestamp(ts),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "facility_id": facility_id,
            "outcome": outcome,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def canonical_details(details: Mapping[str, object] | None) -> str:
    """The stored (and hashed) form of a record's details: sorted, compact JSON."""
    return json.dumps(
        dict(details or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def append(
    session: Session,
    clock: Clock,
    *,
    actor: str | None,
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    facility_id: int | None = None,
    outcome: str = "success",
    details: Mapping[str, object] | None = None,
) -> int:
    """Append one record in the caller's transaction (it commits with the action); returns its seq."""
    bumped = session.execute(update(AuditHead).where(AuditHead.id == _HEAD_ID).values(seq=AuditHead.seq + 1))
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(insert(AuditHead).values(id=_HEAD_ID, seq=1, hash=GENESIS_HASH))
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == _HEAD_ID)).one()
    seq, prev_hash = int(head.seq), str(head.hash)
    ts = clock.now()
    text = canonical_details(details)
    oid = None if object_id is None else str(object_id)
    digest = record_hash(
        prev_hash=prev_hash,
        seq=seq,
        ts=ts,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=oid,
        facility_id=facility_id,
        outcome=outcome,
        details=text,
    )
    session.execute(
        insert(AuditRecord).values(
            seq=seq,
            ts=ts,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=oid,
            facility_id=facility_id,
            outcome=outcome,
            details=text,
            prev_hash=prev_hash,
            hash=digest,
        )
    )
    session.execute(update(AuditHead).where(AuditHead.id == _HEAD_ID).values(hash=digest))
    return seq


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """Outcome of a chain check: how many records (and anchored checkpoints, ``audit_anchors``) were checked
    and the first bad one, if any."""

    records_checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoints_checked: int = 0

    @property
    def ok(self) -> bool:
        """True when the whole chain verifies."""
        return self.problem is None


def verify(session: Session) -> VerifyReport:
    """Recompute the chain in seq order; report the first edited, missing, reordered or truncated record."""
    rows = session.scalars(select(AuditRecord).order_by(AuditRecord.seq).execution_options(yield_per=1000))
    try:
        return _verify_rows(session, rows)
    finally:
        rows.close()


def _verify_rows(session: Session, rows: Iterable[AuditRecord]) -> VerifyReport:
    expected_seq = 1
    prev_hash = GENESIS_HASH
    last_id = 0
    checked = 0
    for record in rows:
        if record.seq != expected_seq:
            return VerifyReport(
                records_checked=checked,
                first_bad_seq=expected_seq,
                problem=f"record {expected_seq} is missing (next stored record is {record.seq})",
            )
        if record.prev_hash != prev_hash:
            return VerifyReport(
                records_checked=checked,
                first_bad_seq=record.seq,
                problem=f"record {record.seq} does not link to its predecessor",
            )
        recomputed = record_hash(
            prev_hash=record.prev_hash,
            seq=record.seq,
            ts=record.ts,
            actor=record.actor,
            action=record.action,
            object_type=record.object_type,
            object_id=record.object_id,
            facility_id=record.facility_id,
            outcome=record.outcome,
            details=record.details,
        )
        if recomputed != record.hash:
            return VerifyReport(
                records_checked=checked, first_bad_seq=record.seq, problem=f"record {record.seq} was altered"
            )
        if record.id <= last_id:
            return VerifyReport(
                records_checked=checked,
                first_bad_seq=record.seq,
                problem=f"record {record.seq} is out of order",
            )
        last_id = record.id
        prev_hash = record.hash
        expected_seq += 1
        checked += 1
    head = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == _HEAD_ID)
    ).one_or_none()
    head_seq, head_hash = (0, GENESIS_HASH) if head is None else (int(head.seq), str(head.hash))
    if head_seq != checked or head_hash != prev_hash:
        return VerifyReport(
            records_checked=checked,
            first_bad_seq=checked + 1,
            problem=f"the chain head says {head_seq} records but {checked} are stored (tail removed)",
        )
    return VerifyReport(records_checked=checked)
