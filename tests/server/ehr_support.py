"""Shared set-up of the EHR tests: a facility with a released library mapping code 1234 to dopamine, a pump
registered in care area ``icu`` and seen online, and the IHE PCD-03 dopamine example addressed to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from smartpump.interop.hl7v2.message import Message, parse
from smartpump.library.formats import json_format
from smartpump.library.model import DeliveryMode, DeviceType, DrugLibrary, EhrMapping, PCALimits
from smartpump.server.auth import Role
from smartpump.server.db.repositories import fleet as fleet_repo
from smartpump.server.services.ehr import AutoDocumentation, EhrConfig, queue_state
from tests.factories import bounds, concentration, dose_limits, make_drug, make_entry, make_library
from tests.server.conftest import World
from tests.server.library_rows import store_released_library

HL7_DIR: Final = Path(__file__).resolve().parents[3] / "shared" / "data" / "hl7"
EXAMPLE_PUMP: Final = "A0001"
SERIAL: Final = "LVP-EHR-1"
PATIENT: Final = "98765"


def ehr_library(hospital_id: str = "north") -> DrugLibrary:
    """The factory library (dopamine 400 mg/250 mL in ``icu``) with the EHR mapping 1234 -> dopamine."""
    return make_library(
        hospital_id=hospital_id,
        entries=(make_entry(concentrations=(concentration("400 mg/250 mL"),)),),
        ehr_mappings=(EhrMapping(order_code="1234", alias="dopamine"),),
    )


def example(name: str = "pcd03_rgv_o15_ex1_dopamine_dose_rate_cp159.hl7") -> str:
    """An IHE example message from the shared data, segments joined with CR (fails if the data is absent)."""
    path = HL7_DIR / name
    assert path.is_file(), f"shared HL7 example {path} is missing (the EHR tests need ../shared/data/hl7)"
    return "\r".join(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def dopamine_order(
    *,
    serial: str = SERIAL,
    control_id: str = "1",
    order_id: str = "12345",
    drug: str = "1234^Dopamine",
    dose: str = "10",
    channel: str = "",
    order_time: datetime | None = None,
    patient: str = PATIENT,
    prescriber: str = "",
) -> Message:
    """The PCD-03 dopamine example (CP-159 form) for our pump, with the given changes (``prescriber`` is
    ORC-12, an XCN such as ``P-77^Smith^Ann^^^Dr``)."""
    text = example()
    text = text.replace("^^A0001^PUMPVENDOR", f"{serial}^^^PUMPVENDOR")
    text = text.replace("|RGV^O15^RGV_O15|1|", f"|RGV^O15^RGV_O15|{control_id}|")
    text = text.replace("ORC|RE|12345|", f"ORC|RE|{order_id}|")
    text = text.replace("|1234^Dopamine|", f"|{drug}|")
    text = text.replace("||||||||10|3475^", f"||||||||{dose}|3475^")
    text = text.replace("PID|||98765^", f"PID|||{patient}^")
    if channel:
        text = _set_field(text, "OBX|1|", 4, channel)
    if order_time is not None:
        text = _set_field(text, "ORC|", 9, order_time.strftime("%Y%m%d%H%M%S+0000"))
    if prescriber:
        text = _set_field(text, "ORC|", 12, prescriber)
    return parse(text)


def _set_field(text: str, prefix: str, index: int, value: str) -> str:
    lines = text.split("\r")
    for number, line in enumerate(lines):
        if line.startswith(prefix):
            fields = line.split("|")
            fields[index] = value
            lines[number] = "|".join(fields)
    return "\r".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class EhrSite:
    """What ``ehr_site`` built."""

    facility_id: int
    nurse: dict[str, str]
    biomed: dict[str, str]
    library: DrugLibrary


def documentation_pass(world: World, destination: str) -> list[str]:
    """One auto-documentation pass to ``destination`` (no periodic status); every queued payload, in order."""
    documentation = AutoDocumentation(
        state=world.state, destination=destination, config=EhrConfig(status_interval=None)
    )
    documentation.run_once()
    with world.state.sessions() as session:
        return [row.payload for row in queue_state(session, destination)]


def full_library(hospital_id: str = "north") -> DrugLibrary:
    """Dopamine in two concentrations (400 and 800 mg/250 mL) with bolus and loading limits and piggyback
    allowed, and a morphine PCA entry (code 4321) for PCA pumps: every order kind can be offered."""
    dopamine = make_entry(
        bolus=dose_limits("mcg/kg", hard_max=100),
        loading=dose_limits("mcg/kg", hard_max=100),
        allows_secondary=True,
    )
    morphine = make_entry(
        id="icu-morphine-pca",
        drug_id="morphine",
        mode=DeliveryMode.PCA,
        dose=dose_limits("mg", hard_max=3),
        concentrations=(concentration("30 mg/30 mL"),),
        rate_ml_per_h=bounds(),
        devices=(DeviceType.PCA,),
        pca=PCALimits(
            demand_dose=dose_limits("mg", hard_max=3),
            lockout_min=bounds(hard_min=5),
            max_dose=dose_limits("mg", hard_max=20),
            max_dose_window_h=4,
        ),
    )
    return make_library(
        hospital_id=hospital_id,
        drugs=(make_drug(), make_drug(id="morphine", generic_name="morphine", display_name="morphine")),
        entries=(dopamine, morphine),
        ehr_mappings=(
            EhrMapping(order_code="1234", alias="dopamine"),
            EhrMapping(order_code="4321", alias="morphine"),
        ),
    )


def ehr_site(
    world: World,
    *,
    serial: str = SERIAL,
    care_area: str | None = "icu",
    online: bool = True,
    library: DrugLibrary | None = None,
) -> EhrSite:
    """A facility with a released library, a nurse, and one registered pump (online unless asked)."""
    facility = world.facility("north")
    author = world.user((Role.PHARMACIST, facility), username="ehr-pharmacist")
    biomed = world.as_role(Role.BIOMED, facility, username="ehr-biomed")
    nurse = world.as_role(Role.NURSE, facility, username="ehr-nurse")
    library = library if library is not None else ehr_library()
    with world.state.sessions() as session:
        store_released_library(session, facility, library, world.clock.now(), author_id=author)
        session.commit()
    add_pump(world, biomed, facility, serial, care_area=care_area, online=online)
    return EhrSite(facility_id=facility, nurse=nurse, biomed=biomed, library=library)


def add_pump(
    world: World,
    biomed: dict[str, str],
    facility: int,
    serial: str,
    *,
    care_area: str | None,
    online: bool,
    model: str = "lvp-4",
) -> None:
    """Register a pump (model lvp-4 unless told) and set its care area and last-seen time."""
    world.pump(biomed, facility, serial, model=model)
    with world.state.sessions() as session:
        pump = fleet_repo.pump_by_serial(session, serial)
        assert pump is not None
        pump.care_area = care_area
        pump.last_seen = world.clock.now() if online else world.clock.now() - timedelta(hours=1)
        session.commit()


def segments(text: str, segment_id: str) -> list[list[str]]:
    """The fields of every segment with this id in an ER7 text."""
    return [s.split("|") for s in text.replace("\n", "\r").split("\r") if s.startswith(segment_id + "|")]


def err_code(reply: Message) -> str:
    """ERR-5.1 (the PIV code) of a reply, or '' when it has none."""
    err = reply.first("ERR")
    return err.value(5, 1) if err is not None else ""


def as_json(value: Any) -> Any:
    """A value through JSON (what an HTTP client would see)."""
    return json_format.parse_json(json_format.encode_json(value))
