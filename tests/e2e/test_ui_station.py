"""The central station in real headless Chromium, as a nurse and a viewer's wall screen use it: 36 pumps
(the two simulated ones and 34 three-channel pumps reported through the services), alarming tiles first in
their priority's colour with icon and words, every tile on a 1920x1080 wall screen without scrolling,
3-channel tiles that never clip their status at 1366x768, h:mm counting down between updates, live
re-ordering, filters kept in the URL, and counts right on first render."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final, cast

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from smartpump.pump.alarms import AlarmId
from smartpump.server.auth import Role
from smartpump.server.db.models import ChannelState, Pump, RoleGrant
from smartpump.server.db.models_fleet_view import ActiveAlarm
from smartpump.server.services import users as users_service
from smartpump.server.services.fleet import ChannelReport, record_status
from tests.e2e.conftest import PASSWORD, LiveServer, api_client, bearer, login, register_pump, shot
from tests.e2e.live_views import publish_view

pytestmark = pytest.mark.e2e
LAPTOP: Final = {"width": 1366, "height": 768}
WALL: Final = {"width": 1920, "height": 1080}
EXTRA_PUMPS: Final = 34
ALARMS: Final = {"ST-07": ("occlusion.downstream", "high"), "ST-21": ("therapy.duplicate", "medium")}
ALARMS_LOW: Final = {"ST-30": ("infusion.near_end", "low")}
DRUGS: Final = (
    ("norepinephrine", Decimal("0.125"), "mcg/kg/min", Decimal("7.5")),
    ("potassium chloride", Decimal("10"), "mEq/h", Decimal("100")),
    ("heparin", Decimal("1250"), "units/h", Decimal("25")),
)


@pytest.fixture(scope="module")
def station(live_server: LiveServer) -> LiveServer:
    """34 more pumps in the facility, each running three channels with time left, three of them alarming,
    and a viewer; seeded through the services as the connectivity layer would."""
    state = live_server.state
    _grant(state, live_server.facility_id, "vera", Role.VIEWER)
    with api_client(live_server.url) as http:
        biomed = bearer(http, "bea")
        for number in range(EXTRA_PUMPS):
            register_pump(
                http,
                biomed,
                live_server.facility_id,
                f"ST-{number:02d}",
                care_area="ADULT_ICU" if number % 2 else "PEDIATRICS",
                location=f"Bed {number + 1}, room {number // 4 + 1}",
            )
    now = state.clock.now()
    with state.sessions() as session:
        for number in range(EXTRA_PUMPS):
            serial = f"ST-{number:02d}"
            record_status(
                session,
                state.clock,
                serial,
                seen_at=now,
                battery_percent=90 - number,
                channels=tuple(
                    ChannelReport(
                        channel=cid, state="running", drug=d, dose=dose, dose_unit=unit, rate_ml_per_h=r
                    )
                    for cid, (d, dose, unit, r) in zip("ABC", DRUGS, strict=True)
                ),
            )
            pump_id = session.scalars(select(Pump.id).where(Pump.serial == serial)).one()
            for row in session.scalars(select(ChannelState).where(ChannelState.pump_id == pump_id)):
                row.remaining_ml, row.remaining_min = (
                    Decimal("240.0"),
                    Decimal(600 + 7 * number) + Decimal("0.5"),
                )
                row.reported_at = now
            chosen = {**ALARMS, **ALARMS_LOW}.get(serial)
            if chosen is not None:
                since = now - timedelta(minutes=number)
                session.add(
                    ActiveAlarm(
                        pump_id=pump_id, channel="A", alarm=chosen[0], priority=chosen[1], since=since
                    )
                )
        session.commit()
    return live_server


def _grant(state: Any, facility_id: int, username: str, role: Role) -> None:
    with state.sessions() as session:
        user = users_service.create_user(
            session, state.settings, state.clock, state.hasher, "root", username=username, password=PASSWORD
        )
        session.add(
            RoleGrant(
                user_id=user.id,
                role=role.value,
                facility_id=facility_id,
                status="active",
                created_at=state.clock.now(),
            )
        )
        session.commit()


def _login(page: Any, username: str, target: str = "/ui/") -> None:
    login(page, username)
    if target != "/ui/":
        page.goto(target)
    expect(page.locator("[data-pump]")).to_have_count(EXTRA_PUMPS + 2)


def _outside_viewport(page: Any) -> list[str]:
    return list(
        page.evaluate(
            """() => Array.from(document.querySelectorAll('[data-pump]')).filter(t => {
                 const r = t.getBoundingClientRect();
                 return r.top < 0 || r.bottom > innerHeight || r.left < 0 || r.right > innerWidth;
               }).map(t => t.getAttribute('data-pump'))"""
        )
    )


def _clipped_cells(page: Any) -> list[str]:
    return list(
        page.evaluate(
            """() => Array.from(document.querySelectorAll('[data-pump] td')).filter(c => {
                 if (c.offsetParent === null || c.classList.contains('drug')) { return false; }
                 const cell = c.getBoundingClientRect();
                 const tile = c.closest('[data-pump]').getBoundingClientRect();
                 const cut = c.scrollWidth > c.clientWidth + 1;
                 return cut || cell.right > tile.right || cell.bottom > tile.bottom;
               }).map(c => c.closest('[data-pump]').getAttribute('data-pump') + ':' + c.textContent.trim())"""
        )
    )


def test_the_wall_screen_shows_36_pumps_without_scrolling_alarming_first(
    new_page: Any, station: LiveServer
) -> None:
    page = new_page(WALL)
    _login(page, "nina", "/ui/?wall=true")
    assert _outside_viewport(page) == []
    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight")
    serials = page.locator("[data-pump]").evaluate_all("ts => ts.map(t => t.getAttribute('data-pump'))")
    assert serials[:3] == ["ST-07", "ST-21", "ST-30"], "high, then medium, then low alarms lead"
    states = page.locator("[data-pump]").evaluate_all("ts => ts.map(t => t.getAttribute('data-state'))")
    assert states == sorted(states, key=["alarming", "running", "idle", "offline"].index)
    high = page.locator('[data-pump="ST-07"]')
    expect(high).to_have_class(re.compile(r"\bprio-tile-high\b"))
    expect(high.locator("li.alarm").first).to_have_text("!!! HIGH · occlusion.downstream A")
    expect(page.locator('[data-pump="ST-21"] li.alarm').first).to_have_text("!! MEDIUM · therapy.duplicate A")
    expect(page.locator('[data-pump="ST-30"] li.alarm').first).to_have_text("! LOW · infusion.near_end A")
    tints = [
        page.locator(f'[data-pump="{s}"]').evaluate("t => getComputedStyle(t).backgroundColor")
        for s in ALARMS
    ]
    assert len(set(tints)) == 2 and "rgb(255, 255, 255)" not in tints, "each priority tints its whole tile"
    expect(page.locator("header.top")).to_be_hidden()
    shot(page, "station-wall-1920x1080", full_page=False)
    page.goto("/ui/")
    expect(page.locator("[data-pump]")).to_have_count(EXTRA_PUMPS + 2)
    assert _outside_viewport(page) == [], "36 pumps fit with the navigation shown too"
    shot(page, "station-nurse-1920x1080", full_page=False)


def test_a_laptop_shows_three_channel_tiles_unclipped_in_h_mm(new_page: Any, station: LiveServer) -> None:
    page = new_page(LAPTOP)
    _login(page, "nina")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "no sideways scrolling"
    assert _clipped_cells(page) == []
    tile = page.locator('[data-pump="ST-00"]')
    expect(tile.locator('tr[data-channel="A"] [data-field=drug]')).to_have_text("norepinephrine")
    expect(tile.locator('tr[data-channel="A"] [data-field=dose]')).to_have_text("0.125 mcg/kg/min")
    expect(tile.locator('tr[data-channel="A"] [data-field=rate]')).to_have_text("7.5")
    expect(tile.locator('tr[data-channel="C"] [data-field=rate]')).to_have_text("25.0")
    # The server runs the reported 240 mL and 600.5 min down to now: one decimal (the VTBI resolution), h:mm.
    remaining = tile.locator('tr[data-channel="A"] [data-field=remaining]')
    expect(remaining).to_have_text(re.compile(r"^\d+\.\d$"))
    assert 230 < float(remaining.inner_text()) <= 240
    time_left = tile.locator('tr[data-channel="A"] [data-field=time]')
    expect(time_left).to_have_text(re.compile(r"^\d+:[0-5]\d$"))
    hours, minutes = (int(part) for part in time_left.inner_text().split(":"))
    assert 570 <= hours * 60 + minutes <= 600
    expect(tile.locator("[data-field=battery]")).to_have_text("battery 90 %")
    expect(tile.locator(".where")).to_have_text("Bed 1, room 1")
    shot(page, "station-nurse-1366x768", full_page=False)


def test_time_left_counts_down_in_the_browser_between_updates(new_page: Any, station: LiveServer) -> None:
    page = new_page(LAPTOP)
    _login(page, "nina")
    # The stream's starting views are shown (they set the cell's time base again): edit it after them.
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    cell = page.locator('[data-pump="ST-00"] tr[data-channel="B"] [data-field=time]')
    shown = cell.inner_text()
    hours, minutes = (int(part) for part in shown.split(":"))
    # As if the server's value had been reported 125 minutes earlier: the script runs it down by itself.
    cell.evaluate("c => c.setAttribute('data-at', String(Number(c.getAttribute('data-at')) - 125 * 60000))")
    left = hours * 60 + minutes - 125
    expect(cell).to_have_text(
        re.compile(rf"^{left // 60}:{left % 60:02d}$|^{(left - 1) // 60}:{(left - 1) % 60:02d}$")
    )


def test_a_live_alarm_recolours_and_reorders_and_filters_stay_in_the_url(
    new_page: Any, station: LiveServer
) -> None:
    page = new_page(LAPTOP)
    _login(page, "nina")
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    expect(page.locator("#count-alarming")).to_have_text("3")
    # The live update is the server's view of the pump (as ingest publishes it): the script only renders it.
    oldest = station.state.clock.now() - timedelta(days=1)
    view = publish_view(station, "ST-33", [(AlarmId.AIR_IN_LINE.value, "B", "high", oldest)])
    tile = cast(dict[str, str], view["tile"])
    first = page.locator("[data-pump]").first
    expect(first).to_have_attribute("data-pump", "ST-33")
    expect(first).to_have_attribute("data-sort", tile["sort_key"])
    expect(first).to_have_class(re.compile(r"\bprio-tile-high\b"))
    expect(first.locator("li.alarm").first).to_have_text("!!! HIGH · air_in_line.single B")
    expect(page.locator("#count-alarming")).to_have_text("4")
    shot(page, "station-live-high-1366x768", full_page=False)
    live_order = _serials(page)
    page.reload()
    expect(page.locator("#count-alarming")).to_have_text("4")
    assert _serials(page) == live_order, "the first render orders the tiles as the live update did"
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    # A medium alarm newer than ST-21's: after the older medium, before the low one, in the medium colour.
    publish_view(
        station, "ST-33", [(AlarmId.DUPLICATE_THERAPY.value, "A", "medium", station.state.clock.now())]
    )
    expect(page.locator("[data-pump]").nth(2)).to_have_attribute("data-pump", "ST-33")
    assert _serials(page)[:4] == ["ST-07", "ST-21", "ST-33", "ST-30"]
    moved = page.locator('[data-pump="ST-33"]')
    expect(moved).to_have_class(re.compile(r"\bprio-tile-medium\b"))
    expect(moved).not_to_have_class(re.compile(r"\bprio-tile-high\b"))
    tint = moved.evaluate("t => getComputedStyle(t).backgroundColor")
    assert tint == page.locator('[data-pump="ST-21"]').evaluate("t => getComputedStyle(t).backgroundColor")
    publish_view(station, "ST-33", [])
    expect(page.locator("#count-alarming")).to_have_text("3")
    expect(page.locator('[data-pump="ST-33"]')).to_have_attribute("data-state", "running")
    page.reload()
    expect(page.locator("#count-alarming")).to_have_text("3")
    page.select_option("select[name=state]", "alarming")
    page.wait_for_url(re.compile(r"state=alarming"))
    expect(page.locator("[data-pump]:visible")).to_have_count(3)
    page.select_option("select[name=care_area]", "ADULT_ICU")
    page.wait_for_url(re.compile(r"care_area=ADULT_ICU.*state=alarming|state=alarming.*care_area=ADULT_ICU"))
    expect(page.locator("[data-pump]:visible")).to_have_count(2)
    shot(page, "station-filter-1366x768", full_page=False)


def _serials(page: Any) -> list[str]:
    return list(page.locator("[data-pump]").evaluate_all("ts => ts.map(t => t.getAttribute('data-pump'))"))


def test_a_viewers_wall_screen_is_right_on_first_render(new_page: Any, station: LiveServer) -> None:
    page = new_page(WALL)
    page.route("**/ui/stream", lambda route: route.abort())
    _login(page, "vera", "/ui/?wall=true")
    # No live message can arrive (the stream is blocked): what shows is the first render alone.
    expect(page.locator("#count-alarming")).to_have_text("3")
    expect(page.locator("[data-pump].alarming")).to_have_count(3)
    expect(page.locator('[data-pump="ST-07"]')).to_have_class(re.compile(r"\bprio-tile-high\b"))
    expect(page.locator('[data-pump="ST-07"] [data-field=patient]')).not_to_contain_text("SIM")
    assert _outside_viewport(page) == []
    shot(page, "station-viewer-wall-1920x1080", full_page=False)


def test_filtered_station_follows_live_updates_without_a_reload(new_page: Any, station: LiveServer) -> None:
    page = new_page(LAPTOP)
    login(page, "nina")
    page.goto("/ui/?care_area=ADULT_ICU&state=alarming")
    visible = page.locator("[data-pump]:visible")
    expect(visible).to_have_count(2)
    assert _serials_visible(page) == ["ST-07", "ST-21"]
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    oldest = station.state.clock.now() - timedelta(days=1)
    # ST-00 is in PEDIATRICS: its alarm is outside the care-area filter and never shows here.
    publish_view(station, "ST-00", [(AlarmId.AIR_IN_LINE.value, "A", "high", oldest)])
    # ST-33 is in ADULT_ICU: it starts alarming, so it enters the "alarming" filter live, first in line.
    publish_view(station, "ST-33", [(AlarmId.AIR_IN_LINE.value, "B", "high", oldest)])
    expect(visible.first).to_have_attribute("data-pump", "ST-33")
    expect(visible).to_have_count(3)
    assert _serials_visible(page) == ["ST-33", "ST-07", "ST-21"], "the pump outside the care area stays out"
    expect(page.locator("#count-shown")).to_have_text("3")
    # The alarm ends: ST-33 leaves the filter live.
    publish_view(station, "ST-33", [])
    expect(page.locator('[data-pump="ST-33"]')).to_be_hidden()
    expect(visible).to_have_count(2)
    expect(page.locator("#count-shown")).to_have_text("2")
    publish_view(station, "ST-00", [])


def _serials_visible(page: Any) -> list[str]:
    return list(
        page.locator("[data-pump]:visible").evaluate_all("ts => ts.map(t => t.getAttribute('data-pump'))")
    )
