"""The front panel shows an auto-programmed program as an EHR order: it is declined with a coded reason (not
cancelled), an uncoded reason is refused, and a channel without an EHR order has nothing to decline."""

from __future__ import annotations

from decimal import Decimal

import tests.server.test_web_panel as web_panel
from smartpump.ders.program import InfusionProgram, PatientParameters
from smartpump.pump import EventType, PumpEvent
from smartpump.units import Concentration, DoseUnit
from tests.server.test_web_panel import Panel

panel = web_panel.panel


def _cancels(panel: Panel) -> list[PumpEvent]:
    """The program.cancelled events the pump logs from now on (as the fleet hands them to the uplink)."""
    seen: list[PumpEvent] = []
    panel.fleet.fleet.subscribe(
        lambda _pump, event: seen.append(event) if event.type is EventType.PROGRAM_CANCELLED else None
    )
    return seen


def _offer(panel: Panel) -> None:
    """What an EHR offer leaves on the pump: a held auto-programmed dopamine program on channel A."""
    panel.ok("care_area", care_area="icu")
    program = InfusionProgram(
        entry_id="icu-dopamine",
        dose=Decimal(5),
        dose_unit=DoseUnit.parse("mcg/kg/min"),
        concentration=Concentration.parse("400 mg/250 mL"),
        vtbi_ml=Decimal(250),
        patient=PatientParameters(weight_kg=Decimal(80)),
    )
    panel.fleet.act(panel.serial, lambda p: p.program("A", program, auto_programmed=True))


def test_an_ehr_order_is_declined_with_a_coded_reason_instead_of_cancelled(panel: Panel) -> None:
    _offer(panel)
    cancels = _cancels(panel)
    page = panel.page()
    assert 'data-action="decline"' in page and "This program is an EHR order" in page
    assert 'data-action="cancel"' not in page
    declined = panel.ok("decline", decline_reason="order_discrepancy")
    assert "EHR order declined" in declined
    [event] = cancels
    assert (event.data["auto_programmed"], event.data["reason"]) == (True, "order_discrepancy")
    assert panel.pump.channel("A").pending is None


def test_an_uncoded_decline_reason_is_refused_and_the_order_kept(panel: Panel) -> None:
    _offer(panel)
    cancels = _cancels(panel)
    refused = panel.press("decline", decline_reason="tired")
    assert refused.status_code == 409
    assert "pump.decline_reason" in refused.text
    assert panel.pump.channel("A").pending is not None
    assert cancels == []


def test_a_channel_without_an_ehr_order_has_nothing_to_decline(panel: Panel) -> None:
    panel.ok("care_area", care_area="icu")
    cancels = _cancels(panel)
    refused = panel.press("decline", decline_reason="not_due")
    assert refused.status_code != 200
    assert "panel.no_order" in refused.text
    assert cancels == []
