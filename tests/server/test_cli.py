"""`smartpump db upgrade` and `smartpump users create` (registered by ``smartpump.cli.server.register``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import inspect
from typer.testing import CliRunner

from smartpump.cli import server as server_cli
from smartpump.clock import WallClock
from smartpump.server.auth import password_hasher, verify_password
from smartpump.server.db.engine import make_engine, make_session_factory
from smartpump.server.db.models import RoleGrant
from smartpump.server.db.repositories import audit as audit_repo
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.services import users as users_service
from smartpump.server.settings import Settings
from smartpump.server.vocabulary import GrantStatus


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("SMARTPUMP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SMARTPUMP_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("SMARTPUMP_ARGON2_MEMORY_KIB", "1024")
    app = typer.Typer()
    server_cli.register(app)
    return app


def test_db_upgrade_creates_the_schema(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    assert "library_versions" in inspect(engine).get_table_names()
    engine.dispose()


ADMIN_PASSWORD = "an admin passphrase at the console"


def _admins(*usernames: str) -> None:
    """Deployment-wide admins with ADMIN_PASSWORD in the CLI's database (a test fixture's direct insert)."""
    settings = Settings()
    engine = make_engine(settings.database_url)
    clock = WallClock()
    with make_session_factory(engine)() as session:
        for username in usernames:
            user = users_service.create_user(
                session,
                settings,
                clock,
                password_hasher(settings),
                None,
                username=username,
                password=ADMIN_PASSWORD,
            )
            session.add(RoleGrant(user_id=user.id, role="admin", status="active", created_at=clock.now()))
        session.commit()
    engine.dispose()


def _grants(username: str) -> list[tuple[str, GrantStatus]]:
    settings = Settings()
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        user = users_repo.user_by_username(session, username)
        assert user is not None
        grants = [(g.role, g.status) for g in users_repo.grants_of(session, user.id, active_only=False)]
    engine.dispose()
    return grants


def _grant_id(output: str) -> str:
    return output.split("grant #", 1)[1].split(":", 1)[0]


def test_users_create_grants_through_the_service_and_a_privileged_role_waits(cli: typer.Typer) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["db", "upgrade"])
    _admins("ann", "bob")
    result = runner.invoke(
        cli,
        ["users", "create", "pat", "--role", "pharmacist", "--as", "ann", "--password-stdin"],
        input=f"a long enough passphrase\n{ADMIN_PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "pending" in result.output
    settings = Settings()
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        user = users_repo.user_by_username(session, "pat")
        assert user is not None
        assert verify_password(password_hasher(settings), user.password_hash, "a long enough passphrase")
        assert users_repo.grants_of(session, user.id) == []
        records = audit_repo.list_records(
            session,
            facility_ids=None,
            action="grant.created",
            actor="ann",
            since=None,
            until=None,
            limit=10,
            offset=0,
        )[0]
        assert [json.loads(r.details)["via"] for r in records] == ["cli"]
    engine.dispose()
    grant = _grant_id(result.output)
    same = runner.invoke(cli, ["users", "confirm", "pat", grant, "--as", "ann"], input=f"{ADMIN_PASSWORD}\n")
    assert same.exit_code == 2 and "grant.dual_control" in same.output
    confirmed = runner.invoke(
        cli, ["users", "confirm", "pat", grant, "--as", "bob"], input=f"{ADMIN_PASSWORD}\n"
    )
    assert confirmed.exit_code == 0, confirmed.output
    assert _grants("pat") == [("pharmacist", "active")]


def test_users_grant_to_oneself_stays_pending_and_cannot_be_self_confirmed(cli: typer.Typer) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["db", "upgrade"])
    _admins("ann", "bob")
    granted = runner.invoke(
        cli,
        ["users", "grant", "ann", "--role", "pharmacy_approver", "--as", "ann"],
        input=f"{ADMIN_PASSWORD}\n",
    )
    assert granted.exit_code == 0, granted.output
    grant = _grant_id(granted.output)
    refused = runner.invoke(
        cli, ["users", "confirm", "ann", grant, "--as", "ann"], input=f"{ADMIN_PASSWORD}\n"
    )
    assert refused.exit_code == 2 and "grant.dual_control" in refused.output
    assert ("pharmacy_approver", "pending") in _grants("ann")
    assert (
        runner.invoke(
            cli, ["users", "grant", "ann", "--role", "nurse", "--as", "ann"], input=f"{ADMIN_PASSWORD}\n"
        ).exit_code
        == 0
    )
    assert ("nurse", "active") in _grants("ann")


def test_granting_at_the_console_needs_an_admin_who_proves_their_password(cli: typer.Typer) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["db", "upgrade"])
    _admins("ann")
    no_actor = runner.invoke(cli, ["users", "create", "pat", "--role", "nurse"])
    assert no_actor.exit_code == 2 and "grant.actor_required" in no_actor.output
    wrong = runner.invoke(cli, ["users", "create", "pat", "--role", "nurse", "--as", "ann"], input="nope\n")
    assert wrong.exit_code == 2 and "auth.invalid_credentials" in wrong.output
    made = runner.invoke(
        cli, ["users", "create", "nina", "--role", "nurse", "--as", "ann"], input=f"{ADMIN_PASSWORD}\n"
    )
    assert made.exit_code == 0 and "active" in made.output
    not_admin = runner.invoke(cli, ["users", "grant", "ann", "--role", "viewer", "--as", "nina"], input="x\n")
    assert not_admin.exit_code == 2 and "auth.invalid_credentials" in not_admin.output


def test_users_create_refuses_an_unknown_role(cli: typer.Typer) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["db", "upgrade"])
    result = runner.invoke(cli, ["users", "create", "pat", "--role", "superuser"])
    assert result.exit_code == 2
    assert "unknown role" in result.output


def test_production_with_the_default_secret_refuses_to_start(
    cli: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTPUMP_ENV", "production")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "SMARTPUMP_SECRET_KEY" in result.output
