"""Simulated pumps that talk to a server over a real transport: the demo's fleet and `smartpump fleet`.

The hospital workload (``sim.workload``) drives real ``Pump`` objects in virtual time paced to the wall
clock (``sim.environment`` wall mode, ``speed`` virtual seconds per wall second). Every pump event goes
into the pump's durable outbox and out through its ``Uplink``; verified commands are routed to the pump:
a library or a configuration is installed (each activates when every channel is idle), an offered program
waits on the channel for the nurse's confirmation, a software package is verified (a downgrade refused)
and activates, like a library, only when every channel is idle, and a trust list replaces the pump's
trusted keys at once (each pump is provisioned with ``trust`` and keeps its own from then on). Refusals
are logged by the pump (``command.refused``; ``library.rejected``, ``configuration.rejected``,
``software.rejected`` and ``trust.rejected`` for the documents it verifies itself). Command validity is
checked against the wall clock, because the virtual clock runs ``speed`` times faster.

Each pump sends its status heartbeat (``transport.heartbeat``) after every ``advance`` in which it logged
an event, and at least every ``heartbeat_interval_s`` of its own clock.

With ``history_s`` the pumps' clock starts that long before ``start`` (default: now): the first
``advance`` plays that history at once, then the fleet follows the wall clock. At ``speed`` 1 every
event's time is then the pump's own clock and never ahead of the server's (the demo runs so).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from smartpump.clock import ManualClock, WallClock
from smartpump.ders.program import InfusionProgram
from smartpump.errors import PumpError, SmartpumpError
from smartpump.library.keys import TrustStore
from smartpump.library.model import DrugLibrary
from smartpump.pump.device import DeclineReason, OverrideReason, Pump
from smartpump.pump.events import PumpEvent
from smartpump.pump.patient import AssociationSource, identity_from
from smartpump.pump.software import SoftwareSlot
from smartpump.pump.status import PumpStatus
from smartpump.sim.environment import Environment, WallPacing
from smartpump.sim.fleet import Fleet
from smartpump.sim.workload import HospitalWorkload
from smartpump.transport.base import Transport
from smartpump.transport.commands import (
    ASSOCIATE_PATIENT,
    INSTALL_CONFIGURATION,
    INSTALL_LIBRARY,
    INSTALL_SOFTWARE,
    INSTALL_TRUST,
    OFFER_PROGRAM,
    Command,
    package_document_of,
    signed_configuration_of,
    signed_library_of,
    signed_trust_list_of,
)
from smartpump.transport.heartbeat import heartbeat_message, heartbeat_of_status
from smartpump.transport.offers import OfferKind, ProgramOffer, program_offer_of
from smartpump.transport.outbox import Outbox
from smartpump.transport.uplink import CommandPolicy, CommandRefusal, Uplink

if TYPE_CHECKING:
    from smartpump.server.workers import InProcessLink

logger = logging.getLogger("smartpump.demo.fleet")

DEFAULT_HEARTBEAT_S: Final = 30
"""Seconds of a pump's clock between two heartbeats when nothing changes (well inside ``offline_after_s``)."""
SELF_LOGGED: Final = frozenset({INSTALL_LIBRARY, INSTALL_CONFIGURATION, INSTALL_SOFTWARE, INSTALL_TRUST})
"""Commands whose refusal the pump logs itself (``*.rejected``), so no ``command.refused`` is added."""


