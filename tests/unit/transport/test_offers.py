"""Program offers: what the server writes the pump reads back equal, through a signed command; anything
else is refused with ``command.malformed`` naming the field."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from smartpump.clock import EPOCH
from smartpump.ders.program import InfusionProgram, PatientParameters, PCAProgram, ProgramKind
from smartpump.library import signing
from smartpump.library.keys import KeyPurpose, TrustedKey, TrustStore
from smartpump.pump.delivery import Step
from smartpump.transport.commands import (
    INSTALL_LIBRARY,
    OFFER_PROGRAM,
    CommandLedger,
    SignedCommand,
    sign_command,
    verify_command,
)
from smartpump.transport.messages import command_message, decode
from smartpump.transport.offers import (
    OFFER_FORMAT,
    OfferError,
    OfferKind,
    ProgramOffer,
    offer_args,
    program_offer_of,
    read_offer,
)
from smartpump.units import Concentration, DoseUnit

D = Decimal
PRIVATE, PUBLIC = signing.generate_keypair()
TRUST = TrustStore([TrustedKey(key_id="server-1", purpose=KeyPurpose.COMMAND, public_pem=PUBLIC)])
DOPAMINE = ProgramOffer(
    order_id="12345",
    patient_id="98765",
    channel="A",
    kind=OfferKind.NEW,
    program=InfusionProgram(
        entry_id="icu-dopamine",
        dose=D("10"),
        dose_unit=DoseUnit.parse("mcg/kg/min"),
        concentration=Concentration.parse("400 mg/250 mL"),
        vtbi_ml=D("250"),
        patient=PatientParameters(weight_kg=D("85.0")),
    ),
)
MORPHINE_PCA = ProgramOffer(
    order_id="pca-1",
    patient_id="98765",
    channel="A",
    kind=OfferKind.PCA,
    program=InfusionProgram(
        entry_id="pacu-morphine-pca",
        kind=ProgramKind.PCA,
        pca=PCAProgram(
            demand_dose=D("1"),
            lockout_min=D("10"),
            basal=D("0"),
            max_dose=D("10"),
            max_dose_window_h=4,
        ),
    ),
)
TAPER = ProgramOffer(
    order_id="tpn-1",
    patient_id="98765",
    channel="B",
    kind=OfferKind.MULTISTEP,
    program=InfusionProgram(entry_id="icu-tpn", rate_ml_per_h=D("40")),
    steps=(Step(rate_ml_per_h=D("40"), volume_ml=D("100")), Step(rate_ml_per_h=D("80"), volume_ml=D("900"))),
)


def _code(args: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(OfferError) as caught:
        read_offer(args)
    return caught.value.code, caught.value.field


def test_the_offer_the_server_writes_is_the_offer_the_pump_reads_through_a_signed_command() -> None:
    for offer in (DOPAMINE, MORPHINE_PCA, TAPER):
        signed = sign_command(
            pump_id="pump-1",
            command=OFFER_PROGRAM,
            args=offer_args(offer),
            issued_at=EPOCH,
            expires_at=EPOCH + timedelta(minutes=10),
            nonce=offer.order_id,
            counter=1,
            private_key_pem=PRIVATE,
            key_id="server-1",
        )
        wire = decode(command_message("pump-1", signed.to_dict()).encode())
        command = verify_command(
            SignedCommand.from_dict(wire.body["signed"]), TRUST, "pump-1", EPOCH, CommandLedger()
        )
        assert program_offer_of(command) == offer


def test_the_format_is_named_and_numbers_travel_as_decimal_strings() -> None:
    args = offer_args(DOPAMINE)
    assert args == {
        "format": OFFER_FORMAT,
        "order_id": "12345",
        "patient_id": "98765",
        "channel": "A",
        "entry_id": "icu-dopamine",
        "kind": "new",
        "program_kind": "continuous",
        "route": "IV",
        "dose": "10",
        "dose_unit": "mcg/kg/min",
        "concentration_amount": "400",
        "concentration_unit": "mg",
        "concentration_volume_ml": "250",
        "vtbi_ml": "250",
        "weight_kg": "85.0",
    }
    assert offer_args(TAPER)["steps"] == [
        {"rate_ml_per_h": "40", "volume_ml": "100"},
        {"rate_ml_per_h": "80", "volume_ml": "900"},
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"format": "smartpump.program-offer/2"}, "format"),
        ({"surprise": "1"}, "surprise"),
        ({"order_id": None}, "order_id"),
        ({"order_id": ""}, "order_id"),
        ({"patient_id": 98765}, "patient_id"),
        ({"channel": "A" * 200}, "channel"),
        ({"entry_id": ["icu-dopamine"]}, "entry_id"),
        ({"kind": "infuse"}, "kind"),
        ({"kind": None}, "kind"),
        ({"program_kind": "drip"}, "program_kind"),
        ({"route": "oral"}, "route"),
        ({"dose": 10}, "dose"),
        ({"dose": 10.0}, "dose"),
        ({"dose": "-10"}, "dose"),
        ({"dose": "NaN"}, "dose"),
        ({"dose": "Infinity"}, "dose"),
        ({"dose": " 10"}, "dose"),
        ({"dose": "1_0"}, "dose"),
        ({"dose": True}, "dose"),
        ({"dose_unit": "furlongs/fortnight"}, "dose_unit"),
        ({"dose_unit": 5}, "dose_unit"),
        ({"vtbi_ml": "2.5e2"}, "vtbi_ml"),
        ({"weight_kg": {"value": "85"}}, "weight_kg"),
        ({"concentration_unit": "mL"}, "concentration_unit"),
        ({"concentration_amount": "0"}, "concentration_amount"),
        ({"concentration_volume_ml": None}, "concentration_volume_ml"),
        ({"rate_ml_per_h": "5"}, "dose"),
        ({"dose": None}, "dose_unit"),
        ({"dose": None, "dose_unit": None}, "dose"),
        ({"pca_lockout_min": "10"}, "pca_lockout_min"),
        ({"steps": [{"rate_ml_per_h": "5", "volume_ml": "10"}]}, "steps"),
        ({"parent_order_id": ""}, "parent_order_id"),
        ({"parent_order_id": 7}, "parent_order_id"),
    ],
)
def test_a_malformed_offer_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    args = offer_args(DOPAMINE) | change
    assert _code({k: v for k, v in args.items() if v is not None or k in ("kind",)}) == (
        "command.malformed",
        field,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pca_demand_dose": None}, "pca_lockout_min"),
        ({"pca_lockout_min": None}, "pca_lockout_min"),
        ({"pca_max_dose_window_h": "4.5"}, "pca_max_dose_window_h"),
        ({"pca_basal": "-1"}, "pca_basal"),
        (
            {
                "pca_demand_dose": None,
                "pca_lockout_min": None,
                "pca_basal": None,
                "pca_max_dose": None,
                "pca_max_dose_window_h": None,
            },
            "pca_demand_dose",
        ),
    ],
)
def test_a_pca_offer_carries_its_settings(change: dict[str, Any], field: str) -> None:
    args = {k: v for k, v in (offer_args(MORPHINE_PCA) | change).items() if v is not None}
    assert _code(args) == ("command.malformed", field)


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        (None, "steps"),
        ([], "steps"),
        ("40 mL/h for 100 mL", "steps"),
        ([{"rate_ml_per_h": "40"}], "steps[0]"),
        ([{"rate_ml_per_h": "40", "volume_ml": "100"}, ["80", "900"]], "steps[1]"),
        ([{"rate_ml_per_h": "40", "volume_ml": 100}], "steps[0].volume_ml"),
        ([{"rate_ml_per_h": "-40", "volume_ml": "100"}], "steps[0].rate_ml_per_h"),
    ],
)
def test_a_multistep_offer_carries_well_formed_steps(steps: object, field: str) -> None:
    args = offer_args(TAPER)
    if steps is None:
        del args["steps"]
    else:
        args["steps"] = steps
    assert _code(args) == ("command.malformed", field)


def test_an_offer_that_breaks_the_rules_cannot_be_built_so_it_is_never_sent() -> None:
    with pytest.raises(OfferError) as caught:
        replace(DOPAMINE, program=replace(DOPAMINE.program, rate_ml_per_h=D("5")))
    assert caught.value.field == "dose"
    with pytest.raises(OfferError) as caught:
        replace(DOPAMINE, program=replace(DOPAMINE.program, vtbi_ml=D("-1")))
    assert caught.value.field == "vtbi_ml"
    with pytest.raises(OfferError) as caught:
        replace(DOPAMINE, program=replace(DOPAMINE.program, entry_id=None))
    assert caught.value.field == "entry_id"


def test_another_command_carries_no_offer() -> None:
    signed = sign_command(
        pump_id="pump-1",
        command=INSTALL_LIBRARY,
        args=offer_args(DOPAMINE),
        issued_at=EPOCH,
        expires_at=EPOCH + timedelta(minutes=10),
        nonce="n",
        counter=1,
        private_key_pem=PRIVATE,
        key_id="server-1",
    )
    with pytest.raises(OfferError) as caught:
        program_offer_of(signed.command)
    assert (caught.value.code, caught.value.field) == ("command.malformed", "command")
