"""`smartpump library search` on the demo library and on the imported BD Alaris v66 export."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import smartpump.cli.library_search  # noqa: F401  (registers the command on library_app)
from smartpump.cli.library import register
from smartpump.library.formats import json_format
from smartpump.library.formats.alaris import read_alaris
from smartpump.library.formats.high_alert_table import high_alert_table
from smartpump.library.model import Drug
from smartpump.library.search import search
from tests.conftest import shared_file

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "examples" / "demo-library.json"

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    local = typer.Typer()
    register(local)
    return local


@pytest.fixture(scope="module")
def v66_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("v66") / "v66.json"
    library = read_alaris(shared_file("vendor-libraries", "alaris-guardrails-dataset-v66.xlsx")).library
    json_format.write(library, path)
    return path


def _search_json(app: typer.Typer, query: str, file: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["library", "search", query, str(file), "--json", *extra])
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(
    ("query", "drug", "matched"),
    [
        ("heparin", "heparin", "heparin"),
        ("HEPARIN", "heparin", "heparin"),
        ("levophed", "norEPINEPHrine", "Levophed"),
        ("norepi", "norEPINEPHrine", "norepinephrine"),
        ("NorEpinephrine", "norEPINEPHrine", "norepinephrine"),
    ],
)
def test_demo_library_entries_are_found_by_any_name_whatever_the_case(
    app: typer.Typer, query: str, drug: str, matched: str
) -> None:
    code, document = _search_json(app, query, DEMO)
    assert code == 0
    matches = document["matches"]
    assert matches
    assert {m["drug"] for m in matches} == {drug}
    assert {m["matched"] for m in matches} == {matched}
    areas = {m["care_area_id"] for m in matches}
    assert len(areas) == len(matches) >= 2


def test_plain_output_lists_entries_with_limits_and_the_high_alert_mark(app: typer.Typer) -> None:
    result = runner.invoke(app, ["library", "search", "levophed", str(DEMO)])
    assert result.exit_code == 0, result.output
    assert "3 entries for 'levophed'" in result.output
    assert "OR_ANESTHESIA.norepinephrine" in result.output
    assert "norEPINEPHrine (HA)" in result.output
    assert "- / - / 45 / -" in result.output


def test_care_area_narrows_the_matches(app: typer.Typer) -> None:
    code, document = _search_json(app, "heparin", DEMO, "--care-area", "Adult ICU")
    assert code == 0
    assert [m["entry_id"] for m in document["matches"]] == ["ADULT_ICU.heparin"]


def test_a_near_miss_offers_did_you_mean_and_exits_1(app: typer.Typer) -> None:
    result = runner.invoke(app, ["library", "search", "hepatin", str(DEMO)])
    assert result.exit_code == 1
    assert "no entry matches 'hepatin'" in result.output
    assert "did you mean: heparin" in result.output
    code, document = _search_json(app, "levofed", DEMO)
    assert code == 1
    assert document["matches"] == []
    assert "norEPINEPHrine" in document["did_you_mean"]


def test_nothing_close_gives_no_suggestion(app: typer.Typer) -> None:
    code, document = _search_json(app, "zzzqqq", DEMO)
    assert (code, document["did_you_mean"]) == (1, [])


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        (["  ", str(DEMO)], "cli.empty_query", "the query is empty"),
        (["heparin", "/nonexistent/lib.json"], "cli.no_file", "no such file"),
        (["heparin", str(DEMO), "--care-area", "MOON"], "library.no_care_area", "known: ADULT_ICU"),
    ],
)
def test_bad_input_is_refused_with_its_code(app: typer.Typer, argv: list[str], code: str, text: str) -> None:
    result = runner.invoke(app, ["library", "search", *argv])
    assert result.exit_code == 2
    assert f"[{code}]" in result.output and text in result.output


def test_a_file_that_is_no_library_is_refused(app: typer.Typer, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.json"
    bogus.write_text('{"hello": 1}', encoding="utf-8")
    result = runner.invoke(app, ["library", "search", "heparin", str(bogus)])
    assert result.exit_code == 2
    assert "error [" in result.output


def test_real_v66_finds_brand_and_case_folded_names(app: typer.Typer, v66_file: Path) -> None:
    code, document = _search_json(app, "levophed", v66_file)
    assert code == 0
    found = {m["drug"] for m in document["matches"]}
    assert found == {"norepinephrine", "zz norepinephrine"}
    code, document = _search_json(app, "HEPARIN", v66_file)
    assert code == 0
    assert "heparin" in {m["drug"] for m in document["matches"]}
    assert all(m["high_alert"] for m in document["matches"])


def test_real_v66_near_miss_suggests_the_drug(app: typer.Typer, v66_file: Path) -> None:
    result = runner.invoke(app, ["library", "search", "vancomicin", str(v66_file)])
    assert result.exit_code == 1
    assert "did you mean: vancomycin" in result.output


def test_without_the_vocabulary_a_brand_alone_is_not_a_name() -> None:
    library = json_format.read(DEMO)
    stripped = replace(
        library, drugs=tuple(Drug(id=d.id, generic_name=d.generic_name) for d in library.drugs)
    )
    assert search(stripped, "levophed").matches == ()
    assert {m.drug.id for m in search(stripped, "levophed", high_alert_table()).matches} == {"norepinephrine"}


def test_a_pca_entry_is_listed_with_its_demand_dose_limits_as_library_show_lists_it(
    app: typer.Typer, tmp_path: Path
) -> None:
    library = json_format.read(DEMO)
    entry = library.entry("PCA.morphine")
    assert entry.pca is not None
    limits = replace(entry.pca.demand_dose.limits, soft_max=None, hard_max=Decimal(2))
    demand = replace(entry.pca.demand_dose, limits=limits)
    pca_limits = replace(entry.pca, demand_dose=demand)
    entries = tuple(replace(e, pca=pca_limits) if e.id == entry.id else e for e in library.entries)
    path = tmp_path / "pca.json"
    json_format.write(replace(library, entries=entries), path)
    code, found = _search_json(app, "morphine", path, "--care-area", "PCA")
    assert code == 0
    [pca] = [m for m in found["matches"] if m["entry_id"] == "PCA.morphine"]
    assert pca["dosing_unit"] == "mg/dose"
    assert pca["dose_limits"] == {"soft_min": 0.1, "hard_max": 2}
