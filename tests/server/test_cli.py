"""`smartpump db upgrade` and `smartpump users create` (registered by ``smartpump.cli.server.register``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from sqlalchemy import inspect
from typer.testing import CliRunner

from smartpump.cli import server as server_cli
from smartpump.server.auth import password_hasher, verify_password
from smartpump.server.db.engine import make_engine, make_session_factory
from smartpump.server.db.repositories import users as users_repo
from smartpump.server.settings import Settings


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


def test_users_create_grants_the_role_with_the_given_password(cli: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["db", "upgrade"])
    result = runner.invoke(
        cli,
        ["users", "create", "pat", "--role", "pharmacist", "--password-stdin"],
        input="a long enough passphrase\n",
    )
    assert result.exit_code == 0, result.output
    settings = Settings()
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        user = users_repo.user_by_username(session, "pat")
        assert user is not None
        assert verify_password(password_hasher(settings), user.password_hash, "a long enough passphrase")
        assert [g.role for g in users_repo.grants_of(session, user.id)] == ["pharmacist"]
    engine.dispose()


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
