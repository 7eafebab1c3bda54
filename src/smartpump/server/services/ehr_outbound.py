"""The EHR outbound queue: messages stored in ``ehr_outbound`` (the server database) and sent in order to one
destination, leaving it only on a positive acknowledgement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Final

from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.interop.hl7v2.message import Hl7ParseError, Message, parse
from smartpump.interop.hl7v2.mllp import MllpError
from smartpump.interop.hl7v2.outbox import Backoff, DrainResult
from smartpump.server.db.models_ehr import EhrOutbound
from smartpump.server.db.repositories import ehr as repo

DEFAULT_BACKOFF: Final = Backoff()


def enqueue(
    session: Session,
    clock: Clock,
    destination: str,
    message: Message,
    *,
    source_key: str,
    order_id: str | None = None,
) -> int:
    """Queue a message for a destination once per source key; returns 1 when queued, 0 when it was already."""
    if repo.outbound_by_source(session, source_key) is not None:
        return 0
    now = clock.now()
    session.add(
        EhrOutbound(
            destination=destination,
            control_id=message.control_id,
            message_type=message.type_text[:16],
            source_key=source_key,
            order_id=order_id[:64] if order_id else None,
            payload=message.to_er7(),
            state="pending",
            attempts=0,
            enqueued_at=now,
            next_attempt_at=now,
            last_error="",
            ack_code="",
        )
    )
    session.flush()
    return 1


Sender = Callable[[str], str]
"""Sends one ER7 message and returns the reply text; raises MllpError on transport failure."""


def drain(
    session: Session, clock: Clock, destination: str, send: Sender, *, backoff: Backoff = DEFAULT_BACKOFF
) -> DrainResult:
    """Send due messages of a destination in order (the interop outbox's rules, in the server database).

    AA/CA: delivered; AE/AR/CE/CR: rejected (kept) and the queue moves on; a transport failure or an
    unreadable reply: retried after the backoff, and nothing behind it is sent first. Commits per message.
    """
    delivered = rejected = failed = 0
    while (
        item := repo.outbound_head(session, destination)
    ) is not None and item.next_attempt_at <= clock.now():
        try:
            code = ack_code_of(parse(send(item.payload)))
            error = "" if code is not None else "reply has no MSA-1 acknowledgement code"
        except (MllpError, Hl7ParseError) as failure:
            code, error = None, f"{failure.code}: {failure.message}"
        item.attempts += 1
        if code is None:
            item.last_error = error
            item.next_attempt_at = clock.now() + timedelta(seconds=backoff.delay_s(item.attempts))
            session.commit()
            failed += 1
            break
        item.state = "delivered" if code.is_positive else "rejected"
        item.ack_code = code.value
        item.done_at = clock.now()
        session.commit()
        if code.is_positive:
            delivered += 1
        else:
            rejected += 1
    pending = repo.count_outbound(session, destination, "pending")
    return DrainResult(delivered=delivered, rejected=rejected, failed=failed, pending=pending)


def queue_state(session: Session, destination: str) -> Sequence[EhrOutbound]:
    """Every outbound message of a destination in queue order (for operators and tests)."""
    return repo.outbound(session, destination)
