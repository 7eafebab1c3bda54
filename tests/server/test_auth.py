"""Login, tokens, throttling, password storage and the bootstrap admin."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from smartpump.server.auth import Role
from smartpump.server.db.models import AuditRecord, User
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.services.users import ensure_first_admin
from smartpump.server.settings import Settings
from tests.server.conftest import PASSWORD, TestClient, World
from tests.server.test_web_pages import csrf_of

TOKEN = "/api/v1/auth/token"


def _login(world: World, username: str, password: str) -> Any:
    return world.client.post(TOKEN, data={"username": username, "password": password})


def test_token_endpoint_answers_oauth2_bearer_token(world: World) -> None:
    world.user((Role.VIEWER, None), username="val")
    body = _login(world, "val", PASSWORD).json()
    assert body["token_type"] == "bearer"
    assert len(body["access_token"]) >= 32


def test_wrong_password_is_401_with_code(world: World) -> None:
    world.user((Role.VIEWER, None), username="val")
    response = _login(world, "val", "not the password")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.invalid_credentials"


def test_unknown_user_gets_the_same_answer_as_wrong_password(world: World) -> None:
    response = _login(world, "nobody", "whatever password")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.invalid_credentials"


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    world: World, settings: Settings
) -> None:
    world.user((Role.VIEWER, None), username="val")
    for _ in range(settings.login_max_failures):
        assert _login(world, "val", "wrong password").status_code == 401
    response = _login(world, "val", PASSWORD)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "auth.throttled"
    assert int(response.headers["Retry-After"]) > 0


def test_lockout_ends_after_the_lockout_period(world: World, settings: Settings) -> None:
    world.user((Role.VIEWER, None), username="val")
    for _ in range(settings.login_max_failures):
        _login(world, "val", "wrong password")
    world.clock.advance(settings.login_lockout_minutes * 60 + 1)
    assert _login(world, "val", PASSWORD).status_code == 200


def test_token_expires_after_its_lifetime(world: World, settings: Settings) -> None:
    world.user((Role.VIEWER, None), username="val")
    headers = world.login("val")
    assert world.client.get("/api/v1/auth/me", headers=headers).status_code == 200
    world.clock.advance(settings.token_ttl_minutes * 60)
    response = world.client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.token_expired"


def test_logout_revokes_the_token(world: World) -> None:
    world.user((Role.VIEWER, None), username="val")
    headers = world.login("val")
    assert world.client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert world.client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_forged_token_is_refused(world: World) -> None:
    response = world.client.get("/api/v1/auth/me", headers={"Authorization": "Bearer forged-token-value"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.invalid_token"


def test_disabled_user_loses_access_at_once(world: World) -> None:
    world.user((Role.ADMIN, None), username="root")
    target = world.user((Role.VIEWER, None), username="val")
    headers = world.login("val")
    assert (
        world.client.post(f"/api/v1/users/{target}/disable", headers=world.login("root")).status_code == 200
    )
    assert world.client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert _login(world, "val", PASSWORD).status_code == 401


def test_passwords_are_stored_as_argon2id(world: World) -> None:
    user_id = world.user((Role.VIEWER, None), username="val")
    with world.state.sessions() as session:
        stored = session.get(User, user_id)
        assert stored is not None
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash


def test_password_change_needs_the_current_password_and_revokes_tokens(world: World) -> None:
    world.user((Role.VIEWER, None), username="val")
    headers = world.login("val")
    wrong = world.client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": "nope", "new_password": "a brand new passphrase"},
    )
    assert wrong.status_code == 403
    ok = world.client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert ok.status_code == 204
    assert world.client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert _login(world, "val", "a brand new passphrase").status_code == 200


def test_weak_password_is_refused(world: World) -> None:
    world.user((Role.ADMIN, None), username="root")
    response = world.client.post(
        "/api/v1/users", headers=world.login("root"), json={"username": "newbie", "password": "short"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "user.weak_password"


def test_first_admin_gets_a_generated_password_once(world: World) -> None:
    state = world.state
    with unit_of_work(state.sessions) as session:
        first = ensure_first_admin(session, state.settings, world.clock, state.hasher)
        again = ensure_first_admin(session, state.settings, world.clock, state.hasher)
    assert first is not None and first.generated_password is not None
    assert again is None
    headers = world.login("admin", first.generated_password)
    me = world.client.get("/api/v1/auth/me", headers=headers).json()
    assert me["global_roles"] == ["admin"]


def test_first_admin_uses_the_configured_password(world: World) -> None:
    state = world.state
    settings = Settings(
        **{**state.settings.model_dump(), "admin_password": "configured bootstrap passphrase"}
    )
    with unit_of_work(state.sessions) as session:
        first = ensure_first_admin(session, settings, world.clock, state.hasher)
    assert first is not None and first.generated_password is None
    assert _login(world, "admin", "configured bootstrap passphrase").status_code == 200


def _from(world: World, address: str) -> TestClient:
    """A client of the same app calling from another address."""
    return TestClient(world.app, client=(address, 40000), raise_server_exceptions=False)


def _login_from(client: TestClient, username: str, password: str) -> Any:
    return client.post(TOKEN, data={"username": username, "password": password})


def test_failures_from_one_address_do_not_lock_the_admin_out_from_another(
    world: World, settings: Settings
) -> None:
    world.user((Role.ADMIN, None), username="root")
    attacker, admin_desk = _from(world, "198.51.100.7"), _from(world, "203.0.113.9")
    for _ in range(settings.login_max_failures):
        assert _login_from(attacker, "root", "guessed password").status_code == 401
    assert _login_from(attacker, "root", PASSWORD).status_code == 429
    assert _login_from(admin_desk, "root", PASSWORD).status_code == 200


def test_one_address_spraying_many_accounts_is_throttled(world: World, settings: Settings) -> None:
    world.user((Role.VIEWER, None), username="val")
    sprayer = _from(world, "198.51.100.8")
    for n in range(settings.login_client_max_failures):
        assert _login_from(sprayer, f"user{n}", "Summer2026!!").status_code == 401
    refused = _login_from(sprayer, "val", PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert _login_from(_from(world, "203.0.113.10"), "val", PASSWORD).status_code == 200
    world.clock.advance(settings.login_lockout_minutes * 60 + 1)
    assert _login_from(sprayer, "val", PASSWORD).status_code == 200


def test_the_account_wide_cap_locks_untrusted_addresses_only(world: World, settings: Settings) -> None:
    world.user((Role.ADMIN, None), username="root")
    per_address = settings.login_max_failures
    for n in range(settings.login_account_max_failures // per_address):
        botnet = _from(world, f"192.0.2.{n + 1}")
        for _ in range(per_address):
            assert _login_from(botnet, "root", "guessed password").status_code == 401
    assert _login_from(_from(world, "203.0.113.11"), "root", PASSWORD).status_code == 429
    assert _login_from(_from(world, "127.0.0.1"), "root", PASSWORD).status_code == 200


def test_login_outcomes_are_audited_with_the_client_address(world: World) -> None:
    world.user((Role.VIEWER, None), username="val")
    _login_from(_from(world, "198.51.100.12"), "val", "wrong password")
    with world.state.sessions() as session:
        records = session.scalars(select(AuditRecord).where(AuditRecord.action == "auth.login")).all()
        assert [(r.outcome, json.loads(r.details)["client"]) for r in records] == [
            ("failure", "198.51.100.12")
        ]


def test_common_passwords_are_refused_at_creation_and_change(world: World) -> None:
    world.user((Role.ADMIN, None), username="root")
    headers = world.login("root")
    created = world.client.post(
        "/api/v1/users", headers=headers, json={"username": "newbie", "password": "Password2026!"}
    )
    assert created.status_code == 422
    assert created.json()["error"]["code"] == "user.weak_password"
    changed = world.client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": "iloveyou1234"},
    )
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "user.weak_password"


def _first_admin(world: World) -> str:
    state = world.state
    with unit_of_work(state.sessions) as session:
        first = ensure_first_admin(session, state.settings, world.clock, state.hasher)
    assert first is not None and first.generated_password is not None
    return first.generated_password


def test_the_first_admin_must_change_its_password_before_anything_else(world: World) -> None:
    generated = _first_admin(world)
    headers = world.login("admin", generated)
    refused = world.client.get("/api/v1/users", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "auth.password_change_required"
    assert world.client.get("/api/v1/auth/me", headers=headers).json()["must_change_password"] is True
    same = world.client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": generated, "new_password": generated},
    )
    assert same.status_code == 422 and same.json()["error"]["code"] == "user.same_password"
    changed = world.client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": generated, "new_password": "steady lantern harbour 42"},
    )
    assert changed.status_code == 204
    fresh = world.login("admin", "steady lantern harbour 42")
    assert world.client.get("/api/v1/users", headers=fresh).status_code == 200
    assert world.client.get("/api/v1/auth/me", headers=fresh).json()["must_change_password"] is False


def test_a_browser_of_the_first_admin_is_sent_to_change_its_password(world: World, app: Any) -> None:
    generated = _first_admin(world)
    browser = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    page = browser.get("/ui/login")
    logged_in = browser.post(
        "/ui/login",
        data={"username": "admin", "password": generated, "csrf": csrf_of(page.text), "next": "/ui/"},
    )
    assert logged_in.status_code == 303
    home = browser.get("/ui/", headers={"Accept": "text/html"})
    assert home.status_code == 303 and home.headers["location"] == "/ui/password"
    form = browser.get("/ui/password", headers={"Accept": "text/html"})
    assert form.status_code == 200 and "must be replaced" in form.text
    changed = browser.post(
        "/ui/password",
        data={
            "csrf": csrf_of(form.text),
            "current_password": generated,
            "new_password": "quiet orchard lamplight 7",
        },
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/ui/login"
    fresh = world.login("admin", "quiet orchard lamplight 7")
    assert world.client.get("/api/v1/users", headers=fresh).status_code == 200
