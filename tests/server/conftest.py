"""Server test fixtures: a migrated database per backend (``BACKENDS``: PostgreSQL from
SMARTPUMP_TEST_POSTGRES_URL, suffixed with the pytest-xdist worker id, created fresh for the run and
dropped after it; under CI=true a missing or unreachable PostgreSQL fails the run), an app on a
ManualClock, and a ``world`` to populate it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Connection, Engine, create_engine, exists, literal, select, text, union_all
from sqlalchemy.engine import make_url
from starlette.exceptions import StarletteDeprecationWarning

from smartpump.clock import ManualClock
from smartpump.library.formats import json_format
from smartpump.library.model import DrugLibrary
from smartpump.server.app import application, create_app, server_state
from smartpump.server.auth import Role
from smartpump.server.db import migrate
from smartpump.server.db.engine import make_engine, normalize_url
from smartpump.server.db.models import Facility, RoleGrant
from smartpump.server.db.schema import METADATA
from smartpump.server.services import users as users_service
from smartpump.server.settings import Settings
from tests.factories import make_library

with warnings.catch_warnings():
    # Starlette 1.x warns that its TestClient prefers httpx2; httpx is what we have.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient as TestClient

PASSWORD = "correct horse battery staple"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
POSTGRES_URL = os.environ.get("SMARTPUMP_TEST_POSTGRES_URL")
POSTGRES_ADMIN_URL = os.environ.get(
    "SMARTPUMP_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI") == "true"
BACKENDS = [
    name.strip()
    for name in os.environ.get(
        "SMARTPUMP_TEST_BACKENDS", "postgresql" if POSTGRES_URL or IN_CI else "sqlite"
    ).split(",")
]
"""The backends the server suite runs on: ``SMARTPUMP_TEST_BACKENDS`` (``sqlite``, ``postgresql`` or both,
comma-separated); by default PostgreSQL, the production database, when it is configured (always under
CI), else the embedded SQLite; ``make test-sqlite`` runs the suite on SQLite, as CI does after it."""
if unknown := set(BACKENDS) - {"sqlite", "postgresql"}:
    raise ValueError(f"SMARTPUMP_TEST_BACKENDS names unknown backends: {sorted(unknown)}")


def _admin_engine() -> Engine:
    return create_engine(normalize_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database of each backend (the PostgreSQL one is dropped at the end)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'server.db'}"
        migrate.upgrade(url)
        yield url
        return
    if not POSTGRES_URL:
        pytest.fail("SMARTPUMP_TEST_POSTGRES_URL is not set: the server suite must run on PostgreSQL here")
    url = normalize_url(POSTGRES_URL)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        url = (
            make_url(url)
            .set(database=f"{make_url(url).database}_{worker}")
            .render_as_string(hide_password=False)
        )
    name = make_url(url).database
    admin = _admin_engine()
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
            # a test database need not survive a crash: commits skip the wait for the disk flush
            connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    except Exception as error:  # any failure to reach PostgreSQL must fail, never skip
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {error}")
    migrate.upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """One engine per backend for the whole run."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


SEQUENCES = text(
    "SELECT t.relname, s.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
    "JOIN pg_class t ON d.refobjid = t.oid WHERE s.relkind = 'S' AND d.deptype IN ('a', 'i')"
)
"""Each table's id sequence (serial or identity column) on PostgreSQL."""


def _wipe(engine: Engine) -> None:
    """Empty every table that holds rows and restart its ids, in one transaction: a DELETE of the few
    non-empty tables costs milliseconds where a TRUNCATE of all of them cost half a second on PostgreSQL."""
    with engine.begin() as connection:
        stored = set(_non_empty(connection))
        for table in reversed(METADATA.sorted_tables):
            if table.name in stored:
                connection.execute(table.delete())
        if engine.dialect.name == "postgresql":
            for table_name, sequence in connection.execute(SEQUENCES):
                if table_name in stored:
                    connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))


def _non_empty(connection: Connection) -> list[str]:
    """The names of the tables holding at least one row (one query for all of them)."""
    probes = [
        select(literal(t.name).label("name")).where(exists().select_from(t)) for t in METADATA.sorted_tables
    ]
    return [str(name) for name in connection.execute(union_all(*probes)).scalars()]


