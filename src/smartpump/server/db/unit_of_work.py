"""Transactions belong to a unit of work (one request, one worker step), not to the services it calls.

A route's session (``api.deps.SessionDep``) and ``unit_of_work`` commit once when the work returns and
roll back on any exception; services only ``flush()`` where they need ids or constraint errors. The one
sanctioned early commit is ``in_own_transaction``: a refusal that must stay recorded although the caller
then raises (an audited denial) is committed in a transaction of its own, which must be the unit's first
write (ADR 0008). What must follow the commit (waking the sender of a queued command) is registered with
``after_commit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction, sessionmaker

WROTE: Final = "smartpump.unit_of_work.wrote"
"""``Session.info`` key: the session has written in its current transaction."""
AFTER_COMMIT: Final = "smartpump.unit_of_work.after_commit"
"""``Session.info`` key: the callbacks ``after_commit`` registered for the current transaction."""


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits once when the block ends normally and rolls back on any exception."""
    with sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def in_own_transaction(session: Session) -> Iterator[Session]:
    """Commit what the block writes (a refusal's audit rows) at once, so the unit's rollback when the caller
    then raises keeps it; ``RuntimeError`` when the session already holds other writes, which would leak."""
    if session.info.get(WROTE) or session.new or session.dirty or session.deleted:
        raise RuntimeError("a refusal's own transaction must come before any other write of the unit")
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once, after the session's outermost transaction commits (a savepoint's release is
    not that commit); it is dropped when that transaction rolls back. It must not use the session."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.in_nested_transaction():
        return
    callbacks: list[Callable[[], None]] = session.info.pop(AFTER_COMMIT, [])
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, flush_context: UOWTransaction) -> None:
    session.info[WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WROTE] = True


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(WROTE, None)
        session.info.pop(AFTER_COMMIT, None)
