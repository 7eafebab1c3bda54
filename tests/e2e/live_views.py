"""Live updates as the server sends them: set a pump's active alarms, link or battery in the fleet view's
tables, then publish ``fleet_view.live_view`` of it, the message ingest publishes after a change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select

from smartpump.server.db.models import Pump
from smartpump.server.db.models_fleet_ops import PumpLink
from smartpump.server.db.models_fleet_view import ActiveAlarm
from smartpump.server.services import fleet_view
from tests.e2e.conftest import LiveServer

Shown = tuple[str, str | None, str, datetime]
"""One alarm a pump shows: alarm id, channel (None: the whole pump), priority, since."""


def publish_view(
    server: LiveServer,
    serial: str,
    alarms: Sequence[Shown] = (),
    *,
    battery_percent: int | None = None,
    online: bool | None = None,
) -> dict[str, object]:
    """Replace the pump's active alarms (and battery, link when given), publish its view; return the view."""
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
    state.live.publish(server.facility_id, "pump.view", view)
    return view
