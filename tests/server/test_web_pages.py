"""The browser UI served by the server: sessions, CSRF, role-aware navigation, access per page, escaping."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from smartpump.server.auth import Role
from smartpump.server.live import LiveMessage
from smartpump.server.services.fleet import ChannelReport, record_status
from smartpump.server.web.insight_pages import sse_frame
from smartpump.server.web.session import SESSION_COOKIE
from tests.factories import make_drug
from tests.server.conftest import PASSWORD, World, library_payload

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

HTML = {"Accept": "text/html,application/xhtml+xml"}
SCRIPT = "<script>alert(1)</script>"


def csrf_of(html: str) -> str:
    """The CSRF token a rendered page put in its forms."""
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


@pytest.fixture
def browsers(app: Any) -> Iterator[list[TestClient]]:
    """Independent browser-like clients (own cookie jars) for one test."""
    opened: list[TestClient] = []
    yield opened
    for client in opened:
        client.close()


def browser(app: Any, opened: list[TestClient]) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False, headers=HTML, follow_redirects=False)
    opened.append(client)
    return client


def login(app: Any, opened: list[TestClient], username: str) -> TestClient:
    """A browser logged in through the login form."""
    client = browser(app, opened)
    page = client.get("/ui/login")
    response = client.post(
        "/ui/login",
        data={"username": username, "password": PASSWORD, "csrf": csrf_of(page.text), "next": "/ui/"},
    )
    assert response.status_code == 303, response.text
    return client


def test_login_sets_an_httponly_samesite_strict_session_cookie(
    world: World, browsers: list[TestClient]
) -> None:
    facility = world.facility()
    world.user((Role.NURSE, facility), username="nina")
    client = browser(world.app, browsers)
    page = client.get("/ui/login")
    response = client.post(
        "/ui/login", data={"username": "nina", "password": PASSWORD, "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    dashboard = client.get("/ui/")
    assert dashboard.status_code == 200
    assert "nina" in dashboard.text


def test_wrong_password_shows_the_login_form_again(world: World, browsers: list[TestClient]) -> None:
    world.user((Role.NURSE, world.facility()), username="nina")
    client = browser(world.app, browsers)
    page = client.get("/ui/login")
    response = client.post(
        "/ui/login", data={"username": "nina", "password": "wrong", "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 401
    assert "wrong username or password" in response.text
    assert SESSION_COOKIE not in client.cookies


def test_login_without_csrf_token_is_refused(world: World, browsers: list[TestClient]) -> None:
    world.user((Role.NURSE, world.facility()), username="nina")
    client = browser(world.app, browsers)
    client.get("/ui/login")
    response = client.post("/ui/login", data={"username": "nina", "password": PASSWORD})
    assert response.status_code == 403
    assert "csrf.invalid" in response.text


def test_form_post_with_a_forged_csrf_token_is_refused(world: World, browsers: list[TestClient]) -> None:
    facility = world.facility()
    world.user((Role.PHARMACIST, facility), username="phil")
    client = login(world.app, browsers, "phil")
    forged = client.post("/ui/libraries", data={"facility_id": facility, "csrf": "0" * 64})
    assert forged.status_code == 403
    assert "csrf.invalid" in forged.text


def test_csrf_token_of_another_session_is_refused(world: World, browsers: list[TestClient]) -> None:
    facility = world.facility()
    world.user((Role.PHARMACIST, facility), username="phil")
    world.user((Role.PHARMACIST, facility), username="pam")
    phil = login(world.app, browsers, "phil")
    pam = login(world.app, browsers, "pam")
    pams_token = csrf_of(pam.get("/ui/libraries").text)
    response = phil.post("/ui/libraries", data={"facility_id": facility, "csrf": pams_token})
    assert response.status_code == 403


def test_anonymous_browser_is_sent_to_the_login_page(world: World, browsers: list[TestClient]) -> None:
    response = browser(world.app, browsers).get("/ui/maintenance")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/maintenance"


def test_api_clients_keep_the_json_error_envelope_on_pages(world: World) -> None:
    response = world.client.get("/ui/audit")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.required"


def test_session_cookie_does_not_authenticate_the_api(world: World, browsers: list[TestClient]) -> None:
    world.user((Role.NURSE, world.facility()), username="nina")
    client = login(world.app, browsers, "nina")
    token = client.cookies[SESSION_COOKIE]
    api = browser(world.app, browsers)
    api.cookies.set(SESSION_COOKIE, token)
    assert api.get("/ui/").status_code == 200
    response = api.get("/api/v1/auth/me")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("role", "shown", "hidden"),
    [
        (
            Role.NURSE,
            {"Fleet", "Front panel", "Drug library", "CQI"},
            {"Audit log", "Maintenance", "Quarantine"},
        ),
        (Role.BIOMED, {"Fleet", "Maintenance", "Quarantine", "Front panel"}, {"Audit log"}),
        (Role.AUDITOR, {"Fleet", "Audit log", "Maintenance", "Quarantine", "Drug library"}, {"Front panel"}),
        (
            Role.VIEWER,
            {"Fleet", "Drug library"},
            {"Audit log", "Maintenance", "Quarantine", "Front panel", "CQI"},
        ),
    ],
)
def test_navigation_shows_the_pages_of_the_users_roles(
    world: World, browsers: list[TestClient], role: Role, shown: set[str], hidden: set[str]
) -> None:
    world.user((role, world.facility()), username="someone")
    page = login(world.app, browsers, "someone").get("/ui/").text
    links = set(re.findall(r'data-nav="[a-z]+"[^>]*>([^<]+)</a>', page))
    assert shown <= links
    assert not hidden & links


@pytest.mark.parametrize(
    ("path", "allowed", "denied"),
    [
        ("/ui/audit", Role.AUDITOR, Role.NURSE),
        ("/ui/maintenance", Role.BIOMED, Role.NURSE),
        ("/ui/panel", Role.NURSE, Role.PHARMACIST),
        ("/ui/libraries", Role.PHARMACIST, Role.ADMIN),
        ("/ui/cqi", Role.NURSE, Role.VIEWER),
    ],
)
def test_pages_open_only_for_their_roles(
    world: World, browsers: list[TestClient], path: str, allowed: Role, denied: Role
) -> None:
    facility = world.facility()
    world.user((allowed, facility), username="yes")
    world.user((denied, facility), username="no")
    page = login(world.app, browsers, "yes").get(path)
    assert page.status_code == 200
    assert page.text.count('id="') == len(set(re.findall(r'id="([^"]+)"', page.text)))
    assert re.search(r"<title>[^<]+</title>", page.text)
    refused = login(world.app, browsers, "no").get(path)
    assert refused.status_code == 403
    assert "access.role" in refused.text
    assert "Not allowed" in refused.text


def test_a_drug_name_carrying_html_is_shown_inert(world: World, browsers: list[TestClient]) -> None:
    facility = world.facility("north")
    pharmacist = world.as_role(Role.PHARMACIST, facility, username="phil")
    body = library_payload(facility, drugs=(make_drug(display_name=SCRIPT),))
    created = world.post_json("/api/v1/libraries", body, pharmacist)
    assert created.status_code == 201, created.text
    page = login(world.app, browsers, "phil").get(f"/ui/libraries/{created.json()['id']}")
    assert page.status_code == 200
    assert SCRIPT not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_a_pump_location_carrying_html_is_shown_inert_on_the_dashboard(
    world: World, browsers: list[TestClient]
) -> None:
    facility = world.facility()
    biomed = world.as_role(Role.BIOMED, facility, username="bea")
    world.pump(biomed, facility, "P-1")
    patched = world.client.patch(
        "/api/v1/pumps/P-1", headers=biomed, json={"location": '<img src=x onerror="x()">'}
    )
    assert patched.status_code == 200
    page = login(world.app, browsers, "bea").get("/ui/").text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&#34;x()&#34;&gt;" in page


def test_dashboard_filters_by_care_area(world: World, browsers: list[TestClient]) -> None:
    facility = world.facility()
    biomed = world.as_role(Role.BIOMED, facility, username="bea")
    world.pump(biomed, facility, "ICU-1")
    world.pump(biomed, facility, "WARD-1")
    world.client.patch("/api/v1/pumps/WARD-1", headers=biomed, json={"care_area": "ward"})
    client = login(world.app, browsers, "bea")
    page = client.get("/ui/", params={"care_area": "ward"}).text
    assert 'data-pump="WARD-1"' in page
    assert 'data-pump="ICU-1"' not in page


def test_pump_of_another_facility_is_not_found(world: World, browsers: list[TestClient]) -> None:
    north, south = world.facility("north"), world.facility("south")
    biomed = world.as_role(Role.BIOMED, south, username="sam")
    world.pump(biomed, south, "S-1")
    world.user((Role.NURSE, north), username="nina")
    response = login(world.app, browsers, "nina").get("/ui/pumps/S-1")
    assert response.status_code == 404


def test_library_draft_goes_through_approval_and_release_in_the_pages(
    world: World, browsers: list[TestClient]
) -> None:
    facility = world.facility("north")
    pharmacist = world.as_role(Role.PHARMACIST, facility, username="phil")
    world.user((Role.PHARMACY_APPROVER, facility), username="april")
    created = world.post_json("/api/v1/libraries", library_payload(facility), pharmacist).json()
    phil = login(world.app, browsers, "phil")
    page = phil.get(f"/ui/libraries/{created['id']}").text
    assert phil.post(f"/ui/libraries/{created['id']}/submit", data={"csrf": csrf_of(page)}).status_code == 303
    april = login(world.app, browsers, "april")
    token = csrf_of(april.get(f"/ui/libraries/{created['id']}").text)
    assert 'data-action="approve"' in april.get(f"/ui/libraries/{created['id']}").text
    assert april.post(f"/ui/libraries/{created['id']}/approve", data={"csrf": token}).status_code == 303
    page = april.get(f"/ui/libraries/{created['id']}").text
    assert "Still needed: 1 more approver(s) in total." in page
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None and title.group(1) == "Library v1 · smartpump", "the title is words, not markup"
    assert page.count('id="deployments"') == 1
    # An approver who approved this content sees when, not a second Approve button (the server refuses one).
    assert 'data-action="approve"' not in page
    approved_on = r'id="my-approval"[^>]*>You approved this version on \d{4}-\d\d-\d\d \d\d:\d\d UTC'
    assert re.search(approved_on, page)
    again = april.post(f"/ui/libraries/{created['id']}/approve", data={"csrf": token})
    assert (again.status_code, "library.already_approved" in again.text) == (409, True)
    refused = april.post(f"/ui/libraries/{created['id']}/release", data={"csrf": token})
    assert (refused.status_code, "library.policy_unmet" in refused.text) == (409, True)
    world.user((Role.PHARMACY_APPROVER, facility), username="arlo")
    arlo = login(world.app, browsers, "arlo")
    second = csrf_of(arlo.get(f"/ui/libraries/{created['id']}").text)
    assert arlo.post(f"/ui/libraries/{created['id']}/approve", data={"csrf": second}).status_code == 303
    assert 'id="policy-met"' in april.get(f"/ui/libraries/{created['id']}").text
    assert april.post(f"/ui/libraries/{created['id']}/release", data={"csrf": token}).status_code == 303
    assert 'id="library-status">released<' in april.get(f"/ui/libraries/{created['id']}").text


def test_entry_limits_in_the_wrong_order_are_refused_with_the_reason(
    world: World, browsers: list[TestClient]
) -> None:
    facility = world.facility("north")
    pharmacist = world.as_role(Role.PHARMACIST, facility, username="phil")
    created = world.post_json("/api/v1/libraries", library_payload(facility), pharmacist).json()
    phil = login(world.app, browsers, "phil")
    token = csrf_of(phil.get(f"/ui/libraries/{created['id']}").text)
    form = {
        "csrf": token,
        "entry_id": "icu-dopamine",
        "care_area_id": "icu",
        "drug_id": "dopamine",
        "route": "IV",
        "mode": "continuous",
        "dose.unit": "mcg/kg/min",
        "dose.soft_max": "40",
        "dose.hard_max": "30",
    }
    response = phil.post(f"/ui/libraries/{created['id']}/entries", data=form)
    assert response.status_code == 422
    document = world.client.get(f"/api/v1/libraries/{created['id']}/document", headers=pharmacist).json()
    limits = next(e for e in document["entries"] if e["id"] == "icu-dopamine")["dose"]["limits"]
    assert limits["hard_max"] == 30
    ok = phil.post(f"/ui/libraries/{created['id']}/entries", data={**form, "dose.soft_max": "25"})
    assert ok.status_code == 303
    document = world.client.get(f"/api/v1/libraries/{created['id']}/document", headers=pharmacist).json()
    assert (
        next(e for e in document["entries"] if e["id"] == "icu-dopamine")["dose"]["limits"]["soft_max"] == 25
    )


def test_logout_revokes_the_session(world: World, browsers: list[TestClient]) -> None:
    world.user((Role.NURSE, world.facility()), username="nina")
    client = login(world.app, browsers, "nina")
    token = client.cookies[SESSION_COOKIE]
    page = client.get("/ui/").text
    assert client.post("/ui/logout", data={"csrf": csrf_of(page)}).status_code == 303
    again = browser(world.app, browsers)
    again.cookies.set(SESSION_COOKIE, token, path="/ui")
    assert again.get("/ui/").status_code == 303


def test_static_assets_come_from_the_package(world: World) -> None:
    css = world.client.get("/ui/static/app.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert world.client.get("/ui/static/nothing.js").status_code == 404
    linked = re.findall(r'(?:href|src)="(/ui/static/[^"]+)"', world.client.get("/ui/login").text)
    assert {"/ui/static/app.css", "/ui/static/app.js", "/ui/static/favicon.svg"} <= set(linked)
    assert {url: world.client.get(url).status_code for url in linked} == dict.fromkeys(linked, 200)
    assert world.client.get("/ui/static/favicon.svg").headers["content-type"].startswith("image/svg+xml")
    assert world.client.get("/ui/static/..%2Fpages.py").status_code in (404, 422)


def test_stream_speaks_only_event_stream(world: World) -> None:
    headers = world.as_role(Role.NURSE, world.facility(), username="nina")
    response = world.client.get("/ui/stream", headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "ui.stream_accept"


def test_sse_frame_names_the_event_and_carries_the_payload() -> None:
    from datetime import UTC, datetime

    message = LiveMessage(
        kind="alarm.raised",
        facility_id=3,
        payload={"pump": "P-1", "alarm": "occlusion_downstream", "priority": "high"},
        ts=datetime(2026, 3, 2, tzinfo=UTC),
    )
    frame = sse_frame(message)
    assert frame.startswith("event: alarm.raised\ndata: {")
    assert frame.endswith("\n\n")
    assert '"priority": "high"' in frame and '"facility_id": 3' in frame


def test_a_running_channel_shows_its_dose_with_its_unit_on_the_dashboard(
    world: World, browsers: list[TestClient]
) -> None:
    facility = world.facility()
    biomed = world.as_role(Role.BIOMED, facility, username="bea")
    world.pump(biomed, facility, "P-1")
    with world.app.state.smartpump.sessions() as session:
        record_status(
            session,
            world.app.state.smartpump.clock,
            "P-1",
            seen_at=world.app.state.smartpump.clock.now(),
            channels=(
                ChannelReport(
                    channel="A",
                    state="running",
                    drug="dopamine",
                    dose=Decimal("0.00125"),
                    dose_unit="mcg/kg/min",
                    rate_ml_per_h=Decimal("13.1"),
                ),
            ),
        )
        session.commit()
    page = login(world.app, browsers, "bea").get("/ui/").text
    cell = re.search(r'<span data-field="dose" class="dose">([^<]*)</span>', page)
    assert cell is not None and cell.group(1) == "0.00125 mcg/kg/min"
