"""The console path of an admin (``users_service.console_admin``, behind the CLI's ``--as``) is throttled
against guessing on its own, in the database (each CLI run is a process), while the account-wide lock of
network logins never reaches it: no attack from the network locks an admin out of the console."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from smartpump.server.auth import Role
from smartpump.server.db.models import AuditRecord, User
from smartpump.server.errors import AuthenticationError, ThrottledError
from smartpump.server.services import users as users_service
from tests.server.conftest import PASSWORD, World


def _console(world: World, password: str) -> None:
    state = world.state
    with state.sessions() as session:
        users_service.console_admin(session, state.settings, state.clock, state.hasher, "ann", password)


def _guess(world: World, times: int) -> None:
    for _ in range(times):
        with pytest.raises(AuthenticationError) as refused:
            _console(world, "not the password")
        assert refused.value.code == "auth.invalid_credentials"


def _outcomes(world: World) -> list[str]:
    with world.state.sessions() as session:
        query = (
            select(AuditRecord.outcome).where(AuditRecord.action == "auth.console").order_by(AuditRecord.seq)
        )
        return list(session.scalars(query))


def test_an_account_locked_from_the_network_still_opens_the_console(world: World) -> None:
    world.user((Role.ADMIN, None), username="ann")
    with world.state.sessions() as session:
        user = session.scalars(select(User).where(User.username == "ann")).one()
        user.locked_until = world.clock.now() + timedelta(minutes=15)  # what 100 network failures leave
        session.commit()
    assert (
        world.client.post("/api/v1/auth/token", data={"username": "ann", "password": PASSWORD}).status_code
        == 429
    )
    _console(world, PASSWORD)
    assert _outcomes(world) == ["success"]


def test_guessing_at_the_console_is_throttled_even_with_the_right_password_then_released(
    world: World,
) -> None:
    world.user((Role.ADMIN, None), username="ann")
    limit = world.state.settings.login_max_failures
    _guess(world, limit)
    with pytest.raises(ThrottledError) as throttled:
        _console(world, PASSWORD)
    lockout_s = world.state.settings.login_lockout_minutes * 60
    assert 0 < throttled.value.retry_after_s <= lockout_s + 1
    assert _outcomes(world) == ["failure"] * limit + ["throttled"]
    world.clock.advance(lockout_s + 1)
    _console(world, PASSWORD)


def test_a_console_success_starts_the_count_again(world: World) -> None:
    world.user((Role.ADMIN, None), username="ann")
    limit = world.state.settings.login_max_failures
    _guess(world, limit - 1)
    _console(world, PASSWORD)
    _console(world, PASSWORD)  # 2 x (limit - 1) failures, but never limit since the last success
