"""Commands carry no patient data beyond what the pump needs (issue 15): the program offer of an EHR order
whose PID names the patient and the date of birth goes to the pump with the patient identifier only (which
the pump matches against its associated patient), and an offer with any other field is refused."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from smartpump.interop.hl7v2.ack import ack_code_of
from smartpump.server.db.models_fleet_ops import PumpCommand
from smartpump.server.services.ehr import OrderListener
from smartpump.server.workers import IngestWorker
from smartpump.transport.messages import Envelope, Kind
from tests.server.conftest import World, error_code
from tests.server.ehr_support import SERIAL, dopamine_order, ehr_site, example
from tests.waiting import wait_until

PUMP_OFFER_KEYS = frozenset(
    {
        "format",
        "order_id",
        "patient_id",
        "channel",
        "entry_id",
        "kind",
        "program_kind",
        "route",
        "dose",
        "dose_unit",
        "rate_ml_per_h",
        "vtbi_ml",
        "weight_kg",
        "height_cm",
        "bsa_m2",
        "duration_min",
        "concentration_amount",
        "concentration_unit",
        "concentration_volume_ml",
        "parent_order_id",
        "pca_demand_dose",
        "pca_lockout_min",
        "pca_basal",
        "pca_loading_dose",
        "pca_max_dose",
        "pca_max_dose_window_h",
        "steps",
    }
)
"""What a pump reads from an offer: the order, the patient identifier, the channel and the program."""
PID_NAME_AND_BIRTH = ("Doe", "John", "19660101")


def test_the_sent_offer_carries_the_patient_identifier_and_no_name_or_birth_date(world: World) -> None:
    assert all(part in example() for part in PID_NAME_AND_BIRTH)  # the order does name the patient
    ehr_site(world)
    worker = world.state.background[0]
    assert isinstance(worker, IngestWorker) and worker.link is not None
    link, received = worker.link, list[Envelope]()
    link.pump_transport(SERIAL).start(received.append, lambda up: None)
    reply = OrderListener(world.state).answer(dopamine_order())
    assert ack_code_of(reply) is not None and ack_code_of(reply).value == "CA"  # type: ignore[union-attr]

    def offered() -> bool:
        link.deliver()
        return any(e.kind is Kind.COMMAND for e in received)

    wait_until(offered, "the offer to reach the pump")
    [envelope] = [e for e in received if e.kind is Kind.COMMAND]
    wire = envelope.encode().decode("utf-8")  # the JSON the pump received
    command = json.loads(wire)["body"]["signed"]["command"]
    assert command["command"] == "program.offer" and command["pump_id"] == SERIAL
    assert set(command["args"]) <= PUMP_OFFER_KEYS, set(command["args"]) - PUMP_OFFER_KEYS
    assert command["args"]["patient_id"] == "98765"
    assert not [part for part in PID_NAME_AND_BIRTH if part in wire]


def test_an_offer_with_a_patient_name_or_birth_date_is_refused_and_nothing_is_queued(world: World) -> None:
    site = ehr_site(world)
    offer = {
        "order_id": "1",
        "patient_id": "98765",
        "channel": "A",
        "entry_id": "icu-dopamine",
        "rate_ml_per_h": "5",
    }
    for extra in ({"family_name": "Doe"}, {"birth_date": "1966-01-01"}):
        response = world.client.post(
            f"/api/v1/pumps/{SERIAL}/commands",
            json={"command": "offer_program", "args": offer | extra},
            headers=site.nurse,
        )
        assert response.status_code == 422, response.text
        assert error_code(response.json()) == "command.args"
    with world.state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PumpCommand)) == 0
