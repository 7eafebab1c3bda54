"""Audit anchors: signed checkpoints of the audit chain's head, written outside the database.

A checkpoint names a record (its ``seq``) and that record's chain hash, signed with the audit key
(``KeyPurpose.AUDIT``). Whoever can rewrite the database can re-hash the whole chain, or cut its tail and
move the head, and ``audit.verify`` alone would find a consistent chain; the checkpoints kept in
``SMARTPUMP_AUDIT_ANCHOR_DIR`` (put it on another host or an append-only mount) still name the hashes the
log had, so ``verify_anchored`` reports the first checkpoint the database no longer matches.

The server writes a checkpoint every ``SMARTPUMP_AUDIT_CHECKPOINT_INTERVAL_S`` seconds when the head
moved, and once more when it stops; ``smartpump audit checkpoint`` writes one at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.library.keys import KeyPurpose, private_key_from_pem, public_key_from_pem
from smartpump.server import audit
from smartpump.server.db.models import AuditHead, AuditRecord
from smartpump.server.keys import Keyring, SigningKey
from smartpump.server.state import ServerState

CHECKPOINT_FORMAT: Final = "smartpump.audit-checkpoint/1"
logger = logging.getLogger("smartpump.server.audit_anchors")


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """The chain hash of record ``seq`` at ``ts``, signed by the audit key ``key_id``."""

    seq: int
    hash: str
    ts: str
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers: sorted compact JSON without the signature."""
        body = {
            "format": CHECKPOINT_FORMAT,
            "seq": self.seq,
            "hash": self.hash,
            "ts": self.ts,
            "key_id": self.key_id,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def checkpoint_path(directory: Path, seq: int) -> Path:
    """Where the checkpoint of record ``seq`` is kept."""
    return directory / f"checkpoint-{seq:012d}.json"


def checkpoint(session: Session, signer: SigningKey, directory: Path, clock: Clock) -> Checkpoint | None:
    """Anchor the committed head of the chain in ``directory`` (a new file, never replaced); None when the
    log is empty or its head is anchored already.

    Raises:
        OSError: the directory cannot be written.
    """
    head = session.execute(select(AuditHead.seq, AuditHead.hash)).one_or_none()
    if head is None or int(head.seq) == 0:
        return None
    seq, digest = int(head.seq), str(head.hash)
    path = checkpoint_path(directory, seq)
    if path.exists():
        return None
    ts = clock.now().isoformat()
    unsigned = Checkpoint(seq=seq, hash=digest, ts=ts, key_id=signer.key_id, signature=b"")
    signature = private_key_from_pem(signer.private_pem).sign(unsigned.signed_bytes())
    anchored = Checkpoint(seq=seq, hash=digest, ts=ts, key_id=signer.key_id, signature=signature)
    document = json.loads(anchored.signed_bytes())
    document["signature"] = base64.b64encode(signature).decode("ascii")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document, sort_keys=True) + "\n", encoding="utf-8")
    os.link(partial, path)
    partial.unlink()
    return anchored


def verify_anchored(session: Session, directory: Path, keyring: Keyring) -> audit.VerifyReport:
    """The chain check of ``audit.verify``, then every checkpoint in ``directory``: its signature by an
    audit key of the keyring (retired ones included), and the hash of the record it names."""
    report = audit.verify(session)
    if not report.ok:
        return report
    keys = {k.key_id: k.public_pem for k in keyring.keys if k.purpose is KeyPurpose.AUDIT}
    checked = 0
    for path in sorted(directory.glob("checkpoint-*.json")) if directory.is_dir() else []:
        problem, seq = _check(session, path, keys, report.records_checked)
        if problem is not None:
            return audit.VerifyReport(
                records_checked=report.records_checked,
                first_bad_seq=seq,
                problem=f"checkpoint {path.name}: {problem}",
                checkpoints_checked=checked,
            )
        checked += 1
    return audit.VerifyReport(records_checked=report.records_checked, checkpoints_checked=checked)


def _check(
    session: Session, path: Path, keys: dict[str, bytes], stored: int
) -> tuple[str | None, int | None]:
    """What is wrong with one checkpoint against the log (and the seq it names), or (None, seq)."""
    try:
        anchored = _read(path)
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as error:
        return f"unreadable ({error})", None
    key = keys.get(anchored.key_id)
    if key is None:
        return f"signed by {anchored.key_id!r}, which is no audit key of this keyring", anchored.seq
    try:
        public_key_from_pem(key).verify(anchored.signature, anchored.signed_bytes())
    except InvalidSignature:
        return "its signature does not verify (the checkpoint was forged or edited)", anchored.seq
    record_hash = session.scalar(select(AuditRecord.hash).where(AuditRecord.seq == anchored.seq))
    if record_hash is None:
        return (
            f"anchors record {anchored.seq} but the log holds {stored} records (its tail was cut)",
            anchored.seq,
        )
    if record_hash != anchored.hash:
        problem = f"record {anchored.seq} no longer has the anchored hash (the chain was rewritten)"
        return problem, anchored.seq
    return None, anchored.seq


def _read(path: Path) -> Checkpoint:
    document = json.loads(path.read_text(encoding="utf-8"))
    if document["format"] != CHECKPOINT_FORMAT:
        raise ValueError(f"format is not {CHECKPOINT_FORMAT!r}")
    seq = document["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError("seq is not a record number")
    return Checkpoint(
        seq=seq,
        hash=str(document["hash"]),
        ts=str(document["ts"]),
        key_id=str(document["key_id"]),
        signature=base64.b64decode(str(document["signature"]), validate=True),
    )


def anchored_seqs(directory: Path) -> Iterable[int]:
    """The record numbers anchored in ``directory``, in order (for views and tests)."""
    return sorted(int(p.stem.split("-", 1)[1]) for p in directory.glob("checkpoint-*.json"))


class AuditAnchorWorker:
    """Writes a checkpoint every ``interval_s`` seconds when the chain head moved, and one when stopping."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._state: ServerState | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    async def start(self, state: ServerState) -> None:
        """Begin the periodic checkpoints."""
        self._state = state
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(self._stopping))

    async def stop(self) -> None:
        """Stop once the checkpoint in progress is written (a cancelled wait would leave its thread writing
        beside the last one), then anchor the head once more."""
        if self._task is not None and self._stopping is not None:
            self._stopping.set()
            await self._task
        await asyncio.to_thread(self.anchor_now)

    def anchor_now(self) -> Checkpoint | None:
        """Write a checkpoint of the current head (logged, never raised: the API goes on)."""
        state = self._state
        if state is None:
            return None
        try:
            with state.sessions() as session:
                signer = state.keys.signer(KeyPurpose.AUDIT)
                return checkpoint(session, signer, state.settings.audit_anchor_dir, state.clock)
        except (SQLAlchemyError, OSError) as error:
            logger.error("audit checkpoint not written: %s", error)
            return None

    async def _run(self, stopping: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval_s)
            if stopping.is_set():
                return
            await asyncio.to_thread(self.anchor_now)
