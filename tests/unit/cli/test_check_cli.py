"""`smartpump check`: the dose the pump delivers beside the dose programmed, deliverable alternatives,
and ``--model`` (the model's resolutions and device limits as hard alerts), through Typer's CliRunner."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from smartpump.cli.calc import register
from smartpump.library.formats import json_format
from smartpump.library.model import DeliveryMode, DeviceType
from tests.factories import (
    bounds,
    concentration,
    dose_limits,
    make_care_area,
    make_drug,
    make_entry,
    make_library,
)

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "examples" / "demo-library.json"
DOPAMINE = ["--care-area", "ADULT_ICU", "--drug", "dopamine", "--dose-unit", "mcg/kg/min", "--weight", "70kg"]

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    local = typer.Typer()
    register(local)
    return local


def _check(app: typer.Typer, *args: str, library: Path = DEMO) -> dict[str, Any]:
    result = runner.invoke(app, ["check", "--library", str(library), *args, "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output, parse_float=Decimal)
    return document


def _rules(document: dict[str, Any]) -> set[str]:
    return {a["rule"] for a in document["alerts"]}


def test_a_dose_below_the_rate_resolution_is_a_hard_verdict_and_exits_zero(app: typer.Typer) -> None:
    # defect: a dose below the pump's resolution was an invalid request (exit 2), not a hard limit
    document = _check(app, *DOPAMINE, "--dose", "0.001")
    assert document["verdict"] == "hard" and document["rate_ml_per_h"] == 0
    assert "ders.device.rate.hard_min" in _rules(document)


def test_the_delivered_and_the_programmed_dose_and_the_deliverable_rates_are_printed(
    app: typer.Typer,
) -> None:
    # 30 mcg/kg/min (the hard max) is 78.75 mL/h; the pump runs 78.8 = 30.019 mcg/kg/min
    document = _check(app, *DOPAMINE, "--dose", "30", "--model", "lvp")
    assert document["verdict"] == "hard" and document["model"] == "lvp-4"
    assert document["dose_programmed"] == 30 and Decimal("30.019") < document["dose"] < Decimal("30.02")
    [alternative] = document["deliverable"]
    assert alternative["rate_ml_per_h"] == Decimal("78.7") and alternative["dose"] < 30
    text = runner.invoke(app, ["check", "--library", str(DEMO), *DOPAMINE, "--dose", "30", "--model", "lvp"])
    assert text.exit_code == 0
    assert "dose delivered 30.019 mcg/kg/min (programmed 30 mcg/kg/min)" in text.output
    assert "deliverable: 78.7 mL/h = 29.981 mcg/kg/min" in text.output


def test_a_model_checks_at_its_own_rate_resolution(app: typer.Typer) -> None:
    rate = ["--care-area", "ADULT_ICU", "--drug", "dopamine", "--rate-ml-per-h", "5.373", "--weight", "70kg"]
    assert _check(app, *rate)["rate_ml_per_h"] == Decimal("5.4")
    syringe = _check(app, *rate, "--model", "syringe")
    assert (syringe["rate_ml_per_h"], syringe["rate_resolution_ml_per_h"]) == (
        Decimal("5.37"),
        Decimal("0.01"),
    )
    assert _check(app, *rate, "--rate-resolution", "0.01")["rate_ml_per_h"] == Decimal("5.37")


def test_a_rate_beyond_the_models_range_is_a_hard_device_alert(app: typer.Typer) -> None:
    rate = ["--care-area", "ADULT_ICU", "--drug", "dopamine", "--rate-ml-per-h", "150", "--weight", "70kg"]
    assert "ders.device.rate.hard_max" not in _rules(_check(app, *rate))
    document = _check(app, *rate, "--model", "pca")
    assert document["verdict"] == "hard" and "ders.device.rate.hard_max" in _rules(document)


def test_an_unknown_model_is_an_invalid_request(app: typer.Typer) -> None:
    result = runner.invoke(
        app, ["check", "--library", str(DEMO), *DOPAMINE, "--dose", "5", "--model", "lvp-9"]
    )
    assert result.exit_code == 2 and "cli.model" in result.output


def test_the_volume_that_holds_a_total_dose_follows_the_vtbi_resolution(
    app: typer.Typer, tmp_path: Path
) -> None:
    # example data: vancomycin 1000 mg/250 mL intermittent, 101 mg = 25.25 mL
    library = make_library(
        drugs=(make_drug(id="vancomycin", generic_name="vancomycin", display_name="", is_high_alert=False),),
        care_areas=(make_care_area(),),
        entries=(
            make_entry(
                id="icu-vancomycin",
                drug_id="vancomycin",
                mode=DeliveryMode.INTERMITTENT,
                dose=dose_limits("mg", soft_max=2000, hard_max=3000),
                concentrations=(concentration("1000 mg/250 mL"),),
                duration_min=bounds(hard_min=30, hard_max=240),
                devices=(DeviceType.LARGE_VOLUME, DeviceType.SYRINGE),
            ),
        ),
    )
    path = tmp_path / "library.json"
    json_format.write(library, path)
    args = [
        "--care-area",
        "icu",
        "--drug",
        "vancomycin",
        "--dose",
        "101",
        "--dose-unit",
        "mg",
        "--duration",
        "60min",
    ]
    assert _check(app, *args, library=path)["vtbi_ml"] == Decimal("25.3")
    assert _check(app, *args, "--vtbi-resolution", "0.01", library=path)["vtbi_ml"] == Decimal("25.25")
    on_syringe = _check(app, *args, "--model", "syringe", library=path)
    assert (on_syringe["vtbi_ml"], on_syringe["vtbi_resolution_ml"]) == (Decimal("25.25"), Decimal("0.01"))
    on_pca = runner.invoke(app, ["check", "--library", str(path), *args, "--model", "pca"])
    assert on_pca.exit_code == 2 and "pump.device_not_allowed" in on_pca.output


@pytest.mark.parametrize(
    ("drug", "meant"),
    [("levophed", "norEPINEPHrine"), ("norepi", "norEPINEPHrine"), ("DOPAMIN", "DOPamine")],
)
def test_an_unknown_drug_name_offers_what_the_user_meant(app: typer.Typer, drug: str, meant: str) -> None:
    args = ["check", "--library", str(DEMO), "--care-area", "ADULT_ICU", "--drug", drug, "--dose", "1"]
    result = runner.invoke(app, [*args, "--dose-unit", "mcg/kg/min", "--weight", "70kg"])
    assert result.exit_code == 2
    assert f"no entry for '{drug}' in care area 'ADULT_ICU'; did you mean {meant}?" in result.output
    as_json = runner.invoke(app, [*args, "--dose-unit", "mcg/kg/min", "--weight", "70kg", "--json"])
    assert json.loads(as_json.stdout[: as_json.stdout.index("\n}") + 2])["did_you_mean"] == [meant]


def test_without_a_close_name_every_candidate_is_counted(app: typer.Typer) -> None:
    args = ["check", "--library", str(DEMO), "--care-area", "ADULT_ICU", "--drug", "zzz", "--dose", "1"]
    result = runner.invoke(app, [*args, "--dose-unit", "mcg/kg/min", "--weight", "70kg"])
    assert result.exit_code == 2
    assert "Candidates: DOBUTamine; DOPamine;" in result.output
    library = json_format.read(DEMO)
    in_area = {library.drug(e.drug_id).shown_name for e in library.entries_in("ADULT_ICU")}
    assert f"; ... and {len(in_area) - 20} more" in result.output
