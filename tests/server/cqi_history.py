"""A small hand-made event history for the CQI server tests, and a facility team with a released library.

North (released v2 of the factory library: dopamine in the ICU, dose 1-2-20-30 mcg/kg/min) has two pumps:

P-1 (library v2): ok start (auto-programmed); soft 25 overridden after 1 s, start; an occlusion alarm
acknowledged after 30 s; hard 35 reprogrammed (good catch), ok 10, start.
P-2 (library v1, outdated): soft 24 overridden after 10 s, start; a basic start (no entry); soft 28
cancelled (good catch) in an event that also carries a patient identifier.

Every figure the tests expect is counted from this description by hand.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from smartpump.server.auth import Role
from smartpump.server.db.unit_of_work import unit_of_work
from smartpump.server.services.events import IncomingEvent, store_events
from tests.server.conftest import START, World, library_payload

LIBS = "/api/v1/libraries"
SECRET_MRN = "MRN-CQI-SECRET"


def _alert(dose: str, limit: str, kind: str, level: str) -> dict[str, Any]:
    factor = str(round(float(dose) / float(limit), 4))
    return {
        "rule": f"ders.dose.{kind}",
        "parameter": "dose",
        "limit_kind": kind,
        "limit": limit,
        "value": dose,
        "unit": "mcg/kg/min",
        "factor": factor,
        "level": level,
    }


def checked(dose: str | None, verdict: str, version: int, **extra: Any) -> dict[str, Any]:
    """``program.checked`` data of a dopamine program (or a basic one when ``dose`` is None)."""
    alerts = []
    if verdict == "soft":
        alerts = [_alert(str(dose), "20", "soft_max", "soft")]
    elif verdict == "hard":
        alerts = [_alert(str(dose), "30", "hard_max", "hard")]
    basic = dose is None
    return {
        "entry_id": None if basic else "icu-dopamine",
        "drug": None if basic else "DOPamine",
        "care_area": "icu",
        "kind": "basic" if basic else "continuous",
        "dose": dose,
        "dose_unit": None if basic else "mcg/kg/min",
        "rate_ml_per_h": "50" if basic else "20",
        "weight_kg": None if basic else "70",
        "verdict": verdict,
        "alerts": alerts,
        "library_version": version,
        "is_basic": basic,
        "auto_programmed": False,
        "is_titration": False,
    } | extra


def event(pump: str, seq: int, seconds: float, type_: str, channel: str | None, **data: Any) -> IncomingEvent:
    """One stored event ``seconds`` after the test clock's start."""
    return IncomingEvent(
        pump=pump, seq=seq, ts=START + timedelta(seconds=seconds), type=type_, channel=channel, data=data
    )


def north_history() -> list[IncomingEvent]:
    """The two north pumps' events (see the module docstring)."""
    h = 3600
    return [
        event("P-1", 1, 0, "care_area.selected", None, care_area="icu", library_version=2),
        event("P-1", 2, 60, "program.checked", "A", **checked("5", "ok", 2, auto_programmed=True)),
        event("P-1", 3, 120, "infusion.started", "A", entry_id="icu-dopamine", rate_ml_per_h="20"),
        event("P-1", 4, 600, "program.checked", "B", **checked("25", "soft", 2)),
        event("P-1", 5, 601, "alert.overridden", "B", reason="physician_order", entry_id="icu-dopamine"),
        event("P-1", 6, 660, "infusion.started", "B", entry_id="icu-dopamine"),
        event("P-1", 7, h, "alarm.raised", "A", alarm="occlusion.downstream", priority="high"),
        event(
            "P-1", 8, h + 30, "alarm.cleared", "A", alarm="occlusion.downstream", by="operator", duration_s=30
        ),
        event("P-1", 9, 2 * h, "program.checked", "A", **checked("35", "hard", 2)),
        event("P-1", 10, 2 * h + 20, "program.reprogrammed", "A", previous_verdict="hard"),
        event("P-1", 11, 2 * h + 40, "program.checked", "A", **checked("10", "ok", 2)),
        event("P-1", 12, 2 * h + 50, "infusion.started", "A", entry_id="icu-dopamine"),
        event("P-2", 1, 0, "care_area.selected", None, care_area="icu", library_version=1),
        event("P-2", 2, 300, "program.checked", "A", **checked("24", "soft", 1)),
        event("P-2", 3, 310, "alert.overridden", "A", reason="titration", entry_id="icu-dopamine"),
        event("P-2", 4, 360, "infusion.started", "A", entry_id="icu-dopamine"),
        event("P-2", 5, 1800, "program.checked", "B", **checked(None, "ok", 1)),
        event("P-2", 6, 1860, "infusion.started", "B"),
        event(
            "P-2",
            7,
            h,
            "program.checked",
            "A",
            **checked("28", "soft", 1, patient_id=SECRET_MRN, order_id="O-9"),
        ),
        event("P-2", 8, h + 5, "program.cancelled", "A", verdict="soft", patient_id=SECRET_MRN),
    ]


