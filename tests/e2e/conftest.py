"""End-to-end fixtures: the real server (uvicorn in a thread, SQLite in a tmp dir, an in-process simulated
fleet) seeded through its services and API, and the system's headless Chromium driven by Playwright.

Screenshots of every page go to ``artifacts/screenshots/`` (gitignored).

Tests wait for states (``expect(...)``, ``wait_for_url``), never for time. Every such wait, and every
action and navigation, may take up to ``UI_TIMEOUT_MS``: generous, because a state that comes arrives
as soon as it can while a loaded 2-core CI machine may be slow; a state that never comes still fails.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Dialog, Error, Page, ViewportSize, expect, sync_playwright
from pydantic import SecretStr

from smartpump.demo.fleet import SimFleet
from smartpump.library.formats import json_format
from smartpump.library.model import DrugLibrary
from smartpump.server import keys
from smartpump.server.app import create_app
from smartpump.server.auth import Access, Principal, Role
from smartpump.server.db import migrate
from smartpump.server.db.models import RoleGrant
from smartpump.server.services import users as users_service
from smartpump.server.settings import Settings
from smartpump.server.state import ServerState
from smartpump.server.workers import InProcessLink

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UI_TIMEOUT_MS: Final = 60_000
SERVER_START_S: Final = 60.0
HTTP_TIMEOUT_S: Final = 60.0
PASSWORD = "e2e password for the demo"
FACILITY = "demo-hospital"
USERS = {
    "nina": (Role.NURSE,),
    "bea": (Role.BIOMED,),
    "phil": (Role.PHARMACIST, Role.PHARMACY_APPROVER),
    "april": (Role.PHARMACY_APPROVER,),
    "arlo": (Role.PHARMACY_APPROVER,),
    "audrey": (Role.AUDITOR,),
    "vic": (Role.VIEWER,),
    "maya": (Role.PHYSICIAN,),
}


expect.set_options(timeout=UI_TIMEOUT_MS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveServer:
    """The running server: its base URL, shared state, the seeded facility and the simulated fleet."""

    url: str
    state: ServerState
    facility_id: int
    serials: tuple[str, ...]
    fleet: SimFleet


def _seed_users(state: ServerState) -> int:
    with state.sessions() as session:
        admin = users_service.create_user(
            session, state.settings, state.clock, state.hasher, None, username="root", password=PASSWORD
        )
        session.add(
            RoleGrant(
                user_id=admin.id,
                role=Role.ADMIN.value,
                facility_id=None,
                status="active",
                created_at=state.clock.now(),
            )
        )
        session.commit()
        principal = Principal(user_id=admin.id, username="root", global_roles=frozenset({Role.ADMIN}))
        access = Access(principal=principal, roles=frozenset({Role.ADMIN}))
        facility = users_service.create_facility(
            session, state.clock, access, code=FACILITY, name="Demo Hospital (example)"
        )
        for username, roles in USERS.items():
            user = users_service.create_user(
                session,
                state.settings,
                state.clock,
                state.hasher,
                "root",
                username=username,
                password=PASSWORD,
            )
            for role in roles:
                session.add(
                    RoleGrant(
                        user_id=user.id,
                        role=role.value,
                        facility_id=facility.id,
                        status="active",
                        created_at=state.clock.now(),
                    )
                )
        session.commit()
        return facility.id


def api_client(url: str) -> httpx.Client:
    """An HTTP client for the server's API (``/api/v1``) with the e2e timeout."""
    return httpx.Client(base_url=f"{url}/api/v1", timeout=HTTP_TIMEOUT_S)


def bearer(http: httpx.Client, username: str) -> dict[str, str]:
    """The Authorization header of a seeded user, from the token endpoint."""
    response = http.post("/auth/token", data={"username": username, "password": PASSWORD})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def register_pump(
    http: httpx.Client,
    biomed: dict[str, str],
    facility_id: int,
    serial: str,
    *,
    model: str = "lvp-4",
    care_area: str | None = "ADULT_ICU",
    location: str,
) -> None:
    """Register a pump as the biomed does (``POST /api/v1/pumps``)."""
    response = http.post(
        "/pumps",
        headers=biomed,
        json={
            "facility_id": facility_id,
            "serial": serial,
            "model": model,
            "firmware": "1.0.0",
            "care_area": care_area,
            "location": location,
        },
    )
    response.raise_for_status()