class SimFleet:
    """Simulated pumps with their outboxes and uplinks; act on a pump only while holding ``lock``."""

    def __init__(
        self,
        *,
        library: DrugLibrary,
        pumps: int,
        seed: int,
        speed: float,
        trust: TrustStore,
        transport_for: Callable[[str], Transport],
        link: InProcessLink | None = None,
        outbox_dir: Path | None = None,
        hospital_id: str | None = None,
        start: datetime | None = None,
        history_s: float = 0.0,
        batch_size: int = 200,
        ack_timeout_s: float = 10.0,
        heartbeat_interval_s: int = DEFAULT_HEARTBEAT_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.lock = link.lock if link is not None else threading.RLock()
        self.library = library
        self.hospital_id = hospital_id if hospital_id is not None else library.hospital_id
        self._transport_for = transport_for
        self._outbox_dir = outbox_dir
        self._batch_size = batch_size
        self._ack_timeout_s = ack_timeout_s
        self._monotonic = monotonic
        self._wall = WallClock()
        self._uplinks: dict[str, Uplink] = {}
        self._held_offers: dict[tuple[str, str], ProgramOffer] = {}
        self._ordered: dict[tuple[str, str], ProgramOffer] = {}
        self.heartbeat_interval_s = heartbeat_interval_s
        self._heartbeats: dict[str, tuple[int, float]] = {}
        self._transports: dict[str, Transport] = {}
        self.speed = speed
        if history_s < 0:
            raise ValueError(f"history_s must not be negative, got {history_s}")
        now = start if start is not None else datetime.now(UTC)
        clock = ManualClock(now - timedelta(seconds=history_s))
        self.env = Environment(clock, pacing=WallPacing(speed=speed, sleep=time.sleep, monotonic=monotonic))
        self.fleet = Fleet(self.env, library, trust=trust)
        with self.lock:
            self.fleet.subscribe(self._on_event)
            self.workload = HospitalWorkload(self.fleet, pumps=pumps, seed=seed)
            self.workload.start()
            assert self.env.pacing is not None
            self.env.pacing.anchor(self.env.now_s + history_s)
            self._origin = (monotonic(), self.env.now_s + history_s)

    # ----------------------------------------------------------------- the contract for the UI

    def serials(self) -> list[str]:
        """Every simulated pump's serial."""
        return sorted(self.fleet.pumps)

    def pump(self, serial: str) -> Pump:
        """One simulated pump (hold ``lock`` while acting on it)."""
        return self.fleet.pumps[serial]

    def uplink(self, serial: str) -> Uplink:
        """The uplink of one pump."""
        return self._uplink(serial)

    def act(self, serial: str, action: Callable[[Pump], object]) -> object:
        """Run one action on a pump under the lock and hand its events to the uplink."""
        with self.lock:
            return self.fleet.act(serial, action)

    def runner(self) -> SimFleetRunner:
        """The background service that advances this fleet with the wall clock while the app runs."""
        return SimFleetRunner(self)

    def software(self, serial: str) -> SoftwareSlot:
        """The software a simulated pump runs and the version waiting to activate (hold ``lock``)."""
        return self.pump(serial).software

    # ----------------------------------------------------------------- running

    def advance(self) -> int:
        """Play virtual time up to the wall clock (times the speed), then move events and acks."""
        with self.lock:
            wall_origin, virtual_origin = self._origin
            target = virtual_origin + (self._monotonic() - wall_origin) * self.speed
            before = self.env.actions_run
            self.env.run(until_s=max(target, self.env.now_s))
            statuses = {serial: self.fleet.act(serial, Pump.status) for serial in self.fleet.pumps}
            for uplink in self._uplinks.values():
                uplink.step()
            for status in statuses.values():
                self._heartbeat(status)
            if self.link is not None:
                self.link.deliver()
            return self.env.actions_run - before

    def backlog(self) -> int:
        """Events kept in the outboxes and not yet acknowledged."""
        with self.lock:
            return sum(u.backlog for u in self._uplinks.values())

    def close(self) -> None:
        """Disconnect every pump (the outboxes keep what was not acknowledged)."""
        with self.lock:
            transports = list(self._transports.values())
        for transport in transports:
            transport.close()

    def heartbeat_now(self) -> None:
        """Send every pump's heartbeat at once (after its events), whether due or not."""
        with self.lock:
            for serial in self.fleet.pumps:
                status = self.fleet.act(serial, Pump.status)
                self._uplink(serial).step()
                self._heartbeat(status, force=True)
            if self.link is not None:
                self.link.deliver()

    # ----------------------------------------------------------------- pump side of the link

    def _heartbeat(self, status: PumpStatus, *, force: bool = False) -> None:
        """Send the pump's heartbeat when it logged an event since the last one, or its interval is up."""
        last_seq, last_s = self._heartbeats.get(status.pump, (-1, float("-inf")))
        now_s = self.env.now_s
        if force or status.last_seq != last_seq or now_s - last_s >= self.heartbeat_interval_s:
            envelope = heartbeat_message(heartbeat_of_status(status, interval_s=self.heartbeat_interval_s))
            if self._uplink(status.pump).heartbeat(envelope):
                self._heartbeats[status.pump] = (status.last_seq, now_s)

    def _uplink(self, serial: str) -> Uplink:
        uplink = self._uplinks.get(serial)
        if uplink is None:
            path: Path | str = ":memory:"
            if self._outbox_dir is not None:
                self._outbox_dir.mkdir(parents=True, exist_ok=True)
                path = self._outbox_dir / f"{serial}.outbox.sqlite"
            transport = self._transports[serial] = self._transport_for(serial)
            uplink = Uplink(
                outbox=Outbox(path, pump=serial),
                transport=transport,
                clock=self._wall,
                batch_size=self._batch_size,
                ack_timeout_s=self._ack_timeout_s,
                commands=CommandPolicy(
                    trust=lambda: self.pump(serial).trust,
                    on_command=lambda command: self._on_command(serial, command),
                    on_refused=lambda refusal: self._on_refused(serial, refusal),
                ),
            )
            self._uplinks[serial] = uplink
            uplink.start()
        return uplink

    def _on_event(self, pump: Pump, event: PumpEvent) -> None:
        self._uplink(pump.id).take([event])

    def _on_refused(self, serial: str, refusal: CommandRefusal) -> None:
        self.act(
            serial,
            lambda p: p.record_command_refused(
                command=refusal.command, nonce=refusal.nonce, code=refusal.code, reason=refusal.reason
            ),
        )

    def _on_command(self, serial: str, command: Command) -> None:
        try:
            if command.command == INSTALL_LIBRARY:
                signed = signed_library_of(command)
                self.act(
                    serial,
                    lambda p: p.install_library(signed, p.trust, hospital_id=self.hospital_id),
                )
            elif command.command == INSTALL_CONFIGURATION:
                configuration = signed_configuration_of(command)
                self.act(
                    serial,
                    lambda p: p.install_configuration(configuration, p.trust, hospital_id=self.hospital_id),
                )
            elif command.command == ASSOCIATE_PATIENT:
                identity = identity_from(command.args)
                self.act(serial, lambda p: p.associate_patient(identity, AssociationSource.SERVER))
            elif command.command == OFFER_PROGRAM:
                self._offer(serial, command)
            elif command.command == INSTALL_SOFTWARE:
                document = package_document_of(command)
                self.act(serial, lambda p: p.install_software(document, p.trust))
            elif command.command == INSTALL_TRUST:
                trust_list = signed_trust_list_of(command)
                self.act(serial, lambda p: p.install_trust_list(trust_list))
            else:
                raise PumpError(f"this pump does not take {command.command!r}", code="command.unsupported")
        except SmartpumpError as error:
            if command.command not in SELF_LOGGED:
                self._on_refused(
                    serial,
                    CommandRefusal(
                        command=command.command, nonce=command.nonce, code=error.code, reason=error.message
                    ),
                )
            raise

    def _offer(self, serial: str, command: Command) -> None:
        """Take an auto-programmed offer for the pump's own patient: a new, PCA or multistep program or a
        titration is held by the pump (the nurse confirms, then starts); a bolus, loading dose or piggyback
        on a running channel is held here until the nurse confirms it (``confirm_offer``)."""
        offer = program_offer_of(command)
        pump = self.pump(serial)
        if pump.patient_id is None or offer.patient_id != pump.patient_id:
            raise PumpError(
                "the order is for another patient than this pump's", code="command.patient_mismatch"
            )
        cid = offer.channel
        running = pump.channel(cid).therapy is not None
        if offer.kind.needs_running and not running:
            raise PumpError(
                f"channel {cid} runs no infusion for this {offer.kind} order", code="command.not_running"
            )
        if not offer.kind.needs_running and running:
            raise PumpError(f"channel {cid} is busy", code="command.channel_busy")
        if offer.kind.overlay:
            if (serial, cid) in self._held_offers:
                raise PumpError(f"channel {cid} already holds an offer", code="pump.program_pending")
            self._held_offers[(serial, cid)] = offer
            return
        self.act(serial, lambda p: p.program(cid, offer.program, steps=offer.steps, auto_programmed=True))
        self._ordered[(serial, cid)] = offer

    def order_behind(self, serial: str, cid: str, program: InfusionProgram) -> ProgramOffer | None:
        """The EHR order the auto-programmed ``program`` held on a channel came from (None when the last
        order offered there was another program: the panel never names a wrong order)."""
        with self.lock:
            ordered = self._ordered.get((serial, cid))
        return ordered if ordered is not None and ordered.program == program else None

    def held_offer(self, serial: str, cid: str) -> ProgramOffer | None:
        """The bolus, loading-dose or piggyback offer waiting for the nurse on a channel, if any."""
        with self.lock:
            return self._held_offers.get((serial, cid))

    def confirm_offer(self, serial: str, cid: str, *, override: OverrideReason | None = None) -> None:
        """The nurse confirms a held bolus, loading dose or piggyback: the pump DERS-checks and starts it.

        Raises:
            PumpError: ``pump.no_pending_program`` when nothing is held, or the pump's own refusal (the offer
                stays held, so the nurse can answer it again: with an override reason, or a decline).
        """
        with self.lock:
            held = self._held_offers.get((serial, cid))
            if held is None:
                raise PumpError("no offer is held on this channel", code="pump.no_pending_program")
            if held.kind is OfferKind.SECONDARY:
                self.act(serial, lambda p: p.secondary(cid, held.program, override=override))
            else:
                self.act(serial, lambda p: p.bolus(cid, held.program, override=override))
            del self._held_offers[(serial, cid)]

    def decline_offer(
        self, serial: str, cid: str, *, reason: DeclineReason | str = DeclineReason.OTHER
    ) -> None:
        """The nurse declines a held bolus, loading dose or piggyback offer with a coded reason (nothing is
        delivered; the pump logs program.cancelled, which tells the EHR)."""
        with self.lock:
            held = self._held_offers.get((serial, cid))
            if held is None:
                raise PumpError("no offer is held on this channel", code="pump.no_pending_program")
            entry_id = held.program.entry_id or ""
            self.act(serial, lambda p: p.decline_offer(cid, entry_id=entry_id, reason=reason))
            del self._held_offers[(serial, cid)]


class SimFleetRunner:
    """The background service that advances an in-process ``SimFleet`` with the wall clock."""

    def __init__(self, fleet: SimFleet, *, interval_s: float = 0.25) -> None:
        self.fleet = fleet
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self, state: object) -> None:
        """Start advancing the fleet in a thread."""
        self._thread = threading.Thread(target=self._run, name="smartpump-sim-fleet", daemon=True)
        self._thread.start()
        await asyncio.sleep(0)

    async def stop(self) -> None:
        """Stop advancing and disconnect the pumps."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.fleet.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.fleet.advance()
            except Exception:
                logger.exception("the simulated fleet failed to advance")
