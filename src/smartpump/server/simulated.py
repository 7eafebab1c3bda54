"""What the server asks of simulated pumps it runs beside itself (the demo's fleet, ``smartpump.demo``): the
front panel acts on them, the app advances them while it runs; the server never imports the demo."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from smartpump.ders.program import InfusionProgram
from smartpump.pump.device import DeclineReason, OverrideReason, Pump
from smartpump.transport.offers import ProgramOffer

if TYPE_CHECKING:
    from smartpump.server.workers import BackgroundService, InProcessLink


class SimulatedFleet(Protocol):
    """Simulated pumps linked to this server in-process; act on a pump only while holding ``lock``."""

    @property
    def lock(self) -> threading.RLock:
        """The lock every action on a pump (and the in-process link) holds."""
        ...

    @property
    def link(self) -> InProcessLink | None:
        """The in-process link the pumps talk over (None when they use MQTT)."""
        ...

    def serials(self) -> list[str]:
        """Every simulated pump's serial."""
        ...

    def pump(self, serial: str) -> Pump:
        """One simulated pump (hold ``lock`` while acting on it)."""
        ...

    def act(self, serial: str, action: Callable[[Pump], object]) -> object:
        """Run one action on a pump under the lock and hand its events to its uplink."""
        ...

    def order_behind(self, serial: str, cid: str, program: InfusionProgram) -> ProgramOffer | None:
        """The EHR offer the program held on a channel came from, when it is still that program."""
        ...

    def held_offer(self, serial: str, cid: str) -> ProgramOffer | None:
        """The bolus, loading-dose or piggyback offer waiting for the nurse on a channel, if any."""
        ...

    def confirm_offer(self, serial: str, cid: str, *, override: OverrideReason | None = None) -> None:
        """The nurse accepts the held offer: the pump checks and starts it (its refusal is raised)."""
        ...

    def decline_offer(self, serial: str, cid: str, *, reason: DeclineReason | str = ...) -> None:
        """The nurse declines the held offer with a coded reason (nothing is delivered)."""
        ...

    def runner(self) -> BackgroundService:
        """The background service that advances the pumps while the app runs."""
        ...
