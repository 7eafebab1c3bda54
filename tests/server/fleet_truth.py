"""The truth check: the server's view of a pump against the pump's own ``PumpStatus``, field by field.

The server is read through the functions the dashboard, the fleet API and the live stream use
(``services.fleet_view``, ``services.presence``); the pump through ``Pump.status``. Values the heartbeat
rounds are compared at its stated resolution (volumes and VTBI 0.001 mL, time 0.1 min, rate 0.0001 mL/h,
floored).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartpump.pump.status import PumpStatus
from smartpump.server.db.models import ChannelState, Pump
from smartpump.server.services import fleet_view

HORIZON_S = 300.0


@dataclass(frozen=True, slots=True)
class Divergence:
    """One field where the server's view differs from the pump's status."""

    pump: str
    field: str
    server: object
    pump_value: object


def _floor(value: Decimal | None, step: str) -> Decimal | None:
    return None if value is None else value.quantize(Decimal(step), rounding=ROUND_FLOOR)


def divergences(
    session: Session, status: PumpStatus, *, offline_after_s: float = HORIZON_S
) -> list[Divergence]:
    """Every difference between the server's view of ``status.pump`` and ``status`` itself."""
    pump = session.scalars(select(Pump).where(Pump.serial == status.pump)).one()
    assert status.clock is not None
    now = status.clock
    found: list[Divergence] = []

    def differ(name: str, server: object, own: object) -> None:
        if server != own:
            found.append(Divergence(status.pump, name, server, own))

    alarms = fleet_view.alarms_of(session, [pump.id])[pump.id]
    differ(
        "alarms",
        sorted((a.alarm, a.channel or "", a.priority) for a in alarms),
        sorted((a.alarm, a.channel or "", a.priority) for a in status.alarms),
    )
    rows = {
        r.channel: r for r in session.scalars(select(ChannelState).where(ChannelState.pump_id == pump.id))
    }
    for cid, own in status.channels.items():
        row = rows.get(cid)
        if row is None:
            differ(f"{cid}.present", None, own.state)
            continue
        differ(f"{cid}.state", row.state, own.state)
        differ(f"{cid}.drug", row.drug, own.drug)
        differ(
            f"{cid}.dose",
            (None if row.dose is None else Decimal(row.dose), row.dose_unit),
            (_floor(own.dose, "1e-12"), own.dose_unit),
        )
        differ(f"{cid}.rate_ml_per_h", row.rate_ml_per_h, _floor(own.rate_ml_per_h, "0.0001"))
        differ(f"{cid}.volume_infused_ml", row.volume_infused_ml, _floor(own.infused_ml, "0.001"))
        differ(f"{cid}.vtbi_ml", row.vtbi_ml, _floor(own.vtbi_ml, "0.001"))
        remaining_ml, remaining_min = fleet_view.left_now(row, now, horizon_s=offline_after_s)
        differ(f"{cid}.remaining_ml", remaining_ml, _floor(own.remaining_ml, "0.001"))
        differ(f"{cid}.remaining_min", remaining_min, _floor(own.remaining_min, "0.1"))
    differ("battery_percent", pump.battery_percent, status.battery_percent)
    differ("library_sha256", pump.library_sha256, status.library_sha256)
    differ("library_version", pump.installed_library_version, status.library_version)
    differ("care_area", pump.care_area, status.care_area)
    differ("configuration_version", pump.configuration_version, status.configuration_version)
    view = fleet_view.views_of(session, [pump.id]).get(pump.id)
    differ("on_ac", None if view is None else view.on_ac, status.on_ac)
    presence = fleet_view.presence_by_pump(session, [pump], now, offline_after_s)[pump.id]
    idle = all(c.state == "idle" for c in status.channels.values())
    differ("presence", presence.value, "idle" if idle else "online")
    return found
