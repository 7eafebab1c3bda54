"""Helpers for transport tests: a pump's event log in virtual time and a de-duplicating server store."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from smartpump.clock import ManualClock
from smartpump.pump.events import EventLog, EventType, PumpEvent
from smartpump.transport.messages import EventRecord


def vitals_every_minute(log: EventLog, clock: ManualClock, minutes: int, *, alarm_every: int = 0) -> None:
    """Append one vitals event per virtual minute (and an alarm every ``alarm_every`` minutes)."""
    for minute in range(1, minutes + 1):
        clock.advance(60)
        log.append(
            EventType.VITALS_RECORDED,
            clock.now(),
            "A",
            {"spo2_percent": Decimal("97.5"), "etco2_mmhg": Decimal("38.25"), "resp_rate_bpm": 14},
        )
        if alarm_every and minute % alarm_every == 0:
            log.append(
                EventType.ALARM_RAISED,
                clock.now(),
                "A",
                {
                    "alarm": "occlusion_downstream",
                    "priority": "high",
                    "latching": True,
                    "stops_delivery": True,
                    "value": Decimal("525.5"),
                    "limit": Decimal("500"),
                    "message": "Downstream occlusion",
                },
            )


@dataclass
class Store:
    """A server event store keyed by (pump, seq), as the real ingest is: stores once, acks every time."""

    rows: dict[tuple[str, int], dict[str, object]] = field(default_factory=dict)
    order: list[tuple[str, int]] = field(default_factory=list)
    deliveries: int = 0

    def commit(self, pump: str, records: tuple[EventRecord, ...]) -> bool:
        """Insert the new records of a batch (idempotent) and report it committed."""
        self.deliveries += 1
        for record in records:
            key = (pump, record.seq)
            if key not in self.rows:
                self.rows[key] = record.to_dict()
                self.order.append(key)
        return True

    def expected(self, events: list[PumpEvent]) -> dict[tuple[str, int], dict[str, object]]:
        """What the store must hold for a pump log: each event once, in wire form."""
        return {(e.pump, e.seq): e.to_dict() for e in events}
