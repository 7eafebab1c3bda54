"""Issue 16 end to end with counterparts the project did not write: orders go in over MLLP from python-hl7's
``MLLPClient`` and everything the server sends back arrives at hl7apy's ``MLLPServer``, over real localhost
sockets. Every order kind ends in a state the EHR is told about: new, titration, bolus, loading dose,
piggyback, multistep and PCA orders start (PCD-10 with the order id); a nurse's decline, a pump's refusal
and an expiry come back as RRG^O16 AR with the PIV code, and the channel is free at once.

The server is a real app (ingest driven by hand, as in the connected tests) with an in-process simulated
fleet: one ICU large-volume pump (3 channels) and one PCA pump.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import hl7
import pytest
from hl7.client import MLLPClient
from hl7apy.mllp import AbstractHandler, MLLPServer
from hl7apy.parser import parse_message
from sqlalchemy import Engine, select

import tests.server.conftest as server_fixtures
from smartpump.clock import ManualClock
from smartpump.demo.fleet import SimFleet
from smartpump.library.model import DrugLibrary
from smartpump.pump.capabilities import PumpModel
from smartpump.server import keys
from smartpump.server.db.models_ehr import EhrOrder
from smartpump.server.ehr_worker import EhrOutboundService, Hl7ListenerService
from smartpump.server.settings import Settings
from smartpump.server.workers import InProcessLink
from tests.factories import make_care_area
from tests.integration.test_ehr_end_to_end import Loop
from tests.server.conftest import _wipe
from tests.server.connected_helpers import Harness
from tests.server.ehr_support import dopamine_order, full_library
from tests.server.library_rows import store_released_library

database_url = server_fixtures.database_url
engine = server_fixtures.engine
settings = server_fixtures.settings
pytestmark = pytest.mark.slow

PCD10 = "ORU^R42^ORU_R01"
OUTBOUND_TYPES = ("ORU^R42^ORU_R01", "ORU^R01^ORU_R01", "ORU^R40^ORU_R40", "RRG^O16^RRG_O16")
NO_VTBI = ("|1234^Dopamine|250||263762^MDC_DIM_MILLI_L^MDC^mL^mL^UCUM |", "|1234^Dopamine||||")
DOSE_RATE = "||||||||10|3475^ug/kg/min^UCUM^265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|"


class _Recorder(AbstractHandler):  # type: ignore[misc]
    """hl7apy handler: keep the message, answer a commit ACK (CA) naming its MSH-10."""

    def __init__(self, message: str, received: list[str]) -> None:
        super().__init__(message)
        self.received = received

    def reply(self) -> str:
        parsed = parse_message(self.incoming_message, find_groups=False)
        control_id = parsed.msh.msh_10.value
        trigger = parsed.msh.msh_9.msh_9_2.value
        self.received.append(self.incoming_message.replace("\n", "\r"))
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
        ack = (
            f"MSH|^~\\&|EHR|EHR|SMARTPUMP|SMARTPUMP|{stamp}||ACK^{trigger}^ACK|A{control_id}|P|2.6\r"
            f"MSA|CA|{control_id}\r"
        )
        return f"\x0b{ack}\x1c\r"


class IndependentEhr:
    """The EHR: python-hl7 sends orders, hl7apy's MLLP server receives what the server sends back."""

    def __init__(self, listener_port: int) -> None:
        self.received: list[str] = []
        self.server = MLLPServer(
            "127.0.0.1", 0, dict.fromkeys(OUTBOUND_TYPES, (_Recorder, self.received)), timeout=10
        )
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.client = MLLPClient("127.0.0.1", listener_port)
        self.client.socket.settimeout(30)

    def order(self, text: str) -> hl7.Message:
        """Send one order; the server's reply as python-hl7 reads it."""
        raw = self.client.send_message(text)
        return hl7.parse(raw.decode("utf-8").strip("\x0b\x1c\r"))

    def messages(self, order_id: str, kind: str = "") -> list[hl7.Message]:
        """Every message received so far about an order (OBR-2 or ORC-2), of one MSH-9 kind if given."""
        found = []
        for text in self.received:
            message = hl7.parse(text)
            if kind and str(message.segment("MSH")[9]) != kind:
                continue
            segments = [s for s in message if str(s[0]) in ("OBR", "ORC")]
            if any(str(s[2]).split("^")[0] == order_id for s in segments):
                found.append(message)
        return found

    def close(self) -> None:
        self.client.close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _library() -> DrugLibrary:
    """Dopamine (bolus, loading, piggyback) in the ICU and morphine PCA in a PCA ward."""
    base = full_library()
    pca_area = make_care_area(id="pca", name="PCA ward")
    entries = tuple(replace(e, care_area_id="pca") if e.drug_id == "morphine" else e for e in base.entries)
    return replace(base, care_areas=(*base.care_areas, pca_area), entries=entries)


