"""The central station: tile state and order, alarm looks and their contrast, the state filter, h:mm and
the pump model's resolution, on the rules and on the rendered dashboard."""

from __future__ import annotations

import random
import re
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest
from sqlalchemy import select

from smartpump.pump import capabilities
from smartpump.server.auth import Role
from smartpump.server.db.models import ChannelState, Pump
from smartpump.server.db.models_fleet_view import ActiveAlarm
from smartpump.server.errors import InvalidInputError
from smartpump.server.services import tile_look
from smartpump.server.services.fleet import ChannelReport, record_status
from smartpump.server.web import station
from smartpump.server.web.pages import ChannelView, PumpTile
from tests.server.conftest import World
from tests.server.test_web_pages import browsers, login

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = ["browsers"]
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def _channel(state: str) -> ChannelView:
    return ChannelView(
        channel="A",
        state=state,
        drug=None,
        dose=None,
        dose_unit=None,
        rate_ml_per_h=None,
        vtbi_ml=None,
        remaining_ml=None,
        remaining_min=None,
    )


def _tile(serial: str, *, offline: bool = False, states: tuple[str, ...] = (), alarms: Any = ()) -> PumpTile:
    return PumpTile(
        serial=serial,
        model="lvp-4",
        facility_id=1,
        care_area=None,
        location=None,
        status="in_service",
        battery_percent=None,
        library_version=None,
        released_version=None,
        presence="offline" if offline else "online",
        offline=offline,
        last_seen=None,
        channels=[_channel(s) for s in states],
        alarms=[
            {"alarm": name, "channel": "A", "priority": priority, "since": T0 + timedelta(minutes=minutes)}
            for name, priority, minutes in alarms
        ],
    )


def test_the_station_lists_alarming_by_priority_then_age_then_running_idle_and_offline() -> None:
    expected = [
        _tile("P-HIGH-OLD", states=("running",), alarms=[("occlusion", "high", 1), ("near_end", "low", 0)]),
        _tile("P-HIGH-NEW", states=("alarm",), alarms=[("air", "high", 5)]),
        _tile("P-SILENT-HIGH", offline=True, alarms=[("battery.depleted", "high", 9)]),
        _tile("P-MEDIUM", states=("running",), alarms=[("therapy.duplicate", "medium", 0)]),
        _tile("P-LOW", states=("idle",), alarms=[("infusion.near_end", "low", 0)]),
        _tile("P-RUN-1", states=("idle", "running")),
        _tile("P-RUN-2", states=("paused",)),
        _tile("P-IDLE", states=("idle", "idle")),
        _tile("P-NO-CHANNEL"),
        _tile("P-OFF", offline=True, states=("running",)),
    ]
    shuffled = expected[:]
    random.Random(17).shuffle(shuffled)
    assert [t.serial for t in station.station_order(shuffled)] == [t.serial for t in expected]
    assert [t.state for t in expected] == ["alarming"] * 5 + ["running"] * 2 + ["idle"] * 2 + ["offline"]


def test_a_tile_is_coloured_and_labelled_by_its_highest_then_oldest_alarm() -> None:
    tile = _tile("P-1", alarms=[("near_end", "low", 0), ("occlusion", "high", 3), ("air", "high", 2)])
    assert tile.top_alarm is not None and tile.top_alarm["alarm"] == "air"
    assert tile_look.alarm_label(tile.top_alarm) == "HIGH · air A"
    assert {p: (look.icon, look.colour) for p, look in tile_look.ALARM_LOOKS.items()} == {
        "high": ("!!!", "red"),
        "medium": ("!!", "yellow"),
        "low": ("!", "cyan"),
    }
    assert len({look.icon for look in tile_look.ALARM_LOOKS.values()}) == 3, "icons tell priorities apart"
    unknown = {"alarm": "door.open", "channel": None, "priority": "bogus"}
    assert tile_look.alarm_label(unknown) == "LOW · door.open"
    assert _tile("P-2").top_alarm is None


@pytest.mark.parametrize(
    ("minutes", "shown"),
    [
        ("1366.2", "22:46"),
        ("0", "0:00"),
        ("0.99", "0:00"),
        ("59.999", "0:59"),
        ("60", "1:00"),
        ("600.5", "10:00"),
    ],
)
def test_time_left_reads_as_hours_and_minutes_rounded_down(minutes: str, shown: str) -> None:
    assert station.hours_minutes(Decimal(minutes)) == shown


