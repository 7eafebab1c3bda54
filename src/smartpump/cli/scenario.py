"""`smartpump scenario run FILE.yaml`: play a timed script on a simulated pump and print its event log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartpump.cli.output import console, emit_json, fail
from smartpump.errors import SmartpumpError
from smartpump.library.formats import json_format
from smartpump.sim.scenario import load_scenario, run_scenario

scenario_app = typer.Typer(
    name="scenario", help="Play pump scenarios (bedside actions, faults) in virtual time."
)


@scenario_app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    library: Annotated[
        Path | None, typer.Option("--library", "-l", help="Library JSON (default: the scenario's 'library').")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run a scenario; exit 0 when every expectation holds, 1 when one fails, 2 on bad input."""
    try:
        scenario = load_scenario(file)
        library_path = library or (file.parent / scenario.library if scenario.library else None)
        if library_path is None:
            fail("no library: pass --library or set 'library' in the scenario", code="scenario.no_library")
        result = run_scenario(scenario, json_format.read(library_path))
    except SmartpumpError as error:
        fail(error.message, code=error.code)
    if as_json:
        emit_json(
            {
                "name": result.name,
                "passed": result.passed,
                "failures": list(result.failures),
                "events": [e.to_dict() for e in result.events],
            }
        )
    else:
        for event in result.events:
            data = ", ".join(f"{k}={v}" for k, v in event.data.items() if v is not None and k != "alerts")
            console.print(
                f"{event.seq:>4} {event.ts:%H:%M:%S} {event.channel or '-'} {event.type.value} {data}",
                markup=False,
                highlight=False,
            )
        for failure in result.failures:
            console.print(f"FAILED: {failure}", markup=False, highlight=False)
        console.print("PASSED" if result.passed else "FAILED", markup=False, highlight=False)
    if not result.passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``scenario`` sub-app to the main CLI."""
    app.add_typer(scenario_app, name="scenario")
