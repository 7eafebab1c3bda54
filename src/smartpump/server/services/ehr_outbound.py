"""The EHR outbound queue: messages stored in ``ehr_outbound`` (the server database) and sent in order to one
destination, leaving it only on a positive acknowledgement. The sender (``ehr_worker``) sends one message per
unit of work, so a message delivered is committed as delivered before the next one is sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Final

from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.interop.hl7v2.message import Hl7ParseError, Message, parse
from smartpump.interop.hl7v2.mllp import MllpError
from smartpump.interop.hl7v2.outbox import Backoff
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


class Attempt(StrEnum):
    """What sending the head of a queue did to it."""

    DELIVERED = "delivered"
    """AA/CA: it left the queue."""
    REJECTED = "rejected"
    """AE/AR/CE/CR: kept as rejected, and the queue moves on."""
    FAILED = "failed"
    """A transport failure or an unreadable reply: retried after the backoff, nothing behind it first."""


def send_next(
    session: Session, clock: Clock, destination: str, send: Sender, *, backoff: Backoff = DEFAULT_BACKOFF
) -> Attempt | None:
    """Send the oldest pending message of a destination when it is due and record the outcome (the interop
    outbox's rules, in the server database); None when nothing is due. The caller commits, before it sends
    the next one."""
    item = repo.outbound_head(session, destination)
    if item is None or item.next_attempt_at > clock.now():
        return None
    try:
        code = ack_code_of(parse(send(item.payload)))
        error = "" if code is not None else "reply has no MSA-1 acknowledgement code"
    except (MllpError, Hl7ParseError) as failure:
        code, error = None, f"{failure.code}: {failure.message}"
    item.attempts += 1
    if code is None:
        item.last_error = error
        item.next_attempt_at = clock.now() + timedelta(seconds=backoff.delay_s(item.attempts))
        return Attempt.FAILED
    item.state = "delivered" if code.is_positive else "rejected"
    item.ack_code = code.value
    item.done_at = clock.now()
    return Attempt.DELIVERED if code.is_positive else Attempt.REJECTED


def pending(session: Session, destination: str) -> int:
    """How many messages of a destination wait to be delivered."""
    return repo.count_outbound(session, destination, "pending")


def queue_state(session: Session, destination: str) -> Sequence[EhrOutbound]:
    """Every outbound message of a destination in queue order (for operators and tests)."""
    return repo.outbound(session, destination)