def test_time_left_h_mm_never_overstates_and_reads_back() -> None:
    rng = random.Random(5)
    for _ in range(500):
        minutes = Decimal(rng.randrange(0, 10_000_000)) / 1000
        hours, mins = station.hours_minutes(minutes).split(":")
        assert len(mins) == 2 and 0 <= int(mins) < 60
        shown = int(hours) * 60 + int(mins)
        assert shown <= minutes < shown + 1


@pytest.mark.parametrize("bad", [Decimal("-0.1"), Decimal("NaN"), Decimal("Infinity")])
def test_time_left_refuses_a_negative_or_non_finite_time(bad: Decimal) -> None:
    with pytest.raises(ValueError, match="time left"):
        station.hours_minutes(bad)


def test_no_time_left_reads_as_a_dash() -> None:
    assert station.hours_minutes(None) == "—"


def test_rates_and_volumes_follow_the_models_resolution() -> None:
    lvp = capabilities("lvp-4")
    assert lvp.resolution_at(Decimal("13")) == Decimal("0.1")
    assert station.rate_text("lvp-4", Decimal("13")) == "13.0"
    assert station.rate_text("lvp-4", Decimal("150")) == "150"
    assert station.volume_text("lvp-4", Decimal("287.26219")) == "287.3"
    assert station.volume_text("syringe-1", Decimal("1.065")) == "1.07"
    assert station.rate_text("unknown-model", Decimal("13.04999")) == "13"
    assert station.rate_text("lvp-4", None) == station.volume_text("lvp-4", None) == "—"


@pytest.mark.parametrize("text", ["", None])
def test_an_empty_state_filter_shows_every_state(text: str | None) -> None:
    assert station.parse_state(text) is None


def test_the_state_filter_takes_each_state_and_refuses_others() -> None:
    assert [station.parse_state(s.value) for s in tile_look.TileState] == list(tile_look.TileState)
    for bad in ("ALARMING", "silent", "running;", "<b>"):
        with pytest.raises(InvalidInputError) as refused:
            station.parse_state(bad)
        assert refused.value.code == "ui.fleet_state"


def _css() -> str:
    return resources.files("smartpump.server.web").joinpath("static", "app.css").read_text(encoding="utf-8")


def _luminance(hex_colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _contrast(one: str, other: str) -> float:
    high, low = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_station_text_colour_has_at_least_4_5_to_1_on_its_background() -> None:
    css = _css()
    declared = re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6}|#[0-9a-f]{3})\b", css)
    colours = {name: _full(value) for name, value in declared}
    alarm_chip = {
        p: re.search(rf"\.prio-{p} \{{ background: var\(--{p}\); color: (#[0-9a-f]{{3,6}}); \}}", css)
        for p in ("high", "medium", "low")
    }
    pairs = {f"{p} chip": (_full(m.group(1)), colours[p]) for p, m in alarm_chip.items() if m is not None}
    assert len(pairs) == 3, "each priority chip states its text colour on its IEC colour"
    for background in ("st-high-tint", "st-medium-tint", "st-low-tint", "st-offline-bg", "card"):
        for text in ("ink", "muted", "warn-text", "accent", "st-running", "high"):
            pairs[f"{text} on {background}"] = (colours[text], colours[background])
    pairs["offline presence"] = ("#8e1b1b", colours["st-offline-bg"])
    low = {name: round(_contrast(*pair), 2) for name, pair in pairs.items() if _contrast(*pair) < 4.5}
    assert low == {}


def _full(hex_colour: str) -> str:
    return hex_colour if len(hex_colour) == 7 else "#" + "".join(c * 2 for c in hex_colour[1:])


def test_the_contrast_rule_bites() -> None:
    assert round(_contrast(_full("#fff"), "#000000"), 1) == 21.0
    assert _contrast("#26a5c9", "#ffffff") < 4.5, "white on cyan would fail: the low chip uses black"


def _alarm(session: Any, serial: str, alarm: str, priority: str, since: datetime) -> None:
    pump = session.scalars(select(Pump).where(Pump.serial == serial)).one()
    session.add(ActiveAlarm(pump_id=pump.id, channel="A", alarm=alarm, priority=priority, since=since))