def _seed_through_api(url: str, facility_id: int, fleet: SimFleet) -> None:
    with api_client(url) as http:
        biomed, pharmacist = bearer(http, "bea"), bearer(http, "phil")
        approver, second = bearer(http, "april"), bearer(http, "arlo")
        for serial in fleet.serials():
            with fleet.lock:
                status = fleet.pump(serial).status()
            register_pump(
                http,
                biomed,
                facility_id,
                serial,
                model=status.model,
                care_area=status.care_area,
                location=f"Bed {serial[-2:]}",
            )
        document = json_format.to_document(fleet.library)
        body = json_format.encode_json({"facility_id": facility_id, "document": document})
        created = http.post(
            "/libraries", content=body, headers={**pharmacist, "Content-Type": "application/json"}
        )
        created.raise_for_status()
        library_id = created.json()["id"]
        _complete_hard_limits(http, library_id, pharmacist)
        steps = (("submit", pharmacist), ("approve", approver), ("approve", second), ("release", approver))
        for step, headers in steps:
            response = http.post(f"/libraries/{library_id}/{step}", headers=headers, json={})
            response.raise_for_status()


def _complete_hard_limits(http: httpx.Client, library_id: int, pharmacist: dict[str, str]) -> None:
    """The pharmacist adds the dose hard max lint asks for (twice the highest limit) before submitting."""
    findings = http.get(f"/libraries/{library_id}/lint", headers=pharmacist).json()
    missing = {
        f["where"].removeprefix("entry:") for f in findings if f["rule"] == "lint.high_alert.no_hard_max"
    }
    document = http.get(f"/libraries/{library_id}/document", headers=pharmacist)
    for entry in json_format.parse_json(document.text, what="document")["entries"]:
        if entry["id"] in missing:
            limits = entry["dose"]["limits"]
            limits["hard_max"] = 2 * max(limits.values())
            response = http.put(
                f"/libraries/{library_id}/entries/{entry['id']}",
                content=json_format.encode_json(entry),
                headers={**pharmacist, "Content-Type": "application/json"},
            )
            response.raise_for_status()


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread
# while it is alive, which breaks every later test that calls asyncio.run(); both fixtures end with
# the e2e module so the rest of the suite runs on a clean thread.
@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real server on a free port with a two-pump simulated fleet and demo-like data."""
    yield from serve(tmp_path_factory, json_format.read(REPO / "examples" / "demo-library.json"))


def serve(tmp_path_factory: pytest.TempPathFactory, library: DrugLibrary) -> Iterator[LiveServer]:
    """Run the real server on a free port, its two simulated pumps on ``library``, until resumed."""
    folder = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{folder / 'smartpump.db'}"
    migrate.upgrade(url)
    settings = Settings(
        database_url=url,
        secret_key=SecretStr("e2e-secret-key-" + "x" * 32),
        signing_keys_dir=folder / "keys",
        audit_anchor_dir=folder / "audit-anchors",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    link = InProcessLink()
    fleet = SimFleet(
        library=library,
        pumps=2,
        seed=7,
        speed=1.0,
        trust=keys.load(settings.signing_keys_dir, create_missing=True, now=datetime.now(UTC)).trust_store(),
        transport_for=link.pump_transport,
        link=link,
    )
    app = create_app(settings, sim_fleet=fleet)
    state: ServerState = app.state.smartpump
    facility_id = _seed_users(state)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the e2e server did not start")
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    _seed_through_api(base, facility_id, fleet)
    yield LiveServer(
        url=base, state=state, facility_id=facility_id, serials=tuple(fleet.serials()), fleet=fleet
    )
    server.should_exit = True
    thread.join(timeout=SERVER_START_S)
    fleet.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The system's headless Chromium (never a downloaded one)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (the Makefile does when it is absent)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session", autouse=True)
def screenshot_folder() -> Path:
    """The folder for this run's screenshots (each test overwrites its own by name; parallel workers share
    it, so it is never emptied under them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def new_page(browser: Browser, live_server: LiveServer) -> Iterator[Any]:
    """Open pages in fresh browser contexts (one per user; ``bypass_csp`` lets a test inject its own script,
    e.g. axe-core); fails the test on any JS dialog or page error."""
    contexts = []
    problems: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def on_error(error: Error) -> None:
        problems.append(f"page error: {error}")

    def open_page(viewport: ViewportSize | None = None, *, bypass_csp: bool = False) -> Page:
        context = browser.new_context(
            base_url=live_server.url,
            viewport=viewport or {"width": 1366, "height": 900},
            bypass_csp=bypass_csp,
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        page.set_default_navigation_timeout(UI_TIMEOUT_MS)
        page.on("dialog", on_dialog)
        page.on("pageerror", on_error)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert problems == []


def login(page: Page, username: str) -> None:
    """Log in through the form."""
    page.goto("/ui/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/")


def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot (the full page unless told otherwise: very long pages) as a test artifact."""
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
