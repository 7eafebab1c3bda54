"""Live values read as a reload reads them, in real headless Chromium: the server's live message carries the
tile's own strings beside the exact values, so a dose 1.005 mg/h shows "1.01" (a float in the script
rounded it to "1"), a volume 1.45 mL "1.5" (the float 1.4499... gave "1.4"), a rate 0.50 "0.5", 1250 units/h
"1,250" (thousands grouped) and 1366.2 min "22:46" — first live, then the same after a reload."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from smartpump.server.db.models import ChannelState, Pump
from smartpump.server.services.fleet import ChannelReport, record_status
from tests.e2e.conftest import LiveServer, login, shot
from tests.e2e.live_views import painted_pump, publish_view

pytestmark = pytest.mark.e2e
LAPTOP: Final = {"width": 1366, "height": 768}
SERIAL: Final = "LV-01"
SHOWN: Final = {
    "A": {"dose": "1.01 mg/h", "rate": "0.5", "remaining": "1.5", "time": "22:46"},
    "B": {"dose": "1,250 units/h", "rate": "25.0", "remaining": "240.0", "time": "1:30"},
}


def _report(live_server: LiveServer, channels: dict[str, tuple[ChannelReport, Decimal, Decimal]]) -> None:
    """Store a heartbeat's channels (report, mL left, min left) as ingest would; returns nothing."""
    state = live_server.state
    now = state.clock.now()
    with state.sessions() as session:
        record_status(
            session, state.clock, SERIAL, seen_at=now, channels=tuple(r for r, _, _ in channels.values())
        )
        pump_id = session.scalars(select(Pump.id).where(Pump.serial == SERIAL)).one()
        for row in session.scalars(select(ChannelState).where(ChannelState.pump_id == pump_id)):
            _, row.remaining_ml, row.remaining_min = channels[row.channel]
            row.reported_at = now
        session.commit()


def _expect_shown(page: Any) -> None:
    tile = page.locator(f'[data-pump="{SERIAL}"]')
    for cid, fields in SHOWN.items():
        row = tile.locator(f'tr[data-channel="{cid}"]')
        for field, text in fields.items():
            expect(row.locator(f"[data-field={field}]")).to_have_text(text)


def test_a_live_update_reads_as_the_page_reads_after_a_reload(new_page: Any, live_server: LiveServer) -> None:
    painted_pump(live_server, SERIAL, channels="")
    running = ChannelReport(
        channel="A",
        state="running",
        drug="esmolol",
        dose=Decimal(2),
        dose_unit="mg/h",
        rate_ml_per_h=Decimal(10),
    )
    heparin = ChannelReport(channel="B", state="running", drug="heparin", rate_ml_per_h=Decimal(30))
    _report(
        live_server, {"A": (running, Decimal(100), Decimal(600)), "B": (heparin, Decimal(50), Decimal(100))}
    )
    page = new_page(LAPTOP)
    login(page, "nina")
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    tile = page.locator(f'[data-pump="{SERIAL}"]')
    expect(tile.locator('tr[data-channel="A"] [data-field=dose]')).to_have_text("2 mg/h")

    paused = ChannelReport(
        channel="A",
        state="paused",
        drug="esmolol",
        dose=Decimal("1.005"),
        dose_unit="mg/h",
        rate_ml_per_h=Decimal("0.50"),
    )
    heparin = ChannelReport(
        channel="B",
        state="paused",
        drug="heparin",
        dose=Decimal(1250),
        dose_unit="units/h",
        rate_ml_per_h=Decimal(25),
    )
    _report(
        live_server,
        {"A": (paused, Decimal("1.45"), Decimal("1366.2")), "B": (heparin, Decimal(240), Decimal(90))},
    )
    publish_view(live_server, SERIAL)
    _expect_shown(page)
    shot(page, "station-live-values-1366x768", full_page=False)
    page.reload()
    expect(tile.locator('tr[data-channel="A"] [data-field=state]')).to_have_text("paused")
    _expect_shown(page)