@pytest.fixture
def site(
    settings: Settings, engine: Engine, tmp_path: Path
) -> Iterator[tuple[Harness, SimFleet, ManualClock]]:
    """An ICU pump and a PCA pump linked to an app whose clock is manual (starting at the wall time)."""
    keyring = keys.load(settings.signing_keys_dir, create_missing=True, now=datetime.now(UTC))
    link = InProcessLink()
    library = _library()
    fleet = SimFleet(
        library=library,
        pumps=2,
        seed=16,
        speed=1.0,
        trust=keyring.trust_store(),
        transport_for=link.pump_transport,
        link=link,
        outbox_dir=tmp_path / "outbox",
    )
    server_clock = ManualClock(datetime.now(UTC))
    harness = Harness(settings, engine, server_clock, sim_fleet=fleet)
    for serial in fleet.serials():
        pump = fleet.pump(serial)
        assert pump.care_area is not None
        harness.register(serial, care_area=pump.care_area.id, model=pump.caps.model.value, library=1)
    with harness.session() as session:
        store_released_library(session, harness.facility_id, library, server_clock.now())
        session.commit()
    harness.pump_messages(step=fleet.advance)
    yield harness, fleet, server_clock
    harness.close()
    fleet.close()
    _wipe(engine)


def _text(message: object) -> str:
    return str(message).replace("\n", "\r").rstrip("\r")


def _titration(serial: str, patient: str, channel: str, order_id: str, control_id: str) -> str:
    text = _text(
        dopamine_order(
            serial=serial,
            patient=patient,
            channel=channel,
            order_id=order_id,
            control_id=control_id,
            dose="15",
        )
    )
    return text.replace("ORC|RE|", "ORC|XO|").replace(*NO_VTBI)


def _bolus(
    serial: str, patient: str, channel: str, order_id: str, parent: str, control_id: str, *, loading: bool
) -> str:
    refid = "158018^MDC_DOSE_LOADING" if loading else "158019^MDC_DOSE_CLINICIAN"
    text = _text(
        dopamine_order(
            serial=serial, patient=patient, channel=channel, order_id=order_id, control_id=control_id
        )
    )
    text = text.replace(f"ORC|RE|{order_id}|", f"ORC|CH|{order_id}||||||{parent}|", 1)
    text = text.replace(DOSE_RATE, "||||||||20|ug/kg^ug/kg^UCUM|")
    return (
        text
        + f"\rOBX|3|NM|{refid}^MDC||||||||R"
        + "\rOBX|4|NM|157784^MDC_FLOW_FLUID_PUMP^MDC||200|mL/h^mL/h^UCUM|||||R"
    )


def _piggyback(serial: str, patient: str, channel: str, order_id: str, control_id: str) -> str:
    text = _text(
        dopamine_order(
            serial=serial, patient=patient, channel=channel, order_id=order_id, control_id=control_id
        )
    )
    return text.replace("RXR|IV||IVP|IV", "RXR|IV||IVP|IVPB")


def _multistep(serial: str, patient: str, channel: str, order_id: str, control_id: str) -> str:
    text = _text(
        dopamine_order(
            serial=serial, patient=patient, channel=channel, order_id=order_id, control_id=control_id
        )
    )
    rxg = next(line for line in text.split("\r") if line.startswith("RXG"))
    step2 = (
        rxg.replace("RXG|1|", "RXG|2|")
        .replace("||||||||10|3475", "||||||||15|3475")
        .replace("|1234^Dopamine|250|", "|1234^Dopamine|100|")
    )
    rxr = next(line for line in text.split("\r") if line.startswith("RXR"))
    return text.replace(rxr, f"{rxr}\r{step2}\r{rxr}", 1)