def _stored_tables(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        stored = set(_non_empty(connection))
    return [t.name for t in METADATA.sorted_tables if t.name in stored]


def error_code(body: Any) -> str:
    """The stable error code of an API error: the envelope's, or an OperationOutcome's (FHIR routes)."""
    if body.get("resourceType") == "OperationOutcome":
        return str(body["issue"][0]["details"]["coding"][0]["code"])
    return str(body["error"]["code"])


@pytest.fixture
def clock() -> ManualClock:
    """Virtual time for the server (token expiry, lockouts, due dates)."""
    return ManualClock(START)


def _settings(database_url: str, directory: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=SecretStr("test-secret-key-" + "x" * 32),
        signing_keys_dir=directory / "keys",
        audit_anchor_dir=directory / "audit-anchors",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        alarm_flag_count=5,
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Test settings: cheap Argon2, a per-test signing key, fixed secret."""
    return _settings(database_url, tmp_path)


@pytest.fixture(scope="module")
def module_application(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The routes, pages and middleware, built once per module (building them is most of an app's cost);
    each test gives it a fresh state."""
    return application(_settings(database_url, tmp_path_factory.mktemp("module-app")))


@pytest.fixture
def app(module_application: Any, settings: Settings, clock: ManualClock, engine: Engine) -> Iterator[Any]:
    """The API on the test database with a state of its own (keys, clock, throttles, workers); every table
    is emptied afterwards."""
    module_application.state.smartpump = server_state(settings, clock=clock, engine=engine)
    yield module_application
    module_application.state.smartpump.ingest_engine.dispose()
    _wipe(engine)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    """An HTTP client for the app (server errors surface as 500 responses, not exceptions)."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def shared_app(database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One app for a whole module of tests that store nothing (anonymous or refused requests, route
    introspection): built once instead of per test; every table is emptied after the module."""
    directory = tmp_path_factory.mktemp("shared-app")
    application = create_app(_settings(database_url, directory), clock=ManualClock(START), engine=engine)
    yield application
    stored = _stored_tables(engine)
    _wipe(engine)
    assert stored == [], f"tests sharing one app stored rows in {stored}: give them the per-test app"


@pytest.fixture(scope="module")
def shared_client(shared_app: Any) -> Iterator[TestClient]:
    """An HTTP client for the module's shared app (server errors surface as 500 responses)."""
    with TestClient(shared_app, raise_server_exceptions=False) as test_client:
        yield test_client


class World:
    """Builds facilities, users with grants, pumps and libraries for a test, and logs users in."""

    def __init__(self, app: Any, client: TestClient, clock: ManualClock) -> None:
        self.app = app
        self.client = client
        self.clock = clock
        self.state = app.state.smartpump
        self._users = 0

    def facility(self, code: str = "north") -> int:
        """A facility (direct insert)."""
        with self.state.sessions() as session:
            facility = Facility(code=code, name=f"{code} hospital", created_at=self.clock.now())
            session.add(facility)
            session.commit()
            return facility.id

    def user(self, *grants: tuple[Role, int | None], username: str | None = None) -> int:
        """A user with active grants ``(role, facility_id or None for all)``; returns the user id."""
        self._users += 1
        name = username or f"user{self._users}"
        with self.state.sessions() as session:
            user = users_service.create_user(
                session,
                self.state.settings,
                self.clock,
                self.state.hasher,
                None,
                username=name,
                password=PASSWORD,
            )
            for role, facility_id in grants:
                session.add(
                    RoleGrant(
                        user_id=user.id,
                        role=role.value,
                        facility_id=facility_id,
                        status="active",
                        created_at=self.clock.now(),
                    )
                )
            session.commit()
            return user.id

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        """Bearer headers for a user."""
        response = self.client.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def as_role(self, role: Role, facility_id: int | None, username: str | None = None) -> dict[str, str]:
        """Headers of a fresh user holding one role in one facility (or everywhere)."""
        name = username or f"{role.value}{self._users + 1}"
        self.user((role, facility_id), username=name)
        return self.login(name)

    def post_json(self, path: str, body: str, headers: dict[str, str]) -> Any:
        """POST a JSON text body as is."""
        return self.client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})

    def pump(
        self, headers: dict[str, str], facility_id: int, serial: str, model: str = "LVP-1"
    ) -> dict[str, Any]:
        """Register a pump through the API."""
        response = self.client.post(
            "/api/v1/pumps",
            headers=headers,
            json={
                "facility_id": facility_id,
                "serial": serial,
                "model": model,
                "firmware": "1.0.0",
                "care_area": "icu",
            },
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def world(app: Any, client: TestClient, clock: ManualClock) -> World:
    """A helper to populate the test database."""
    return World(app, client, clock)


def library_payload(facility_id: int, hospital_id: str = "north", **overrides: Any) -> str:
    """The JSON body that creates a draft from a lint-clean example library (numbers written exactly)."""
    library: DrugLibrary = make_library(hospital_id=hospital_id, **overrides)
    return json_format.encode_json({"facility_id": facility_id, "document": json_format.to_document(library)})
