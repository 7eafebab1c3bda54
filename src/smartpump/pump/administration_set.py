"""The administration (tubing) set loaded on a channel: type, lot, install time, change-due reminder.

The change interval comes from the care area (``DeviceDefaults.tubing_change_h``), an entry advisory
(e.g. 12 h for lipid or blood tubing) or the default of 96 h; the line label ties channel to line.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from smartpump.errors import PumpError

DEFAULT_CHANGE_H: Final = 96


@dataclass(frozen=True, slots=True, kw_only=True)
class AdministrationSet:
    """A loaded set: type, lot, when it was installed (monotonic s), change interval, line label."""

    set_type: str
    lot: str
    installed_at_s: Decimal
    change_due_h: int = DEFAULT_CHANGE_H
    line_label: str | None = None

    def __post_init__(self) -> None:
        if not self.set_type.strip() or not self.lot.strip():
            raise PumpError("an administration set needs a type and a lot number", code="pump.set_invalid")
        if not 1 <= self.change_due_h <= 168:
            raise PumpError(
                f"set change interval must be 1-168 h, got {self.change_due_h}", code="pump.set_interval"
            )

    @property
    def change_due_at_s(self) -> Decimal:
        """Monotonic time at which the set must be changed."""
        return self.installed_at_s + Decimal(self.change_due_h) * 3600
