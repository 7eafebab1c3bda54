"""End to end over real localhost MLLP: order -> DERS -> CA, then the IPEC start event back to the EHR."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from smartpump.clock import ManualClock
from smartpump.interop.hl7v2.ack import AckCode, ack_code_of
from smartpump.interop.hl7v2.listener import Hl7Listener, accept_all, new_control_id
from smartpump.interop.hl7v2.message import Message, parse
from smartpump.interop.hl7v2.mllp import MllpClient
from smartpump.interop.hl7v2.pcd03 import OrderDecision, evaluate_order, parse_order, respond
from smartpump.interop.hl7v2.pcd10 import build_pcd10
from smartpump.interop.hl7v2.reports import (
    DeviceIdentity,
    InfusionEventKind,
    InfusionEventReport,
    PatientContext,
    SourceChannel,
)
from smartpump.units import DoseUnit
from tests.unit.interop.helpers import ORDER_NOW, demo_library, example


def test_order_over_mllp_then_ipec_start_back_over_mllp() -> None:
    clock = ManualClock(ORDER_NOW)
    library = demo_library()
    decisions: list[OrderDecision] = []
    documented: list[Message] = []

    async def order_consumer(message: Message) -> Message:
        decision = evaluate_order(parse_order(message), library, "icu", now=clock.now())
        decisions.append(decision)
        return respond(message, decision, control_id=new_control_id(), timestamp=clock.now())

    async def ehr_documentation(message: Message) -> Message:
        documented.append(message)
        return await accept_all(message, clock)

    async def scenario() -> tuple[str, str]:
        pump_gateway = Hl7Listener(order_consumer, clock, port=0)
        ehr = Hl7Listener(ehr_documentation, clock, port=0)
        gateway_host, gateway_port = await pump_gateway.start()
        ehr_host, ehr_port = await ehr.start()
        try:

            def send(host: str, port: int, text: str) -> str:
                with MllpClient(host, port, timeout_s=5) as client:
                    return client.send(text.encode()).decode()

            order_ack = await asyncio.to_thread(
                send, gateway_host, gateway_port, example("pcd03_rgv_o15_ex1_dopamine_dose_rate.hl7")
            )
            decision = decisions[0]
            program, verdict = decision.programs[0], decision.verdicts[0]
            order = decision.order
            # the nurse confirms the offer at the pump; the pump starts and reports it (IPEC)
            report = InfusionEventReport(
                control_id=new_control_id(),
                sent_at=clock.now(),
                event_time=clock.now(),
                event=InfusionEventKind.START,
                device=DeviceIdentity(device_id=order.pump_id, eui64="0012210000000001"),
                patient=PatientContext(patient_id=order.patient_id, authority=order.patient_id_authority),
                source=SourceChannel(
                    rate_ml_per_h=verdict.rate_ml_per_h,
                    dose_rate=program.dose,
                    dose_unit=DoseUnit.parse(verdict.dose_unit),
                    vtbi_ml=program.vtbi_ml,
                    concentration=program.concentration,
                    drug_name="Dopamine",
                    care_area="icu",
                    weight_kg=program.patient.weight_kg,
                ),
                order_id=order.order_id,
                drug_code=order.drug_code,
                current_flow_ml_per_h=verdict.rate_ml_per_h,
                library_version=str(library.version),
            )
            event_ack = await asyncio.to_thread(send, ehr_host, ehr_port, build_pcd10(report).to_er7())
            return order_ack, event_ack
        finally:
            await pump_gateway.close()
            await ehr.close()

    order_ack, event_ack = asyncio.run(scenario())
    assert ack_code_of(parse(order_ack)) is AckCode.CA
    assert ack_code_of(parse(event_ack)) is AckCode.CA
    assert len(documented) == 1
    event = documented[0]
    by_refid = {o.value(3, 2): o for o in event.all("OBX")}
    assert event.message_type == ("ORU", "R42", "ORU_R01")
    assert event.first("OBR").value(2) == "12345"  # type: ignore[union-attr]
    assert by_refid["MDC_ATTR_EVT_COND"].value(5, 2) == "MDC_EVT_PUMP_DELIV_START"
    assert Decimal(by_refid["MDC_FLOW_FLUID_PUMP"].value(5)) == Decimal("31.9")
    assert event.first("PID").value(3) == "98765"  # type: ignore[union-attr]
