"""Live updates as the server sends them: set a pump's active alarms, link or battery in the fleet view's
tables, then publish ``fleet_view.live_view`` of it, the message ingest publishes after a change.

Only painted pumps (``painted_pump``) are painted so: a simulated pump's heartbeat carries its own alarms
and link, and the server rightly replaces a painted view with it at any moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import delete, select

from smartpump.server.db.models import Pump
from smartpump.server.db.models_fleet_ops import PumpLink
from smartpump.server.db.models_fleet_view import ActiveAlarm
from smartpump.server.services import fleet_view
from smartpump.server.services.fleet import ChannelReport, record_status
from tests.e2e.conftest import LiveServer, api_client, bearer, register_pump

ALARMING_COUNTED: Final = (
    "() => document.querySelector('#count-alarming')?.textContent"
    " === String(document.querySelectorAll('[data-pump].alarming').length)"
)
"""A page function, true when the station's alarming count is the number of alarming tiles."""

Shown = tuple[str, str | None, str, datetime]
"""One alarm a pump shows: alarm id, channel (None: the whole pump), priority, since."""


def painted_pump(server: LiveServer, serial: str, *, channels: str = "AB") -> str:
    """Register (once) a pump no simulated pump speaks for, heard now with idle ``channels``; its serial."""
    state = server.state
    with state.sessions() as session:
        known = session.scalars(select(Pump.id).where(Pump.serial == serial)).first() is not None
    if not known:
        with api_client(server.url) as http:
            register_pump(http, bearer(http, "bea"), server.facility_id, serial, location=f"Bed {serial}")
    with state.sessions() as session:
        idle = tuple(ChannelReport(channel=cid, state="idle") for cid in channels)
        record_status(session, state.clock, serial, seen_at=state.clock.now(), channels=idle)
        session.commit()
    return serial


def publish_view(
    server: LiveServer,
    serial: str,
    alarms: Sequence[Shown] = (),
    *,
    battery_percent: int | None = None,
    online: bool | None = None,
    publish: bool = True,
) -> dict[str, object]:
    """Replace the pump's active alarms (and battery, link when given), publish its view unless not to
    (a change whose message was lost); return the view."""
    if serial in server.serials:
        raise AssertionError(f"{serial} is a simulated pump: its next heartbeat replaces a painted view")
    state = server.state
    now = state.clock.now()
    with state.sessions() as session:
        pump = session.scalars(select(Pump).where(Pump.serial == serial)).one()
        session.execute(delete(ActiveAlarm).where(ActiveAlarm.pump_id == pump.id))
        for alarm, channel, priority, since in alarms:
            session.add(
                ActiveAlarm(
                    pump_id=pump.id,
                    channel=channel or fleet_view.PUMP_WIDE,
                    alarm=alarm,
                    priority=priority,
                    since=since,
                )
            )
        if battery_percent is not None:
            pump.battery_percent = battery_percent
        if online is not None:
            link = session.get(PumpLink, pump.id)
            if link is None:
                link = PumpLink(pump_id=pump.id, online=online, max_seq=0, skewed_events=0)
                session.add(link)
            link.online, link.status_changed_at = online, now
        session.commit()
        view = fleet_view.live_view(session, pump, now, state.settings.offline_after_s)
    if publish:
        state.live.publish(server.facility_id, "pump.view", view)
    return view
