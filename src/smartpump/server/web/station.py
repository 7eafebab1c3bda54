"""The central station's page rules: the fleet's order and the state filter (from ``services.tile_look``,
shared with the live view), and times and flows for reading (h:mm, the pump model's resolution)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Protocol, TypeVar

from smartpump.errors import PumpError
from smartpump.pump import capabilities
from smartpump.server.errors import InvalidInputError
from smartpump.server.services.tile_look import TileLook, TileState, tile_look
from smartpump.server.web.display import NOTHING, at_resolution, significant


class StationTile(Protocol):
    """What the station's rules read of a tile."""

    @property
    def serial(self) -> str: ...
    @property
    def offline(self) -> bool: ...
    @property
    def alarms(self) -> list[dict[str, Any]]: ...
    @property
    def channels(self) -> Sequence[Any]: ...


_T = TypeVar("_T", bound=StationTile)


def look(tile: StationTile) -> TileLook:
    """The tile's look (``services.tile_look``), as the live view computes it too."""
    return tile_look(
        tile.serial,
        tile.alarms,
        offline=tile.offline,
        channel_states=(channel.state for channel in tile.channels),
    )


def station_order(tiles: Iterable[_T]) -> list[_T]:
    """The tiles in the station's order (``TileLook.sort_key``)."""
    return sorted(tiles, key=lambda tile: look(tile).sort_key)


def parse_state(text: str | None) -> TileState | None:
    """The state filter from the URL: empty means every state; anything else unknown is refused."""
    if not text:
        return None
    try:
        return TileState(text)
    except ValueError:
        known = ", ".join(s.value for s in TileState)
        raise InvalidInputError(f"unknown state {text!r} (known: {known})", code="ui.fleet_state") from None


def hours_minutes(minutes: Decimal | None) -> str:
    """Minutes as h:mm, whole minutes rounded down so the time left is never overstated
    (1366.2 -> "22:46", 0.6 -> "0:00"); "—" for None; a negative time is refused."""
    if minutes is None:
        return NOTHING
    if not minutes.is_finite() or minutes < 0:
        raise ValueError(f"a time left must be a finite non-negative number of minutes, got {minutes}")
    whole = int(minutes.to_integral_value(rounding=ROUND_FLOOR))
    return f"{whole // 60}:{whole % 60:02d}"


def rate_text(model: str, rate_ml_per_h: Decimal | None) -> str:
    """A rate at the model's programming resolution for that rate ("13.0", "150"); 3 significant digits
    for an unknown model."""
    if rate_ml_per_h is None:
        return NOTHING
    try:
        caps = capabilities(model)
    except PumpError:
        return significant(rate_ml_per_h)
    return at_resolution(rate_ml_per_h, caps.resolution_at(rate_ml_per_h))


def volume_text(model: str, volume_ml: Decimal | None) -> str:
    """A volume at the model's VTBI resolution ("250.0"); 3 significant digits for an unknown model."""
    if volume_ml is None:
        return NOTHING
    try:
        caps = capabilities(model)
    except PumpError:
        return significant(volume_ml)
    return at_resolution(volume_ml, caps.vtbi_resolution_ml)