def _seen(world: World, session: Any, serial: str, state: str, *, remaining_min: str | None = None) -> None:
    state_ = world.app.state.smartpump
    record_status(
        session,
        state_.clock,
        serial,
        seen_at=state_.clock.now(),
        channels=(ChannelReport(channel="A", state=state, drug="heparin", rate_ml_per_h=Decimal("13")),),
    )
    if remaining_min is not None:
        pump = session.scalars(select(Pump).where(Pump.serial == serial)).one()
        row = session.scalars(select(ChannelState).where(ChannelState.pump_id == pump.id)).one()
        row.remaining_ml, row.remaining_min = Decimal(250), Decimal(remaining_min)
        row.reported_at = state_.clock.now()


def _station(world: World, browsers: list[TestClient]) -> TestClient:
    facility = world.facility()
    biomed = world.as_role(Role.BIOMED, facility, username="bea")
    for serial in ("IDLE-1", "RUN-1", "OFF-1", "LOW-1", "HIGH-1"):
        world.pump(biomed, facility, serial, model="lvp-4")
    world.client.patch("/api/v1/pumps/HIGH-1", headers=biomed, json={"location": "Bed 12, room 4"})
    now = world.app.state.smartpump.clock.now()
    with world.app.state.smartpump.sessions() as session:
        _seen(world, session, "IDLE-1", "idle")
        _seen(world, session, "RUN-1", "running", remaining_min="1366.2")
        _seen(world, session, "LOW-1", "running")
        _seen(world, session, "HIGH-1", "running")
        _alarm(session, "LOW-1", "infusion.near_end", "low", now - timedelta(minutes=30))
        _alarm(session, "HIGH-1", "occlusion.downstream", "high", now)
        session.commit()
    return login(world.app, browsers, "bea")


def test_the_dashboard_renders_order_colour_counts_and_time_left_on_first_load(
    world: World, browsers: list[TestClient]
) -> None:
    page = _station(world, browsers).get("/ui/").text
    assert re.findall(r'data-pump="([^"]+)"', page) == ["HIGH-1", "LOW-1", "RUN-1", "IDLE-1", "OFF-1"]
    high = re.search(r'<article class="([^"]+)" data-pump="HIGH-1"', page)
    assert high is not None and {"alarming", "prio-tile-high", "st-alarming"} <= set(high.group(1).split())
    assert re.search(r'data-pump="HIGH-1"[^>]*data-priority="high"', page)
    banner = '<span class="icon" aria-hidden="true">!!!</span> HIGH · occlusion.downstream A</li>'
    assert banner in page
    assert "Bed 12, room 4" in page
    assert re.search(r'<span id="count-alarming">2</span>', page)
    assert re.search(r'<span id="count-offline">1</span>', page)
    running = page[page.index('data-pump="RUN-1"') : page.index('data-pump="IDLE-1"')]
    time_cell = re.search(r'data-field="time" data-min="([^"]*)" data-at="(\d+)"[^>]*>([^<]*)</td>', running)
    assert time_cell is not None and time_cell.groups()[0::2] == ("1366.2", "22:46")
    assert "1366.2 min" not in page
    assert '<span data-field="rate">13.0</span>' in page


def test_the_state_filter_hides_other_tiles_and_keeps_counts_of_the_whole_scope(
    world: World, browsers: list[TestClient]
) -> None:
    client = _station(world, browsers)
    page = client.get("/ui/", params={"state": "running", "care_area": "icu"}).text
    shown = re.findall(r'data-pump="([^"]+)"[^>]*data-state="[a-z]+"[^>]*?(?<! hidden)>', page)
    hidden = re.findall(r'data-pump="([^"]+)"[^>]*\shidden>', page)
    assert shown == ["RUN-1"]
    assert sorted(hidden) == ["HIGH-1", "IDLE-1", "LOW-1", "OFF-1"]
    assert '<option value="running" selected>' in page
    assert 'data-filter-state="running"' in page
    assert re.search(r'<span id="count-alarming">2</span>', page)


def test_an_unknown_state_filter_is_refused_with_its_code(world: World, browsers: list[TestClient]) -> None:
    response = _station(world, browsers).get("/ui/", params={"state": "bogus"})
    assert response.status_code == 422
    assert "ui.fleet_state" in response.text


def test_the_wall_screen_drops_the_navigation_and_keeps_the_filters(
    world: World, browsers: list[TestClient]
) -> None:
    page = _station(world, browsers).get("/ui/", params={"wall": "true", "state": "alarming"}).text
    assert 'data-wall="true"' in page
    assert '<input type="hidden" name="wall" value="true">' in page
    assert 'href="/ui/?state=alarming&amp;">Leave wall screen' in page
