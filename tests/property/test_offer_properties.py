"""Properties of the program-offer format: every offer survives JSON and reads back equal; any corruption of
its args is either still a well-formed offer or refused with ``OfferError``, never another exception."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smartpump.ders.program import InfusionProgram, PatientParameters, PCAProgram, ProgramKind
from smartpump.library.model import Route
from smartpump.pump.delivery import Step
from smartpump.transport.offers import OfferError, OfferKind, ProgramOffer, offer_args, read_offer
from smartpump.units import AmountUnit, Basis, Concentration, DoseUnit, TimeUnit

TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
NUMBERS = st.decimals(min_value=Decimal(0), max_value=Decimal("1e6"), places=6)
POSITIVE = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1e6"), places=3)
OPTIONAL = st.none() | NUMBERS
DOSE_UNITS = (
    st.tuples(st.sampled_from(AmountUnit), st.sampled_from(Basis), st.none() | st.sampled_from(TimeUnit))
    .filter(lambda parts: not (parts[0] is AmountUnit.ML and parts[1] is Basis.M2))
    .map(lambda parts: DoseUnit(*parts))
)
"""Dosing units that exist (``DoseUnit`` refuses a volume per m2)."""
CONCENTRATIONS = st.none() | st.builds(
    Concentration, POSITIVE, st.sampled_from([u for u in AmountUnit if u is not AmountUnit.ML]), POSITIVE
)
PCA = st.builds(
    PCAProgram,
    demand_dose=NUMBERS,
    lockout_min=NUMBERS,
    basal=OPTIONAL,
    loading_dose=OPTIONAL,
    max_dose=OPTIONAL,
    max_dose_window_h=st.none() | st.integers(min_value=0, max_value=24),
)


@st.composite
def offers(draw: st.DrawFn) -> ProgramOffer:
    kind = draw(st.sampled_from(OfferKind))
    program_kind = ProgramKind.PCA if kind is OfferKind.PCA else draw(st.sampled_from(ProgramKind))
    pca = draw(PCA) if program_kind is ProgramKind.PCA else draw(st.none() | PCA)
    dosed = draw(st.booleans())
    if program_kind is ProgramKind.PCA and draw(st.booleans()):
        dose, unit, rate = None, None, None
    elif dosed:
        dose, unit, rate = draw(NUMBERS), draw(DOSE_UNITS), None
    else:
        dose, unit, rate = None, None, draw(NUMBERS)
    steps = (
        tuple(
            draw(st.lists(st.builds(Step, rate_ml_per_h=NUMBERS, volume_ml=NUMBERS), min_size=1, max_size=5))
        )
        if kind is OfferKind.MULTISTEP
        else ()
    )
    return ProgramOffer(
        order_id=draw(TEXT),
        patient_id=draw(TEXT),
        channel=draw(st.sampled_from("ABCD")),
        kind=kind,
        parent_order_id=draw(st.just("") | TEXT),
        steps=steps,
        program=InfusionProgram(
            entry_id=draw(TEXT),
            kind=program_kind,
            route=draw(st.sampled_from(Route)),
            dose=dose,
            dose_unit=unit,
            rate_ml_per_h=rate,
            concentration=draw(CONCENTRATIONS),
            vtbi_ml=draw(OPTIONAL),
            duration_min=draw(OPTIONAL),
            patient=PatientParameters(
                weight_kg=draw(OPTIONAL), height_cm=draw(OPTIONAL), bsa_m2=draw(OPTIONAL)
            ),
            pca=pca,
        ),
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)


@given(offers())
def test_every_offer_reads_back_equal_after_the_wire(offer: ProgramOffer) -> None:
    args = json.loads(json.dumps(offer_args(offer), allow_nan=False))
    assert read_offer(args) == offer


@given(offers(), st.data())
def test_corrupted_args_are_an_offer_or_refused_with_offer_error(
    offer: ProgramOffer, data: st.DataObject
) -> None:
    args: dict[str, Any] = offer_args(offer)
    key = data.draw(st.sampled_from([*args, "steps", "pca_demand_dose", "surprise"]))
    if data.draw(st.booleans()):
        args.pop(key, None)
    else:
        args[key] = data.draw(JSON)
    try:
        read = read_offer(args)
    except OfferError as error:
        assert error.code == "command.malformed"
        assert error.field
    else:
        assert read_offer(offer_args(read)) == read
