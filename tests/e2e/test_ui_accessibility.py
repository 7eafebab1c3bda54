"""WCAG 2.1 AA in real headless Chromium: the vendored axe-core finds no serious or critical violation on any
page of the UI, visited as every role that may see it (the route list is the declared access table)."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Final

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from smartpump.pump.alarms import AlarmId
from smartpump.server.auth import Role
from tests.e2e.axe import Violation, run_axe, summary_table
from tests.e2e.conftest import REPO, LiveServer, login, shot
from tests.e2e.live_views import painted_pump, publish_view
from tests.server.access_web import ACCESS

pytestmark = pytest.mark.e2e
REPORT = REPO / "artifacts" / "accessibility"
ROLE_USERS: Final = {
    Role.ADMIN: "root",
    Role.PHARMACIST: "phil",
    Role.PHARMACY_APPROVER: "april",
    Role.NURSE: "nina",
    Role.BIOMED: "bea",
    Role.AUDITOR: "audrey",
    Role.VIEWER: "vic",
    Role.PHYSICIAN: "maya",
}
NOT_PAGES: Final = frozenset({"/", "/ui/static/{name}", "/ui/stream"})
"""GET routes that are no page: the root redirect, static files and the event stream."""


def page_routes() -> dict[str, frozenset[Role]]:
    """Every GET page of the UI with the roles that may see it (empty: public), from the declared table."""
    return {
        path: roles for (method, path), roles in ACCESS.items() if method == "GET" and path not in NOT_PAGES
    }


def _new_configuration(page: Page) -> str:
    """The biomed drafts a configuration; its page's path."""
    page.goto("/ui/configurations")
    form = page.locator("#draft-form")
    form.locator("select[name=model]").select_option("lvp-4")
    form.locator("input[name=name]").fill("Accessibility walk")
    form.locator("input[name=max_rate_ml_per_h]").fill("500")
    form.locator("button[data-action=new-configuration]").click()
    expect(page.locator("#configuration-status")).to_have_text("draft")
    return page.url.removeprefix(page.url.split("/ui/")[0])


def _new_library_draft(page: Page) -> tuple[str, str]:
    """The pharmacist opens a draft from the released library; the draft's path and the released one's id."""
    page.goto("/ui/libraries")
    released = page.locator("#versions tr", has_text="released").locator("a[href^='/ui/libraries/']").first
    released_id = (released.get_attribute("href") or "").rsplit("/", 1)[-1]
    page.click("button[data-action=new-draft]")
    expect(page.locator("#library-status")).to_have_text("draft")
    return page.url.removeprefix(page.url.split("/ui/")[0]), released_id


def _paths(
    route: str, live_server: LiveServer, draft: str, released_id: str, configuration: str
) -> list[str]:
    """The concrete pages one route template stands for."""
    serial = live_server.serials[0]
    library = draft.rsplit("/", 1)[-1]
    concrete = {
        "/ui/pumps/{serial}": [f"/ui/pumps/{serial}"],
        "/ui/pumps/{serial}/bench": [f"/ui/pumps/{serial}/bench"],
        "/ui/panel/{serial}": [f"/ui/panel/{serial}"],
        "/ui/libraries/{library_id}": [f"/ui/libraries/{released_id}", draft],
        "/ui/libraries/{library_id}/entries/{entry_id}": [
            f"/ui/libraries/{released_id}/entries/ADULT_ICU.dopamine",
            f"/ui/libraries/{library}/entries/ADULT_ICU.dopamine",
        ],
        "/ui/libraries/{library_id}/coverage": [f"/ui/libraries/{released_id}/coverage"],
        "/ui/libraries/{library_id}/compare": [f"/ui/libraries/{library}/compare?against={released_id}"],
        "/ui/configurations/{configuration_id}": [configuration],
    }
    return concrete.get(route, [route])


LAPTOP: Final[ViewportSize] = {"width": 1366, "height": 768}
WALL: Final[ViewportSize] = {"width": 1920, "height": 1080}
FIRST_VISITORS: Final = (Role.PHARMACIST, Role.BIOMED, Role.NURSE, Role.AUDITOR)
"""Who walks each page in the default run: the first of these that may see it (between them, every page)."""