def _pca(serial: str, patient: str, order_id: str, control_id: str) -> str:
    text = _text(
        dopamine_order(
            serial=serial, patient=patient, order_id=order_id, control_id=control_id, drug="4321^Morphine"
        )
    )
    text = text.replace(
        DOSE_RATE + "400|1746^mg^UCUM^263890^MDC_DIM_MILLI_G^MDC|||||250|",
        "||||||||||30|mg^mg^UCUM|||||30|",
    ).replace("|4321^Morphine|250|", "|4321^Morphine|30|")
    return (
        text
        + "\rOBX|3|NM|158017^MDC_DOSE_PCA_PATIENT^MDC||1|mg^mg^UCUM|||||R"
        + "\rOBX|4|NM|157989^MDC_TIME_PCA_LOCKOUT^MDC||10|min^min^UCUM|||||R"
        + "\rOBX|5|NM|157985^MDC_DOSE_PCA_LIMIT^MDC||8|mg^mg^UCUM|||||R"
        + "\rOBX|6|NM|157987^MDC_TIME_PD_PCA_DOSE_LIMIT^MDC||4|h^h^UCUM|||||R"
    )


def _ack(reply: hl7.Message) -> tuple[str, str]:
    """MSA-1 and ERR-5.1 of a reply read by python-hl7."""
    error = str(reply.segment("ERR")[5]).split("^")[0] if "ERR" in str(reply) else ""
    return str(reply.segment("MSA")[1]), error


def _accepted(reply: hl7.Message) -> None:
    assert _ack(reply)[0] in ("CA", "AA"), str(reply)


def _refusal(message: hl7.Message) -> tuple[str, str, str]:
    """An outcome RRG^O16: MSA-1, MSA-2 (the order's MSH-10), ERR-5.1 (the PIV code)."""
    assert str(message.segment("MSH")[9]) == "RRG^O16^RRG_O16"
    return str(message.segment("MSA")[1]), str(message.segment("MSA")[2]), _ack(message)[1]


def _status(harness: Harness, order_id: str) -> str:
    with harness.session() as session:
        return session.scalars(select(EhrOrder.status).where(EhrOrder.order_id == order_id)).one()