def south_history() -> list[IncomingEvent]:
    """South's pump: one hard stop and one start, which north users must never see."""
    return [
        event("S-1", 1, 0, "care_area.selected", None, care_area="icu", library_version=1),
        event("S-1", 2, 60, "program.checked", "A", **checked("300", "hard", 1)),
        event("S-1", 3, 70, "program.cancelled", "A", verdict="hard"),
        event("S-1", 4, 120, "program.checked", "A", **checked("5", "ok", 1)),
        event("S-1", 5, 130, "infusion.started", "A", entry_id="icu-dopamine"),
    ]


class CqiTeam:
    """Facilities north and south, each with a pharmacist, two approvers and an auditor; pumps registered."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.released_id = 0
        self._headers: dict[str, dict[str, str]] = {}
        self.north = world.facility("north")
        self.south = world.facility("south")
        for code, facility in (("n", self.north), ("s", self.south)):
            world.user((Role.PHARMACIST, facility), username=f"{code}-pharm")
            world.user((Role.PHARMACY_APPROVER, facility), username=f"{code}-appr")
            world.user((Role.PHARMACY_APPROVER, facility), username=f"{code}-appr2")
            world.user((Role.AUDITOR, facility), username=f"{code}-aud")
            world.user((Role.BIOMED, facility), username=f"{code}-tech")
        world.user((Role.PHARMACIST, self.north), (Role.PHARMACY_APPROVER, self.north), username="n-dual")
        for code, facility, serials in (("n", self.north, ("P-1", "P-2")), ("s", self.south, ("S-1",))):
            for serial in serials:
                world.pump(self.h(f"{code}-tech"), facility, serial)

    def h(self, username: str) -> dict[str, str]:
        """Bearer headers of a team member (one login each)."""
        if username not in self._headers:
            self._headers[username] = self.world.login(username)
        return self._headers[username]

    def store(self, events: list[IncomingEvent]) -> None:
        """Store events through the event store."""
        with unit_of_work(self.world.state.sessions) as session:
            store_events(session, self.world.clock, events)

    def release(
        self, facility: int, code: str, author: str, approver: str, based_on: int | None = None
    ) -> int:
        """A version taken through draft, submit, approve and release by the API; returns its id."""
        client = self.world.client
        if based_on is None:
            created = self.world.post_json(LIBS, library_payload(facility, hospital_id=code), self.h(author))
        else:
            created = client.post(
                LIBS, json={"facility_id": facility, "based_on_id": based_on}, headers=self.h(author)
            )
        assert created.status_code == 201, created.text
        library_id: int = created.json()["id"]
        steps = (
            ("submit", author),
            ("approve", approver),
            ("approve", f"{approver}2"),
            ("release", approver),
        )
        for action, user in steps:
            response = client.post(f"{LIBS}/{library_id}/{action}", headers=self.h(user), json={})
            assert response.status_code == 200, response.text
        return library_id

    def released_north_v2(self) -> int:
        """North's released version 2 (v1 released first, then superseded); remembered as ``released_id``."""
        first = self.release(self.north, "north", "n-pharm", "n-appr")
        self.released_id = self.release(self.north, "north", "n-pharm", "n-appr", based_on=first)
        return self.released_id