def _walk(new_page: Any, live_server: LiveServer, visitors: tuple[Role, ...], *, every_role: bool) -> None:
    """Visit every page (as each visitor that may see it, or only the first) and fail on any serious/critical
    axe finding; the full report goes to artifacts/accessibility/."""
    setup = new_page()
    login(setup, "bea")
    configuration = _new_configuration(setup)
    author = new_page()
    login(author, "phil")
    draft, released_id = _new_library_draft(author)
    routes = page_routes()
    violations: list[Violation] = []
    walked: set[str] = set()
    anonymous = new_page(LAPTOP, bypass_csp=True)
    for route, roles in routes.items():
        if not roles:
            anonymous.goto(route)
            violations.extend(run_axe(anonymous, label=f"{route} (anonymous)"))
            walked.add(route)
    for role in visitors:
        page = new_page(LAPTOP, bypass_csp=True)
        login(page, ROLE_USERS[role])
        for route, roles in routes.items():
            if role not in roles or (route in walked and not every_role):
                continue
            for path in _paths(route, live_server, draft, released_id, configuration):
                response = page.goto(path)
                assert response is not None and response.status == 200, f"{path} as {role.value}"
                expect(page.locator("main")).to_be_visible()
                violations.extend(run_axe(page, label=f"{path} ({role.value})"))
            walked.add(route)
    refused = new_page(LAPTOP, bypass_csp=True)
    login(refused, "nina")
    response = refused.goto("/ui/audit")
    assert response is not None and response.status == 403
    violations.extend(run_axe(refused, label="/ui/audit refused (nurse)"))
    shot(refused, "accessibility-error-page")
    assert walked == set(routes)
    name = "axe-every-role.json" if every_role else "axe-report.json"
    REPORT.mkdir(parents=True, exist_ok=True)
    (REPORT / name).write_text(
        json.dumps(
            {
                "by_page_and_rule": Counter(f"{v.page} | {v.rule} | {v.impact}" for v in violations),
                "violations": [v.line() for v in violations],
            },
            indent=1,
            sort_keys=True,
        ),
        encoding="utf-8",
    )
    blocking = [v for v in violations if v.blocking]
    heading = f"{len(blocking)} serious/critical violations (page | rule | impact):"
    assert blocking == [], f"{heading}\n{summary_table(blocking)}"


def test_every_page_has_no_serious_or_critical_violation(new_page: Any, live_server: LiveServer) -> None:
    _walk(new_page, live_server, FIRST_VISITORS, every_role=False)


@pytest.mark.slow
def test_every_page_as_every_role_has_no_serious_or_critical_violation(
    new_page: Any, live_server: LiveServer
) -> None:
    _walk(new_page, live_server, tuple(ROLE_USERS), every_role=True)


def _blocking(violations: list[Violation]) -> str:
    """The serious/critical findings as a readable table (empty when there are none)."""
    return summary_table([v for v in violations if v.blocking])


def test_alarm_offline_and_error_states_have_no_serious_or_critical_violation(
    new_page: Any, live_server: LiveServer
) -> None:
    alarming, offline = (painted_pump(live_server, serial) for serial in ("PAINT-01", "PAINT-02"))
    nurse = new_page(LAPTOP, bypass_csp=True)
    login(nurse, "nina")
    wall = new_page(WALL, bypass_csp=True)
    login(wall, "vic")
    for screen in (nurse, wall):
        expect(screen.locator("body")).to_have_attribute("data-live-state", "open")
    now = live_server.state.clock.now()
    alarms = [
        (AlarmId.OCCLUSION_DOWNSTREAM.value, "A", "high", now),
        (AlarmId.NEAR_END.value, "A", "medium", now),
        (AlarmId.SET_CHANGE_DUE.value, "B", "low", now),
    ]
    publish_view(live_server, alarming, alarms, battery_percent=12)
    publish_view(live_server, offline, online=False)
    found: list[Violation] = []
    for screen, label in ((nurse, "nurse, 1366x768"), (wall, "viewer, 1920x1080 wall screen")):
        for _, _, priority, _ in alarms:
            tile = screen.locator(f'[data-pump="{alarming}"] li.alarm.prio-{priority}')
            expect(tile).to_be_visible()
        expect(screen.locator(f'[data-pump="{offline}"]')).to_have_class(re.compile("offline"))
        found += run_axe(screen, label=f"/ui/ alarms and offline ({label})")
    shot(nurse, "accessibility-dashboard-alarms")
    shot(wall, "accessibility-wall-screen-alarms")
    publish_view(live_server, alarming, [])
    publish_view(live_server, offline, online=True)
    author = new_page(LAPTOP, bypass_csp=True)
    login(author, "phil")
    draft, _ = _new_library_draft(author)
    author.goto(f"{draft}/entries/ADULT_ICU.dopamine")
    form = author.locator("#entry-form")
    form.locator("input[name='dose.soft_max']").fill("40")
    expect(form.locator("[data-entry-error]")).to_contain_text("soft max must not exceed hard max")
    form.locator("input[name='bolus.unit']").fill("furlongs")
    form.locator("button[data-action=save-entry]").click()
    expect(author.locator("[aria-invalid=true]").first).to_be_visible()
    found += run_axe(author, label="entry editor with errors (pharmacist)")
    shot(author, "accessibility-entry-errors")
    assert _blocking(found) == ""