def test_every_order_kind_closes_the_loop_over_independent_mllp_counterparts(
    site: tuple[Harness, SimFleet, ManualClock],
) -> None:
    harness, fleet, server_clock = site
    lvp, pca = sorted(fleet.serials(), key=lambda s: fleet.pump(s).caps.model is not PumpModel.LVP)
    with fleet.lock:
        patient = fleet.pump(lvp).patient_id
        pca_patient = fleet.pump(pca).patient_id
        idle = [
            cid
            for cid, c in fleet.pump(lvp).channels.items()
            if c.state.value == "idle" and c.pending is None
        ]
    assert patient is not None and pca_patient is not None and len(idle) == 3
    a, b, c = idle
    loop = Loop()
    listener = Hl7ListenerService(host="127.0.0.1", port=0)
    loop.run(listener.start(harness.state))
    ehr = IndependentEhr(listener.port)
    sender = EhrOutboundService(host="127.0.0.1", port=ehr.port)
    sender.attach(harness.state)

    def pump_and_send() -> None:
        harness.pump_messages(step=fleet.advance)
        assert sender.run_once().drained.pending == 0

    try:
        # a nurse's decline: RRG^O16 AR 9023, and the channel takes the next order at once
        _accepted(
            ehr.order(
                _text(
                    dopamine_order(serial=lvp, patient=patient, channel=a, order_id="N-1", control_id="101")
                )
            )
        )
        harness.pump_messages(step=fleet.advance)
        fleet.act(lvp, lambda p: p.cancel(a, reason="patient_condition"))
        pump_and_send()
        [declined] = ehr.messages("N-1")
        assert _refusal(declined) == ("AR", "101", "9023")
        assert str(declined.segment("ORC")[16]).startswith("patient_condition^")
        # the order's PID-3 (identifier type PI, authority IHE) and PID-5 come back as sent
        assert str(declined.segment("PID")[3]) == f"{patient}^^^IHE^PI"
        assert str(declined.segment("PID")[5]) == "Doe^John^^^^^L"

        # a pump refusal (the order names another patient): 9012, channel free again
        _accepted(
            ehr.order(
                _text(
                    dopamine_order(
                        serial=lvp, patient="NOT-HERE", channel=a, order_id="N-2", control_id="102"
                    )
                )
            )
        )
        pump_and_send()
        [refused] = ehr.messages("N-2")
        assert _refusal(refused) == ("AR", "102", "9012")
        assert "command.patient_mismatch" in str(refused)

        # a new order started at the pump: PCD-10 delivery start under its order id
        _accepted(
            ehr.order(
                _text(
                    dopamine_order(serial=lvp, patient=patient, channel=a, order_id="N-3", control_id="103")
                )
            )
        )
        harness.pump_messages(step=fleet.advance)
        fleet.act(lvp, lambda p: p.confirm(a))
        fleet.act(lvp, lambda p: p.start(a))
        pump_and_send()
        [started] = ehr.messages("N-3", PCD10)
        assert "MDC_EVT_PUMP_DELIV_START" in str(started) and _status(harness, "N-3") == "started"

        # titration of N-3: a stop/start pair under N-3
        _accepted(ehr.order(_titration(lvp, patient, a, "N-3", "104")))
        harness.pump_messages(step=fleet.advance)
        fleet.act(lvp, lambda p: p.confirm(a))
        pump_and_send()
        assert len(ehr.messages("N-3", PCD10)) == 3

        # a loading dose declined while held: 9023; then a bolus confirmed: its PCD-10 start
        _accepted(ehr.order(_bolus(lvp, patient, a, "L-1", "N-3", "105", loading=True)))
        pump_and_send()
        fleet.decline_offer(lvp, a, reason="not_due")
        pump_and_send()
        assert [_refusal(m) for m in ehr.messages("L-1")] == [("AR", "105", "9023")]
        _accepted(ehr.order(_bolus(lvp, patient, a, "B-1", "N-3", "106", loading=False)))
        pump_and_send()
        fleet.confirm_offer(lvp, a)
        pump_and_send()
        assert "MDC_EVT_PUMP_DELIV_START" in str(ehr.messages("B-1", PCD10)[0])

        # a piggyback on a second running channel: its PCD-10 start on the secondary source
        _accepted(
            ehr.order(
                _text(
                    dopamine_order(serial=lvp, patient=patient, channel=b, order_id="N-4", control_id="107")
                )
            )
        )
        harness.pump_messages(step=fleet.advance)
        fleet.act(lvp, lambda p: p.confirm(b))
        fleet.act(lvp, lambda p: p.start(b))
        pump_and_send()
        _accepted(ehr.order(_piggyback(lvp, patient, b, "P-1", "108")))
        pump_and_send()
        fleet.confirm_offer(lvp, b)
        pump_and_send()
        [piggyback] = ehr.messages("P-1", PCD10)
        assert "MDC_EVT_PUMP_DELIV_START" in str(piggyback) and "Secondary" in str(piggyback)

        # multistep on the third channel
        _accepted(ehr.order(_multistep(lvp, patient, c, "M-1", "109")))
        harness.pump_messages(step=fleet.advance)
        fleet.act(lvp, lambda p: p.confirm(c))
        fleet.act(lvp, lambda p: p.start(c))
        pump_and_send()
        assert "MDC_EVT_PUMP_DELIV_START" in str(ehr.messages("M-1", PCD10)[0])

        # PCA on the PCA pump
        _accepted(ehr.order(_pca(pca, pca_patient, "PCA-1", "110")))
        harness.pump_messages(step=fleet.advance)
        fleet.act(pca, lambda p: p.confirm("A"))
        fleet.act(pca, lambda p: p.start("A"))
        pump_and_send()
        assert "MDC_EVT_PUMP_DELIV_START" in str(ehr.messages("PCA-1", PCD10)[0])

        # an expiry: a loading dose nobody confirms, 9015 once its offer is over
        _accepted(ehr.order(_bolus(lvp, patient, b, "L-2", "N-4", "111", loading=True)))
        pump_and_send()
        server_clock.advance(601)
        pump_and_send()
        assert [_refusal(m) for m in ehr.messages("L-2")] == [("AR", "111", "9015")]
        assert {k: _status(harness, k) for k in ("N-1", "N-2", "L-1", "L-2")} == {
            "N-1": "declined",
            "N-2": "refused",
            "L-1": "declined",
            "L-2": "expired",
        }
    finally:
        ehr.close()
        loop.run(sender.stop())
        loop.run(listener.stop())
        loop.close()
