"""`smartpump scenario run FILE|DIR` plays timed scripts on a simulated pump; `scenario generate` writes
dose-error (2x/5x/10x), look-alike/sound-alike, wrong-concentration and limit-edge (intermittent dose,
duration and dose rate; custom concentration) scenarios for every entry of a care area, PCA included (a
pharmacist's pre-release test)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final

import typer
import yaml

from smartpump.cli.output import console, emit_json, fail
from smartpump.errors import SmartpumpError
from smartpump.library.formats import json_format
from smartpump.library.formats.confused_names_table import confused_names_table
from smartpump.library.model import DrugLibrary
from smartpump.sim.edges import limit_edges
from smartpump.sim.generate import Family, GeneratedScenario
from smartpump.sim.generate import generate as generate_scenarios
from smartpump.sim.mixups import look_alike, wrong_concentration
from smartpump.sim.scenario import ScenarioResult, load_scenario, run_scenario
from smartpump.units import format_decimal

EXIT_NOTHING_GENERATED: Final = 1

scenario_app = typer.Typer(
    name="scenario", help="Play pump scenarios (bedside actions, faults) in virtual time."
)


def plain(value: Any) -> str:
    """A value as people read it: Decimals as plain numbers, lists and mappings without reprs."""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {plain(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(plain(v) for v in value) + "]"
    return str(value)


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False)


def _run_file(file: Path, library: Path | None, loaded: dict[Path, DrugLibrary]) -> ScenarioResult:
    """Run one scenario file; each library file is read once per run (``loaded`` keeps them)."""
    scenario = load_scenario(file)
    library_path = library or (file.parent / scenario.library if scenario.library else None)
    if library_path is None:
        fail("no library: pass --library or set 'library' in the scenario", code="scenario.no_library")
    key = library_path.resolve()
    if key not in loaded:
        loaded[key] = json_format.read(library_path)
    return run_scenario(scenario, loaded[key])


def _result_json(result: ScenarioResult, *, events: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": result.name,
        "passed": result.passed,
        "failures": list(result.failures),
    }
    if events:
        document["events"] = [e.to_dict() for e in result.events]
    return document


@scenario_app.command("run")
def run(
    path: Annotated[Path, typer.Argument(help="Scenario YAML file, or a directory of them.")],
    library: Annotated[
        Path | None, typer.Option("--library", "-l", help="Library JSON (default: the scenario's 'library').")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run a scenario (or every *.yaml in a directory); exit 0 all pass, 1 one fails, 2 bad input."""
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        if not files:
            fail(f"{path} holds no *.yaml scenario", code="scenario.none")
    else:
        files = [path]
    results: list[ScenarioResult] = []
    loaded: dict[Path, DrugLibrary] = {}
    try:
        for file in files:
            results.append(_run_file(file, library, loaded))
    except SmartpumpError as error:
        fail(f"{file}: {error.message}", code=error.code)
    if as_json:
        if path.is_dir():
            emit_json(
                {
                    "passed": all(r.passed for r in results),
                    "scenarios": [_result_json(r, events=False) for r in results],
                }
            )
        else:
            emit_json(_result_json(results[0], events=True))
    elif path.is_dir():
        for result in results:
            _say(f"{'PASSED' if result.passed else 'FAILED'} {result.name}")
            for failure in result.failures:
                _say(f"    {failure}")
        passed = sum(r.passed for r in results)
        _say(f"{passed}/{len(results)} scenarios passed")
    else:
        result = results[0]
        for event in result.events:
            data = ", ".join(
                f"{k}={plain(v)}" for k, v in event.data.items() if v is not None and k != "alerts"
            )
            _say(f"{event.seq:>4} {event.ts:%H:%M:%S} {event.channel or '-'} {event.type.value} {data}")
        for failure in result.failures:
            _say(f"FAILED: {failure}")
        _say("PASSED" if result.passed else "FAILED")
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@scenario_app.command("generate")
def generate(
    library: Annotated[Path, typer.Option("--library", "-l", help="Library JSON to test.")],
    care_area: Annotated[str, typer.Option("--care-area", help="Care area id (or name).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the scenarios to.")],
    families: Annotated[
        list[Family] | None,
        typer.Option(
            "--family",
            help="Scenario family (repeatable): dose (2x/5x/10x), look-alike (confused drug names), "
            "concentration (a ten-times-stronger bag), limits (intermittent dose, duration and dose-rate "
            "edges; custom-concentration edges). Default: all four.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Write pre-release scenarios for every entry of a care area (PCA included), each expecting what
    the library's limits call for: dose errors, look-alike/sound-alike picks, wrong concentrations and
    limit edges (rules: smartpump.sim.generate, .mixups and .edges); then `scenario run DIR`.
    Exit 1 when nothing can be generated for the care area."""
    chosen = tuple(dict.fromkeys(families or Family))
    try:
        drug_library = json_format.read(library)
        out.mkdir(parents=True, exist_ok=True)
        reference = os.path.relpath(library.resolve(), out.resolve())
        scenarios, skipped = _generated(drug_library, care_area, chosen, reference)
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    except OSError as error:
        fail(f"cannot write to {out}: {error.strerror}", code="scenario.output")
    written = []
    for scenario in scenarios:
        target = out / f"{scenario.stem}.yaml"
        target.write_text(yaml.safe_dump(scenario.document, sort_keys=False), encoding="utf-8")
        written.append(
            {
                "file": str(target),
                "family": scenario.family.value,
                "expected": scenario.expected,
                "note": scenario.note,
            }
        )
    if as_json:
        emit_json({"written": written, "skipped": skipped})
    else:
        for item in written:
            note = f"  ({item['note']})" if item["note"] else ""
            shown = "refused" if item["expected"].startswith("program.") else item["expected"]
            _say(f"{shown:>8}  {item['file']}{note}")
        for reason in skipped:
            _say(f" skipped  {reason}")
        if written:
            counts = ", ".join(f"{sum(w['family'] == f.value for w in written)} {f.value}" for f in chosen)
            _say(
                f"{len(written)} scenarios ({counts}) written to {out}; "
                f"run them with: smartpump scenario run {out}"
            )
    if not written:
        fail(
            f"no scenario could be generated for care area {care_area!r} (families: "
            f"{', '.join(f.value for f in chosen)}; {len(skipped)} entries skipped, reasons above)",
            code="scenario.none_generated",
            exit_code=EXIT_NOTHING_GENERATED,
        )


def _generated(
    library: DrugLibrary, care_area: str, families: tuple[Family, ...], reference: str
) -> tuple[list[GeneratedScenario], list[str]]:
    """The scenarios of the chosen families and everything skipped, in family order."""
    scenarios: list[GeneratedScenario] = []
    skipped: list[str] = []
    for family in families:
        if family is Family.DOSE:
            found, left = generate_scenarios(library, care_area, library_ref=reference)
        elif family is Family.LOOK_ALIKE:
            found, left = look_alike(library, care_area, confused_names_table(), library_ref=reference)
        elif family is Family.CONCENTRATION:
            found, left = wrong_concentration(library, care_area, library_ref=reference)
        else:
            found, left = limit_edges(library, care_area, library_ref=reference)
        scenarios += found
        skipped += [f"{family.value}: {reason}" for reason in left]
    return scenarios, skipped


def register(app: typer.Typer) -> None:
    """Add the ``scenario`` sub-app to the main CLI."""
    app.add_typer(scenario_app, name="scenario")
