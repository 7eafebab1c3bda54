"""A unit of work (a request, a worker step, a CLI command) owns its transaction: it commits once when it
ends normally and rolls back on any exception; a refusal that must outlive the rollback is committed in
its own transaction, before anything else of the unit is written (ADR 0008)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartpump.library.formats import json_format
from smartpump.server import audit
from smartpump.server.api.deps import SessionDep
from smartpump.server.auth import Role
from smartpump.server.db.models import AuditRecord, Facility
from smartpump.server.db.unit_of_work import after_commit, in_own_transaction, unit_of_work
from smartpump.server.errors import ConflictError
from tests.factories import make_library
from tests.server.conftest import World
from tests.server.test_web_pages import browsers, csrf_of, login

__all__ = ["browsers"]


def _facilities(world: World) -> list[str]:
    with world.state.sessions() as session:
        return list(session.scalars(select(Facility.code).order_by(Facility.code)))


def _denials(world: World) -> int:
    with world.state.sessions() as session:
        return session.scalar(select(func.count()).where(AuditRecord.outcome == "denied")) or 0


def _add(session: Session, world: World, code: str) -> None:
    session.add(Facility(code=code, name=f"{code} hospital", created_at=world.clock.now()))
    session.flush()


def _deny(session: Session, world: World) -> None:
    audit.append(session, world.clock, actor="t", action="test.refused", object_type="test", outcome="denied")


def test_a_unit_commits_when_it_ends_and_rolls_back_when_it_raises(world: World) -> None:
    with unit_of_work(world.state.sessions) as session:
        _add(session, world, "kept")
    with pytest.raises(ConflictError), unit_of_work(world.state.sessions) as session:
        _add(session, world, "dropped")
        raise ConflictError("refused after a write", code="test.refused")
    assert _facilities(world) == ["kept"]


def test_a_refusal_in_its_own_transaction_outlives_the_units_rollback(world: World) -> None:
    with pytest.raises(ConflictError), unit_of_work(world.state.sessions) as session:
        with in_own_transaction(session):
            _deny(session, world)
        raise ConflictError("refused", code="test.refused")
    assert _denials(world) == 1


def test_a_refusal_after_another_write_is_refused_so_that_write_cannot_leak(world: World) -> None:
    with pytest.raises(RuntimeError, match="before any other write"), unit_of_work(world.state.sessions) as s:
        _add(s, world, "leak")
        with in_own_transaction(s):
            _deny(s, world)
    assert _facilities(world) == []
    assert _denials(world) == 0


def test_an_after_commit_callback_runs_once_when_the_write_is_visible_to_others(world: World) -> None:
    seen: list[list[str]] = []
    with unit_of_work(world.state.sessions) as session:
        _add(session, world, "queued")
        after_commit(session, lambda: seen.append(_facilities(world)))
        assert seen == []
    assert seen == [["queued"]]
    with unit_of_work(world.state.sessions) as session:
        _add(session, world, "later")
    assert seen == [["queued"]]


def test_an_after_commit_callback_is_dropped_when_the_transaction_rolls_back(world: World) -> None:
    seen: list[str] = []
    with pytest.raises(ConflictError), unit_of_work(world.state.sessions) as session:
        _add(session, world, "dropped")
        after_commit(session, lambda: seen.append("rolled back"))
        raise ConflictError("refused after a write", code="test.refused")
    with world.state.sessions() as session:
        _add(session, world, "first")
        after_commit(session, lambda: seen.append("rolled back"))
        session.rollback()
        _add(session, world, "second")
        session.commit()
    assert seen == []
    assert _facilities(world) == ["second"]


def test_an_after_commit_callback_waits_for_the_outermost_commit_not_a_savepoint(world: World) -> None:
    seen: list[str] = []
    with unit_of_work(world.state.sessions) as session:
        _add(session, world, "outer")
        with session.begin_nested():
            _add(session, world, "inner")
            after_commit(session, lambda: seen.append("committed"))
        assert seen == []
    assert seen == ["committed"]
    assert _facilities(world) == ["inner", "outer"]


def test_a_route_commits_once_on_success_and_rolls_back_when_it_raises(app: Any, world: World) -> None:
    def create(session: SessionDep, code: str) -> dict[str, str]:
        _add(session, world, code)
        if code == "refused":
            raise ConflictError("refused after a write", code="test.refused")
        return {"code": code}

    app.add_api_route("/test/unit-of-work", create, methods=["POST"])
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/test/unit-of-work", params={"code": "kept"}).status_code == 200
        refused = client.post("/test/unit-of-work", params={"code": "refused"})
    assert refused.status_code == 409
    assert _facilities(world) == ["kept"]


def test_a_page_that_opens_its_own_unit_commits_the_draft_it_imports(
    world: World, browsers: list[TestClient]
) -> None:
    facility = world.facility("north")
    world.user((Role.PHARMACIST, facility), username="phil")
    phil = login(world.app, browsers, "phil")
    document = json_format.encode_json(json_format.to_document(make_library(hospital_id="north")))
    imported = phil.post(
        "/ui/libraries/import",
        data={"facility_id": str(facility), "csrf": csrf_of(phil.get("/ui/libraries").text)},
        files={"upload": ("library.json", document.encode(), "application/json")},
    )
    assert imported.status_code == 200, imported.text
    drafts = world.client.get("/api/v1/libraries", headers=world.as_role(Role.PHARMACIST, facility)).json()
    assert [d["status"] for d in drafts] == ["draft"]
