"""Bedside patient association: identity checked, one event, locked while infusing, survives restart."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from smartpump.clock import ManualClock
from smartpump.errors import PumpError
from smartpump.pump import EventType, Pump
from smartpump.pump.patient import AssociationSource, PatientIdentity, parse_wristband
from tests.unit.pump.library import dopamine, make_pump, pump_library, start

DOE = PatientIdentity(
    patient_id="98765", authority="HOSP", id_type="MR", family_name="Doe", given_name="John"
)


def test_association_is_one_event_with_the_identity_and_its_source() -> None:
    pump, _ = make_pump()
    first = pump.next_seq
    pump.associate_patient(DOE, AssociationSource.SCAN)
    events = [e for e in pump.events if e.seq >= first]
    assert [e.type for e in events] == [EventType.PATIENT_ASSOCIATED]
    assert dict(events[0].data) == {
        "patient_id": "98765",
        "authority": "HOSP",
        "id_type": "MR",
        "family_name": "Doe",
        "given_name": "John",
        "source": "scan",
        "previous_patient_id": None,
    }
    assert pump.patient_id == "98765" and pump.patient == DOE


def test_another_patient_is_refused_while_a_channel_infuses_but_the_same_one_is_not() -> None:
    pump, _ = make_pump()
    pump.associate_patient(DOE)
    start(pump, "A", dopamine("5"))
    with pytest.raises(PumpError) as refused:
        pump.associate_patient(PatientIdentity(patient_id="11111", authority="HOSP"))
    assert refused.value.code == "pump.patient_locked"
    assert pump.patient_id == "98765"
    named = PatientIdentity(patient_id="98765", authority="HOSP", family_name="Doe", given_name="Johnny")
    assert pump.associate_patient(named) == named


@pytest.mark.parametrize(
    ("fields", "what"),
    [
        ({"patient_id": ""}, "empty"),
        ({"patient_id": " 1"}, "spaces"),
        ({"patient_id": "1|2"}, "delimiter"),
        ({"patient_id": "1", "family_name": "x" * 65}, "longer"),
        ({"patient_id": "1", "id_type": "XX"}, "identifier type"),
    ],
)
def test_malformed_identities_are_refused(fields: dict[str, str], what: str) -> None:
    with pytest.raises(PumpError, match=what) as refused:
        PatientIdentity(**fields)
    assert refused.value.code == "pump.patient_invalid"


def test_wristband_scans_read_plain_ids_and_hl7_cx() -> None:
    assert parse_wristband(" 98765 ") == ("98765", "", "MR")
    assert parse_wristband("98765^^^HOSP^PI") == ("98765", "HOSP", "PI")
    for bad in ("", "1^2^3^4^5^6"):
        with pytest.raises(PumpError):
            parse_wristband(bad)


def test_the_association_survives_a_restart() -> None:
    pump, clock = make_pump()
    pump.associate_patient(DOE)
    state = json.loads(json.dumps(pump.to_state()))
    restarted = Pump.from_state(state, ManualClock(start=clock.now() + timedelta(seconds=60)), pump_library())
    assert restarted.patient == DOE
