"""AUD-03: signed checkpoints outside the database catch what the chain alone cannot: a tail cut with the
head moved back, and a full re-hash after an edit (issue 15: the audit check missed a cut tail with a
rewritten head)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Engine, delete, select, update
from typer.testing import CliRunner

from smartpump.cli import server as server_cli
from smartpump.clock import ManualClock
from smartpump.library.keys import KeyPurpose
from smartpump.server import audit, audit_anchors, keys
from smartpump.server.app import create_app
from smartpump.server.db.models import AuditHead, AuditRecord
from smartpump.server.settings import Settings
from tests.server.conftest import TestClient, World


def _write_records(world: World, count: int) -> None:
    with world.state.sessions() as session:
        for index in range(count):
            audit.append(
                session,
                world.clock,
                actor="tester",
                action="test.action",
                object_type="thing",
                object_id=index,
            )
            world.clock.advance(1)
        session.commit()


def _anchor(world: World) -> audit_anchors.Checkpoint | None:
    state = world.state
    with state.sessions() as session:
        return audit_anchors.checkpoint(
            session, state.keys.signer(KeyPurpose.AUDIT), state.settings.audit_anchor_dir, world.clock
        )


def _verify(world: World) -> audit.VerifyReport:
    with world.state.sessions() as session:
        return audit_anchors.verify_anchored(session, world.state.settings.audit_anchor_dir, world.state.keys)


def _chain_alone(world: World) -> audit.VerifyReport:
    with world.state.sessions() as session:
        return audit.verify(session)


def _rehash_from(engine: Engine, seq: int, **change: Any) -> None:
    """What an attacker with the database does: change record ``seq`` and re-hash it and every later record,
    and move the head, so the chain is consistent again."""
    with engine.begin() as connection:
        if change:
            connection.execute(update(AuditRecord).where(AuditRecord.seq == seq).values(**change))
        rows = connection.execute(select(AuditRecord).where(AuditRecord.seq >= seq).order_by(AuditRecord.seq))
        prev = (
            connection.scalar(select(AuditRecord.hash).where(AuditRecord.seq == seq - 1))
            or audit.GENESIS_HASH
        )
        last_seq = seq - 1
        for row in rows.all():
            digest = audit.record_hash(
                prev_hash=prev,
                seq=row.seq,
                ts=row.ts,
                actor=row.actor,
                action=row.action,
                object_type=row.object_type,
                object_id=row.object_id,
                facility_id=row.facility_id,
                outcome=row.outcome,
                details=row.details,
            )
            connection.execute(
                update(AuditRecord).where(AuditRecord.seq == row.seq).values(prev_hash=prev, hash=digest)
            )
            prev, last_seq = digest, row.seq
        connection.execute(update(AuditHead).values(seq=last_seq, hash=prev))


def test_an_anchored_untouched_chain_verifies_with_its_checkpoints(world: World) -> None:
    _write_records(world, 3)
    first = _anchor(world)
    assert first is not None and first.seq == 3
    assert _anchor(world) is None  # the head is anchored already
    _write_records(world, 2)
    assert (_anchor(world) or first).seq == 5
    report = _verify(world)
    assert report.ok and (report.records_checked, report.checkpoints_checked) == (5, 2)
    assert list(audit_anchors.anchored_seqs(world.state.settings.audit_anchor_dir)) == [3, 5]


def test_a_cut_tail_with_the_head_moved_back_fails_naming_the_checkpoint(
    world: World, engine: Engine
) -> None:
    _write_records(world, 5)
    _anchor(world)
    with engine.begin() as connection:
        connection.execute(delete(AuditRecord).where(AuditRecord.seq >= 4))
    _rehash_from(engine, 3)
    assert _chain_alone(world).ok  # the chain alone cannot tell
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == 5
    assert report.problem is not None
    assert "checkpoint-000000000005.json" in report.problem and "tail was cut" in report.problem


def test_a_full_rehash_after_an_edit_fails_naming_the_checkpoint(world: World, engine: Engine) -> None:
    _write_records(world, 5)
    _anchor(world)
    _rehash_from(engine, 2, actor="mallory")
    assert _chain_alone(world).ok
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == 5
    assert "checkpoint-000000000005.json" in (report.problem or "")
    assert "rewritten" in (report.problem or "")


def test_an_edited_or_foreign_checkpoint_is_refused(world: World, settings: Settings) -> None:
    _write_records(world, 2)
    anchored = _anchor(world)
    assert anchored is not None
    path = audit_anchors.checkpoint_path(settings.audit_anchor_dir, anchored.seq)
    document = json.loads(path.read_text())
    path.write_text(json.dumps(document | {"hash": "f" * 64}))
    assert "signature does not verify" in (_verify(world).problem or "")
    path.write_text(json.dumps(document | {"key_id": "someone-else"}))
    assert "no audit key" in (_verify(world).problem or "")
    path.write_text("{not json")
    assert "unreadable" in (_verify(world).problem or "")


def test_a_checkpoint_signed_by_a_retired_audit_key_still_verifies(world: World, settings: Settings) -> None:
    _write_records(world, 2)
    _anchor(world)
    old = world.state.keys.signer(KeyPurpose.AUDIT)
    new = keys.add_key(settings.signing_keys_dir, KeyPurpose.AUDIT, world.clock.now())
    keys.activate(settings.signing_keys_dir, new.key_id)
    keys.retire(settings.signing_keys_dir, old.key_id)
    ring = keys.load(settings.signing_keys_dir, create_missing=False, now=world.clock.now())
    with world.state.sessions() as session:
        report = audit_anchors.verify_anchored(session, settings.audit_anchor_dir, ring)
    assert report.ok and report.checkpoints_checked == 1


def test_the_server_anchors_the_head_when_it_stops(
    world: World, settings: Settings, clock: ManualClock, engine: Engine
) -> None:
    _write_records(world, 4)
    with TestClient(create_app(settings, clock=clock, engine=engine)):
        assert list(audit_anchors.anchored_seqs(settings.audit_anchor_dir)) == []
    assert list(audit_anchors.anchored_seqs(settings.audit_anchor_dir)) == [4]


def test_the_api_verify_reports_checkpoints_and_the_cut(world: World, engine: Engine) -> None:
    from smartpump.server.auth import Role

    auditor = world.as_role(Role.AUDITOR, None)
    _anchor(world)
    intact = world.client.get("/api/v1/audit/verify", headers=auditor).json()
    assert intact["ok"] and intact["checkpoints_checked"] == 1
    with engine.begin() as connection:
        connection.execute(delete(AuditRecord).where(AuditRecord.seq >= 2))
    _rehash_from(engine, 1)
    broken = world.client.get("/api/v1/audit/verify", headers=auditor).json()
    assert not broken["ok"] and "checkpoint-" in broken["problem"]


def test_cli_checkpoint_then_verify_names_the_checkpoint(
    world: World, engine: Engine, settings: Settings, monkeypatch: Any, tmp_path: Path
) -> None:
    _write_records(world, 4)
    monkeypatch.setenv("SMARTPUMP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SMARTPUMP_SIGNING_KEYS_DIR", str(settings.signing_keys_dir))
    monkeypatch.setenv("SMARTPUMP_AUDIT_ANCHOR_DIR", str(settings.audit_anchor_dir))
    cli_app = typer.Typer()
    server_cli.register(cli_app)
    runner = CliRunner()
    written = runner.invoke(cli_app, ["audit", "checkpoint"])
    assert written.exit_code == 0 and "checkpoint of record 4" in written.output, written.output
    assert runner.invoke(cli_app, ["audit", "verify"]).exit_code == 0
    with engine.begin() as connection:
        connection.execute(delete(AuditRecord).where(AuditRecord.seq >= 3))
    _rehash_from(engine, 2)
    broken = runner.invoke(cli_app, ["audit", "verify", "--json"])
    assert broken.exit_code == 1
    body = json.loads(broken.output)
    assert body["first_bad_seq"] == 4 and "checkpoint-000000000004.json" in body["problem"]


def test_stopping_waits_for_the_checkpoint_in_progress_and_never_writes_two_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A periodic checkpoint still being written when the server stops is finished before the last one
    starts (a cancelled wait used to leave its thread writing beside the last one)."""
    release = threading.Event()
    lock = threading.Lock()
    writing = [0]
    most = [0]
    calls = [0]
    write = audit_anchors.checkpoint

    def slow(*args: Any, **kwargs: Any) -> audit_anchors.Checkpoint | None:
        with lock:
            calls[0] += 1
            writing[0] += 1
            most[0] = max(most[0], writing[0])
        release.wait(30)
        try:
            return write(*args, **kwargs)
        finally:
            with lock:
                writing[0] -= 1

    monkeypatch.setattr(audit_anchors, "checkpoint", slow)
    worker = audit_anchors.AuditAnchorWorker(interval_s=0.001)

    async def scenario() -> None:
        await worker.start(world.state)
        while calls[0] == 0:
            await asyncio.sleep(0.001)
        stopping = asyncio.create_task(worker.stop())
        deadline = time.monotonic() + 1.0
        while calls[0] < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert not stopping.done(), "stop returned while a checkpoint was being written"
        release.set()
        await stopping

    asyncio.run(scenario())
    assert (calls[0], most[0], writing[0]) == (2, 1, 0)
