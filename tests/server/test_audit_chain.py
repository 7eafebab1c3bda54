"""AUD-02: the hash-chained audit log; `audit verify` names the first edited, deleted or reordered record."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import Engine, delete, update
from typer.testing import CliRunner

from smartpump.cli import server as server_cli
from smartpump.clock import ManualClock
from smartpump.server import audit
from smartpump.server.db.models import AuditHead, AuditRecord
from tests.server.conftest import World


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
                details={"index": index},
            )
            world.clock.advance(1)
        session.commit()


def _verify(world: World) -> audit.VerifyReport:
    with world.state.sessions() as session:
        return audit.verify(session)


def test_untouched_chain_verifies(world: World) -> None:
    _write_records(world, 5)
    report = _verify(world)
    assert report.ok
    assert report.records_checked == 5


def test_records_link_to_their_predecessor(world: World) -> None:
    _write_records(world, 3)
    with world.state.sessions() as session:
        records = session.query(AuditRecord).order_by(AuditRecord.seq).all()
    assert records[0].prev_hash == audit.GENESIS_HASH
    assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]


def test_edited_record_is_reported(world: World, engine: Engine) -> None:
    _write_records(world, 5)
    with engine.begin() as connection:
        connection.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(actor="mallory"))
    report = _verify(world)
    assert report.first_bad_seq == 3
    assert "altered" in (report.problem or "")


def test_deleted_record_is_reported(world: World, engine: Engine) -> None:
    _write_records(world, 5)
    with engine.begin() as connection:
        connection.execute(delete(AuditRecord).where(AuditRecord.seq == 2))
    report = _verify(world)
    assert report.first_bad_seq == 2
    assert "missing" in (report.problem or "")


def test_reordered_records_are_reported(world: World, engine: Engine) -> None:
    _write_records(world, 5)
    with engine.begin() as connection:
        connection.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(seq=-4))
        connection.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(seq=4))
        connection.execute(update(AuditRecord).where(AuditRecord.seq == -4).values(seq=3))
    assert _verify(world).first_bad_seq == 3


def test_removed_tail_is_reported(world: World, engine: Engine) -> None:
    _write_records(world, 5)
    with engine.begin() as connection:
        connection.execute(delete(AuditRecord).where(AuditRecord.seq >= 4))
    report = _verify(world)
    assert report.first_bad_seq == 4
    assert "tail" in (report.problem or "")


def test_rehashed_edit_still_breaks_the_next_link(world: World, engine: Engine) -> None:
    _write_records(world, 4)
    with world.state.sessions() as session:
        second = session.query(AuditRecord).filter_by(seq=2).one()
        forged = audit.record_hash(
            prev_hash=second.prev_hash,
            seq=2,
            ts=second.ts,
            actor="mallory",
            action=second.action,
            object_type=second.object_type,
            object_id=second.object_id,
            facility_id=None,
            outcome=second.outcome,
            details=second.details,
        )
    with engine.begin() as connection:
        connection.execute(
            update(AuditRecord).where(AuditRecord.seq == 2).values(actor="mallory", hash=forged)
        )
    report = _verify(world)
    assert report.first_bad_seq == 3
    assert "link" in (report.problem or "")


def test_head_row_counts_every_append(world: World) -> None:
    _write_records(world, 3)
    with world.state.sessions() as session:
        head = session.get(AuditHead, 1)
        assert head is not None and head.seq == 3


def test_cli_audit_verify_names_the_first_bad_record(
    world: World, engine: Engine, settings: Any, monkeypatch: Any, clock: ManualClock
) -> None:
    _write_records(world, 4)
    monkeypatch.setenv("SMARTPUMP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SMARTPUMP_SIGNING_KEYS_DIR", str(settings.signing_keys_dir))
    monkeypatch.setenv("SMARTPUMP_AUDIT_ANCHOR_DIR", str(settings.audit_anchor_dir))
    cli_app = typer.Typer()
    server_cli.register(cli_app)
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["audit", "verify", "--json"])
    assert ok.exit_code == 0, ok.output
    with engine.begin() as connection:
        connection.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(details='{"index":99}'))
    broken = runner.invoke(cli_app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "record 2" in broken.output
